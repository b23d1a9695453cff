"""Training/evaluation datasets: cached clips -> model inputs, with the paper's augmentations.

Per item: (1) time augmentation, one random slice of at least `min_slice_s` applied to both
modalities together (paper 4.4 items 2, 4; Table 1 "T"); (2) video frames subsampled to
`video_fps`, resized, normalised, spatially augmented with one set of random parameters per clip
(Figure 8, middle) or per frame (Figure 8, bottom); (3) audio cut into 1 s spectrogram segments with
a 0.2 s (AO) or 1 s (WO) hop. Randomness comes from a generator seeded by (seed, epoch, index),
so an epoch is the same whatever the number of workers and a resumed run repeats it exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from mrpn import registry
from mrpn.config import DataConfig
from mrpn.data.clip import Clip
from mrpn.features.video import faces_to_tensor, select_frames, spatial_augment  # noqa: F401  (public names)


@dataclass
class Example:
    """One clip as loaded from a source, before any augmentation."""
    clip: Clip
    faces: np.ndarray | None      # uint8 [T, H, W, C]
    fps: float
    audio: np.ndarray | None      # float32 [N], standardised, at `sample_rate`
    face_found: np.ndarray | None = None  # bool [T]
    extra: dict[str, Any] = field(default_factory=dict)  # arrays of other registered modalities


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
# Per-item transforms: time slicing here; frames, segments and tensors in mrpn.features
# ---------------------------------------------------------------------------------------------

def time_slice(duration: float, min_len: float, rng: np.random.Generator) -> tuple[float, float]:
    """A random [start, end) of at least min(min_len, duration) seconds (paper 4.4, Figure 9)."""
    lo = min(min_len, duration)
    length = rng.uniform(lo, duration) if duration > lo else duration
    start = rng.uniform(0.0, duration - length) if duration > length else 0.0
    return start, start + length


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
        # the clip's length over all its modalities, so that a slice cuts every modality at the same time
        duration = max([spec.duration(ex, cfg) for spec in registry.MODALITIES.values()] + [1e-3])
        if self.train and cfg.time_aug:
            t0, t1 = time_slice(duration, cfg.min_slice_s, rng)
        else:
            t0, t1 = 0.0, duration
        item: dict[str, Any] = {"label": ex.clip.label, "index": i}
        for m in self.modalities:
            spec = registry.modality(m)
            if not spec.present(ex):
                raise ValueError(f"clip {ex.clip.id} has no {spec.title} but the model needs {spec.title}")
            keys = spec.select(ex, t0, t1, cfg)
            item[m] = spec.inputs(ex, keys, cfg, rng if self.train else None)
        return item


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad variable-length sequences: "m" -> [B, T_max, ...] and "m_len" -> [B]."""
    out: dict[str, torch.Tensor] = {
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
    }
    for m in registry.MODALITIES:
        # raw inputs (m) or per-element extractor features (m + "_feat", see modality_features)
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
