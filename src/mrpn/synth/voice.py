"""Synthetic voices for `mrpn synth`: a source-filter speech synthesiser with emotional prosody.

An utterance is planned first (`plan_utterance`): syllables with a consonant onset (fricative,
stop, nasal or none) and a vowel, stress, pauses, and prosody drawn from the emotion (pitch level,
range, slope, loudness, speech rate, jitter, shimmer, breathiness, spectral tilt, tremor) with
within-class variability and the actor's own voice (`VoiceParams`). `synth_voice` (`voice_render.py`)
then renders it: a harmonic glottal source at F0 (sum of harmonics with a spectral tilt, jitter and shimmer) whose
harmonic amplitudes follow the vocal-tract transfer function of five time-varying formants, plus
aspiration noise, fricative and burst noise, and background noise.

The plan also drives the face: `Utterance.mouth_open(t)` gives the talking mouth opening in sync
with the syllables.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

# prosody per emotion, relative to the speaker's neutral voice (v2: tilt, rate and breath further apart
# so that the emotion reads in the CPU preset's 64 x 64 spectrograms):
#   f0: pitch ratio, range: accent size (semitones), slope: pitch change over the utterance (semitones),
#   energy: level (dB), rate: speech-rate ratio, jitter/shimmer: multipliers, breath: added
#   breathiness, tilt: added spectral tilt (dB; positive = brighter), tremor: pitch tremor (semitones),
#   formant: vocal-tract ratio (a smile spreads the lips and raises the formants)
EMOTION_PROSODY: dict[str, dict[str, float]] = {
    "neutral":   dict(f0=1.00, range=1.5, slope=-2.0, energy=0.0, rate=1.00, jitter=1.0, shimmer=1.0, breath=0.05,
                      tilt=0.0, tremor=0.0, formant=1.0),
    "calm":      dict(f0=0.96, range=1.4, slope=-2.5, energy=-3.0, rate=0.88, jitter=1.0, shimmer=1.0, breath=0.12,
                      tilt=-2.0, tremor=0.0, formant=1.0),
    "happy":     dict(f0=1.22, range=9.0, slope=1.0, energy=3.0, rate=1.15, jitter=1.1, shimmer=1.0, breath=0.00,
                      tilt=6.0, tremor=0.0, formant=1.12),
    "sad":       dict(f0=0.84, range=0.8, slope=-3.0, energy=-6.0, rate=0.6, jitter=1.6, shimmer=1.5, breath=0.35,
                      tilt=-10.0, tremor=0.15, formant=0.96),
    "angry":     dict(f0=1.15, range=3.0, slope=-2.0, energy=7.0, rate=1.35, jitter=1.5, shimmer=1.8, breath=-0.05,
                      tilt=13.0, tremor=0.0, formant=1.0),
    "fearful":   dict(f0=1.38, range=3.5, slope=1.0, energy=1.0, rate=1.6, jitter=2.5, shimmer=1.6, breath=0.35,
                      tilt=0.0, tremor=1.5, formant=1.03),
    "disgust":   dict(f0=0.93, range=3.0, slope=-3.5, energy=0.0, rate=0.82, jitter=1.3, shimmer=1.2, breath=0.08,
                      tilt=-1.0, tremor=0.0, formant=0.98),
    "surprised": dict(f0=1.28, range=12.0, slope=10.0, energy=2.0, rate=0.75, jitter=1.1, shimmer=1.1, breath=0.2,
                      tilt=0.0, tremor=0.0, formant=1.03),
}
_MULTIPLICATIVE = ("f0", "rate", "jitter", "shimmer", "formant")

# male formant targets (Hz) F1..F3 per vowel (Peterson & Barney style); F4, F5 fixed; openness
# of the mouth for the face
VOWELS: dict[str, tuple[float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0), "e": (530.0, 1840.0, 2480.0), "i": (300.0, 2250.0, 3000.0),
    "o": (570.0, 840.0, 2410.0), "u": (320.0, 870.0, 2240.0), "ae": (660.0, 1720.0, 2410.0),
    "er": (490.0, 1350.0, 1690.0),
}
VOWEL_OPENNESS = {"a": 1.0, "ae": 0.85, "e": 0.6, "o": 0.75, "er": 0.45, "i": 0.35, "u": 0.3}


@dataclass(frozen=True)
class VoiceParams:
    """One actor's voice."""
    f0: float = 120.0             # base pitch (Hz)
    formant_scale: float = 1.0    # vocal tract: 1.0 average male, ~1.15 female
    tilt: float = -6.0            # source + radiation spectral slope, dB per octave
    breath: float = 0.08          # breathiness 0..1
    jitter: float = 0.006         # relative cycle-to-cycle pitch perturbation
    shimmer: float = 0.04         # relative amplitude perturbation
    rate: float = 4.5             # syllables per second
    loudness: float = 0.0         # dB
    expressiveness: float = 1.0   # how strongly emotion shows in this voice
    bw_scale: float = 1.0         # formant bandwidth factor
    vowel_bias: int = 0           # seed for this speaker's habitual vowel sequence

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "VoiceParams":
        return cls(**dict(d))


def random_voice_params(rng: np.random.Generator, gender: str = "male") -> VoiceParams:
    male = gender == "male"
    return VoiceParams(
        f0=float(rng.uniform(100.0, 140.0) if male else rng.uniform(180.0, 240.0)),
        formant_scale=float((1.0 if male else 1.16) * rng.uniform(0.95, 1.05)),
        tilt=float(rng.uniform(-7.5, -5.0)),
        breath=float(rng.uniform(0.03, 0.12) + (0.0 if male else 0.04)),
        jitter=float(rng.uniform(0.003, 0.009)),
        shimmer=float(rng.uniform(0.02, 0.06)),
        rate=float(rng.uniform(4.2, 4.8)),
        loudness=float(rng.uniform(-3.0, 3.0)),
        expressiveness=float(rng.uniform(0.9, 1.2)),
        bw_scale=float(rng.uniform(0.85, 1.25)),
        vowel_bias=int(rng.integers(0, 2**31 - 1)),
    )


def emotion_prosody(emotion: str, intensity: float = 1.0, expressiveness: float = 1.0,
                    rng: np.random.Generator | None = None, variability: float = 0.0) -> dict[str, float]:
    """Prosody of `emotion` with its deviation from neutral scaled by intensity * expressiveness,
    plus relative jitter of size `variability` (within-class variability)."""
    if emotion not in EMOTION_PROSODY:
        raise ValueError(f"unknown emotion {emotion!r}; known: {', '.join(EMOTION_PROSODY)}")
    neu, emo = EMOTION_PROSODY["neutral"], EMOTION_PROSODY[emotion]
    k = intensity * expressiveness
    out = {}
    for key, v in emo.items():
        if key in _MULTIPLICATIVE:
            out[key] = neu[key] * (v / neu[key]) ** k
        else:
            out[key] = neu[key] + k * (v - neu[key])
    if rng is not None and variability > 0:
        sd = {"f0": 0.05, "range": 1.0, "slope": 1.2, "energy": 2.0, "rate": 0.08, "jitter": 0.2, "shimmer": 0.2,
              "breath": 0.04, "tilt": 1.5, "tremor": 0.1,
              "formant": 0.01}
        for key in out:
            d = rng.normal(0.0, variability * sd[key])
            out[key] = out[key] * math.exp(d) if key in _MULTIPLICATIVE else out[key] + d
        out["range"] = max(0.3, out["range"])
        out["tremor"] = max(0.0, out["tremor"])
    return out


@dataclass
class Syllable:
    start: float      # s
    end: float
    vowel: str
    onset: str        # "", "fric", "stop", "nasal"
    fric: int         # fricative colour 0 (s), 1 (sh), 2 (f)
    stressed: bool
    consonant_dur: float


@dataclass
class Utterance:
    """A planned utterance: timing and prosody. Times are seconds from the clip start."""
    duration: float
    emotion: str
    intensity: float
    prosody: dict[str, float]
    syllables: list[Syllable] = field(default_factory=list)
    f0_base: float = 120.0
    seed: int = 0

    @property
    def speech_start(self) -> float:
        return self.syllables[0].start if self.syllables else 0.0

    @property
    def speech_end(self) -> float:
        return self.syllables[-1].end if self.syllables else 0.0

    def mouth_open(self, t: np.ndarray | float) -> np.ndarray:
        """Talking mouth opening 0..1 at times t: each syllable opens during its vowel, by the
        vowel's openness, scaled a little by loudness."""
        t = np.atleast_1d(np.asarray(t, np.float64))
        out = np.zeros_like(t)
        gain = float(np.clip(0.75 + 0.04 * self.prosody.get("energy", 0.0), 0.45, 1.1))
        for s in self.syllables:
            v0 = s.start + s.consonant_dur
            d = max(1e-3, s.end - v0)
            x = (t - v0) / d
            m = (x > -0.15) & (x < 1.05)
            if not m.any():
                continue
            shape = np.sin(np.pi * np.clip((x[m] + 0.15) / 1.2, 0.0, 1.0)) ** 0.8
            a = VOWEL_OPENNESS[s.vowel] * gain * (1.15 if s.stressed else 1.0)
            out[m] = np.maximum(out[m], a * shape)
        return np.clip(out, 0.0, 1.0)


def plan_utterance(params: Any, emotion: str, duration: float, rng: np.random.Generator,
                   intensity: float | None = None, variability: float = 1.0) -> Utterance:
    """Syllable timing and prosody of one utterance filling most of `duration` seconds."""
    vp: VoiceParams = getattr(params, "voice", params)
    if isinstance(vp, Mapping):
        vp = VoiceParams.from_dict(vp)
    if intensity is None:
        intensity = float(rng.uniform(0.55, 1.0))
    pros = emotion_prosody(emotion, intensity, vp.expressiveness, rng, variability)
    rate = max(1.5, vp.rate * pros["rate"])
    t = float(rng.uniform(0.12, 0.4))
    end = duration - float(rng.uniform(0.12, 0.35))
    # this speaker's habitual vowels (a fixed "sentence" per actor, like RAVDESS statements) with
    # random substitutions
    vrng = np.random.default_rng(vp.vowel_bias)
    names = list(VOWELS)
    habit = [names[i] for i in vrng.integers(0, len(names), 16)]
    syl: list[Syllable] = []
    i = 0
    while True:
        d = float(np.clip(rng.gamma(6.0, 1.0 / (6.0 * rate)), 0.4 / rate, 2.0 / rate))
        if t + d > end:
            break
        vowel = habit[i % len(habit)] if rng.random() < 0.7 else names[int(rng.integers(len(names)))]
        onset = ["", "fric", "stop", "nasal"][int(rng.choice(4, p=[0.25, 0.3, 0.3, 0.15]))]
        cd = {"": 0.0, "fric": rng.uniform(0.05, 0.1), "stop": rng.uniform(0.03, 0.06),
              "nasal": rng.uniform(0.04, 0.08)}[onset]
        cd = float(min(cd, 0.45 * d))
        stressed = bool(i == 0 or rng.random() < 0.3)
        syl.append(Syllable(t, t + d, vowel, onset, int(rng.integers(3)), stressed, cd))
        t += d
        if rng.random() < 0.22:  # a pause between words
            t += float(rng.uniform(0.06, 0.18)) / max(0.6, pros["rate"])
        i += 1
    if not syl:  # very short clip: one syllable
        s0 = min(0.1, duration * 0.1)
        syl.append(Syllable(s0, max(s0 + 0.1, duration - s0), "a", "", 0, True, 0.0))
    f0 = vp.f0 * pros["f0"]
    return Utterance(duration=duration, emotion=emotion, intensity=intensity, prosody=pros, syllables=syl,
                     f0_base=float(f0), seed=int(rng.integers(0, 2**31 - 1)))


def __getattr__(name: str) -> Any:
    """`synth_voice` moved to voice_render.py; `from mrpn.synth.voice import synth_voice` keeps working."""
    if name == "synth_voice":
        from .voice_render import synth_voice

        return synth_voice
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "VoiceParams", "random_voice_params", "emotion_prosody", "plan_utterance", "Utterance",
    "Syllable", "EMOTION_PROSODY", "VOWELS",
]
