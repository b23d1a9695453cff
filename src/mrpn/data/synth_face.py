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

import cv2
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
    "fearful": {"brow_raise": 0.7, "brow_tilt": 0.8, "eye_open": 1.55, "mouth_open": 0.35, "mouth_width": 1.2,
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


_SHIFT = 4            # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def _p(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _ONE)), int(round(y * _ONE))


def _poly(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts, float) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _col(c: tuple[float, ...] | np.ndarray, f: float = 1.0) -> tuple[float, float, float]:
    return tuple(float(min(255.0, max(0.0, v * f))) for v in c)  # type: ignore[return-value]


def _blink(params: FaceParams, t: float) -> float:
    """Eyelid closure 0..1 at time t: a 0.15 s blink every `blink_period` seconds."""
    ph = (t + params.blink_phase) % params.blink_period
    d = 0.16
    if ph < d:
        return math.sin(math.pi * ph / d)
    return 0.0


_cache: dict[tuple, np.ndarray] = {}


def _background(params: FaceParams, size: int) -> np.ndarray:
    key = ("bg", size, params.background, params.background2)
    bg = _cache.get(key)
    if bg is None:
        y = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
        x = np.linspace(0.0, 1.0, size, dtype=np.float32)[None, :, None]
        w = 0.6 * y + 0.4 * x
        a = np.array(params.background, np.float32)
        b = np.array(params.background2, np.float32)
        bg = (a * (1 - w) + b * w).astype(np.float32)
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = bg
    return bg


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    key = ("grid", size)
    g = _cache.get(key)
    if g is None:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        g = _cache[key] = np.stack([yy + 0.5, xx + 0.5])
    return g[0], g[1]


def render_face(params: Any, expression: Mapping[str, float] | str | None = None, t: float = 0.0,
                size: int = 128, rng: np.random.Generator | None = None, noise: float = 2.0,
                landmarks: dict[str, Any] | None = None) -> np.ndarray:
    """Draw one frame: uint8 [size, size, 3] in RGB order.

    `params` is a `FaceParams` (or anything with a `.face` FaceParams, e.g. an actor);
    `expression` a dict of controls (missing keys are neutral) or an emotion name (its apex);
    `t` (seconds) drives the slow head sway and the blinks; `rng` adds sensor noise of std `noise`.
    A dict passed as `landmarks` is filled with key points in pixels (x, y; y down): "face_box"
    (x0, y0, x1, y1), "brow_inner"/"brow_outer"/"brow_mid" and "eye_centre" (lists: left, right),
    "eye_opening" (pixels, per eye), "mouth_corners", "mouth_upper", "mouth_lower" (lip centres).
    """
    lm: dict[str, Any] = landmarks if landmarks is not None else {}
    fp: FaceParams = getattr(params, "face", params)
    if isinstance(fp, Mapping):
        fp = FaceParams.from_dict(fp)
    if expression is None:
        e = dict(NEUTRAL_EXPRESSION)
    elif isinstance(expression, str):
        e = emotion_expression(expression)
    else:
        e = clamp_expression(expression)
    S = float(size)

    img = _background(fp, size).copy()

    # head pose: sway + pitch + roll
    sway_x = fp.jitter * math.sin(2 * math.pi * fp.sway_freq * t + fp.sway_phase)
    sway_y = 0.6 * fp.jitter * math.sin(2 * math.pi * fp.sway_freq * 0.73 * t + 1.3 * fp.sway_phase)
    cx = (fp.cx + sway_x) * S
    cy = (fp.cy + sway_y - 0.03 * e["head_pitch"]) * S
    hw, hh = fp.half_w * S, fp.half_h * S
    roll = e["head_tilt"] + 2.0 * math.sin(2 * math.pi * fp.sway_freq * 0.5 * t + fp.sway_phase)
    pitch = e["head_pitch"]

    skin = np.array(fp.skin, np.float32)
    hair = np.array(fp.hair, np.float32)
    aa = cv2.LINE_AA

    # shoulders and neck
    cv2.ellipse(img, _p(cx, cy + hh + 0.45 * S), _p(hw * 2.3, 0.5 * S), 0, 180, 360, _col(fp.shirt), -1, aa, _SHIFT)
    neck_w = 0.55 * hw
    cv2.rectangle(img, (int(cx - neck_w), int(cy + 0.4 * hh)), (int(cx + neck_w), int(cy + hh + 0.3 * S)),
                  _col(skin, 0.72), -1)
    # hair behind the head
    if fp.hair_style == 1:
        pts = np.array([[cx - 1.12 * hw, cy - 0.2 * hh], [cx - 1.15 * hw, cy + 0.95 * hh],
                        [cx + 1.15 * hw, cy + 0.95 * hh], [cx + 1.12 * hw, cy - 0.2 * hh]])
        cv2.fillPoly(img, [_poly(pts)], _col(hair), aa, _SHIFT)
    if fp.hair_style != 2:
        cv2.ellipse(img, _p(cx, cy - 0.12 * hh), _p(1.1 * hw, 1.0 * hh), roll, 180, 360, _col(hair), -1, aa, _SHIFT)
    # head
    cv2.ellipse(img, _p(cx, cy), _p(hw, hh), roll, 0, 360, _col(skin), -1, aa, _SHIFT)
    # ears
    for s in (-1, 1):
        cv2.ellipse(img, _p(cx + s * 0.98 * hw, cy - 0.02 * hh), _p(0.12 * hw, 0.2 * hh), 0, 0, 360,
                    _col(skin, 0.85), -1, aa, _SHIFT)
    # hairline / fringe
    if fp.hair_style != 2:
        cv2.ellipse(img, _p(cx, cy - 0.62 * hh), _p(0.98 * hw, 0.42 * hh), roll, 180, 360, _col(hair), -1, aa, _SHIFT)
    else:
        cv2.ellipse(img, _p(cx, cy - 0.62 * hh), _p(0.98 * hw, 0.42 * hh), roll, 180, 360, _col(skin, 1.05), -1, aa,
                    _SHIFT)

    # geometry in head frame (rotated by roll around the head centre)
    rr = math.radians(roll)
    cr, sr_ = math.cos(rr), math.sin(rr)

    def P(u: float, v: float) -> tuple[float, float]:
        """Head-frame point (u: units of hw, v: units of hh, y down) -> image coordinates."""
        x, y = u * hw, v * hh + pitch * 0.04 * hh
        return cx + cr * x - sr_ * y, cy + sr_ * x + cr * y

    def PP(pts: list[tuple[float, float]]) -> np.ndarray:
        return np.array([P(u, v) for u, v in pts])

    ey = fp.eye_y
    blink = _blink(fp, t)
    eye_open = max(0.0, e["eye_open"] * (1.0 - blink))
    # shading map (multiplicative, blurred): dark eye sockets (the dark eye band over brighter
    # cheeks is what Haar features key on), nose side shadows, bright nose bridge and forehead,
    # darker face border
    shade = np.zeros((size, size), np.float32)
    for s in (-1, 1):
        cv2.ellipse(shade, _p(*P(s * fp.eye_dx, ey - 0.01)), _p(1.75 * fp.eye_w * hw, 2.4 * fp.eye_h * hh),
                    roll, 0, 360, -0.36 - 0.12 * max(0.0, e["eye_open"] - 1.0), -1, aa, _SHIFT)
        pts = PP([(s * 0.07, ey + 0.08), (s * 0.13, ey + 0.1), (s * (fp.nose_w + 0.05), ey + fp.nose_len),
                  (s * 0.06, ey + fp.nose_len - 0.02)])
        cv2.fillPoly(shade, [_poly(pts)], -0.2, aa, _SHIFT)
    bridge = PP([(-0.05, ey + 0.05), (0.05, ey + 0.05), (0.08, ey + fp.nose_len - 0.05),
                 (-0.08, ey + fp.nose_len - 0.05)])
    cv2.fillPoly(shade, [_poly(bridge)], 0.12, aa, _SHIFT)
    cv2.ellipse(shade, _p(*P(0, ey - 0.42)), _p(0.45 * hw, 0.14 * hh), roll, 0, 360, 0.06, -1, aa, _SHIFT)
    for s in (-1, 1):  # cheekbones catch light
        cv2.ellipse(shade, _p(*P(s * 0.45, ey + 0.28)), _p(0.2 * hw, 0.1 * hh), roll, 0, 360, 0.05, -1, aa, _SHIFT)
    cv2.ellipse(shade, _p(*P(0, fp.mouth_y + 0.3)), _p(0.3 * hw, 0.06 * hh), roll, 0, 360, -0.1, -1, aa, _SHIFT)
    yy, xx = _grid(size)
    r2 = ((xx - cx) / hw) ** 2 + ((yy - cy) / hh) ** 2
    shade -= 0.3 * np.clip((r2 - 0.55) / 0.45, 0.0, 1.0) ** 2 * (r2 <= 1.0)
    shade = cv2.GaussianBlur(shade, (0, 0), max(0.8, S / 80.0))
    img *= (1.0 + shade)[:, :, None]

    # eyes
    ew, eh = fp.eye_w * hw, fp.eye_h * hh
    cheek = e["cheek"]
    for s in (-1, 1):
        ex, eyy = P(s * fp.eye_dx, ey)
        top = eh * (0.35 + 0.65 * eye_open) * 1.05
        bot = eh * (0.35 + 0.65 * eye_open) * (0.9 - 0.35 * cheek)
        lm.setdefault("eye_centre", []).append((ex, eyy))
        lm.setdefault("eye_opening", []).append(0.0 if eye_open < 0.08 else top + bot)
        if eye_open < 0.08:
            cv2.line(img, _p(ex - ew, eyy), _p(ex + ew, eyy), _col(skin, 0.35), max(1, int(S / 100)), aa, _SHIFT)
            continue
        # almond-shaped opening (upper and lower half ellipses) as a mask; sclera, iris and pupil
        # are drawn in a small patch and composited through the mask, so the lids crop the iris
        r = int(math.ceil(1.3 * ew + 2))
        x0, y0 = int(ex) - r, int(eyy) - r
        if x0 < 0 or y0 < 0 or x0 + 2 * r > size or y0 + 2 * r > size:
            continue
        lx, ly = ex - x0, eyy - y0
        mask = np.zeros((2 * r, 2 * r), np.float32)
        cv2.ellipse(mask, _p(lx, ly), _p(ew, top), roll, 180, 360, 1.0, -1, aa, _SHIFT)
        cv2.ellipse(mask, _p(lx, ly), _p(ew, max(0.5, bot)), roll, 0, 180, 1.0, -1, aa, _SHIFT)
        patch = np.empty((2 * r, 2 * r, 3), np.float32)
        # sclera: off-white, dimmed towards the skin tone (at video resolution it reads greyish)
        patch[:] = 0.55 * np.array((200.0, 205.0, 210.0), np.float32) + 0.45 * skin * 0.8
        ir = 0.55 * ew * (1.0 + 0.15 * max(0.0, eye_open - 1.0))
        gx = s * 0.08 * ew  # gaze converges slightly
        cv2.circle(patch, _p(lx - gx, ly), int(ir * _ONE), _col(fp.iris), -1, aa, _SHIFT)
        cv2.circle(patch, _p(lx - gx, ly), int(0.5 * ir * _ONE), (10, 10, 10), -1, aa, _SHIFT)
        cv2.circle(patch, _p(lx - gx + 0.25 * ir, ly - 0.3 * ir), max(1, int(0.18 * ir * _ONE)), (230, 230, 230),
                   -1, aa, _SHIFT)
        roi = img[y0:y0 + 2 * r, x0:x0 + 2 * r]
        m = mask[:, :, None]
        roi[:] = roi * (1 - m) + patch * m
        # upper lid line and a soft crease above it
        cv2.ellipse(img, _p(ex, eyy), _p(ew * 1.02, top), roll, 180, 360, (20, 20, 25), max(1, int(S / 90)), aa,
                    _SHIFT)
        cv2.ellipse(img, _p(ex, eyy - 0.35 * eh), _p(ew * 0.95, top + 0.3 * eh), roll, 200, 340, _col(skin, 0.45),
                    1, aa, _SHIFT)

    # eyebrows: thick polylines; raise moves them up, tilt moves the inner ends
    bt = max(1, int(round(fp.brow_thick * S)))
    for s in (-1, 1):
        inner_u, outer_u = s * (fp.eye_dx - fp.brow_len * 0.8), s * (fp.eye_dx + fp.brow_len * 1.1)
        base = ey - fp.brow_gap - 0.07 * e["brow_raise"]
        inner_v = base + 0.02 - 0.06 * e["brow_tilt"]
        outer_v = base + 0.01 + 0.02 * e["brow_tilt"]
        mid_v = base - 0.03 - 0.03 * max(0.0, e["brow_raise"])
        pts = PP([(inner_u, inner_v), ((inner_u + outer_u) / 2, mid_v), (outer_u, outer_v)])
        lm.setdefault("brow_inner", []).append(tuple(pts[0]))
        lm.setdefault("brow_mid", []).append(tuple(pts[1]))
        lm.setdefault("brow_outer", []).append(tuple(pts[2]))
        cv2.polylines(img, [_poly(pts)], False, _col(hair, 0.9), bt, aa, _SHIFT)
        if e["brow_tilt"] < -0.3 or e["brow_raise"] < -0.4:  # glabella furrow when frowning
            k = min(1.0, max(-e["brow_tilt"], -e["brow_raise"]))
            a, b = P(s * 0.05, ey - 0.14), P(s * 0.03, ey - 0.05)
            cv2.line(img, _p(*a), _p(*b), _col(skin, 1.0 - 0.35 * k), 1, aa, _SHIFT)
        if e["brow_raise"] > 0.5:  # forehead wrinkles
            k = e["brow_raise"] - 0.5
            pts = PP([(-0.3, ey - 0.33), (0, ey - 0.36), (0.3, ey - 0.33)])
            cv2.polylines(img, [_poly(pts)], False, _col(skin, 1.0 - 0.5 * k), 1, aa, _SHIFT)

    # nose: bright bridge, tip, nostrils
    nl = fp.nose_len
    cv2.ellipse(img, _p(*P(0, ey + nl)), _p(fp.nose_w * hw * 0.75, 0.07 * hh), roll, 0, 360, _col(skin, 1.05), -1,
                aa, _SHIFT)
    sneer = e["lip_raise"]
    for s in (-1, 1):
        cv2.ellipse(img, _p(*P(s * fp.nose_w * 0.55, ey + nl + 0.03 - 0.02 * sneer)),
                    _p(0.06 * hw, 0.03 * hh), roll, 0, 360, _col(skin, 0.4), -1, aa, _SHIFT)
        if sneer > 0.3:  # nasolabial wrinkle
            pts = PP([(s * fp.nose_w, ey + nl - 0.02), (s * (fp.nose_w + 0.12), ey + nl + 0.12),
                      (s * (fp.mouth_w + 0.05), fp.mouth_y - 0.02)])
            cv2.polylines(img, [_poly(pts)], False, _col(skin, 1.0 - 0.3 * sneer), 1, aa, _SHIFT)

    # mouth: corners follow curve and width; opening shows a dark cavity with teeth for big opens
    mw = fp.mouth_w * e["mouth_width"]
    my = fp.mouth_y - 0.02 * e["head_pitch"]
    curve = e["mouth_curve"]
    mo = e["mouth_open"]
    corner_v = my - 0.09 * curve
    centre_up = my - 0.03 * sneer
    open_h = 0.34 * mo
    n = 9
    us = np.linspace(-mw, mw, n)
    w01 = 1.0 - (us / mw) ** 2                      # 0 at corners, 1 at centre
    upper_v = corner_v + (centre_up - corner_v) * w01 + 0.02 * curve * w01 - 0.35 * open_h * w01
    lower_v = corner_v + (my - corner_v) * w01 + 0.02 * curve * w01 + 0.65 * open_h * w01
    # an O-shaped (narrow) open mouth: pull corners in
    upper = PP(list(zip(us, upper_v)))
    lower = PP(list(zip(us, lower_v)))
    lm["mouth_corners"] = [tuple(upper[0]), tuple(upper[-1])]
    lm["mouth_upper"] = tuple(upper[n // 2])
    lm["mouth_lower"] = tuple(lower[n // 2])
    lm["face_box"] = (cx - hw, cy - hh, cx + hw, cy + hh)
    lt = max(1.0, fp.lip_thick * S)
    lip_col = _col(np.array(fp.skin) * np.array([0.75, 0.68, 0.95]))
    if mo > 0.05:
        cavity = np.concatenate([upper, lower[::-1]])
        cv2.fillPoly(img, [_poly(cavity)], (35, 20, 25), aa, _SHIFT)
        if mo > 0.35:
            tw = PP(list(zip(us[2:-2] * 0.85, upper_v[2:-2] + 0.03)))
            cv2.polylines(img, [_poly(tw)], False, (220, 220, 215), max(1, int(0.5 * lt)), aa, _SHIFT)
        cv2.polylines(img, [_poly(upper)], False, lip_col, max(1, int(lt * 0.7)), aa, _SHIFT)
        cv2.polylines(img, [_poly(lower)], False, lip_col, max(1, int(lt * 0.9)), aa, _SHIFT)
    else:
        # closed: lip line (dark) with a lighter lower lip below it
        low_lip = PP(list(zip(us * 0.85, lower_v + 0.035 * w01 + 0.01)))
        cv2.polylines(img, [_poly(low_lip)], False, lip_col, max(1, int(lt * 1.1)), aa, _SHIFT)
        cv2.polylines(img, [_poly(upper)], False, _col(lip_col, 0.55), max(1, int(lt * 0.8)), aa, _SHIFT)
    if curve > 0.4:  # smile lines
        for s in (-1, 1):
            pts = PP([(s * (mw + 0.05), my - 0.2), (s * (mw + 0.1), my - 0.06), (s * (mw + 0.05), my + 0.06)])
            cv2.polylines(img, [_poly(pts)], False, _col(skin, 1.0 - 0.25 * curve), 1, aa, _SHIFT)

    if rng is not None and noise > 0:
        img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    return out[:, :, ::-1].copy()  # drawn in BGR, returned as RGB


__all__ = [
    "FaceParams", "random_face_params", "render_face", "emotion_expression", "blend", "clamp_expression",
    "NEUTRAL_EXPRESSION", "EMOTION_EXPRESSIONS", "EXPRESSION_KEYS",
]
