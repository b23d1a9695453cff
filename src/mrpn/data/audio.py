"""Audio for the cache: load, mix to mono, resample to 16 kHz with soxr, standardise (paper 4.4).

"Raw audio inputs are resampled at 16 kHz and standardized by their mean and standard deviation
without any denoising or cutting." Each clip is standardised by its own mean and std. A silent
clip (RMS below `SILENCE_STD`, about -80 dBFS) cannot be standardised: it is kept as zeros and
reported as silent instead of being divided by ~0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrpn.data.media import MediaError, decode_audio

SAMPLE_RATE = 16_000
SILENCE_STD = 1e-4          # RMS of the mono signal (full scale = 1.0): ~ -80 dBFS
_SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")


@dataclass
class AudioResult:
    samples: np.ndarray      # float32 [n] at `SAMPLE_RATE`, standardised (zeros when silent)
    silent: bool
    source_rate: int
    source_channels: int
    mean: float              # of the resampled signal before standardising
    std: float

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def load(path: str | os.PathLike) -> tuple[np.ndarray, int] | None:
    """float32 [channels, n] and the sample rate; None when a container has no audio stream.

    WAV/FLAC/OGG go through soundfile (fast, exact); everything else (and any file soundfile
    rejects) through PyAV, so the audio track of an mp4/flv/mkv/webm works the same way.
    """
    p = Path(path)
    if p.suffix.lower() in _SOUNDFILE_EXTENSIONS and p.is_file() and p.stat().st_size > 0:
        import soundfile as sf

        try:
            data, rate = sf.read(str(p), dtype="float32", always_2d=True)
            return np.ascontiguousarray(data.T), int(rate)
        except Exception:  # noqa: BLE001 - fall back to PyAV, which reports a clear MediaError
            pass
    return decode_audio(p)


def to_mono(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x
    return x.mean(axis=0, dtype=np.float64).astype(np.float32) if x.shape[0] > 1 else x[0]


def resample(x: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 resampled with soxr (high quality); unchanged when the rate already matches."""
    x = np.asarray(x, dtype=np.float32)
    if rate == target or x.size == 0:
        return np.ascontiguousarray(x)
    if rate <= 0:
        raise ValueError(f"invalid sample rate {rate}")
    import soxr

    return soxr.resample(x, rate, target, quality="HQ").astype(np.float32, copy=False)


def standardise(x: np.ndarray, silence_std: float = SILENCE_STD) -> tuple[np.ndarray, bool, float, float]:
    """(x - mean) / std by the clip's own statistics -> (y, silent, mean, std). Silent -> zeros."""
    x64 = np.asarray(x, dtype=np.float64)
    if x64.size == 0:
        return np.zeros(0, np.float32), True, 0.0, 0.0
    mean = float(x64.mean())
    std = float(x64.std())
    if not np.isfinite(std) or std < silence_std:
        return np.zeros(x64.shape, np.float32), True, mean, std
    return ((x64 - mean) / std).astype(np.float32), False, mean, std


def prepare_audio(path: str | os.PathLike, target: int = SAMPLE_RATE) -> AudioResult | None:
    """Load -> mono -> `target` Hz -> standardised. None when the file has no audio stream."""
    loaded = load(path)
    if loaded is None:
        return None
    x, rate = loaded
    if not np.all(np.isfinite(x)):
        raise MediaError(f"{path}: audio contains NaN or infinite samples")
    channels = int(x.shape[0]) if x.ndim == 2 else 1
    mono = resample(to_mono(x), rate, target)
    y, silent, mean, std = standardise(mono)
    return AudioResult(samples=y, silent=silent, source_rate=int(rate), source_channels=channels, mean=mean, std=std)


def load_audio(path: str | os.PathLike, target: int = SAMPLE_RATE) -> np.ndarray:
    """The standardised `target` Hz mono samples of a file (zeros when silent), as prepare stores
    them. Raises MediaError when the file cannot be read or has no audio stream."""
    res = prepare_audio(path, target)
    if res is None:
        raise MediaError(f"{path}: no audio stream")
    return res.samples


__all__ = ["SAMPLE_RATE", "load_audio", "SILENCE_STD", "AudioResult", "load", "to_mono", "resample", "standardise", "prepare_audio"]
