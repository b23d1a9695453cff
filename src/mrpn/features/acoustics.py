"""Recording conditions on the training wave (beyond the paper): noise, a room, a narrow channel.

RAVDESS was recorded in one studio with one microphone. A voice recorded anywhere else reaches F_a with
a noise floor, a room's reverberation and often a narrower band (a phone, a laptop microphone, a lossy
codec). Trained only on studio audio, the audio head collapses there: with white noise 20 dB below the
voice, the shipped model of 2026-12-07 answered *sad* for 60 % of its inner actors' clips, at 10 dB
*disgust* for 92 % (bench/audio_robustness.py, docs/MODEL_CARD.md). These draws put such conditions into
training, one clip at a time, before the clip is cut into the paper's 1 s segments (its 4.4 item 3):

* a synthetic room (`room`): a direct path, then noise decaying by 60 dB in RT60 ~ U[0.1, 1.0] s, at a
  direct-to-reverberant ratio ~ U[-3, 12] dB;
* noise of a random colour (power ~ f^-beta, beta ~ U[0, 2]: white to brown) at an SNR ~ U[snr_min,
  snr_max] dB relative to the clip;
* a low-pass channel with its cut-off ~ U[3, 7.5] kHz (a telephone band to a dull microphone).

Each with its own probability (`data.wave_reverb`, `data.wave_noise`, `data.wave_lowpass`; all 0 = off,
the paper's training). The result is standardised again (mean 0, std 1), as the serving path
standardises whatever recording it is given (`data.audio`). Drawn from the clip's own generator, seeded
by (seed, epoch, clip), so a run stays bit-identical when repeated.
"""
from __future__ import annotations

import numpy as np

RT60_S = (0.1, 1.0)
DRR_DB = (-3.0, 12.0)
COLOUR_BETA = (0.0, 2.0)
LOWPASS_HZ = (3000.0, 7500.0)


def active(d) -> bool:
    """Whether the data config asks for any recording condition."""
    return bool(d.wave_noise or d.wave_reverb or d.wave_lowpass)


def room(rt60: float, rng: np.random.Generator, sr: int = 16000, drr_db: float = 0.0) -> np.ndarray:
    """A synthetic impulse response of unit energy: a direct path, then Gaussian noise decaying by 60 dB in
    rt60 seconds whose energy is drr_db below the direct path's."""
    t = np.arange(1, max(2, int(rt60 * sr))) / sr
    tail = rng.standard_normal(t.size) * 10 ** (-3 * t / rt60)
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail ** 2))
    h = np.concatenate([[1.0], tail])
    return (h / np.sqrt(np.sum(h ** 2))).astype(np.float32)


def coloured_noise(n: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of n samples whose power falls as f^-beta (0 white, 1 pink, 2 brown), unit std."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spec * f ** (-beta / 2), n)
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def lowpass(wave: np.ndarray, cutoff_hz: float, sr: int = 16000) -> np.ndarray:
    """Remove everything above cutoff_hz (an FFT brick wall with a 200 Hz cosine taper)."""
    spec = np.fft.rfft(wave)
    f = np.fft.rfftfreq(wave.size, 1 / sr)
    gain = np.clip((cutoff_hz - f) / 200.0, 0.0, 1.0)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    return np.fft.irfft(spec * gain, wave.size).astype(np.float32)


def augment(wave: np.ndarray, rng: np.random.Generator, d) -> np.ndarray:
    """The clip's wave under recording conditions drawn with the probabilities of data config d, then
    standardised again; the clean wave itself (not a copy) when nothing was drawn. The standardisation is
    (x - mean) / (std + 1e-8), not `data.audio.standardise` (which zeroes a near-silent clip): the shipped
    model was trained with this one, so it stays, and a silent clip stays silent either way (its noise is
    scaled by its zero power)."""
    sr = d.sample_rate
    if wave.size < 2:             # nothing to filter (an empty stream stays as the loader pads it)
        return wave
    x = wave.astype(np.float32)
    changed = False
    if d.wave_reverb and rng.random() < d.wave_reverb:
        h = room(rng.uniform(*RT60_S), rng, sr, rng.uniform(*DRR_DB))
        x = _convolve(x, h)
        changed = True
    if d.wave_noise and rng.random() < d.wave_noise:
        snr = rng.uniform(d.wave_snr_min, d.wave_snr_max)
        noise = coloured_noise(x.size, rng.uniform(*COLOUR_BETA), rng)
        x = x + noise * np.sqrt(np.mean(x ** 2) / 10 ** (snr / 10))
        changed = True
    if d.wave_lowpass and rng.random() < d.wave_lowpass:
        hi = min(LOWPASS_HZ[1], 0.47 * sr)      # below Nyquist at any rate (16 kHz: the range as it is)
        x = lowpass(x, rng.uniform(min(LOWPASS_HZ[0], 0.5 * hi), hi), sr)
        changed = True
    if not changed:
        return wave
    return ((x - x.mean()) / (x.std() + 1e-8)).astype(np.float32)


def _convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """x * h by FFT, cut to x's length (the room's tail after the clip's end is dropped)."""
    n = x.size + h.size - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: x.size].astype(np.float32)
