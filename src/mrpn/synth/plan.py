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

SYNTH_VERSION = 2
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
    noise: list[dict[str, str]] = field(default_factory=list)  # {"modality", "kind", "shows"} per noisy modality

    @property
    def video(self) -> str:
        return f"videos/{self.actor.id}/{self.id}.mp4"


NOISE_KINDS = ("mixed", "missing", "fuzzy")


def plan_corpus(n_actors: int = 8, clips_per_class: int = 4, classes: Sequence[str] | None = None,
                size: int = 128, fps: int = 25, face_noise: float = 0.0, voice_noise: float = 0.0,
                seed: int = 0, sr: int = DEFAULT_SAMPLE_RATE, noise_kind: str = "mixed",
                duration: tuple[float, float] = DURATION_RANGE) -> tuple[list[ActorParams], list[ClipPlan]]:
    """Actors and clip plans, with the within-modal noise of the paper's section 3.1 assigned here.

    Exactly round(p * N) clips per modality (p = face_noise, voice_noise) show something other than
    their label in that modality, while the label stays the true class: `noise_kind` "missing"
    shows neutral (only non-neutral clips can lose their emotion), "fuzzy" another emotion of
    `classes` (not neutral), "mixed" either (uniformly among classes + neutral, minus the label).
    The noisy clips are spread evenly over the actors (each gets floor or ceil of its share), so
    every actor-disjoint split sees about the same fraction; the face-noisy and the voice-noisy
    clips are disjoint sets as long as face_noise + voice_noise <= 1 (then every clip still shows
    its label in at least one modality).
    """
    classes = check_classes(classes)
    for name, p in (("face_noise", face_noise), ("voice_noise", voice_noise)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    if noise_kind not in NOISE_KINDS:
        raise ValueError(f"noise_kind must be one of {', '.join(NOISE_KINDS)}, got {noise_kind!r}")
    if n_actors < 1 or clips_per_class < 1:
        raise ValueError("need at least one actor and one clip per class")
    if size < 48 or size % 2:
        raise ValueError(f"size must be even and >= 48, got {size}")
    if not 0.5 <= duration[0] <= duration[1]:
        raise ValueError(f"duration range must satisfy 0.5 <= min <= max seconds, got {duration}")
    actors = make_actors(n_actors, seed)
    plans: list[ClipPlan] = []
    for a in actors:
        for c in classes:
            code = RAVDESS_CLASSES.index(c) + 1
            for r in range(1, clips_per_class + 1):
                rng = np.random.default_rng([int(seed), 2, int(a.id), code, r])
                dur_frames = max(1, int(round(rng.uniform(*duration) * fps)))
                plans.append(ClipPlan(id=f"{a.id}-{c}-{r:02d}", actor=a, label=c, rep=r, face_emotion=c,
                                      voice_emotion=c, duration=dur_frames / fps, n_frames=dur_frames, fps=fps,
                                      size=size, sr=sr, seed=int(rng.integers(0, 2**31 - 1))))
    _assign_noise(plans, classes, face_noise, voice_noise, noise_kind, np.random.default_rng([int(seed), 3]))
    return actors, plans


def _spread_order(plans: list[ClipPlan], eligible: list[int], rng: np.random.Generator) -> list[int]:
    """`eligible` plan positions in an order whose every prefix takes from each actor in proportion
    to its eligible clips (a random permutation per actor, interleaved by relative rank)."""
    by_actor: dict[str, list[int]] = {}
    for i in eligible:
        by_actor.setdefault(plans[i].actor.id, []).append(i)
    keyed = []
    for idx in by_actor.values():
        perm = rng.permutation(len(idx))
        offset = float(rng.uniform(0.0, 1.0))
        keyed += [((rank + offset) / len(idx), float(rng.random()), idx[j]) for rank, j in enumerate(perm)]
    return [i for _, _, i in sorted(keyed)]


def _assign_noise(plans: list[ClipPlan], classes: list[str], face_noise: float, voice_noise: float,
                  kind: str, rng: np.random.Generator) -> None:
    n = len(plans)
    kf, kv = int(round(face_noise * n)), int(round(voice_noise * n))
    eligible = [i for i, p in enumerate(plans) if kind != "missing" or p.label != "neutral"]
    if max(kf, kv) > len(eligible):
        raise ValueError(f"{kind} noise on {max(kf, kv)} of {n} clips, but only {len(eligible)} clips can "
                         "show it (a neutral clip cannot lose its emotion)")
    order = _spread_order(plans, eligible, rng)
    m = len(order)
    chosen = {"face": order[:kf], "voice": order[kf:kf + kv] if kf + kv <= m else order[m - kv:]}
    emotions = sorted(set(classes) - {"neutral"}, key=RAVDESS_CLASSES.index)
    for modality, idx in chosen.items():
        for i in sorted(idx):
            pl = plans[i]
            if kind == "missing":
                shows = "neutral"
            else:
                pool = [c for c in (emotions if kind == "fuzzy" else ["neutral", *emotions]) if c != pl.label]
                if not pool:
                    raise ValueError(f"{kind} noise needs another emotion than {pl.label!r} among the classes")
                shows = pool[int(rng.integers(len(pool)))]
            setattr(pl, f"{modality}_emotion", shows)
            pl.noise.append({"modality": modality, "kind": "missing" if shows == "neutral" else "fuzzy",
                             "shows": shows})
