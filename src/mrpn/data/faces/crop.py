"""Crop geometry: a square with a margin around a box, cut from RGB or YUV frames and resized."""
from __future__ import annotations

from typing import Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------
# cropping

def square_region(box: Sequence[float], margin: float) -> tuple[int, int, int]:
    """(x0, y0, side) of the square centred on `box` with `margin` x its larger side added on
    every side (margin 0.25 -> a square 1.5 x the box)."""
    x, y, w, h = (float(v) for v in box[:4])
    side = max(w, h) * (1.0 + 2.0 * margin)
    s = max(1, int(round(side)))
    x0 = int(round(x + w / 2.0 - s / 2.0))
    y0 = int(round(y + h / 2.0 - s / 2.0))
    return x0, y0, s


def _resize_down(img: np.ndarray, size: int) -> np.ndarray:
    """Square `img` -> [size, size] with area averaging, fast: an integer-factor INTER_AREA step
    (OpenCV's fast path) to between size and 2*size, then INTER_LINEAR for the rest."""
    import cv2

    s = img.shape[0]
    f = s // size
    if f >= 2:
        s2 = f * (s // f)
        img = cv2.resize(img[:s2, :s2], (s2 // f, s2 // f), interpolation=cv2.INTER_AREA)
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)


def _take(plane: np.ndarray, x0: int, y0: int, s: int, fill: int) -> np.ndarray:
    """plane[y0:y0+s, x0:x0+s]; where the square leaves the plane, the edge pixels are repeated.

    Not black bars: a face near the side of a portrait video (or a large face in a narrow frame)
    then looks like the same face in a wide frame, where the square has real pixels around it; bars
    are a pattern the model never saw in training and changed its answer. `fill` is used only when
    the square misses the plane entirely."""
    H, W = plane.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + s <= W and y0 + s <= H:
        return plane[y0:y0 + s, x0:x0 + s]
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + s, W), min(y0 + s, H)
    if ix1 <= ix0 or iy1 <= iy0:
        return np.full((s, s) + plane.shape[2:], fill, np.uint8)
    pad = ((iy0 - y0, y0 + s - iy1), (ix0 - x0, x0 + s - ix1)) + ((0, 0),) * (plane.ndim - 2)
    return np.pad(plane[iy0:iy1, ix0:ix1], pad, mode="edge")


def _crop_yuv(frame, box: Sequence[float], size: int, margin: float, gray: bool) -> np.ndarray:
    import cv2

    x0, y0, s = square_region(box, margin)
    x0, y0, s = x0 - (x0 % 2), y0 - (y0 % 2), max(2, s + (s % 2))      # chroma-aligned
    y = _resize_down(_take(frame.y, x0, y0, s, 16), size)
    if gray:
        g = np.clip((y.astype(np.float32) - 16.0) * (255.0 / 219.0) + 0.5, 0, 255).astype(np.uint8)
        return g[:, :, None]
    even = size + (size % 2)
    if even != size:
        y = cv2.resize(y, (even, even), interpolation=cv2.INTER_LINEAR)
    u = _resize_down(_take(frame.u, x0 // 2, y0 // 2, s // 2, 128), even // 2)
    v = _resize_down(_take(frame.v, x0 // 2, y0 // 2, s // 2, 128), even // 2)
    i420 = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(even * 3 // 2, even)
    rgb = cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)
    if even != size:
        rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    return rgb


def crop_square(frame, box: Sequence[float], size: int, margin: float, gray: bool = False) -> np.ndarray:
    """uint8 [size, size, C] (C = 1 grey, 3 RGB) of the margin square around `box`; parts of the
    square outside the frame repeat the frame's edge pixels (`_take`). `frame` is uint8 RGB [H, W, 3], grey [H, W] or a
    `mrpn.data.media.YUVFrame`."""
    import cv2

    if not isinstance(frame, np.ndarray):
        return _crop_yuv(frame, box, size, margin, gray)
    if frame.ndim == 2:
        frame = frame[:, :, None]
    x0, y0, s = square_region(box, margin)
    region = _take(frame, x0, y0, s, 0)
    if s > size:
        out = _resize_down(region, size)
    else:
        out = cv2.resize(region, (size, size), interpolation=cv2.INTER_LINEAR)
    if out.ndim == 2:
        out = out[:, :, None]
    if gray and out.shape[2] == 3:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[:, :, None]
    elif not gray and out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out)


def detection_image(frame, width: int, color: bool = False) -> tuple[np.ndarray, float]:
    """(grey uint8 image, or BGR when `color`, scale) of `frame` downscaled to `width` (0 or a
    narrower frame: full size). Box coordinates found in it divide by `scale`."""
    import cv2

    H, W = frame.shape[:2]
    scale = width / W if 0 < width < W else 1.0
    size = (width, max(1, int(round(H * scale)))) if scale != 1.0 else None
    if not isinstance(frame, np.ndarray):          # YUVFrame
        if not color:
            img = frame.y
            return (cv2.resize(img, size, interpolation=cv2.INTER_AREA) if size else np.ascontiguousarray(img)), scale
        frame = frame.to_rgb()
    img = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if size else frame
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR if color else cv2.COLOR_RGB2GRAY)
    elif img.ndim == 3:
        img = img[:, :, 0]
    return img, scale


def pad_edges(img: np.ndarray, pad: int) -> np.ndarray:
    """`img` (grey [H, W] or [H, W, C]) with its edge pixels repeated `pad` pixels on every side,
    the repetition `_take` gives a window that leaves the frame."""
    return np.pad(img, ((pad, pad), (pad, pad)) + ((0, 0),) * (img.ndim - 2), mode="edge")


def roi_image(frame, box: Sequence[float], expand: float, face_px: int, color: bool = False
              ) -> tuple[np.ndarray, float, float, float]:
    """The square window `expand` x the box around `box`, rescaled so the face in it is about
    `face_px` wide -> (grey or BGR image, x0, y0, factor); a box (x, y, w, h) found in the image
    is (x / factor + x0, y / factor + y0, w / factor, h / factor) in the frame."""
    import cv2

    x, y, w, h = (float(v) for v in box[:4])
    side = max(w, h)
    s = max(2, int(round(side * expand)))
    x0 = int(round(x + w / 2 - s / 2))
    y0 = int(round(y + h / 2 - s / 2))
    out = max(24, int(round(face_px * expand)))
    if not isinstance(frame, np.ndarray):
        if not color:
            plane = _take(frame.y, x0, y0, s, 16)
            return _resize_any(plane, out), x0, y0, out / s
        frame = frame.to_rgb()
    if frame.ndim == 2:
        frame = frame[:, :, None]
    region = _resize_any(_take(frame, x0, y0, s, 0), out)
    if region.ndim == 3 and region.shape[2] == 3:
        region = cv2.cvtColor(region, cv2.COLOR_RGB2BGR if color else cv2.COLOR_RGB2GRAY)
    elif region.ndim == 3:
        region = region[:, :, 0]
    return region, x0, y0, out / s


def _resize_any(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if img.shape[0] > size:
        return _resize_down(img, size)
    if img.shape[0] == size:
        return np.ascontiguousarray(img)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
