"""Synthetic faces for `mrpn synth`: the cv2 renderer of a `FaceParams` face with an expression.

See `face.py` for the expression controls. The drawing is tuned so that OpenCV's Haar frontal-face
cascade finds the face (dark eye band over brighter cheeks, bright nose bridge, contrast between
skin and background), which is what `mrpn prepare` uses on real videos.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import cv2
import numpy as np

from .face import NEUTRAL_EXPRESSION, FaceParams, clamp_expression, emotion_expression

# How far brows and mouth corners move per unit of their control (v2: x2.4, so that an expression
# still reads in the 32-48 px face crops the CPU models see; v1 moved them by a pixel or two).
REACH = 2.4
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


class _Head:
    """Where the head is in one frame: centre (cx, cy), half axes (hw, hh) in pixels, roll and pitch,
    and the map from head-frame coordinates (units of hw and hh, y down, rotated by roll) to pixels."""

    def __init__(self, fp: FaceParams, e: Mapping[str, float], t: float, size: int) -> None:
        S = self.S = float(size)
        self.size = size
        # head pose: sway + pitch + roll
        sway_x = fp.jitter * math.sin(2 * math.pi * fp.sway_freq * t + fp.sway_phase)
        sway_y = 0.6 * fp.jitter * math.sin(2 * math.pi * fp.sway_freq * 0.73 * t + 1.3 * fp.sway_phase)
        self.cx = (fp.cx + sway_x) * S
        self.cy = (fp.cy + sway_y - 0.03 * e["head_pitch"]) * S
        self.hw, self.hh = fp.half_w * S, fp.half_h * S
        self.roll = e["head_tilt"] + 2.0 * math.sin(2 * math.pi * fp.sway_freq * 0.5 * t + fp.sway_phase)
        self.pitch = e["head_pitch"]
        rr = math.radians(self.roll)
        self.cr, self.sr = math.cos(rr), math.sin(rr)

    def P(self, u: float, v: float) -> tuple[float, float]:
        """Head-frame point (u: units of hw, v: units of hh, y down) -> image coordinates."""
        x, y = u * self.hw, v * self.hh + self.pitch * 0.04 * self.hh
        return self.cx + self.cr * x - self.sr * y, self.cy + self.sr * x + self.cr * y

    def PP(self, pts: list[tuple[float, float]]) -> np.ndarray:
        return np.array([self.P(u, v) for u, v in pts])


_AA = cv2.LINE_AA


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
    h = _Head(fp, e, t, size)
    skin = np.array(fp.skin, np.float32)
    img = _background(fp, size).copy()
    _draw_head(img, fp, h, skin)
    _shade(img, fp, h, e)
    eye_open = max(0.0, e["eye_open"] * (1.0 - _blink(fp, t)))
    _draw_eyes(img, fp, h, e["cheek"], eye_open, skin, lm)
    _draw_brows(img, fp, h, e, skin, lm)
    _draw_nose(img, fp, h, e["lip_raise"], skin)
    _draw_mouth(img, fp, h, e, skin, lm)
    if rng is not None and noise > 0:
        img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    return out[:, :, ::-1].copy()  # drawn in BGR, returned as RGB


def _draw_head(img: np.ndarray, fp: FaceParams, h: _Head, skin: np.ndarray) -> None:
    """Shoulders, neck, hair behind the head, the head, ears and the hairline."""
    cx, cy, hw, hh, S, roll = h.cx, h.cy, h.hw, h.hh, h.S, h.roll
    hair = np.array(fp.hair, np.float32)
    cv2.ellipse(img, _p(cx, cy + hh + 0.45 * S), _p(hw * 2.3, 0.5 * S), 0, 180, 360, _col(fp.shirt), -1, _AA, _SHIFT)
    neck_w = 0.55 * hw
    cv2.rectangle(img, (int(cx - neck_w), int(cy + 0.4 * hh)), (int(cx + neck_w), int(cy + hh + 0.3 * S)),
                  _col(skin, 0.72), -1)
    if fp.hair_style == 1:  # long hair behind the head
        pts = np.array([[cx - 1.12 * hw, cy - 0.2 * hh], [cx - 1.15 * hw, cy + 0.95 * hh],
                        [cx + 1.15 * hw, cy + 0.95 * hh], [cx + 1.12 * hw, cy - 0.2 * hh]])
        cv2.fillPoly(img, [_poly(pts)], _col(hair), _AA, _SHIFT)
    if fp.hair_style != 2:
        cv2.ellipse(img, _p(cx, cy - 0.12 * hh), _p(1.1 * hw, 1.0 * hh), roll, 180, 360, _col(hair), -1, _AA, _SHIFT)
    cv2.ellipse(img, _p(cx, cy), _p(hw, hh), roll, 0, 360, _col(skin), -1, _AA, _SHIFT)
    for s in (-1, 1):  # ears
        cv2.ellipse(img, _p(cx + s * 0.98 * hw, cy - 0.02 * hh), _p(0.12 * hw, 0.2 * hh), 0, 0, 360,
                    _col(skin, 0.85), -1, _AA, _SHIFT)
    # hairline / fringe (style 2: bald, a lighter forehead)
    fringe = _col(hair) if fp.hair_style != 2 else _col(skin, 1.05)
    cv2.ellipse(img, _p(cx, cy - 0.62 * hh), _p(0.98 * hw, 0.42 * hh), roll, 180, 360, fringe, -1, _AA, _SHIFT)


def _shade(img: np.ndarray, fp: FaceParams, h: _Head, e: Mapping[str, float]) -> None:
    """Multiply in a blurred shading map: dark eye sockets (the dark eye band over brighter cheeks is
    what Haar features key on), nose side shadows, bright nose bridge and forehead, darker face border."""
    P, PP, hw, hh, roll, ey = h.P, h.PP, h.hw, h.hh, h.roll, fp.eye_y
    shade = np.zeros((h.size, h.size), np.float32)
    for s in (-1, 1):
        cv2.ellipse(shade, _p(*P(s * fp.eye_dx, ey - 0.01)), _p(1.75 * fp.eye_w * hw, 2.4 * fp.eye_h * hh),
                    roll, 0, 360, -0.36 - 0.12 * max(0.0, e["eye_open"] - 1.0), -1, _AA, _SHIFT)
        pts = PP([(s * 0.07, ey + 0.08), (s * 0.13, ey + 0.1), (s * (fp.nose_w + 0.05), ey + fp.nose_len),
                  (s * 0.06, ey + fp.nose_len - 0.02)])
        cv2.fillPoly(shade, [_poly(pts)], -0.2, _AA, _SHIFT)
    bridge = PP([(-0.05, ey + 0.05), (0.05, ey + 0.05), (0.08, ey + fp.nose_len - 0.05),
                 (-0.08, ey + fp.nose_len - 0.05)])
    cv2.fillPoly(shade, [_poly(bridge)], 0.12, _AA, _SHIFT)
    cv2.ellipse(shade, _p(*P(0, ey - 0.42)), _p(0.45 * hw, 0.14 * hh), roll, 0, 360, 0.06, -1, _AA, _SHIFT)
    for s in (-1, 1):  # cheekbones catch light
        cv2.ellipse(shade, _p(*P(s * 0.45, ey + 0.28)), _p(0.2 * hw, 0.1 * hh), roll, 0, 360, 0.05, -1, _AA, _SHIFT)
    cv2.ellipse(shade, _p(*P(0, fp.mouth_y + 0.3)), _p(0.3 * hw, 0.06 * hh), roll, 0, 360, -0.1, -1, _AA, _SHIFT)
    yy, xx = _grid(h.size)
    r2 = ((xx - h.cx) / hw) ** 2 + ((yy - h.cy) / hh) ** 2
    shade -= 0.3 * np.clip((r2 - 0.55) / 0.45, 0.0, 1.0) ** 2 * (r2 <= 1.0)
    shade = cv2.GaussianBlur(shade, (0, 0), max(0.8, h.S / 80.0))
    img *= (1.0 + shade)[:, :, None]


def _draw_eyes(img: np.ndarray, fp: FaceParams, h: _Head, cheek: float, eye_open: float, skin: np.ndarray,
               lm: dict[str, Any]) -> None:
    """Almond-shaped openings (upper and lower half ellipses) as a mask; sclera, iris and pupil are drawn
    in a small patch and composited through it, so the lids crop the iris. A closed eye is a line."""
    S, size, roll = h.S, h.size, h.roll
    ew, eh = fp.eye_w * h.hw, fp.eye_h * h.hh
    for s in (-1, 1):
        ex, eyy = h.P(s * fp.eye_dx, fp.eye_y)
        top = eh * (0.35 + 0.65 * eye_open) * 1.05
        bot = eh * (0.35 + 0.65 * eye_open) * (0.9 - 0.35 * cheek)
        lm.setdefault("eye_centre", []).append((ex, eyy))
        lm.setdefault("eye_opening", []).append(0.0 if eye_open < 0.08 else top + bot)
        if eye_open < 0.08:
            cv2.line(img, _p(ex - ew, eyy), _p(ex + ew, eyy), _col(skin, 0.35), max(1, int(S / 100)), _AA, _SHIFT)
            continue
        r = int(math.ceil(1.3 * ew + 2))
        x0, y0 = int(ex) - r, int(eyy) - r
        if x0 < 0 or y0 < 0 or x0 + 2 * r > size or y0 + 2 * r > size:
            continue
        lx, ly = ex - x0, eyy - y0
        mask = np.zeros((2 * r, 2 * r), np.float32)
        cv2.ellipse(mask, _p(lx, ly), _p(ew, top), roll, 180, 360, 1.0, -1, _AA, _SHIFT)
        cv2.ellipse(mask, _p(lx, ly), _p(ew, max(0.5, bot)), roll, 0, 180, 1.0, -1, _AA, _SHIFT)
        patch = np.empty((2 * r, 2 * r, 3), np.float32)
        # sclera: off-white, dimmed towards the skin tone (at video resolution it reads greyish)
        patch[:] = 0.55 * np.array((200.0, 205.0, 210.0), np.float32) + 0.45 * skin * 0.8
        ir = 0.55 * ew * (1.0 + 0.15 * max(0.0, eye_open - 1.0))
        gx = s * 0.08 * ew  # gaze converges slightly
        cv2.circle(patch, _p(lx - gx, ly), int(ir * _ONE), _col(fp.iris), -1, _AA, _SHIFT)
        cv2.circle(patch, _p(lx - gx, ly), int(0.5 * ir * _ONE), (10, 10, 10), -1, _AA, _SHIFT)
        cv2.circle(patch, _p(lx - gx + 0.25 * ir, ly - 0.3 * ir), max(1, int(0.18 * ir * _ONE)), (230, 230, 230),
                   -1, _AA, _SHIFT)
        roi = img[y0:y0 + 2 * r, x0:x0 + 2 * r]
        m = mask[:, :, None]
        roi[:] = roi * (1 - m) + patch * m
        # upper lid line and a soft crease above it
        cv2.ellipse(img, _p(ex, eyy), _p(ew * 1.02, top), roll, 180, 360, (20, 20, 25), max(1, int(S / 90)), _AA,
                    _SHIFT)
        cv2.ellipse(img, _p(ex, eyy - 0.35 * eh), _p(ew * 0.95, top + 0.3 * eh), roll, 200, 340, _col(skin, 0.45),
                    1, _AA, _SHIFT)


def _draw_brows(img: np.ndarray, fp: FaceParams, h: _Head, e: Mapping[str, float], skin: np.ndarray,
                lm: dict[str, Any]) -> None:
    """Eyebrows as thick polylines (raise moves them up, tilt moves the inner ends), with the frown's
    glabella furrow and raised brows' forehead wrinkles."""
    P, PP, ey = h.P, h.PP, fp.eye_y
    hair = np.array(fp.hair, np.float32)
    bt = max(1, int(round(1.3 * fp.brow_thick * h.S)))
    for s in (-1, 1):
        inner_u, outer_u = s * (fp.eye_dx - fp.brow_len * 0.8), s * (fp.eye_dx + fp.brow_len * 1.1)
        base = ey - fp.brow_gap - 0.07 * REACH * e["brow_raise"]
        inner_v = base + 0.02 - 0.06 * REACH * e["brow_tilt"]
        outer_v = base + 0.01 + 0.02 * REACH * e["brow_tilt"]
        mid_v = base - 0.03 - 0.03 * max(0.0, e["brow_raise"])
        pts = PP([(inner_u, inner_v), ((inner_u + outer_u) / 2, mid_v), (outer_u, outer_v)])
        lm.setdefault("brow_inner", []).append(tuple(pts[0]))
        lm.setdefault("brow_mid", []).append(tuple(pts[1]))
        lm.setdefault("brow_outer", []).append(tuple(pts[2]))
        cv2.polylines(img, [_poly(pts)], False, _col(hair, 0.9), bt, _AA, _SHIFT)
        if e["brow_tilt"] < -0.3 or e["brow_raise"] < -0.4:  # glabella furrow when frowning
            k = min(1.0, max(-e["brow_tilt"], -e["brow_raise"]))
            a, b = P(s * 0.05, ey - 0.14), P(s * 0.03, ey - 0.05)
            cv2.line(img, _p(*a), _p(*b), _col(skin, 1.0 - 0.35 * k), 1, _AA, _SHIFT)
        if e["brow_raise"] > 0.5:  # forehead wrinkles
            k = e["brow_raise"] - 0.5
            pts = PP([(-0.3, ey - 0.33), (0, ey - 0.36), (0.3, ey - 0.33)])
            cv2.polylines(img, [_poly(pts)], False, _col(skin, 1.0 - 0.5 * k), 1, _AA, _SHIFT)


def _draw_nose(img: np.ndarray, fp: FaceParams, h: _Head, sneer: float, skin: np.ndarray) -> None:
    """Bright tip, nostrils (raised by the sneer of `lip_raise`) and, when sneering, nasolabial wrinkles."""
    P, PP, ey, nl = h.P, h.PP, fp.eye_y, fp.nose_len
    cv2.ellipse(img, _p(*P(0, ey + nl)), _p(fp.nose_w * h.hw * 0.75, 0.07 * h.hh), h.roll, 0, 360, _col(skin, 1.05),
                -1, _AA, _SHIFT)
    for s in (-1, 1):
        cv2.ellipse(img, _p(*P(s * fp.nose_w * 0.55, ey + nl + 0.03 - 0.02 * sneer)),
                    _p(0.06 * h.hw, 0.03 * h.hh), h.roll, 0, 360, _col(skin, 0.4), -1, _AA, _SHIFT)
        if sneer > 0.3:  # nasolabial wrinkle
            pts = PP([(s * fp.nose_w, ey + nl - 0.02), (s * (fp.nose_w + 0.12), ey + nl + 0.12),
                      (s * (fp.mouth_w + 0.05), fp.mouth_y - 0.02)])
            cv2.polylines(img, [_poly(pts)], False, _col(skin, 1.0 - 0.3 * sneer), 1, _AA, _SHIFT)


def _draw_mouth(img: np.ndarray, fp: FaceParams, h: _Head, e: Mapping[str, float], skin: np.ndarray,
                lm: dict[str, Any]) -> None:
    """Lips whose corners follow curve and width; an open mouth shows a dark cavity, with teeth when wide
    open; smile lines for a broad smile. Also records the mouth landmarks and the face box."""
    PP = h.PP
    mw = fp.mouth_w * e["mouth_width"]
    my = fp.mouth_y - 0.02 * e["head_pitch"]
    curve = e["mouth_curve"]
    mo = e["mouth_open"]
    corner_v = my - 0.09 * REACH * curve
    centre_up = my - 0.03 * e["lip_raise"]
    open_h = 0.34 * mo
    n = 9
    us = np.linspace(-mw, mw, n)
    w01 = 1.0 - (us / mw) ** 2                      # 0 at corners, 1 at centre
    upper_v = corner_v + (centre_up - corner_v) * w01 + 0.02 * curve * w01 - 0.35 * open_h * w01
    lower_v = corner_v + (my - corner_v) * w01 + 0.02 * curve * w01 + 0.65 * open_h * w01
    upper = PP(list(zip(us, upper_v)))
    lower = PP(list(zip(us, lower_v)))
    lm["mouth_corners"] = [tuple(upper[0]), tuple(upper[-1])]
    lm["mouth_upper"] = tuple(upper[n // 2])
    lm["mouth_lower"] = tuple(lower[n // 2])
    lm["face_box"] = (h.cx - h.hw, h.cy - h.hh, h.cx + h.hw, h.cy + h.hh)
    lt = max(1.0, 1.4 * fp.lip_thick * h.S)
    lip_col = _col(np.array(fp.skin) * np.array([0.75, 0.68, 0.95]))
    if mo > 0.05:
        cavity = np.concatenate([upper, lower[::-1]])
        cv2.fillPoly(img, [_poly(cavity)], (35, 20, 25), _AA, _SHIFT)
        if mo > 0.35:
            tw = PP(list(zip(us[2:-2] * 0.85, upper_v[2:-2] + 0.03)))
            cv2.polylines(img, [_poly(tw)], False, (220, 220, 215), max(1, int(0.5 * lt)), _AA, _SHIFT)
        cv2.polylines(img, [_poly(upper)], False, lip_col, max(1, int(lt * 0.7)), _AA, _SHIFT)
        cv2.polylines(img, [_poly(lower)], False, lip_col, max(1, int(lt * 0.9)), _AA, _SHIFT)
    else:
        # closed: lip line (dark) with a lighter lower lip below it
        low_lip = PP(list(zip(us * 0.85, lower_v + 0.035 * w01 + 0.01)))
        cv2.polylines(img, [_poly(low_lip)], False, lip_col, max(1, int(lt * 1.1)), _AA, _SHIFT)
        cv2.polylines(img, [_poly(upper)], False, _col(lip_col, 0.35), max(1, int(lt * 0.8)), _AA, _SHIFT)
    if curve > 0.4:  # smile lines
        for s in (-1, 1):
            pts = PP([(s * (mw + 0.05), my - 0.2), (s * (mw + 0.1), my - 0.06), (s * (mw + 0.05), my + 0.06)])
            cv2.polylines(img, [_poly(pts)], False, _col(skin, 1.0 - 0.25 * curve), 1, _AA, _SHIFT)


__all__ = ["render_face"]
