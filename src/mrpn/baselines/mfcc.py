"""MFCCs and their clip statistics: the classic speech-emotion feature vector for an SVM baseline.

MFCC = DCT-II (orthonormal) of the log-mel spectrum, the mel filterbank being the project's own
(`mrpn.features.spectrogram.mel_filterbank`, HTK scale). Frames: 25 ms Hann windows (n_fft 512 at
16 kHz, zero padded), 10 ms hop, 40 bands, 20 coefficients (c0 included: it carries loudness, which
differs between emotions). Clip statistics: mean and standard deviation over frames of the MFCCs,
their deltas and delta-deltas (120 numbers); min/max are left out as they follow single noisy frames.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from mrpn.features.spectrogram import mel_filterbank

__all__ = ["dct_matrix", "log_mel_frames", "mfcc", "deltas", "mfcc_stats"]


@lru_cache(maxsize=8)
def dct_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """Orthonormal DCT-II basis [n_out, n_in]: row k is sqrt(2/N) cos(pi k (n + 1/2) / N), row 0 scaled by 1/sqrt(2)."""
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


def log_mel_frames(wave: torch.Tensor, sample_rate: int = 16000, n_mels: int = 40, win_ms: float = 25.0,
                   hop_ms: float = 10.0, n_fft: int = 512, floor: float = 1e-6) -> torch.Tensor:
    """Wave [N] -> log-mel [n_mels, T], T = 1 + N // hop (centred frames, zero padded at the edges)."""
    win = int(round(sample_rate * win_ms / 1000))
    hop = int(round(sample_rate * hop_ms / 1000))
    window = torch.hann_window(win)
    spec = torch.stft(wave.float(), n_fft=n_fft, hop_length=hop, win_length=win, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    power = spec.real.square() + spec.imag.square()                 # [n_fft/2+1, T]
    fb = mel_filterbank(power.shape[0], n_mels, sample_rate)
    return torch.log(fb @ power + floor)


def mfcc(wave: torch.Tensor, sample_rate: int = 16000, n_mfcc: int = 20, n_mels: int = 40, **kw) -> torch.Tensor:
    """Wave [N] -> MFCCs [n_mfcc, T]."""
    logmel = log_mel_frames(wave, sample_rate, n_mels, **kw)
    return dct_matrix(n_mfcc, n_mels) @ logmel


def deltas(x: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Regression deltas along time (the HTK formula): sum_n n (x[t+n] - x[t-n]) / (2 sum_n n^2), edges repeated."""
    T = x.shape[-1]
    pad = torch.cat([x[..., :1].expand(*x.shape[:-1], width), x, x[..., -1:].expand(*x.shape[:-1], width)], -1)
    num = sum(n * (pad[..., width + n: width + n + T] - pad[..., width - n: width - n + T])
              for n in range(1, width + 1))
    return num / (2 * sum(n * n for n in range(1, width + 1)))


def mfcc_stats(wave, sample_rate: int = 16000, n_mfcc: int = 20) -> np.ndarray:
    """Clip feature vector [6 * n_mfcc]: mean and std over frames of MFCC, delta and delta-delta."""
    w = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    c = mfcc(w, sample_rate, n_mfcc)
    d1 = deltas(c)
    d2 = deltas(d1)
    parts = [t for m in (c, d1, d2) for t in (m.mean(-1), m.std(-1, unbiased=False))]
    return torch.cat(parts).numpy().astype(np.float64)
