"""Audio features (paper 4.4 items 3-4): the standardised wave of a time range -> spectrogram segments.

Per-segment functions shared by training (`data.loader`), the `Predictor` and the `StreamPredictor`:
`select` gives the segments of [t0, t1) as rows (start, end) in samples (1 s segments with a 0.2 s
AO or 1 s WO hop; a range shorter than one segment gives one segment, zero-padded after `end`),
`inputs` turns them into [N, 1, F, W] spectrograms (`features.spectrogram.audio_segments`: the
configured front end, linear or log-mel), with SpecAugment masks when a random generator is given
(training only).

The example `ex` holds `audio`, the standardised float32 wave at `d.sample_rate` (or None).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from mrpn.features import acoustics
from mrpn.features.spectrogram import audio_segments, spec_augment


def duration(ex, d) -> float:
    audio = getattr(ex, "audio", None)
    return len(audio) / d.sample_rate if audio is not None else 0.0


def present(ex) -> bool:
    return getattr(ex, "audio", None) is not None


def usable(ex) -> bool:
    audio = getattr(ex, "audio", None)
    return audio is not None and len(audio) > 0


def segment_keys(n_samples: int, a0: int, a1: int, seg: int, hop: int) -> np.ndarray:
    """(start, end) rows of the segments of wave[a0:a1] (end < start + seg: zero-padded)."""
    n = max(0, min(a1, n_samples) - a0)
    if n < seg:
        return np.array([[a0, a0 + n]], np.int64)
    starts = a0 + np.arange(0, n - seg + 1, hop, dtype=np.int64)
    return np.stack([starts, starts + seg], 1)


def _sizes(d) -> tuple[int, int]:
    seg = int(round(d.segment_s * d.sample_rate))
    return seg, max(1, int(round(d.segment_hop_s * d.sample_rate)))


def select(ex, t0: float, t1: float, d) -> np.ndarray:
    sr = d.sample_rate
    a0 = int(t0 * sr)
    a1 = max(int(t1 * sr), a0 + 1)
    return segment_keys(len(ex.audio), a0, a1, *_sizes(d))


def inputs(ex, keys: np.ndarray, d, rng: np.random.Generator | None = None) -> torch.Tensor:
    """Spectrograms [N, 1, F, W] of the segments `keys`, in one batched STFT: the segments are laid
    end to end and cut again without overlap. When rng is given (training): recording conditions on the
    clip's wave first (`features.acoustics`, if the config asks for them), SpecAugment last."""
    seg, _ = _sizes(d)
    audio = ex.audio
    if rng is not None and acoustics.active(d):
        audio = acoustics.augment(audio, rng, d)
    parts = []
    for s, e in keys:
        w = torch.from_numpy(np.ascontiguousarray(audio[s:e], dtype=np.float32))
        parts.append(F.pad(w, (0, seg - w.numel())) if w.numel() < seg else w)
    wave = torch.cat(parts) if parts else torch.zeros(seg)
    x = audio_segments(wave, replace(d, segment_hop_s=d.segment_s))
    if rng is not None and (d.specaug_freq or d.specaug_time):
        x = spec_augment(x, rng, d.specaug_freq, d.specaug_time, d.specaug_masks)
    return x


def element_shape(d) -> tuple[int, int, int]:
    return (1, *d.spec_size)


def setting(d) -> str | None:
    """Run-label tag: audio over-sampling (AO, 0.2 s hop; AO<h>s for another hop) or without (WO)."""
    hop = d.segment_hop_s
    return ("AO" if abs(hop - 0.2) < 1e-9 else f"AO{hop:g}s") if hop < d.segment_s else "WO"
