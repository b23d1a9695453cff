"""Generate small test media with PyAV / soundfile / OpenCV (nothing is read from real data sets).

All functions write into the path given (a pytest tmp_path) and return it. Video content comes
from a `frame_fn(t, width, height) -> uint8 RGB [H, W, 3]`; the defaults draw a bright square
that moves across a dark background (`blob_frame`), which `BlobDetector` below finds exactly, so
tracking can be tested without a real face. `face_like_frame` draws a cartoon face for no-face cases.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

FrameFn = Callable[[int, int, int], np.ndarray]

# extension -> (video codec, audio codec, audio sample rate)
CODECS = {
    ".mp4": ("libx264", "aac", 48000),
    ".mkv": ("libx264", "aac", 48000),
    ".flv": ("flv", "libmp3lame", 44100),
    ".avi": ("mpeg4", "pcm_s16le", 48000),
    ".webm": ("libvpx", "libopus", 48000),
}


def blob_box(t: int, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the square drawn by blob_frame at frame t: it moves 2 px a frame to the
    right (linear motion, so interpolated boxes are exact) and wraps around at the right edge."""
    side = max(8, min(width, height) // 3)
    span = max(1, width - side - 20)
    x = 10 + (2 * t) % span
    y = (height - side) // 2
    return x, y, side, side


def blob_frame(t: int, width: int, height: int) -> np.ndarray:
    img = np.full((height, width, 3), 30, np.uint8)
    x, y, w, h = blob_box(t, width, height)
    img[y:y + h, x:x + w] = (230, 200, 180)
    return img


def face_like_box(t: int, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the head ellipse drawn by face_like_frame at frame t."""
    m = min(width, height)
    ax, ay = max(4, int(m * 0.27)), max(6, int(m * 0.36))
    cx = width // 2 + int(round(0.08 * width * np.sin(2 * np.pi * t / 40)))
    cy = height // 2
    return cx - ax, cy - ay, 2 * ax, 2 * ay


def face_like_frame(t: int, width: int, height: int) -> np.ndarray:
    """A drawn cartoon face (skin ellipse, dark eyes and brows, mouth) that drifts sideways.

    OpenCV's Haar cascade does find it (from about 96 px frames up), so the default detector can
    be tested end to end without a real face; blob_frame / noise frames are the no-face cases."""
    import cv2

    img = np.full((height, width, 3), (90, 120, 160), np.uint8)
    x, y, w, h = face_like_box(t, width, height)
    ax, ay = w // 2, h // 2
    c = (x + ax, y + ay)
    cv2.ellipse(img, c, (ax, ay), 0, 0, 360, (224, 180, 150), -1)
    e = max(2, ax // 6)
    for sx in (-1, 1):
        eye = (c[0] + sx * ax // 2, c[1] - ay // 4)
        cv2.circle(img, eye, e, (20, 20, 20), -1)
        cv2.line(img, (eye[0] - e * 2, eye[1] - e * 2), (eye[0] + e * 2, eye[1] - e * 2), (60, 40, 30), max(1, e // 2))
    cv2.ellipse(img, (c[0], c[1] + ay // 3), (ax // 2, max(1, ay // 8)), 0, 0, 180, (120, 30, 30), max(1, e // 2))
    return img


def noise_frame(t: int, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(t)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    """float32 [channels, n]: a sine with a slow envelope (so mean/std are not trivial)."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    x = amplitude * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t)) + 0.01
    return np.repeat(x[None, :].astype(np.float32), channels, axis=0)


def write_video(path: str | Path, n_frames: int = 30, fps: int = 30, size: tuple[int, int] = (160, 120),
                audio: str | None = "tone", channels: int = 2, frame_fn: FrameFn = blob_frame,
                rotation: int = 0) -> Path:
    """A video with an optional audio track ("tone", "silent" or None), in the container given
    by the extension (mp4, mkv, flv, avi, webm). `rotation` (degrees counter-clockwise) goes into
    the container's display matrix, as phones write portrait video."""
    import av

    path = Path(path)
    vcodec, acodec, rate = CODECS[path.suffix.lower()]
    width, height = size
    with av.open(str(path), "w") as c:
        vs = c.add_stream(vcodec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv420p"
        if rotation:
            vs.set_display_rotation(rotation)
        if vcodec == "libx264":
            vs.options = {"preset": "ultrafast", "threads": "1"}
        streams = [vs]
        a_stream = None
        if audio is not None:
            layout = "stereo" if channels == 2 else "mono"
            a_stream = c.add_stream(acodec, rate=rate, layout=layout)
            streams.append(a_stream)
        for t in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_fn(t, width, height)), format="rgb24")
            frame.pts = t
            frame.time_base = Fraction(1, fps)
            for pkt in vs.encode(frame):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
        if a_stream is not None:
            seconds = n_frames / fps
            x = tone(seconds, rate, channels) if audio == "tone" else np.zeros((channels, int(seconds * rate)), np.float32)
            _encode_audio(c, a_stream, x, rate, channels)
    return path


def _encode_audio(container, stream, x: np.ndarray, rate: int, channels: int) -> None:
    import av

    layout = "stereo" if channels == 2 else "mono"
    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    chunk = stream.codec_context.frame_size or 1024
    for start in range(0, x.shape[1], chunk):
        part = np.ascontiguousarray(x[:, start:start + chunk])
        if part.shape[1] < chunk and stream.codec_context.frame_size:
            part = np.pad(part, ((0, 0), (0, chunk - part.shape[1])))
        base = fmt.rstrip("p")
        if base in ("s16", "s32"):
            bits = 16 if base == "s16" else 32
            part = (np.clip(part, -1, 1) * (2 ** (bits - 1) - 1)).astype(np.int16 if bits == 16 else np.int32)
        data = part if fmt.endswith("p") else part.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        for pkt in stream.encode(frame):
            container.mux(pkt)
    for pkt in stream.encode():
        container.mux(pkt)


def write_audio(path: str | Path, seconds: float = 1.5, rate: int = 48000, channels: int = 2,
                kind: str = "tone") -> Path:
    """A wav/flac file (soundfile): kind "tone" or "silent"."""
    import soundfile as sf

    path = Path(path)
    x = tone(seconds, rate, channels) if kind == "tone" else np.zeros((channels, int(seconds * rate)), np.float32)
    sf.write(str(path), x.T, rate, subtype="PCM_16")
    return path


def write_image(path: str | Path, size: int = 48, frame_fn: FrameFn = face_like_frame, gray: bool = True) -> Path:
    import cv2

    path = Path(path)
    img = frame_fn(0, size, size)
    img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if gray else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(path.suffix or ".jpg", img)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def write_zero_bytes(path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_text(path: str | Path, text: str = "this is not a video\n" * 20) -> Path:
    path = Path(path)
    path.write_text(text)
    return path


def truncate(src: str | Path, dst: str | Path, fraction: float = 0.5) -> Path:
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def faststart(src: str | Path, dst: str | Path) -> Path:
    """Remux an mp4 with the index (moov) first, so that a truncated copy still opens."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for pkt in inp.demux():
            if pkt.dts is None:
                continue
            pkt.stream = mapping[pkt.stream.index]
            out.mux(pkt)
    return Path(dst)


class BlobDetector:
    """Finds the bright square of `blob_frame` (largest bright connected area), exactly."""

    name = "blob"
    wants_color = False

    def __init__(self, threshold: int = 128, miss: Callable[[int], bool] | None = None):
        self.threshold = threshold
        self.calls = 0
        self.miss = miss       # miss(call_index) -> True: pretend nothing was found

    def detect(self, image: np.ndarray):
        import cv2

        k = self.calls
        self.calls += 1
        if self.miss is not None and self.miss(k):
            return []
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        ys, xs = np.nonzero(gray > self.threshold)
        if len(xs) == 0:
            return []
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        return [(float(x0), float(y0), float(x1 - x0), float(y1 - y0), 1.0)]
