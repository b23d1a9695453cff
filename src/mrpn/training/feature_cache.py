"""Frozen extractors run once per view, not once per epoch (`train.feature_views`).

Why: when every F_m of a model is fixed (`train.freeze_extractors=v,a`, or late fusion's frozen branches),
F_m(x_m) depends only on the clip's augmented input, yet an epoch spends almost all of its time running
F_m again, the only costly part of the network. Here F_m's
per-element features are computed for K augmented views of the training set and one plain view of the
validation sets; training then feeds `m + "_feat"` sequences ([T, D], see FusionNet.modality_features) to
A_m and the fusion, which are what train.

Views are the trainer's own epochs: EmotionDataset seeds an item's augmentation by (seed, epoch, clip),
and epoch e here trains on view ((e - 1) mod K) + 1, which is exactly the input the uncached run draws in
that epoch. With K >= train.epochs a run therefore sees the same inputs as without the cache; with fewer
views they repeat (K = 8 over 40 epochs: each augmented version is seen five times).

`train.feature_cache` names a folder where the views are kept between runs, keyed by the extractor's
weights, the data settings, the clips and the view, so that the six models of a fold (VM, AM, N0, N1, N2)
compute them once. Files are plain tensors (`torch.load(weights_only=True)`), written atomically.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from mrpn.io import atomic_write_with

__all__ = ["FeatureViewDataset", "cached_datasets", "frozen_modalities", "extractor_digest"]


def cached_datasets(datasets: dict[str, Any], model: torch.nn.Module, cfg, log: Callable[..., None] = print
                    ) -> dict[str, Any]:
    """The trainer's datasets ("train", "val", "select") with F_m's outputs in place of its inputs."""
    frozen = frozen_modalities(model)
    missing = [m for m in model.modalities if m not in frozen]
    if missing:  # config.validate says so first; a model frozen by other means must be too
        raise ValueError(f"train.feature_views: the extractors of {', '.join(missing)} are not fixed")
    extractors = {m: model.branches[m].extractor for m in model.modalities}
    t = cfg.train
    log(f"  extractor features computed once per view ({t.feature_views} training views"
        + (f", kept in {t.feature_cache})" if t.feature_cache else ")"))
    return {k: FeatureViewDataset(ds, extractors, t.feature_views, t.batch_size, t.feature_cache, log)
            if ds is not None else None for k, ds in datasets.items()}


def frozen_modalities(model: torch.nn.Module) -> tuple[str, ...]:
    """The modalities whose F_m does not train: frozen extractors and whole frozen branches."""
    return tuple(dict.fromkeys([*getattr(model, "frozen", ()), *getattr(model, "frozen_extractors", ())]))


# Data keys added after feature caches were first written: left out of a view's key while at the value
# that reproduces the older data, so the caches written before the key existed stay valid.
_ADDED_LATER = {"paired_fuzzy": 0.0, "paired_video": 0.0, "wave_noise": 0.0, "wave_snr_min": 0.0,
                "wave_snr_max": 30.0, "wave_reverb": 0.0, "wave_lowpass": 0.0}


def extractor_digest(extractor: torch.nn.Module) -> str:
    """A hash of F_m's weights and buffers: a cached view is valid only for the weights that made it."""
    h = hashlib.sha256()
    for name, t in sorted(extractor.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:20]


class FeatureViewDataset(Dataset):
    """An EmotionDataset whose modality inputs are replaced by F_m(x_m), computed per view on first use.

    Items: {"label", "index", m + "_feat": float [T_m, D_m]} for each modality of the model (all of
    them must have a frozen F_m). `set_epoch` picks the view; a non-training dataset has one view.
    """

    def __init__(self, base, extractors: dict[str, torch.nn.Module], views: int, batch_size: int,
                 cache_dir: str = "", log: Callable[..., None] = print):
        if views < 1:
            raise ValueError(f"views must be >= 1, got {views}")
        self.base, self.extractors = base, extractors
        self.views = views if base.train else 1
        self.batch_size, self.log = batch_size, log
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.epoch, self._store = 0, {}
        self._digests = {m: extractor_digest(e) for m, e in extractors.items()}
        if not base.train:
            self._view(0)

    def __len__(self) -> int:
        return len(self.base)

    def labels(self) -> list[int]:
        return self.base.labels()

    def view_of(self, epoch: int) -> int:
        """The base dataset's epoch whose augmentation view `epoch` trains on (0 for evaluation)."""
        return (max(epoch, 1) - 1) % self.views + 1 if self.base.train else 0

    def set_epoch(self, epoch: int) -> None:
        # computed here, in the main process: done lazily inside a DataLoader worker, the view would be
        # lost with the worker at the end of the epoch
        self.epoch = epoch
        self._view(self.view_of(epoch))

    def __getitem__(self, k: int) -> dict[str, Any]:
        items = self._view(self.view_of(self.epoch))
        return items[k]

    # -------------------------------------------------------------------------------- computing

    def _key(self, view: int) -> str:
        b = self.base
        data = {k: v for k, v in _jsonable(vars(b.cfg)).items()
                if k != "workers" and not (k in _ADDED_LATER and v == _ADDED_LATER[k])}
        # keyed by the whole modality set, not per modality: a clip's augmentation draws (time shift,
        # AO offset) are shared by its streams, so VM's face views are not N2's face views
        spec = {"data": data, "modalities": list(b.modalities), "train": b.train,
                "seed": b.seed, "view": view, "indices": list(b.indices), "extractors": self._digests}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]

    def _view(self, view: int) -> list[dict[str, Any]]:
        if view in self._store:
            return self._store[view]
        path = self.cache_dir / f"{self._key(view)}.pt" if self.cache_dir else None
        items = _load(path, self.log) if path is not None and path.is_file() else None
        if items is None or len(items) != len(self.base):
            items = self._compute(view)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_with(path, lambda p: torch.save(items, p))
        self._store = {view: items}   # one view in memory at a time: epochs visit them in order
        return items

    @torch.no_grad()
    def _compute(self, view: int) -> list[dict[str, Any]]:
        from torch.utils.data import DataLoader

        from mrpn.data.loader import collate

        base = self.base
        base.set_epoch(view)
        what = f"view {view}/{self.views}" if base.train else "evaluation view"
        self.log(f"  extractor features, {what}: {len(base)} clips")
        items: list[dict[str, Any]] = []
        modes = {m: e.training for m, e in self.extractors.items()}
        for e in self.extractors.values():
            e.eval()
        # fork_rng: a DataLoader draws its base seed from torch's global generator, which would move
        # the training's dropout draws away from those of the uncached run
        with torch.random.fork_rng(devices=[]):
            try:
                for batch in DataLoader(base, batch_size=self.batch_size, shuffle=False, collate_fn=collate):
                    feats = {m: _element_features(e, batch[m], batch[m + "_len"]) for m, e in self.extractors.items()}
                    for j in range(batch["label"].shape[0]):
                        item = {"label": int(batch["label"][j]), "index": int(batch["index"][j])}
                        item.update({m + "_feat": f[j] for m, f in feats.items()})
                        items.append(item)
            finally:
                for m, e in self.extractors.items():
                    e.train(modes[m])
        return items


def _element_features(extractor: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """F_m on every valid element of a padded batch [B, T, C, H, W] -> per clip [len, D] (cf. ModalityBranch)."""
    device = next(extractor.parameters()).device
    out = extractor(torch.cat([x[b, : int(n)] for b, n in enumerate(lengths)]).to(device))
    return [f.cpu() for f in out.float().split([int(n) for n in lengths])]


def _load(path: Path, log: Callable[..., None]) -> list[dict[str, Any]] | None:
    try:
        return torch.load(path, weights_only=True)
    except Exception as e:  # a damaged cache file is recomputed, never trusted
        log(f"  feature cache {path} unreadable ({type(e).__name__}); computing it again")
        return None


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
