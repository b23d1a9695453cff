"""The pieces a fold's training is made of: its data (cache source, fold protocol, train/val/inner
split, loaders), its model (build, pretrained extractors), its schedule and how the epoch was chosen."""
from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from mrpn import registry
from mrpn.config import Config, ConfigError
from mrpn.training.checkpoint import CheckpointError


def run_label(cfg: Config) -> str:
    """"N2 (MRPN) (end-to-end) [T+AO+VA]": the kind, the strategy of a fusion, and the settings of
    Table 1 (time augmentation T/NT, then each modality's tag in `setting_order`)."""
    kind = registry.kind(cfg.model.kind)
    label = kind.label + (f" ({cfg.train.strategy})" if kind.fusion else "")
    setting = ["T" if cfg.data.time_aug else "NT"]
    for spec in sorted((registry.modality(m) for m in kind.modalities), key=lambda s: s.setting_order):
        tag = spec.setting(cfg.data)
        if tag:
            setting.append(tag)
    return f"{label} [{'+'.join(setting)}]"


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def make_source(cfg: Config, val_actors: set[str]):
    from mrpn.data.loader import CacheSource

    if not cfg.data.cache:
        raise ConfigError("data.cache is not set: point --cache at a folder written by `mrpn prepare`")
    if not Path(cfg.data.cache).is_dir():
        raise ConfigError(f"cache folder not found: {cfg.data.cache} (run `mrpn prepare` first)")
    if cfg.data.dataset == "paired":
        from mrpn.data.paired import PairedSource

        if not cfg.data.fer:
            raise ConfigError("the paired benchmark needs data.fer (FER2013 root)")
        try:
            return PairedSource(cfg.data.cache, cfg.data.fer, val_actors, cfg.data.paired_faces, cfg.train.seed,
                                fuzzy=cfg.data.paired_fuzzy, video=cfg.data.paired_video)
        except (ValueError, FileNotFoundError) as e:   # DatasetError is a ValueError
            raise ConfigError(f"paired benchmark: {e}") from None
    from mrpn.data.cache import CacheError

    _check_cache_dataset(cfg)
    try:
        return CacheSource(cfg.data.cache, include_flagged=cfg.data.include_flagged)
    except (CacheError, ValueError, FileNotFoundError) as e:
        raise ConfigError(f"cache {cfg.data.cache}: {e}") from None


def _check_cache_dataset(cfg: Config) -> None:
    """RAVDESS and CREMA-D fix the folds and class list: training one on the other's cache is an error."""
    from mrpn.data.cache import Cache, CacheError

    try:
        cached = Cache(cfg.data.cache).info.get("dataset")
    except (CacheError, OSError, ValueError, AttributeError):
        return                      # CacheSource reports an unreadable cache
    if cfg.data.dataset in ("ravdess", "cremad") and cached and cached != cfg.data.dataset:
        raise ConfigError(f"--dataset {cfg.data.dataset}, but the cache {cfg.data.cache} holds {cached!r} clips: "
                          f"pass --dataset {cached if cached in ('ravdess', 'cremad') else 'custom'}, "
                          "or another --cache")


def resolve_protocol(cfg: Config, actors: list[str], genders: dict[str, str | None]):
    """The dataset's shipped folds, a user's fold file, or (own/synthetic data) generated actor folds."""
    from mrpn.data import folds as F

    name = cfg.data.protocol
    ds = "ravdess" if cfg.data.dataset == "paired" else cfg.data.dataset
    try:
        if not name:
            try:
                return F.default_protocol(ds)
            except (KeyError, ValueError, FileNotFoundError):
                k = min(5, len(set(actors)))
                return F.make_actor_folds(sorted(set(actors)), k, genders=genders, seed=0)
        return F.load_protocol(name)
    except (KeyError, ValueError, FileNotFoundError) as e:
        raise ConfigError(f"folds: {e} (actor-disjoint folds need at least 2 actors; see `mrpn folds`)") from None


def fold_indices(clips, fold) -> tuple[list[int], list[int]]:
    """(train, val) positions of `clips` in `fold`, by `folds.split_clips` (an actor outside the fold is an error)."""
    from types import SimpleNamespace

    from mrpn.data.folds import split_clips

    try:
        tr, va = split_clips([SimpleNamespace(actor=c.actor, i=i) for i, c in enumerate(clips)], fold)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return [t.i for t in tr], [v.i for v in va]


def make_loader(ds, cfg: Config, train: bool, epoch: int = 0, info=None) -> DataLoader:
    g = torch.Generator().manual_seed(cfg.train.seed * 100003 + epoch)
    workers = cfg.data.workers
    bs, sampler = cfg.train.batch_size, None
    if info is not None and info.enabled and train:
        from torch.utils.data.distributed import DistributedSampler

        bs = max(1, bs // info.world)  # train.batch_size is the global batch
        sampler = DistributedSampler(ds, info.world, info.rank, shuffle=True, seed=cfg.train.seed, drop_last=True)
        sampler.set_epoch(epoch)
    return DataLoader(ds, batch_size=bs, shuffle=train and sampler is None, sampler=sampler,
                      generator=g if train and sampler is None else None,
                      num_workers=workers, collate_fn=_collate(),
                      # FeatureNorm (batch norm) cannot train on a batch of one; shuffled, the
                      # dropped remainder differs every epoch
                      drop_last=train and len(ds) > bs,
                      persistent_workers=False, pin_memory=False,
                      worker_init_fn=_worker_init if workers else None)


def _collate():
    from mrpn.data.loader import collate

    return collate


def _worker_init(_: int) -> None:
    # One thread per worker: the main process trains on the cores; workers only cut and transform.
    torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

def build(cfg: Config, n_classes: int) -> torch.nn.Module:
    from mrpn.models.build import build_model

    return build_model(replace(cfg.model, n_classes=n_classes))


def load_pretrained_extractors(model: torch.nn.Module, cfg: Config, fold_index: int | None = None,
                               val_actors: list[str] | None = None) -> list[str]:
    """F_m from `train.pretrained_<m>`: a safetensors file, a run's checkpoint, a run folder (the same
    fold's best.pt, for `cv`) or "resemblyzer". Returns one line per extractor loaded."""
    from mrpn.checkpoint import load_safetensors_checked

    done = []
    for m in registry.modalities_of(cfg.model.kind):
        path = getattr(cfg.train, f"pretrained_{m}", "")  # train.pretrained_<modality>
        if not path:
            continue
        ext = model.branches[m].extractor
        if path == "resemblyzer":   # the GE2E weights inside resemblyzer's wheel (models/ge2e.py)
            from mrpn.models.ge2e import resemblyzer_state_dict, weights_path

            try:
                ext.load_state_dict(resemblyzer_state_dict(), strict=True)
            except FileNotFoundError as e:
                raise ConfigError(str(e)) from None
            done.append(f"{m}: GE2E speaker encoder from {weights_path()}")
            continue
        if Path(path).is_dir():
            path = fold_checkpoint(path, m, fold_index, val_actors)
        if not Path(path).is_file():
            raise ConfigError(f"pretrained weights not found: {path}")
        if Path(path).suffix == ".pt":  # a trained run's checkpoint (an AM's best.pt, say): its F_m
            ext.load_state_dict(extractor_from_checkpoint(path, m, ext, cfg))
            done.append(f"{m}: the {m} extractor of {path}")
            continue
        from mrpn.training.fer import check_pretrained_v

        check_pretrained_v(path, cfg.model, cfg.data)  # FER2013 weights name their extractor and face size
        # untrusted file: header, names and shapes are checked against this extractor before any read
        sd, _ = load_safetensors_checked(path, {k: tuple(v.shape) for k, v in ext.state_dict().items()},
                                         f"the {m} extractor of this model (width/channels/stem differ?)")
        try:
            ext.load_state_dict(sd)
        except RuntimeError as e:
            raise CheckpointError(f"pretrained extractor {path} does not fit the {m} extractor of this "
                                  f"model (width/channels/stem differ?): {str(e).splitlines()[0][:200]}") from None
        done.append(f"{m}: {path}")
    return done


# What F_m is and what it reads, per modality: a checkpoint's F_m fits a run only where these agree.
EXTRACTOR_KEYS = {
    registry.V: ("data.face_size", "data.gray", "model.video_extractor", "model.video_width",
                 "model.video_in_channels", "model.video_stem"),
    registry.A: ("data.sample_rate", "data.audio_frontend", "data.spec_size", "data.n_fft", "data.hop_length",
                 "data.segment_s", "model.audio_extractor", "model.audio_width", "model.audio_in_channels",
                 "model.audio_stem"),
}


def fold_checkpoint(run_dir: str, m: str, fold_index: int | None, val_actors: list[str] | None) -> str:
    """`train.pretrained_<m>=RUN_DIR`: that run's best.pt of the same fold. Its fold must have tested on
    this fold's actors: then it trained on none of them, and each fold starts from its own extractor."""
    if fold_index is None:
        raise ConfigError(f"train.pretrained_{m}={run_dir} is a run folder (one checkpoint per fold): name a "
                          f"file, such as {run_dir}/fold_01/best.pt")
    fd = Path(run_dir) / f"fold_{fold_index:02d}"
    if not (fd / "best.pt").is_file() or not (fd / "metrics.json").is_file():
        raise ConfigError(f"train.pretrained_{m}: {fd} holds no finished fold (best.pt and metrics.json)")
    theirs = json.loads((fd / "metrics.json").read_text()).get("val_actors")
    if val_actors is not None and sorted(map(str, theirs or [])) != sorted(map(str, val_actors)):
        raise ConfigError(f"train.pretrained_{m}: {fd} tested on actors {theirs}, this fold on {list(val_actors)}: "
                          f"its extractor may have trained on this fold's test actors")
    return str(fd / "best.pt")


def extractor_from_checkpoint(path: str, m: str, ext: torch.nn.Module, cfg: Config) -> dict[str, torch.Tensor]:
    """F_m's weights from a run's checkpoint (`train.pretrained_<m>=RUN/fold_XX/best.pt`), refused with the
    differing settings when that run's extractor or input is not this run's (read with weights_only)."""
    from mrpn.checkpoint import load_checkpoint
    from mrpn.config import config_from_dict

    ck = load_checkpoint(path)
    theirs = config_from_dict(ck["config"])
    diffs = []
    for key in EXTRACTOR_KEYS.get(m, ()):
        sec, name = key.split(".")
        a, b = getattr(getattr(theirs, sec), name), getattr(getattr(cfg, sec), name)
        if (list(a) if isinstance(a, (tuple, list)) else a) != (list(b) if isinstance(b, (tuple, list)) else b):
            diffs.append(f"{key}={b} but {path} has {a}")
    if diffs:
        raise ConfigError(f"train.pretrained_{m}: the {m} extractor of {path} does not fit this run: " + "; ".join(diffs))
    prefix = f"branches.{m}.extractor."
    sd = {k[len(prefix):]: v for k, v in ck["model"].items() if k.startswith(prefix)}
    want = {k: tuple(v.shape) for k, v in ext.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in sd.items()}
    if got != want:
        raise CheckpointError(f"train.pretrained_{m}: {path} has no {m} extractor of this shape "
                              f"({len(got)} tensors under {prefix!r}, {len(want)} wanted)")
    return sd


# ---------------------------------------------------------------------------------------------
# Inner split, schedule, epoch selection
# ---------------------------------------------------------------------------------------------

def split_inner(cfg: Config, protocol, fold_index: int, clips, tr_idx: list[int]):
    """(train, inner-validation, inner actors): with train.inner_val, a pair of training actors
    (`folds.inner_val_actors`) leaves the training set and chooses the epoch instead of the test fold."""
    if not cfg.train.inner_val:
        return tr_idx, [], []
    from mrpn.data.folds import inner_val_actors

    try:
        inner = inner_val_actors(protocol, fold_index, [clips[i].actor for i in tr_idx], cfg.train.inner_actors)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    keep = set(inner)
    return ([i for i in tr_idx if clips[i].actor not in keep], [i for i in tr_idx if clips[i].actor in keep],
            inner)


def optimizer_groups(core: torch.nn.Module, cfg: Config) -> list[dict[str, Any]]:
    """The trainable parameters as AdamW groups: one group, or with `train.extractor_lr_scale` != 1 the
    extractors F_m in a second group at lr x scale. Why: a pretrained F_m (GE2E, the FER2013 FaceCNN)
    fine-tuned at the rate the fresh SAC and Scoring need forgets what it was pretrained on; the paper
    (5.2) has one rate for all, so 1 stays the default and keeps the optimiser state of older runs."""
    trainable = [p for p in core.parameters() if p.requires_grad]
    scale = cfg.train.extractor_lr_scale
    if scale == 1.0:
        return [{"params": trainable}]
    ext_ids = {id(p) for b in core.branches.values() for p in b.extractor.parameters() if p.requires_grad}
    rest = [p for p in trainable if id(p) not in ext_ids]
    ext = [p for p in trainable if id(p) in ext_ids]
    return [g for g in ({"params": rest, "lr": cfg.train.lr}, {"params": ext, "lr": cfg.train.lr * scale})
            if g["params"]]


def make_scheduler(cfg: Config, opt: torch.optim.Optimizer, steps_per_epoch: int):
    """(per-epoch scheduler, per-step scheduler); one of them is None.

    "plateau": the paper's 5.2 (lr x lr_factor after lr_patience epochs without a lower selection
    loss), stepped per epoch. "onecycle" (Smith 2018) and "cosine" (linear warm-up, then cosine to 0)
    are stepped per batch over exactly train.epochs epochs: with them the last epoch is a natural
    choice that needs no selection at all.
    """
    t = cfg.train
    if t.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=t.lr_factor,
                                                          patience=t.lr_patience), None
    total = max(1, t.epochs * max(1, steps_per_epoch))
    warm = t.warmup_epochs * max(1, steps_per_epoch)
    if t.schedule == "onecycle":
        pct = min(0.9, max(0.01, warm / total)) if warm else 0.3
        peaks = [g["lr"] for g in opt.param_groups]  # per group: train.extractor_lr_scale
        return None, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peaks, total_steps=total, pct_start=pct,
                                                         div_factor=25.0, final_div_factor=1e3)
    import math

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        frac = min(1.0, (step - warm) / max(1.0, total - warm))
        return 0.5 * (1.0 + math.cos(math.pi * frac))

    return None, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def selection_summary(history: list[dict], inner: list[str], best_epoch: int) -> dict[str, Any]:
    """How the reported epoch was chosen, and the test-fold accuracy under each way of choosing it.

    "test-fold" selection (the paper's, optimistic: the test actors pick their own epoch) is the
    best val_accuracy over epochs; "inner" is the test accuracy at the epoch the inner actors chose;
    "last" needs no choice at all (fixed-length schedules)."""
    accs = [r.get("val_accuracy") for r in history if r.get("val_accuracy") is not None]
    out: dict[str, Any] = {"selection": "inner" if inner else "test-fold", "inner_val_actors": list(inner)}
    if accs:
        out["accuracy_test_selected"] = max(accs)
        out["accuracy_last_epoch"] = accs[-1]
        at = [r["val_accuracy"] for r in history if r.get("epoch") == best_epoch]
        if inner and at:
            out["accuracy_inner_selected"] = at[0]
    return out


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def protocol_val_actors(cfg: Config, fold_index: int) -> list[str]:
    clips = make_source(cfg, set()).clips()
    protocol = resolve_protocol(cfg, [c.actor for c in clips], {c.actor: c.gender for c in clips})
    return list(protocol.folds[fold_index - 1].val_actors)
