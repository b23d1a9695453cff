"""Audio features (paper 4.4, items 3-4): 1 s segments of the standardised 16 kHz wave, each a
Hann-512 / hop-64 log-magnitude spectrogram of 256 x 250, cut with a 0.2 s hop (audio
over-sampling, AO) or without overlap (WO).

Two front ends share the segmentation (`audio_segments` picks one from the data config, and is
what the loader, the predictor and the stream predictor call):
- "linear": the paper's log-magnitude linear spectrogram, average-pooled to `spec_size` if smaller;
- "logmel": a log-mel spectrogram with `spec_size[0]` mel bands and `spec_size[1]` frames per
  segment (the STFT hop is chosen to give that many frames);
- "ge2e": the input of the GE2E speaker encoder (`models/ge2e.py`, resemblyzer's weights): 40
  Slaney mel bands of power, 25 ms window, 10 ms hop, 100 frames per 1 s segment, on the wave at
  -30 dBFS, as resemblyzer computes them with librosa (the extractor was trained on exactly that). Average pooling a 256-bin linear
  spectrogram to 64 rows keeps 4 kHz-wide bands at the top and 125 Hz bands at the bottom alike; mel
  bands are narrow where speech formants and pitch harmonics live, which is why speech emotion
  work uses them (docs/RESULTS.md has the measured difference).

Computed on the fly in the data loader: torch.stft over all segments of a clip at once costs a few
milliseconds (docs/PREPARE.md), and keeping only the wave in the cache lets one cache serve every
segment hop, size and augmentation.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
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


def hz_to_mel(f):
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=16)
def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, fmin: float = 0.0,
                   fmax: float | None = None) -> torch.Tensor:
    """Triangular filters [n_mels, n_freqs] on the HTK mel scale, each with unit area (Slaney norm),
    so a band's output does not grow with its width."""
    fmax = sample_rate / 2 if fmax is None else fmax
    freqs = np.linspace(0, sample_rate / 2, n_freqs)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs[None]) / np.maximum(hi - mid, 1e-9)
    fb = np.clip(np.minimum(up, down), 0, None) * (2.0 / (hi - lo))
    return torch.from_numpy(fb.astype(np.float32))


def logmel_segments(wave: torch.Tensor, sample_rate: int = 16000, segment_s: float = 1.0,
                    hop_s: float = 0.5, n_fft: int = 512, spec_size: tuple[int, int] = (64, 100)) -> torch.Tensor:
    """Standardised wave [N] -> log-mel segments [S, 1, n_mels, frames] (float32).

    The STFT hop is segment / frames (160 samples = 10 ms for 100 frames per 1 s segment); the
    power spectrum goes through `n_mels = spec_size[0]` triangular filters and log(1e-4 + x)
    (a floor 40 dB below the level of a unit-variance wave's bands). The extractor's input batch
    norm centres and scales the result.
    """
    n_mels, frames = int(spec_size[0]), int(spec_size[1])
    segs = segment_wave(wave.float(), sample_rate, segment_s, hop_s)
    hop = max(1, segs.shape[1] // frames)
    window = torch.hann_window(n_fft, device=segs.device)
    spec = torch.stft(segs, n_fft=n_fft, hop_length=hop, window=window, center=True, return_complex=True)
    power = spec.real.square() + spec.imag.square()          # [S, n_fft/2+1, T]
    fb = mel_filterbank(power.shape[1], n_mels, sample_rate).to(power.device)
    mel = torch.matmul(fb, power)[:, :, :frames]
    if mel.shape[-1] < frames:                                 # a hop that does not divide evenly
        mel = F.pad(mel, (0, frames - mel.shape[-1]), mode="replicate")
    return torch.log(mel + 1e-4).unsqueeze(1).contiguous()


def _hz_to_slaney(f):
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0), lin)


def _slaney_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (m - 15.0)), m * 200.0 / 3)


GE2E_N_FFT, GE2E_HOP, GE2E_MELS, GE2E_DBFS = 400, 160, 40, -30.0


@lru_cache(maxsize=4)
def slaney_mel_filterbank(n_fft: int = GE2E_N_FFT, n_mels: int = GE2E_MELS, sample_rate: int = 16000) -> torch.Tensor:
    """[n_mels, n_fft//2+1] triangles on the Slaney (Auditory Toolbox) mel scale, unit area: librosa's default."""
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = _slaney_to_hz(np.linspace(_hz_to_slaney(0.0), _hz_to_slaney(sample_rate / 2), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid))) * (2.0 / (hi - lo))
    return torch.from_numpy(fb.astype(np.float32))


def _ge2e_power_mel(x: torch.Tensor) -> torch.Tensor:
    """Waves [..., N] -> power mel [..., 40, 1 + N // 160] as librosa computes it for the GE2E encoder."""
    spec = torch.stft(x, n_fft=GE2E_N_FFT, hop_length=GE2E_HOP, window=torch.hann_window(GE2E_N_FFT),
                      center=True, pad_mode="constant", return_complex=True)
    return torch.matmul(slaney_mel_filterbank(), spec.real.square() + spec.imag.square())


def ge2e_mels(wave: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Wave [N] at 16 kHz -> power mel frames [1 + N // 160, 40] (float32), librosa-equivalent."""
    return _ge2e_power_mel(torch.as_tensor(np.asarray(wave, dtype=np.float32))).T.contiguous()


def ge2e_segments(wave: torch.Tensor, sample_rate: int = 16000, segment_s: float = 1.0,
                  hop_s: float = 0.5, frames: int = 100) -> torch.Tensor:
    """Standardised wave [N] -> GE2E input segments [S, 1, 40, frames] (power mel, not logged).

    A standardised wave has unit RMS, so multiplying by 10^(-30/20) puts it at resemblyzer's
    -30 dBFS; the volume normalisation is per clip in both. Long silences are not trimmed (the
    model sees every segment of the clip, as for the other front ends)."""
    if sample_rate != 16000:
        raise ValueError(f"the ge2e front end needs 16 kHz audio (data.sample_rate={sample_rate})")
    segs = segment_wave(wave.float() * 10 ** (GE2E_DBFS / 20), sample_rate, segment_s, hop_s)
    mel = _ge2e_power_mel(segs)[:, :, :frames]
    if mel.shape[-1] < frames:
        mel = F.pad(mel, (0, frames - mel.shape[-1]))
    return mel.unsqueeze(1).contiguous()


FRONTENDS = ("linear", "logmel", "ge2e")


def audio_segments(wave: torch.Tensor, cfg) -> torch.Tensor:
    """The audio input of the model for one clip (or one window of it): [S, 1, F, W].

    `cfg` is a DataConfig (or anything with its audio fields). The one function that training,
    evaluation, prediction and streaming call, so their inputs cannot drift apart.
    """
    frontend = getattr(cfg, "audio_frontend", "linear")
    if frontend == "logmel":
        return logmel_segments(wave, cfg.sample_rate, cfg.segment_s, cfg.segment_hop_s, cfg.n_fft,
                               tuple(cfg.spec_size))
    if frontend == "ge2e":
        return ge2e_segments(wave, cfg.sample_rate, cfg.segment_s, cfg.segment_hop_s, int(cfg.spec_size[1]))
    if frontend == "linear":
        return spectrogram_segments(wave, cfg.sample_rate, cfg.segment_s, cfg.segment_hop_s, cfg.n_fft,
                                    cfg.hop_length, tuple(cfg.spec_size))
    raise ValueError(f"audio_frontend must be one of {FRONTENDS}, got {frontend!r}")


def spec_augment(x: torch.Tensor, rng: np.random.Generator, freq_width: int, time_width: int,
                 n_masks: int = 2) -> torch.Tensor:
    """SpecAugment masks (Park et al. 2019) on segments [S, 1, F, W]: per segment, `n_masks` bands of
    up to `freq_width` rows and `n_masks` spans of up to `time_width` columns set to the segment's
    mean, so masking removes information without adding an out-of-range value. Returns a new tensor."""
    x = x.clone()
    S, _, Fq, W = x.shape
    for s in range(S):
        fill = x[s].mean()
        for _ in range(n_masks if freq_width > 0 else 0):
            w = int(rng.integers(0, min(freq_width, Fq) + 1))
            f0 = int(rng.integers(0, Fq - w + 1))
            x[s, :, f0:f0 + w, :] = fill
        for _ in range(n_masks if time_width > 0 else 0):
            w = int(rng.integers(0, min(time_width, W) + 1))
            t0 = int(rng.integers(0, W - w + 1))
            x[s, :, :, t0:t0 + w] = fill
    return x
