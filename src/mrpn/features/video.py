"""Video features (paper 4.4 items 1-2): face frames of a time range -> normalised tensors.

Per-frame functions shared by training (`data.loader`), the `Predictor` and the `StreamPredictor`:
`select` picks the frames of [t0, t1) at `video_fps` (skipping frames without a detected face when
some have one), `inputs` turns them into [N, C, S, S] tensors in [-1, 1], with spatial augmentation
(Figure 8) when a random generator is given (training only).

The example `ex` holds `faces` uint8 [T, H, W, C] crops, `face_found` bool [T] (or None) and `fps`;
`d` is the DataConfig (face_size, gray, video_fps, max_frames, spatial_aug).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def duration(ex, d) -> float:
    faces = getattr(ex, "faces", None)
    return len(faces) / ex.fps if faces is not None and len(faces) and ex.fps > 0 else 0.0


def present(ex) -> bool:
    return getattr(ex, "faces", None) is not None


def usable(ex) -> bool:
    faces, found = getattr(ex, "faces", None), getattr(ex, "face_found", None)
    return faces is not None and len(faces) > 0 and (found is None or bool(found.any()))


def select_frames(n: int, fps: float, t0: float, t1: float, target_fps: float, max_frames: int,
                  found: np.ndarray | None) -> np.ndarray:
    """Indices of the frames in [t0, t1) at `target_fps`, skipping frames with no face when some have one."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    fps = fps if fps > 0 else 1.0
    first, last = int(math.floor(t0 * fps)), int(math.ceil(t1 * fps))
    idx = np.arange(max(0, first), min(n, max(last, first + 1)))
    if found is not None and len(found) == n and found[idx].any():
        idx = idx[found[idx]]
    if len(idx) == 0:
        idx = np.array([min(n - 1, max(0, first))])
    if target_fps and target_fps < fps:
        step = fps / target_fps
        idx = idx[np.unique(np.floor(np.arange(0, len(idx), step)).astype(np.int64))]
    if max_frames and len(idx) > max_frames:
        idx = idx[np.linspace(0, len(idx) - 1, max_frames).round().astype(np.int64)]
    return idx


def select(ex, t0: float, t1: float, d) -> np.ndarray:
    faces = ex.faces if ex.faces is not None else ()
    return select_frames(len(faces), ex.fps, t0, t1, d.video_fps, d.max_frames, ex.face_found)


def select_windows(ex, windows: list[tuple[float, float]], d) -> list[np.ndarray]:
    """Frames of each (overlapping) window, taken from one grid at `video_fps` shared by all windows,
    so that overlapping windows reuse the same frames (and their extractor features). Only frames
    with a detected face are used; a window without one gets no frames."""
    n = len(ex.faces) if ex.faces is not None else 0
    found = ex.face_found
    fps = ex.fps if ex.fps > 0 else 1.0
    step = fps / d.video_fps if d.video_fps and d.video_fps < fps else 1.0
    grid = np.unique(np.floor(np.arange(0, n, step)).astype(np.int64))
    ok = found[grid] if found is not None and len(found) == n else np.ones(len(grid), bool)
    t = grid / fps
    out = []
    for s, e in windows:
        sel = grid[(t >= s - 1e-9) & (t < e - 1e-9) & ok]
        if d.max_frames and len(sel) > d.max_frames:
            sel = sel[np.linspace(0, len(sel) - 1, d.max_frames).round().astype(np.int64)]
        out.append(sel)
    return out


def faces_to_tensor(faces: np.ndarray, size: int, gray: bool) -> torch.Tensor:
    """uint8 [T, H, W, C] -> float [T, C', size, size] in [0, 1] (C' = 1 when gray)."""
    x = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float().div_(255.0)
    if gray and x.shape[1] == 3:
        x = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    elif not gray and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def _affine_params(n: int, rng: np.random.Generator) -> torch.Tensor:
    """Random similarity transforms (rotation, scale, shift, flip) as [n, 2, 3] affine_grid thetas."""
    ang = np.deg2rad(rng.uniform(-10, 10, n))
    scale = rng.uniform(0.9, 1.1, n)
    tx, ty = rng.uniform(-0.08, 0.08, n), rng.uniform(-0.08, 0.08, n)
    flip = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    cos, sin = np.cos(ang) / scale, np.sin(ang) / scale
    theta = np.stack([np.stack([cos * flip, -sin, tx], -1), np.stack([sin * flip, cos, ty], -1)], 1)
    return torch.from_numpy(theta.astype(np.float32))


def spatial_augment(x: torch.Tensor, mode: str, rng: np.random.Generator) -> torch.Tensor:
    """x [T, C, H, W] in [0, 1]. mode "clip": one draw for all frames (Fig. 8 middle); "frame": one per frame."""
    if mode == "none" or x.shape[0] == 0:
        return x
    t = x.shape[0]
    n = 1 if mode == "clip" else t
    theta = _affine_params(n, rng).expand(t, 2, 3) if n == 1 else _affine_params(n, rng)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    bright = torch.from_numpy(rng.uniform(-0.15, 0.15, (n, 1, 1, 1)).astype(np.float32))
    contrast = torch.from_numpy(rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + bright).clamp(0, 1)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range the extractor is trained on (and pretrained on FER2013)."""
    return (x - 0.5) / 0.5


def inputs(ex, keys: np.ndarray, d, rng: np.random.Generator | None = None) -> torch.Tensor:
    """The selected frames as model inputs [N, C, S, S]; augmented when rng is given (training)."""
    x = faces_to_tensor(ex.faces[keys], d.face_size, d.gray)
    if rng is not None:
        x = spatial_augment(x, d.spatial_aug, rng)
    return normalise(x)


def element_shape(d) -> tuple[int, int, int]:
    return (1 if d.gray else 3, d.face_size, d.face_size)


def setting(d) -> str | None:
    """Run-label tag: video spatial augmentation per clip (VA) or per frame."""
    if d.spatial_aug == "none":
        return None
    return "VA" if d.spatial_aug == "clip" else "VA-frame"
