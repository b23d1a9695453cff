"""Audio features (paper 4.4, items 3-4): 1 s segments of the standardised 16 kHz wave, each a
Hann-512 / hop-64 log-magnitude spectrogram of 256 x 250, cut with a 0.2 s hop (audio
over-sampling, AO) or without overlap (WO).

Computed on the fly in the data loader: torch.stft over all segments of a clip at once costs a few
milliseconds (docs/PREPARE.md), and keeping only the wave in the cache lets one cache serve every
segment hop, size and augmentation.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def segment_wave(wave: torch.Tensor, sample_rate: int, segment_s: float, hop_s: float) -> torch.Tensor:
    """[N] -> [S, seg] windows (zero-padded at the end when the clip is shorter than one segment)."""
    seg = int(round(segment_s * sample_rate))
    hop = max(1, int(round(hop_s * sample_rate)))
    if wave.numel() < seg:
        wave = F.pad(wave, (0, seg - wave.numel()))
    return wave.unfold(0, seg, hop)


def spectrogram_segments(wave: torch.Tensor, sample_rate: int = 16000, segment_s: float = 1.0,
                         hop_s: float = 0.2, n_fft: int = 512, hop_length: int = 64,
                         spec_size: tuple[int, int] = (256, 250)) -> torch.Tensor:
    """Standardised wave [N] -> spectrogram segments [S, 1, F, W] (float32).

    One batched torch.stft over all segments. The STFT of a 16000-sample segment with n_fft=512,
    hop=64 and centring gives 257 x 251; dropping the Nyquist bin and the last frame gives the
    paper's 256 x 250. log1p compresses the magnitude's dynamic range; the extractor's first batch
    norm takes care of the rest. A smaller spec_size is obtained by average pooling (cpu preset).
    """
    segs = segment_wave(wave.float(), sample_rate, segment_s, hop_s)
    window = torch.hann_window(n_fft, device=segs.device)
    spec = torch.stft(segs, n_fft=n_fft, hop_length=hop_length, window=window, center=True,
                      return_complex=True)
    mag = spec.abs()[:, : n_fft // 2, : int(math.floor(segs.shape[1] / hop_length))]
    mag = torch.log1p(mag).unsqueeze(1)  # [S, 1, F, W]
    if tuple(mag.shape[-2:]) != tuple(spec_size):
        mag = F.adaptive_avg_pool2d(mag, spec_size)
    return mag.contiguous()
