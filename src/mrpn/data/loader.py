"""Training/evaluation datasets: cached clips -> model inputs, with the paper's augmentations.

Per item: (1) time augmentation, one random slice of at least `min_slice_s` applied to both
modalities together (paper 4.4 items 2, 4; Table 1 "T"); (2) video frames subsampled to
`video_fps`, resized, normalised, spatially augmented with one set of random parameters per clip
(Figure 8, middle) or per frame (Figure 8, bottom); (3) audio cut into 1 s spectrogram segments with
a 0.2 s (AO) or 1 s (WO) hop. Randomness comes from a generator seeded by (seed, epoch, index),
so an epoch is the same whatever the number of workers and a resumed run repeats it exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from mrpn.config import DataConfig
from mrpn.data.clip import Clip
from mrpn.features.spectrogram import audio_segments, spec_augment


@dataclass
class Example:
    """One clip as loaded from a source, before any augmentation."""
    clip: Clip
    faces: np.ndarray | None      # uint8 [T, H, W, C]
    fps: float
    audio: np.ndarray | None      # float32 [N], standardised, at `sample_rate`
    face_found: np.ndarray | None = None  # bool [T]


class ClipSource(Protocol):
    classes: list[str]

    def clips(self) -> list[Clip]: ...

    def load(self, i: int) -> Example: ...


class CacheSource:
    """Clips from a folder written by `mrpn prepare` (only status ok; flagged clips on request)."""

    def __init__(self, root: str, include_flagged: bool = False, verify: bool = False):
        from mrpn.data.cache import Cache

        self.cache = Cache(root)
        self.verify = verify
        self.records = self.cache.records(status="ok", include_flagged=include_flagged)
        self.classes = list(self.cache.classes)
        self._clips = [Clip.from_dict(r["clip"]) for r in self.records]

    def clips(self) -> list[Clip]:
        return self._clips

    def load(self, i: int) -> Example:
        clip = self._clips[i]
        arr = self.cache.load(clip.id, verify=self.verify)
        faces = arr.get("faces")
        if faces is not None and faces.size == 0:
            faces = None
        audio = arr.get("audio")
        if audio is not None and audio.size == 0:
            audio = None
        return Example(clip=clip, faces=faces, fps=float(arr.get("fps", 0.0) or 0.0), audio=audio,
                       face_found=arr.get("face_found"))


# ---------------------------------------------------------------------------------------------
# Per-item transforms
# ---------------------------------------------------------------------------------------------

def time_slice(duration: float, min_len: float, rng: np.random.Generator) -> tuple[float, float]:
    """A random [start, end) of at least min(min_len, duration) seconds (paper 4.4, Figure 9)."""
    lo = min(min_len, duration)
    length = rng.uniform(lo, duration) if duration > lo else duration
    start = rng.uniform(0.0, duration - length) if duration > length else 0.0
    return start, start + length


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


class EmotionDataset(Dataset):
    """Items for the model: {"v": [T,C,H,W], "a": [S,1,F,W], "label", "index"} (keys per modality)."""

    def __init__(self, source: ClipSource, indices: list[int], cfg: DataConfig, modalities: tuple[str, ...],
                 train: bool, seed: int = 0):
        self.source, self.indices, self.cfg = source, list(indices), cfg
        self.modalities, self.train, self.seed = tuple(modalities), train, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def labels(self) -> list[int]:
        clips = self.source.clips()
        return [clips[i].label for i in self.indices]

    def __getitem__(self, k: int) -> dict[str, Any]:
        cfg = self.cfg
        i = self.indices[k]
        ex = self.source.load(i)
        rng = np.random.default_rng([self.seed, self.epoch if self.train else 0, i])
        dur_a = len(ex.audio) / cfg.sample_rate if ex.audio is not None else 0.0
        dur_v = len(ex.faces) / ex.fps if ex.faces is not None and ex.fps > 0 else 0.0
        duration = max(dur_a, dur_v, 1e-3)
        if self.train and cfg.time_aug:
            t0, t1 = time_slice(duration, cfg.min_slice_s, rng)
        else:
            t0, t1 = 0.0, duration
        item: dict[str, Any] = {"label": ex.clip.label, "index": i}
        if "v" in self.modalities:
            if ex.faces is None:
                raise ValueError(f"clip {ex.clip.id} has no face frames but the model needs video")
            idx = select_frames(len(ex.faces), ex.fps, t0, t1, cfg.video_fps, cfg.max_frames, ex.face_found)
            x = faces_to_tensor(ex.faces[idx], cfg.face_size, cfg.gray)
            if self.train:
                x = spatial_augment(x, cfg.spatial_aug, rng)
            item["v"] = (x - 0.5) / 0.5
        if "a" in self.modalities:
            if ex.audio is None:
                raise ValueError(f"clip {ex.clip.id} has no audio but the model needs audio")
            a0, a1 = int(t0 * cfg.sample_rate), max(int(t1 * cfg.sample_rate), int(t0 * cfg.sample_rate) + 1)
            wave = torch.from_numpy(np.ascontiguousarray(ex.audio[a0:a1], dtype=np.float32))
            spec = audio_segments(wave, cfg)
            if self.train and (cfg.specaug_freq or cfg.specaug_time):
                spec = spec_augment(spec, rng, cfg.specaug_freq, cfg.specaug_time, cfg.specaug_masks)
            item["a"] = spec
        return item


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad variable-length sequences: "m" -> [B, T_max, ...] and "m_len" -> [B]."""
    out: dict[str, torch.Tensor] = {
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
    }
    for m in ("v", "a"):
        # raw inputs ("v") or per-element extractor features ("v_feat", see modality_features)
        key = m if m in items[0] else m + "_feat" if m + "_feat" in items[0] else None
        if key is None:
            continue
        seqs = [it[key] for it in items]
        lens = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
        pad = seqs[0].new_zeros((len(seqs), int(lens.max())) + tuple(seqs[0].shape[1:]))
        for j, s in enumerate(seqs):
            pad[j, : s.shape[0]] = s
        out[key], out[m + "_len"] = pad, lens
    return out
