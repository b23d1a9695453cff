"""Synthetic actors and clip plans for `mrpn synth`: who says what, and what each modality shows.

A clip's parameters depend only on (seed, actor, emotion, repetition), never on the number of
workers or on the class subset, so a corpus is reproducible and its clips are stable across settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from .face import FaceParams, random_face_params
from .voice import VoiceParams, random_voice_params

SYNTH_VERSION = 1
# RAVDESS emotion codes (01..08); a clip's seed uses the code so a class subset keeps its clips
RAVDESS_CLASSES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
DEFAULT_CLASSES = ("neutral", "happy", "sad", "angry", "fearful", "surprised")
MANIFEST_HEADER = ("video", "audio", "label", "speaker")
DEFAULT_SAMPLE_RATE = 16000
DURATION_RANGE = (2.0, 3.5)


@dataclass(frozen=True)
class ActorParams:
    """One synthetic actor: face, voice, resting expression and how expressive the face is."""
    id: str
    gender: str
    face: FaceParams
    voice: VoiceParams
    rest: dict[str, float] = field(default_factory=dict)   # offsets from the neutral expression
    face_expressiveness: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "gender": self.gender, "face": self.face.to_dict(), "voice": self.voice.to_dict(),
                "rest": dict(self.rest), "face_expressiveness": self.face_expressiveness}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ActorParams":
        return cls(id=d["id"], gender=d["gender"], face=FaceParams.from_dict(d["face"]),
                   voice=VoiceParams.from_dict(d["voice"]), rest=dict(d.get("rest", {})),
                   face_expressiveness=float(d.get("face_expressiveness", 1.0)))


def make_actor(index: int, seed: int = 0) -> ActorParams:
    """Actor number `index` (0-based; id "01" for 0). Even indices are male, odd female
    (as in RAVDESS, odd actor ids are male)."""
    rng = np.random.default_rng([int(seed), 1, int(index)])
    gender = "male" if index % 2 == 0 else "female"
    face = random_face_params(rng, gender)
    voice = random_voice_params(rng, gender)
    rest = {"brow_raise": float(rng.normal(0, 0.15)), "brow_tilt": float(rng.normal(0, 0.15)),
            "mouth_curve": float(rng.normal(0, 0.15)), "eye_open": float(rng.normal(0, 0.08)),
            "head_tilt": float(rng.normal(0, 2.5))}
    return ActorParams(id=f"{index + 1:02d}", gender=gender, face=face, voice=voice, rest=rest,
                       face_expressiveness=float(rng.uniform(0.8, 1.15)))


def make_actors(n: int, seed: int = 0) -> list[ActorParams]:
    return [make_actor(i, seed) for i in range(n)]


def check_classes(classes: Iterable[str] | str | None) -> list[str]:
    if classes is None:
        return list(DEFAULT_CLASSES)
    if isinstance(classes, str):
        classes = [c for c in classes.replace(",", " ").split() if c]
    out: list[str] = []
    for c in classes:
        c = c.strip().lower()
        c = {"fear": "fearful", "surprise": "surprised", "disgusted": "disgust"}.get(c, c)
        if c not in RAVDESS_CLASSES:
            raise ValueError(f"unknown emotion class {c!r}; choose from {', '.join(RAVDESS_CLASSES)}")
        if c not in out:
            out.append(c)
    if not out:
        raise ValueError("no emotion classes given")
    return out


@dataclass
class ClipPlan:
    """Everything needed to render one clip; derived from (seed, actor, label, rep) only."""
    id: str
    actor: ActorParams
    label: str
    rep: int
    face_emotion: str
    voice_emotion: str
    duration: float
    n_frames: int
    fps: int
    size: int
    sr: int
    seed: int

    @property
    def video(self) -> str:
        return f"videos/{self.actor.id}/{self.id}.mp4"


def plan_corpus(n_actors: int = 8, clips_per_class: int = 4, classes: Sequence[str] | None = None,
                size: int = 128, fps: int = 25, face_noise: float = 0.0, voice_noise: float = 0.0,
                seed: int = 0, sr: int = DEFAULT_SAMPLE_RATE) -> tuple[list[ActorParams], list[ClipPlan]]:
    """Actors and clip plans; modality noise is assigned here: exactly round(p * N) clips per
    modality show another emotion or neutral (uniformly among classes + neutral, minus the label)
    in that modality; the two sets of clips overlap only when face_noise + voice_noise > 1."""
    classes = check_classes(classes)
    for name, p in (("face_noise", face_noise), ("voice_noise", voice_noise)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    if n_actors < 1 or clips_per_class < 1:
        raise ValueError("need at least one actor and one clip per class")
    if size < 48 or size % 2:
        raise ValueError(f"size must be even and >= 48, got {size}")
    actors = make_actors(n_actors, seed)
    plans: list[ClipPlan] = []
    for a in actors:
        for c in classes:
            code = RAVDESS_CLASSES.index(c) + 1
            for r in range(1, clips_per_class + 1):
                rng = np.random.default_rng([int(seed), 2, int(a.id), code, r])
                dur_frames = int(round(rng.uniform(*DURATION_RANGE) * fps))
                plans.append(ClipPlan(id=f"{a.id}-{c}-{r:02d}", actor=a, label=c, rep=r, face_emotion=c,
                                      voice_emotion=c, duration=dur_frames / fps, n_frames=dur_frames, fps=fps,
                                      size=size, sr=sr, seed=int(rng.integers(0, 2**31 - 1))))
    # the face-noisy and the voice-noisy clips are disjoint sets as far as possible, so that (for
    # face_noise + voice_noise <= 1) every clip still shows its label in at least one modality
    noise_rng = np.random.default_rng([int(seed), 3])
    n = len(plans)
    kf, kv = int(round(face_noise * n)), int(round(voice_noise * n))
    order = noise_rng.permutation(n)
    chosen = {"face_emotion": order[:kf], "voice_emotion": order[kf:kf + kv] if kf + kv <= n else order[n - kv:]}
    pool_base = set(classes) | {"neutral"}
    for attr, idx in chosen.items():
        for i in sorted(int(j) for j in idx):
            pl = plans[i]
            pool = sorted(pool_base - {pl.label}, key=RAVDESS_CLASSES.index)
            if pool:
                setattr(pl, attr, pool[int(noise_rng.integers(len(pool)))])
    return actors, plans
