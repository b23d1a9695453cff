"""One clip of `mrpn prepare`: decode the video (PyAV), track and crop the face
(`mrpn.data.faces`), decode the audio from the container or the paired file, resample it to 16 kHz
mono and standardise it (`mrpn.data.audio`), then write clips/<id>.npz and clips/<id>.json
atomically (`mrpn.data.cache`). A clip that cannot be read becomes a failed record whose reason
names the file; the run carries on.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from mrpn.data.audio import SAMPLE_RATE, prepare_audio
from mrpn.data.cache import Cache
from mrpn.data.clip import Clip
from mrpn.data.faces import DetectorUnavailable, FaceConfig, make_detector, track_faces
from mrpn.data.media import MediaError, VideoReader, is_image, read_image

SHORT_S = 1.0
DATASETS = ("ravdess", "cremad", "fer2013", "custom")


class PrepareError(Exception):
    """An unusable input or setting; the CLI prints the message and exits with status 2."""


@dataclass
class PrepareConfig:
    """Everything that determines the cache's content (stored in prepare.json and every record)."""
    detector: str = "opencv"
    face_size: int = 112
    gray: bool = False
    detect_every: int = 5
    detect_width: int = 320
    margin: float = 0.25
    max_gap: int = 15
    smooth: int = 9
    roi: float = 2.0
    edge_pad: float = 0.15
    sample_rate: int = SAMPLE_RATE
    include_no_face: bool = False

    def face_config(self) -> FaceConfig:
        names = {f.name for f in fields(FaceConfig)}
        return FaceConfig(**{k: v for k, v in asdict(self).items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _where(clip: Clip) -> str:
    return clip.video or clip.audio or clip.id


def _video_part(clip: Clip, config: PrepareConfig, detector, decode_threads: int, flags: list[str],
                notes: list[str]) -> dict[str, Any]:
    """Face track of the clip's video or image: crops, found, boxes, fps, frame size, detector counts."""
    C = 1 if config.gray else 3
    S = int(config.face_size)
    out: dict[str, Any] = {"faces": np.zeros((0, S, S, C), np.uint8), "found": np.zeros(0, bool),
                           "boxes": np.zeros((0, 4), np.float32), "fps": 0.0, "frame_size": None,
                           "detect_calls": 0, "detections": 0}
    if not clip.video:
        return out
    detector = detector if detector is not None else make_detector(config.detector)
    fc = config.face_config()
    if is_image(clip.video):
        img = read_image(clip.video)
        out["frame_size"] = list(img.shape[:2])
        track = track_faces([img], detector, fc)
    else:
        with VideoReader(clip.video, format="yuv", threads=decode_threads) as reader:
            track = track_faces(reader, detector, fc)
            out["fps"] = float(reader.fps)
            out["frame_size"] = [reader.height, reader.width]
            if reader.error:
                flags.append("truncated")
                notes.append(f"{clip.video}: {reader.error}; kept the frames before it")
    out.update(faces=track.faces, found=track.found, boxes=track.boxes, detect_calls=track.detect_calls,
               detections=track.detections)
    if len(track.found) and not track.found.any():
        flags.append("no_face")
        notes.append(f"{clip.video}: no face found in any of {len(track.found)} frame(s)")
    if out["fps"] <= 0 and not is_image(clip.video) and len(track.found):
        notes.append(f"{clip.video}: the container gives no frame rate")
    return out


def _audio_part(clip: Clip, config: PrepareConfig, image: bool, flags: list[str], notes: list[str]):
    """(standardised 16 kHz samples, source rate, source channels); a video without audio is flagged."""
    audio = np.zeros(0, np.float32)
    audio_src = clip.audio or (clip.video if clip.video and not image else None)
    if not audio_src:
        return audio, None, None
    try:
        res = prepare_audio(audio_src, config.sample_rate)
    except MediaError as e:
        if not clip.video:
            raise
        res = None
        notes.append(f"{e}")
    if res is None:
        flags.append("no_audio")
        if not clip.audio:
            notes.append(f"{audio_src}: no audio stream and no paired audio file")
        return audio, None, None
    if res.silent:
        flags.append("silent_audio")
        notes.append(f"{audio_src}: silent audio (RMS {res.std:.2g}); stored as zeros")
    return res.samples, res.source_rate, res.source_channels


def prepare_clip(clip: Clip, config: PrepareConfig, detector=None, decode_threads: int = 0
                 ) -> tuple[dict, dict[str, np.ndarray]]:
    """Decode, track, crop and resample one clip -> (record without sha, arrays).

    Raises MediaError (message names the file) when the clip is unusable."""
    t0 = time.perf_counter()
    flags: list[str] = []
    notes: list[str] = []
    if not clip.video and not clip.audio:
        raise MediaError(f"{clip.id}: the clip has neither a video nor an audio file")
    image = bool(clip.video) and is_image(clip.video)
    v = _video_part(clip, config, detector, decode_threads, flags, notes)
    audio, source_rate, source_channels = _audio_part(clip, config, image, flags, notes)
    found, fps = v["found"], v["fps"]
    if clip.video and not image:
        duration = len(found) / fps if fps > 0 else len(audio) / config.sample_rate
    else:
        duration = len(audio) / config.sample_rate
    if not image and duration < SHORT_S:
        flags.append("short")
    record = {
        "clip": clip.to_dict(), "status": "ok", "reason": None, "flags": flags, "notes": notes,
        "skip": "no_face" in flags and not config.include_no_face,
        "n_frames": len(found), "fps": round(fps, 6), "duration_s": round(float(duration), 4),
        "audio_samples": len(audio),
        "face_fraction": round(float(found.mean()), 6) if len(found) else None,
        "frame_size": v["frame_size"], "source_audio_rate": source_rate, "source_audio_channels": source_channels,
        "detect_calls": v["detect_calls"], "detections": v["detections"],
        "prepare_config": config.to_dict(), "prepare_seconds": round(time.perf_counter() - t0, 4),
    }
    arrays = {"faces": v["faces"], "face_found": found, "boxes": v["boxes"],
              "fps": np.asarray(fps, np.float32), "audio": audio.astype(np.float32, copy=False)}
    return record, arrays


def failed_record(clip: Clip, config: PrepareConfig, reason: str) -> dict:
    return {"clip": clip.to_dict(), "status": "failed", "reason": reason, "flags": [], "notes": [],
            "skip": True, "n_frames": 0, "fps": 0.0, "duration_s": 0.0, "audio_samples": 0,
            "face_fraction": None, "prepare_config": config.to_dict()}


def process_clip(clip: Clip, config: PrepareConfig, cache: Cache, detector=None, decode_threads: int = 0) -> dict:
    """prepare_clip + write; any error becomes a failed record (never raises for bad media)."""
    try:
        record, arrays = prepare_clip(clip, config, detector, decode_threads)
    except MediaError as e:
        return cache.write_clip(failed_record(clip, config, str(e)))
    except (KeyboardInterrupt, SystemExit, DetectorUnavailable):
        raise
    except Exception as e:  # noqa: BLE001 - a bad file must not stop the run
        return cache.write_clip(failed_record(clip, config, f"{_where(clip)}: {type(e).__name__}: {e}"))
    return cache.write_clip(record, arrays)
