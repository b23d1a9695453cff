"""Media decoding with PyAV: video frames as RGB arrays, audio as float32 samples, still images.

Every reader raises `MediaError` with a message that names the file and says what is wrong with
it (empty, not a media file, no video stream, ...); callers turn that into a per-file failure and
carry on. Video streams decode with ``thread_type="AUTO"`` (frame + slice threads).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".flv", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".3gp")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus")


class MediaError(Exception):
    """A file that cannot be decoded; the message names the file and the reason."""


class NoVideoStream(MediaError):
    """A readable container without a video stream (an audio-only .mp4, say)."""


_CSV_ROW = re.compile(r"^(?P<csv>.+\.csv)#(?P<row>\d+)$", re.IGNORECASE)


def is_image(path: str | os.PathLike) -> bool:
    """An image file, or a FER2013-style CSV row reference "<file.csv>#<row>"."""
    s = str(path)
    return Path(s).suffix.lower() in IMAGE_EXTENSIONS or _CSV_ROW.match(s) is not None


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: file not found")
    if p.is_dir():
        raise MediaError(f"{p}: is a folder, not a media file")
    if p.stat().st_size == 0:
        raise MediaError(f"{p}: empty file (0 bytes)")
    return p


def _open(path: str | os.PathLike):
    import av

    p = _check_file(path)
    try:
        return av.open(str(p))
    except av.error.FFmpegError as e:  # InvalidDataError, EOFError, ...
        raise MediaError(f"{p}: cannot open: not a media file, or a truncated or damaged one "
                         f"({_ffmpeg_reason(e)})") from None


def _ffmpeg_reason(e: Exception) -> str:
    s = getattr(e, "strerror", None) or str(e)
    return s.split(": '", 1)[0]


@dataclass(frozen=True)
class MediaInfo:
    path: str
    format: str
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    n_frames: int = 0          # container's estimate; 0 when unknown
    duration_s: float = 0.0
    audio_rate: int = 0
    audio_channels: int = 0
    rotation: int = 0          # degrees counter-clockwise that make frames upright; width/height are upright


def probe(path: str | os.PathLike) -> MediaInfo:
    """Streams, size, rate and duration from the container header. Width and height are those of the
    upright picture, as `VideoReader` yields it: the display rotation (phones store portrait video as
    landscape pixels) is read from the first decoded frame, the only frame decoded."""
    with _open(path) as c:
        vs = c.streams.video[0] if c.streams.video else None
        aus = c.streams.audio[0] if c.streams.audio else None
        duration = float(c.duration) / 1e6 if c.duration else 0.0
        w, h = (int(vs.codec_context.width), int(vs.codec_context.height)) if vs else (0, 0)
        turns = _first_frame_turns(c, vs) if vs else 0
        if turns % 2:
            w, h = h, w
        info = MediaInfo(
            path=str(path), format=c.format.name, has_video=vs is not None, has_audio=aus is not None,
            width=w, height=h, fps=_stream_fps(vs) if vs else 0.0, n_frames=int(vs.frames or 0) if vs else 0,
            duration_s=duration, audio_rate=int(aus.rate or 0) if aus else 0,
            audio_channels=int(aus.channels or 0) if aus else 0, rotation=turns * 90,
        )
    return info


def _first_frame_turns(c, vs) -> int:
    """Quarter turns of the first frame (0 when it cannot be decoded: probe reports what the header says)."""
    import av

    try:
        for frame in c.decode(vs):
            return quarter_turns(frame)
    except (av.error.FFmpegError, ValueError):
        pass
    return 0


def _stream_fps(vs) -> float:
    for rate in (vs.average_rate, vs.guessed_rate, vs.base_rate):
        try:
            if rate and float(rate) > 0:
                return float(rate)
        except (TypeError, ZeroDivisionError):
            continue
    return 0.0


class YUVFrame:
    """A decoded frame as zero-copy views of its yuv420p planes (Y [H, W], U and V [H/2, W/2]).

    Cropping and resizing the planes of just the face region is much cheaper than converting
    every full frame to RGB; `to_rgb()` does the full conversion when it is needed."""

    __slots__ = ("y", "u", "v", "width", "height", "_frame", "_turns")

    def __init__(self, frame, turns: int = 0):
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        self._frame = frame
        self._turns = turns % 4
        w, h = frame.width, frame.height
        cw, ch = (w + 1) // 2, (h + 1) // 2
        p = frame.planes
        self.y = np.frombuffer(p[0], np.uint8).reshape(h, p[0].line_size)[:, :w]
        self.u = np.frombuffer(p[1], np.uint8).reshape(ch, p[1].line_size)[:, :cw]
        self.v = np.frombuffer(p[2], np.uint8).reshape(ch, p[2].line_size)[:, :cw]
        if self._turns:       # upright planes (contiguous: OpenCV wants positive strides)
            self.y, self.u, self.v = (np.ascontiguousarray(np.rot90(a, self._turns)) for a in (self.y, self.u, self.v))
            w, h = self.y.shape[1], self.y.shape[0]
        self.width, self.height = w, h

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)

    @property
    def ndim(self) -> int:
        return 3

    def to_rgb(self) -> np.ndarray:
        return upright(self._frame.to_ndarray(format="rgb24"), self._turns)


def quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that make a decoded frame upright: the container's display
    matrix (phones store portrait video as landscape pixels plus a rotation), read by PyAV as
    `VideoFrame.rotation` (degrees counter-clockwise, in [-180, 180])."""
    try:
        deg = float(getattr(frame, "rotation", 0) or 0)
    except (TypeError, ValueError):
        return 0
    return int(round(deg / 90.0)) % 4


def upright(img: np.ndarray, turns: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(img, turns)) if turns % 4 else img


class VideoReader:
    """Iterate the frames of a video: uint8 RGB [H, W, 3] arrays (format="rgb24", the default),
    any other PyAV pixel format name, or `YUVFrame`s (format="yuv").

    >>> with VideoReader(path) as r:
    ...     for frame in r: ...
    ...     r.fps, r.n_decoded, r.error

    Frames are turned upright by the container's rotation (display matrix); `rotation` says by how
    much once a frame was decoded, and width/height are then those of the upright frames.

    A stream that breaks off part-way (a truncated or damaged file) ends the iteration instead of
    raising once at least one frame was decoded; `error` then holds the reason (also when fewer
    frames than the container announces could be decoded). A file that yields no frame at all
    raises MediaError.
    """

    def __init__(self, path: str | os.PathLike, format: str = "rgb24", threads: int = 0):
        self.path = str(path)
        self.format = format
        self._container = _open(path)
        if not self._container.streams.video:
            self._container.close()
            raise NoVideoStream(f"{self.path}: no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._stream.thread_count = int(threads)
        self.fps = _stream_fps(self._stream)
        self.width = int(self._stream.codec_context.width)
        self.height = int(self._stream.codec_context.height)
        self.n_frames_hint = int(self._stream.frames or 0)
        self.n_decoded = 0
        self.error: str | None = None
        self.rotation: int | None = None   # degrees counter-clockwise applied to make frames upright

    def __iter__(self) -> Iterator:
        import av

        yuv = self.format == "yuv"
        try:
            for frame in self._container.decode(self._stream):
                turns = quarter_turns(frame)
                if turns and self.rotation is None:
                    self.rotation = turns * 90
                    if turns % 2:
                        self.width, self.height = self.height, self.width
                out = YUVFrame(frame, turns) if yuv else upright(frame.to_ndarray(format=self.format), turns)
                self.n_decoded += 1
                yield out
        except av.error.FFmpegError as e:
            reason = f"decoding stopped after {self.n_decoded} frames ({_ffmpeg_reason(e)})"
            if self.n_decoded == 0:
                raise MediaError(f"{self.path}: {reason}") from None
            self.error = reason
        if self.n_decoded == 0:
            raise MediaError(f"{self.path}: the video stream has no decodable frame")
        if self.error is None and self.n_frames_hint and self.n_decoded < self.n_frames_hint - 1:
            self.error = (f"decoded {self.n_decoded} of the {self.n_frames_hint} frames the container "
                          "announces (truncated or damaged file)")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as uint8 RGB [H, W, 3] (OpenCV first, PyAV as the fallback)."""
    import cv2

    m = _CSV_ROW.match(str(path))
    if m:
        return _csv_row_image(m.group("csv"), int(m.group("row")))
    p = _check_file(path)
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is not None:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    try:
        with _open(p) as c:
            if c.streams.video:
                for frame in c.decode(video=0):
                    return frame.to_ndarray(format="rgb24")
    except Exception:  # noqa: BLE001 - any decoder failure means "unreadable"
        pass
    raise MediaError(f"{p}: not a readable image")


_CSV_IMAGES: dict[str, dict[int, np.ndarray | None]] = {}


def _csv_row_image(csv_path: str, row: int) -> np.ndarray:
    """Row `row` (0-based data row) of a FER2013 CSV (emotion,pixels,Usage) as RGB [48, 48, 3].

    The CSV is parsed once per process and kept (about 85 MB for all 35,887 images)."""
    import csv

    key = str(Path(csv_path).resolve())
    table = _CSV_IMAGES.get(key)
    if table is None:
        p = _check_file(csv_path)
        table = {}
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip().lower() for h in next(reader, [])]
            if "pixels" not in header:
                raise MediaError(f"{p}: CSV without a 'pixels' column")
            ip = header.index("pixels")
            for i, r in enumerate(reader):
                try:
                    px = np.array(r[ip].split(), dtype=np.uint8)
                    side = int(round(np.sqrt(px.size)))
                    table[i] = px.reshape(side, side) if side * side == px.size and side > 0 else None
                except (ValueError, IndexError):
                    table[i] = None
        _CSV_IMAGES.clear()
        _CSV_IMAGES[key] = table
    img = table.get(row)
    if img is None:
        raise MediaError(f"{csv_path}#{row}: no such row or not a readable image row")
    return np.repeat(img[:, :, None], 3, axis=2)


def decode_audio(path: str | os.PathLike) -> tuple[np.ndarray, int] | None:
    """The first audio stream as float32 [channels, n] and its sample rate; None when the file
    has no audio stream. Raises MediaError when the file or its audio cannot be decoded."""
    import av

    with _open(path) as c:
        if not c.streams.audio:
            return None
        stream = c.streams.audio[0]
        stream.thread_type = "AUTO"
        chunks: list[np.ndarray] = []
        rate = int(stream.rate or 0)
        try:
            for frame in c.decode(stream):
                rate = int(frame.sample_rate or rate)
                chunks.append(_audio_frame_to_float(frame))
        except av.error.FFmpegError as e:
            if not chunks:
                raise MediaError(f"{path}: audio could not be decoded ({_ffmpeg_reason(e)})") from None
        if not chunks:
            return np.zeros((max(1, stream.channels or 1), 0), np.float32), rate
        channels = max(ch.shape[0] for ch in chunks)
        chunks = [ch if ch.shape[0] == channels else np.repeat(ch[:1], channels, 0) for ch in chunks]
        return np.concatenate(chunks, axis=1), rate


_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def _audio_frame_to_float(frame) -> np.ndarray:
    """float32 [channels, n] from any sample format, planar or packed."""
    fmt = frame.format.name
    base = fmt.rstrip("p")
    channels = len(frame.layout.channels)
    arr = frame.to_ndarray()
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    if base == "u8":
        return (arr.astype(np.float32) - 128.0) / 128.0
    if base in _INT_SCALE:
        return (arr.astype(np.float64) / _INT_SCALE[base]).astype(np.float32)
    return arr.astype(np.float32, copy=False)


__all__ = [
    "MediaError", "NoVideoStream", "MediaInfo", "VideoReader", "YUVFrame", "probe", "read_image", "decode_audio", "is_image",
    "VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS", "AUDIO_EXTENSIONS",
]
