"""Synthetic voices, the renderer: an `Utterance` planned by `voice.py` becomes a waveform.

Source-filter synthesis in stages, each at the 2 ms control rate until the last: the pitch contour
(accents, final rise, tremor, wander, jitter), the voicing, fricative and burst envelopes with the
five formant tracks, the harmonic source shaped by the vocal tract, the noise sources (aspiration,
fricatives, bursts), then level and background noise. The stages draw from one generator in a fixed
order, so a seed gives the same waveform.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .voice import VOWELS, Utterance, VoiceParams, plan_utterance

_F45 = (3300.0, 3750.0)                               # F4 and F5 (Hz), before the speaker's scaling
_BW = np.array([70.0, 90.0, 130.0, 180.0, 250.0])     # formant bandwidths (Hz)


def synth_voice(params: Any, emotion: str, duration: float, sr: int = 16000,
                rng: np.random.Generator | None = None, *, utterance: Utterance | None = None,
                intensity: float | None = None, snr_db: float | None = None,
                return_utterance: bool = False) -> np.ndarray | tuple[np.ndarray, Utterance]:
    """Render `duration` seconds of emotional speech at `sr` Hz: float32 mono in [-1, 1].

    `params` is a `VoiceParams` (or anything with a `.voice`). Pass `utterance` (from
    `plan_utterance`) to render a known plan, e.g. one whose syllables also drive a face; with
    `return_utterance=True` the plan comes back too. `snr_db` sets the background noise (random
    25..40 dB when None).
    """
    rng = rng if rng is not None else np.random.default_rng()
    vp: VoiceParams = getattr(params, "voice", params)
    if isinstance(vp, Mapping):
        vp = VoiceParams.from_dict(vp)
    utt = utterance if utterance is not None else plan_utterance(vp, emotion, duration, rng, intensity)
    n = int(round(duration * sr))
    hop = max(1, sr // 500)                     # control rate: 2 ms
    m = n // hop + 2
    tc = np.arange(m) * hop / sr                # control times
    f0c, tremor_wave = _pitch_contour(utt, vp, tc, rng)
    amp, fric_env, burst_env, fmts = _envelopes(utt, vp, tc, tremor_wave, rng)
    y, phase = _harmonics(vp, utt.prosody, f0c, fmts, amp, n, hop, sr)
    full = np.arange(n) / hop                   # sample positions in control steps
    amp_full = np.interp(full, np.arange(m), amp)
    speech = amp_full > 0.1
    vrms = np.sqrt(np.mean(y[speech] ** 2)) if speech.any() else 1.0
    _add_noise_sources(y, vp, utt.prosody, vrms, amp_full, phase, fric_env, burst_env, full, sr, rng)
    # level: emotion energy and the speaker's loudness; then background noise
    speech_rms = np.sqrt(np.mean(y[speech] ** 2)) if speech.any() else 1.0
    level_db = -26.0 + utt.prosody["energy"] + vp.loudness
    y *= 10 ** (level_db / 20) / (speech_rms + 1e-12)
    snr = float(rng.uniform(25.0, 40.0)) if snr_db is None else float(snr_db)
    noise_rms = 10 ** ((-26.0 - snr) / 20)     # noise level independent of the emotion's loudness
    y += noise_rms * (_shaped_noise(rng, n, sr, 60.0, 0.45 * sr, slope=-3.0))
    y = np.tanh(y * 1.2) / 1.2                 # soft limiting
    out = y.astype(np.float32)
    return (out, utt) if return_utterance else out


def _pitch_contour(utt: Utterance, vp: VoiceParams, tc: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz) at the control times, and the tremor wave that also shakes the loudness."""
    pr, m = utt.prosody, len(tc)
    sp0, sp1 = utt.speech_start, max(utt.speech_end, utt.speech_start + 1e-3)
    u = np.clip((tc - sp0) / (sp1 - sp0), 0.0, 1.0)
    st = pr["slope"] * (u - 0.5)                # semitones relative to f0_base
    for s in utt.syllables:
        if s.stressed:
            c = 0.5 * (s.start + s.end)
            w = 0.5 * (s.end - s.start)
            st += pr["range"] * rng.uniform(0.5, 1.0) * np.exp(-0.5 * ((tc - c) / w) ** 2)
    if utt.emotion == "surprised" or pr["slope"] > 2.5:  # final rise
        st += 0.5 * pr["range"] * np.clip((tc - (sp1 - 0.3)) / 0.3, 0.0, 1.0) ** 2
    ph_tr = rng.uniform(0, 2 * np.pi)
    tremor_wave = np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * tc + ph_tr)
    st += pr["tremor"] * tremor_wave
    st += 0.25 * _smooth_noise(rng, m, 50)     # slow wander
    f0c = utt.f0_base * 2.0 ** (st / 12.0)
    jit = vp.jitter * pr["jitter"]
    f0c = f0c * (1.0 + jit * _smooth_noise(rng, m, 4))   # ~ cycle-scale perturbation at control rate
    return f0c, tremor_wave


def _envelopes(utt: Utterance, vp: VoiceParams, tc: np.ndarray, tremor_wave: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Voicing amplitude [m], fricative envelopes [3, m] (one per band), stop bursts [m] and the five
    formant tracks [5, m] (Hz), all at the control times."""
    pr, m = utt.prosody, len(tc)
    amp = np.zeros(m)
    fric_env = np.zeros((3, m))
    burst_env = np.zeros(m)
    fmts = np.zeros((5, m))
    centres, targets = [], []
    fs = vp.formant_scale * pr.get("formant", 1.0)
    for s in utt.syllables:
        v0 = s.start + s.consonant_dur
        a = 10 ** (((3.0 if s.stressed else 0.0) + rng.normal(0, 1.0)) / 20)
        x = (tc - v0) / max(1e-3, s.end - v0)
        atk = np.clip(x / 0.15, 0, 1)
        rel = np.clip((1.0 - x) / 0.3, 0, 1)
        env = np.where((x >= 0) & (x <= 1), np.minimum(atk, rel) ** 0.7, 0.0) * a
        if s.onset == "nasal":  # voiced murmur before the vowel
            xn = (tc - s.start) / max(1e-3, s.consonant_dur)
            env = np.maximum(env, np.where((xn >= 0) & (xn < 1), 0.3 * a, 0.0))
        elif s.onset == "fric":
            xf = (tc - s.start) / max(1e-3, s.consonant_dur)
            fric_env[s.fric] = np.maximum(fric_env[s.fric],
                                          np.where((xf >= 0) & (xf < 1), np.sin(np.pi * np.clip(xf, 0, 1)), 0.0))
        elif s.onset == "stop":
            xb = (tc - (v0 - 0.012)) / 0.012
            burst_env = np.maximum(burst_env, np.where((xb >= 0) & (xb < 1), 1.0 - xb, 0.0))
        amp = np.maximum(amp, env)
        centres.append(0.5 * (v0 + s.end))
        f1, f2, f3 = VOWELS[s.vowel]
        targets.append([f1 * fs, f2 * fs, f3 * fs, _F45[0] * fs, _F45[1] * fs])
    targets_a = np.array(targets)
    for i in range(5):
        fmts[i] = np.interp(tc, centres, targets_a[:, i])
    for s in utt.syllables:  # nasals pull F1 down at syllable onsets
        if s.onset == "nasal":
            mk = (tc >= s.start) & (tc < s.start + s.consonant_dur)
            fmts[0, mk] = 260.0 * fs
            fmts[1, mk] = np.minimum(fmts[1, mk], 1300.0 * fs)
    # a trembling voice shakes in loudness too (v2: visible as a flutter in the spectrogram)
    amp = amp * (1.0 + 0.25 * min(1.0, pr["tremor"]) * tremor_wave)
    shim = vp.shimmer * pr["shimmer"]
    amp = amp * np.exp(shim * _smooth_noise(rng, m, 5))
    return amp, fric_env, burst_env, fmts


def _harmonics(vp: VoiceParams, pr: Mapping[str, float], f0c: np.ndarray, fmts: np.ndarray, amp: np.ndarray,
               n: int, hop: int, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """The harmonic source through the formant filter: (waveform [n], glottal phase [n])."""
    m = len(f0c)
    # louder voices are brighter; capped at a flat source (v1 capped at -1.5 dB/octave, which made
    # angry, happy and surprised voices equally bright)
    tilt = min(0.0, vp.tilt + 0.6 * pr["tilt"] + 0.3 * pr["energy"])
    alpha = -tilt / 6.02
    bw = _BW * vp.bw_scale * (1.0 + 1.5 * max(0.0, vp.breath + pr["breath"]))
    f0_full = np.interp(np.arange(n) / hop, np.arange(m), f0c)
    phase = 2 * np.pi * np.cumsum(f0_full) / sr
    kmax = int(min(120, (0.47 * sr) / max(40.0, f0c.min())))
    y = np.zeros(n)
    if not (amp > 1e-4).any() or kmax < 1:
        return y, phase
    # harmonic amplitudes [K, m] from source tilt x vocal tract response
    k = np.arange(1, kmax + 1)[:, None]
    f = k * f0c[None, :]
    H = np.ones_like(f)
    for i in range(5):
        Fi = fmts[i][None, :]
        Bi = bw[i]
        H *= Fi * Fi / np.sqrt((Fi * Fi - f * f) ** 2 + (Bi * f) ** 2)
    A = (k.astype(float) ** (-alpha)) * H * amp[None, :]
    A[f >= 0.47 * sr] = 0.0
    idx = np.arange(n) / hop
    i0 = np.minimum(idx.astype(np.int64), m - 2)
    w = (idx - i0)[None, :]
    # sin(k phi) by the Chebyshev recurrence, summed with interpolated amplitudes
    c2 = 2.0 * np.cos(phase)
    s_prev = np.zeros(n)
    s_cur = np.sin(phase)
    keep = A.max(axis=1) > A.max() * 1e-4
    for kk in range(kmax):
        if keep[kk]:
            a_k = A[kk, i0] * (1.0 - w[0]) + A[kk, i0 + 1] * w[0]
            y += a_k * s_cur
        s_prev, s_cur = s_cur, c2 * s_cur - s_prev
    return y, phase


def _add_noise_sources(y: np.ndarray, vp: VoiceParams, pr: Mapping[str, float], vrms: float, amp_full: np.ndarray,
                       phase: np.ndarray, fric_env: np.ndarray, burst_env: np.ndarray, full: np.ndarray, sr: int,
                       rng: np.random.Generator) -> None:
    """Add to `y`, in place and term by term: aspiration (breathiness: pitch-synchronously modulated,
    shaped like a vowel spectrum), fricatives and stop bursts, scaled to the voiced level `vrms`."""
    n, steps = len(full), np.arange(fric_env.shape[1])
    breath = max(0.0, vp.breath + pr["breath"])
    asp = _shaped_noise(rng, n, sr, 500.0, 6000.0, slope=-6.0)
    y += vrms * 0.35 * breath * asp * amp_full * (0.5 + 0.5 * np.cos(phase))
    bands = [(3500.0, 7500.0), (1800.0, 5000.0), (800.0, 7500.0)]
    for j, (lo, hi) in enumerate(bands):
        if fric_env[j].any():
            e = np.interp(full, steps, fric_env[j])
            y += vrms * [0.35, 0.3, 0.15][j] * _shaped_noise(rng, n, sr, lo, min(hi, 0.48 * sr)) * e
    if burst_env.any():
        e = np.interp(full, steps, burst_env)
        y += vrms * 0.5 * _shaped_noise(rng, n, sr, 500.0, min(6000.0, 0.48 * sr)) * e


def _smooth_noise(rng: np.random.Generator, n: int, step: int) -> np.ndarray:
    """Noise with correlation length `step` samples (linear interpolation of white noise)."""
    k = n // step + 2
    pts = rng.standard_normal(k)
    return np.interp(np.arange(n) / step, np.arange(k), pts)


def _shaped_noise(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float, slope: float = 0.0) -> np.ndarray:
    """White noise band-passed to [lo, hi] Hz with soft edges (FFT filtering), unit RMS."""
    x = rng.standard_normal(n)
    X = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    w = 1.0 / (1.0 + (lo / np.maximum(f, 1.0)) ** 4) / (1.0 + (f / hi) ** 4)
    if slope:
        w = w * (np.maximum(f, 50.0) / 1000.0) ** (slope / 6.02)
    y = np.fft.irfft(X * w, n)
    return y / (np.sqrt(np.mean(y ** 2)) + 1e-12)


__all__ = ["synth_voice"]
