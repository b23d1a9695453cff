"""Synthetic faces for `mrpn synth`: per-actor face geometry, emotion expressions, a cv2 renderer.

A face is drawn with OpenCV primitives on a per-actor background: hair, head ellipse with soft
shading, eye sockets, eyes with iris and pupil, eyebrows, nose with shadow and nostrils, a mouth
(lip curve; an open mouth shows a dark cavity), neck and shoulders. The drawing is tuned so that
OpenCV's Haar frontal-face cascade finds it (dark eye band over brighter cheeks, bright nose bridge,
contrast between skin and background), which is what `mrpn prepare` uses on real videos.

An expression is a small dict of continuous controls (see `EXPRESSION_KEYS`); `emotion_expression`
gives the apex expression of an emotion and `blend` mixes expressions, so a clip can move from
neutral to the apex and back while the mouth talks.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

# Expression controls and their neutral values.
#   brow_raise  -1 (lowered, frowning) .. +1 (raised)
#   brow_tilt   -1 (inner ends down: anger) .. +1 (inner ends up: sadness, fear)
#   eye_open    0 (closed) .. 1 (neutral) .. 1.7 (wide open)
#   mouth_curve -1 (frown) .. +1 (smile)
#   mouth_open  0 (closed) .. 1 (jaw dropped)
#   mouth_width 0.75 (pursed) .. 1.3 (stretched)
#   lip_raise   0 .. 1 upper lip raised (disgust; shows a sneer)
#   head_tilt   degrees of head roll; head_pitch: -1 (down) .. +1 (up), a vertical shift
#   cheek       0 .. 1 raised cheeks (Duchenne smile: lower lids push up)
NEUTRAL_EXPRESSION: dict[str, float] = {
    "brow_raise": 0.0, "brow_tilt": 0.0, "eye_open": 1.0, "mouth_curve": 0.0, "mouth_open": 0.0,
    "mouth_width": 1.0, "lip_raise": 0.0, "head_tilt": 0.0, "head_pitch": 0.0, "cheek": 0.0,
}
EXPRESSION_KEYS = tuple(NEUTRAL_EXPRESSION)

# Apex expressions (deviation from neutral is what is scaled by intensity). FACS-inspired:
# happy AU6+12, sad AU1+4+15, angry AU4+5+7+23, fearful AU1+2+4+5+20+26, surprised AU1+2+5+26,
# disgust AU9+10+15, calm = relaxed neutral with a faint smile.
EMOTION_EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "calm": {"mouth_curve": 0.25, "eye_open": 0.85, "brow_raise": 0.05},
    "happy": {"mouth_curve": 1.0, "mouth_width": 1.22, "eye_open": 0.8, "cheek": 1.0, "brow_raise": 0.15,
              "mouth_open": 0.15, "head_pitch": 0.2},
    "sad": {"mouth_curve": -0.85, "brow_tilt": 1.0, "brow_raise": -0.1, "eye_open": 0.7, "head_pitch": -0.6,
            "mouth_width": 0.92},
    "angry": {"brow_raise": -0.9, "brow_tilt": -1.0, "eye_open": 0.8, "mouth_curve": -0.35, "mouth_width": 0.85,
              "lip_raise": 0.2},
    "fearful": {"brow_raise": 0.7, "brow_tilt": 0.8, "eye_open": 1.55, "mouth_open": 0.5, "mouth_width": 1.2,
                "mouth_curve": -0.3, "head_pitch": -0.2},
    "disgust": {"brow_raise": -0.45, "brow_tilt": -0.3, "eye_open": 0.75, "lip_raise": 1.0, "mouth_curve": -0.6,
                "head_tilt": 5.0, "cheek": 0.4},
    "surprised": {"brow_raise": 1.0, "brow_tilt": 0.1, "eye_open": 1.65, "mouth_open": 0.85, "mouth_width": 0.82,
                  "head_pitch": 0.3},
}


def emotion_expression(emotion: str, intensity: float = 1.0, rng: np.random.Generator | None = None,
                       variability: float = 0.0) -> dict[str, float]:
    """The apex expression of `emotion`, its deviation from neutral scaled by `intensity`, with
    optional Gaussian jitter of relative size `variability` on every control."""
    if emotion not in EMOTION_EXPRESSIONS:
        raise ValueError(f"unknown emotion {emotion!r}; known: {', '.join(EMOTION_EXPRESSIONS)}")
    out = dict(NEUTRAL_EXPRESSION)
    for k, v in EMOTION_EXPRESSIONS[emotion].items():
        out[k] = NEUTRAL_EXPRESSION[k] + intensity * (v - NEUTRAL_EXPRESSION[k])
    if rng is not None and variability > 0:
        scale = {"head_tilt": 8.0, "eye_open": 0.5, "mouth_width": 0.3}
        for k in out:
            out[k] += rng.normal(0.0, variability * scale.get(k, 1.0))
    return clamp_expression(out)


def clamp_expression(e: Mapping[str, float]) -> dict[str, float]:
    lim = {"brow_raise": (-1.2, 1.2), "brow_tilt": (-1.2, 1.2), "eye_open": (0.0, 1.8),
           "mouth_curve": (-1.2, 1.2), "mouth_open": (0.0, 1.1), "mouth_width": (0.7, 1.35),
           "lip_raise": (0.0, 1.2), "head_tilt": (-15.0, 15.0), "head_pitch": (-1.0, 1.0), "cheek": (0.0, 1.2)}
    out = dict(NEUTRAL_EXPRESSION)
    for k, v in e.items():
        if k in lim:
            lo, hi = lim[k]
            out[k] = float(min(hi, max(lo, v)))
    return out


def blend(a: Mapping[str, float], b: Mapping[str, float], w: float) -> dict[str, float]:
    """(1 - w) * a + w * b, key by key."""
    return {k: (1.0 - w) * a.get(k, NEUTRAL_EXPRESSION[k]) + w * b.get(k, NEUTRAL_EXPRESSION[k])
            for k in EXPRESSION_KEYS}


@dataclass(frozen=True)
class FaceParams:
    """One actor's face geometry and colours. Lengths are fractions of the image side."""
    cx: float = 0.5            # head centre
    cy: float = 0.5
    half_w: float = 0.30       # head half width / half height
    half_h: float = 0.38
    skin: tuple[float, float, float] = (150.0, 180.0, 215.0)   # BGR
    hair: tuple[float, float, float] = (30.0, 35.0, 45.0)
    background: tuple[float, float, float] = (90.0, 110.0, 80.0)
    background2: tuple[float, float, float] = (60.0, 70.0, 60.0)  # gradient end colour
    shirt: tuple[float, float, float] = (120.0, 60.0, 40.0)
    iris: tuple[float, float, float] = (50.0, 60.0, 70.0)
    eye_y: float = -0.12       # eye line, relative to head centre, in units of half_h
    eye_dx: float = 0.40       # half eye spacing in units of half_w
    eye_w: float = 0.17        # eye half width in units of half_w
    eye_h: float = 0.075       # eye half height in units of half_h
    brow_gap: float = 0.13     # brow height above the eye line, units of half_h
    brow_thick: float = 0.035  # fraction of image side
    brow_len: float = 0.25     # brow half length, units of half_w
    nose_len: float = 0.30     # nose tip below eye line, units of half_h
    nose_w: float = 0.13       # units of half_w
    mouth_y: float = 0.45      # mouth line below head centre, units of half_h
    mouth_w: float = 0.30      # mouth half width, units of half_w
    lip_thick: float = 0.022   # fraction of image side
    hair_style: int = 0        # 0 short, 1 long (falls beside the face), 2 bald-ish
    jitter: float = 0.01       # amplitude of slow head sway, fraction of image side
    sway_phase: float = 0.0
    sway_freq: float = 0.35    # Hz
    blink_period: float = 3.5  # s between blinks (mean)
    blink_phase: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FaceParams":
        d = dict(d)
        for k in ("skin", "hair", "background", "background2", "shirt", "iris"):
            if k in d:
                d[k] = tuple(float(x) for x in d[k])
        return cls(**d)


_SKINS = [(160, 190, 225), (135, 170, 215), (110, 150, 200), (90, 125, 175), (70, 100, 145), (150, 185, 230),
          (120, 160, 210)]
_HAIRS = [(20, 25, 30), (25, 40, 70), (40, 60, 100), (80, 120, 160), (35, 35, 40), (110, 110, 115)]


def _luma(bgr: Any) -> float:
    b, g, r = (float(x) for x in bgr)
    return 0.114 * b + 0.587 * g + 0.299 * r


def random_face_params(rng: np.random.Generator, gender: str = "male") -> FaceParams:
    """Random but plausible geometry; women get on average a narrower face, thinner brows,
    longer hair and a fuller mouth, men a wider jaw and thicker brows."""
    male = gender == "male"
    skin = np.array(_SKINS[rng.integers(len(_SKINS))], float) + rng.normal(0, 6, 3)
    ls = _luma(skin)
    # hair and background must differ from the skin in brightness: the face detector works on
    # grey levels, and a face that melts into its surroundings is not found
    hairs = [h for h in _HAIRS if abs(_luma(h) - ls) >= 50] or [min(_HAIRS, key=_luma)]
    hair = np.array(hairs[rng.integers(len(hairs))], float) + rng.normal(0, 5, 3)
    for _ in range(50):
        if rng.random() < 0.5:
            bg_base = rng.uniform(30, 120, 3)                                   # darker
        else:
            bg_base = rng.uniform(140, 210, 3) * np.array([1.0, 0.9, 0.7])      # light, bluish
        f = rng.uniform(0.6, 0.9)
        if abs(_luma(bg_base) * (1 + f) / 2 - ls) >= 45:
            break
    bg2 = bg_base * f
    shirt = rng.uniform(30, 200, 3)
    iris = np.array([[40, 60, 90], [90, 70, 40], [60, 80, 50], [30, 40, 60]][rng.integers(4)], float)
    return FaceParams(
        cx=0.5 + rng.uniform(-0.03, 0.03),
        cy=0.47 + rng.uniform(-0.03, 0.03),
        half_w=(0.27 if male else 0.25) + rng.uniform(-0.015, 0.025),
        half_h=0.35 + rng.uniform(-0.015, 0.02),
        skin=tuple(np.clip(skin, 0, 255).tolist()),
        hair=tuple(np.clip(hair, 0, 255).tolist()),
        background=tuple(np.clip(bg_base, 0, 255).tolist()),
        background2=tuple(np.clip(bg2, 0, 255).tolist()),
        shirt=tuple(np.clip(shirt, 0, 255).tolist()),
        iris=tuple(iris.tolist()),
        eye_y=-0.10 + rng.uniform(-0.03, 0.03),
        eye_dx=0.40 + rng.uniform(-0.04, 0.05),
        eye_w=0.17 + rng.uniform(-0.02, 0.02),
        eye_h=0.075 + rng.uniform(-0.01, 0.012),
        brow_gap=0.14 + rng.uniform(-0.02, 0.03),
        brow_thick=(0.034 if male else 0.024) + rng.uniform(-0.004, 0.008),
        brow_len=0.25 + rng.uniform(-0.03, 0.03),
        nose_len=0.30 + rng.uniform(-0.03, 0.04),
        nose_w=0.13 + rng.uniform(-0.02, 0.03),
        mouth_y=0.45 + rng.uniform(-0.03, 0.04),
        mouth_w=0.30 + rng.uniform(-0.03, 0.05),
        lip_thick=(0.018 if male else 0.024) + rng.uniform(-0.003, 0.004),
        hair_style=int(rng.integers(0, 2)) if not male else (0 if rng.random() < 0.75 else 2),
        jitter=rng.uniform(0.004, 0.015),
        sway_phase=rng.uniform(0, 2 * math.pi),
        sway_freq=rng.uniform(0.2, 0.5),
        blink_period=rng.uniform(2.5, 5.0),
        blink_phase=rng.uniform(0, 5.0),
    )


__all__ = [
    "FaceParams", "random_face_params", "emotion_expression", "blend", "clamp_expression",
    "NEUTRAL_EXPRESSION", "EMOTION_EXPRESSIONS", "EXPRESSION_KEYS",
]
