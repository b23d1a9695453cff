"""A frozen GE2E speaker encoder (Wan et al. 2018) with resemblyzer's pretrained weights.

resemblyzer (Apache-2.0, optional extra `speaker`) ships `pretrained.pt`, a GE2E encoder trained on
VoxCeleb 1+2 and LibriSpeech: LSTM(40, 256, 3 layers) on 40 mel bands, the last layer's final hidden
state -> Linear(256, 256) -> ReLU -> L2 norm. The file is a pickle; it is read here only with
`torch.load(weights_only=True)`, which restores tensors and plain containers and runs no code.
resemblyzer itself is never imported (its `audio` module needs webrtcvad, librosa and, for
webrtcvad's pkg_resources, setuptools<81): this module re-implements its front end from its
hparams.py/audio.py:

- volume normalised to -30 dBFS, long silences trimmed (resemblyzer uses webrtcvad in 30 ms
  windows; here an energy detector takes its place, with the same smoothing and dilation);
- power mel spectrogram as librosa.feature.melspectrogram computes it: 25 ms periodic Hann
  (n_fft 400), 10 ms hop, centred with zero padding, 40 Slaney-scale bands with Slaney norm, not logged;
- partial utterances of 160 frames (1.6 s) at 1.3 per second (last one kept when 75 % covered),
  each embedded, averaged and L2-normalised again.
"""
from __future__ import annotations

import numpy as np
import torch

from mrpn.features.spectrogram import _hz_to_slaney, _slaney_to_hz, ge2e_mels, slaney_mel_filterbank  # noqa: F401
from mrpn.models.ge2e import GE2E, load_encoder, weights_path  # noqa: F401

__all__ = ["SAMPLE_RATE", "N_MELS", "PARTIAL_FRAMES", "weights_path", "slaney_mel_filterbank", "ge2e_mels",
           "partial_slices", "trim_long_silences", "GE2E", "load_encoder", "embed_clip"]

SAMPLE_RATE, N_MELS, HOP, PARTIAL_FRAMES = 16000, 40, 160, 160
VAD_WIN, VAD_AVG, VAD_DILATE = 480, 8, 7          # 30 ms windows; moving average 8; max silence 6 windows


def trim_long_silences(wave: np.ndarray) -> np.ndarray:
    """Drop silences longer than ~0.2 s (resemblyzer's trim_long_silences with an energy detector:
    a 30 ms window is voiced when within 40 dB of the clip's loudest window)."""
    n = len(wave) - len(wave) % VAD_WIN
    if n < VAD_WIN:
        return wave
    win = wave[:n].reshape(-1, VAD_WIN).astype(np.float64)
    db = 10 * np.log10(np.mean(win ** 2, axis=1) + 1e-12)
    voiced = (db > db.max() - 40.0).astype(np.float64)
    padded = np.concatenate([np.zeros((VAD_AVG - 1) // 2), voiced, np.zeros(VAD_AVG // 2)])
    avg = np.convolve(padded, np.ones(VAD_AVG) / VAD_AVG, mode="valid")
    mask = np.round(avg).astype(bool)
    mask = np.convolve(mask.astype(np.float64), np.ones(VAD_DILATE), mode="same") > 0   # binary dilation
    kept = wave[:n][np.repeat(mask, VAD_WIN)]
    return kept if len(kept) >= VAD_WIN else wave[:n]


def partial_slices(n_samples: int, rate: float = 1.3, min_coverage: float = 0.75) -> list[tuple[int, int]]:
    """Frame ranges [start, stop) of the 160-frame partial utterances (resemblyzer's compute_partial_slices)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((SAMPLE_RATE / rate) / HOP))
    starts = range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)
    out = [(s, s + PARTIAL_FRAMES) for s in starts]
    coverage = (n_samples - out[-1][0] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and len(out) > 1:
        out = out[:-1]
    return out


@torch.no_grad()
def embed_clip(model: GE2E, wave: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    """A clip's unit embedding [256]: volume to `target_dbfs`, silences trimmed, partials averaged."""
    wave = np.asarray(wave, dtype=np.float64)
    rms = np.sqrt(np.mean(wave ** 2)) if len(wave) else 0.0
    if rms > 0:
        wave = wave * (10 ** (target_dbfs / 20) / rms)
    wave = trim_long_silences(wave)
    slices = partial_slices(len(wave))
    need = slices[-1][1] * HOP
    if need >= len(wave):
        wave = np.pad(wave, (0, need - len(wave)))
    mels = ge2e_mels(wave)
    batch = torch.stack([mels[a:b] for a, b in slices])
    e = model(batch).mean(0)
    return (e / e.norm().clamp_min(1e-12)).numpy()
