"""`mrpn train`: train and evaluate one model on one fold (resumable; `--test-only` re-evaluates).

Fold folder layout: `RUN/fold_XX/` with `last.pt` (full state, for resume), `best.pt` (weights of
the best epoch + config), `history.json`, `metrics.json` (accuracy = WAR, UAR, macro-F1, confusion)
and `features.npz` (validation features for t-SNE). `RUN/config.json` holds the resolved config.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from mrpn.config import Config, ConfigError, config_from_dict, load_config
from mrpn.io import atomic_write_json
from mrpn.training.checkpoint import (CheckpointError, check_compatible, load_checkpoint, load_model_weights,
                                      save_checkpoint)
from mrpn.training.loop import autocast, evaluate, pick_device, train_one_epoch

MODALITIES = {"vm": ("v",), "am": ("a",), "n0": ("v", "a"), "n1": ("v", "a"), "n2": ("v", "a")}
RUN_LABELS = {"vm": "VM", "am": "AM", "n0": "N0", "n1": "N1", "n2": "N2 (MRPN)"}


def run_label(cfg: Config) -> str:
    kind = cfg.model.kind
    label = RUN_LABELS[kind]
    if kind in ("n0", "n1", "n2"):
        label += f" ({cfg.train.strategy})"
    setting = []
    setting.append("T" if cfg.data.time_aug else "NT")
    if "a" in MODALITIES[kind]:
        hop = cfg.data.segment_hop_s
        setting.append(("AO" if abs(hop - 0.2) < 1e-9 else f"AO{hop:g}s") if hop < cfg.data.segment_s else "WO")
    if "v" in MODALITIES[kind] and cfg.data.spatial_aug != "none":
        setting.append("VA" if cfg.data.spatial_aug == "clip" else "VA-frame")
    return f"{label} [{'+'.join(setting)}]"


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
            return PairedSource(cfg.data.cache, cfg.data.fer, val_actors, cfg.data.paired_faces, cfg.train.seed)
        except (ValueError, FileNotFoundError) as e:   # DatasetError is a ValueError
            raise ConfigError(f"paired benchmark: {e}") from None
    from mrpn.data.cache import CacheError

    try:
        return CacheSource(cfg.data.cache, include_flagged=cfg.data.include_flagged)
    except (CacheError, ValueError, FileNotFoundError) as e:
        raise ConfigError(f"cache {cfg.data.cache}: {e}") from None


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

    mcfg = replace(cfg.model, n_classes=n_classes)
    cfg.model = mcfg
    return build_model(mcfg)


def load_pretrained_extractors(model: torch.nn.Module, cfg: Config) -> list[str]:
    from safetensors.torch import load_file

    done = []
    for m, path in (("v", cfg.train.pretrained_v), ("a", cfg.train.pretrained_a)):
        if not path or m not in MODALITIES[cfg.model.kind]:
            continue
        if not Path(path).is_file():
            raise ConfigError(f"pretrained weights not found: {path}")
        if m == "v":  # FER2013 weights say their extractor, width and face size: check them first
            from mrpn.training.fer import check_pretrained_v

            check_pretrained_v(path, cfg.model, cfg.data)
        sd = load_file(path)
        ext = model.branches[m].extractor
        try:
            ext.load_state_dict(sd)
        except RuntimeError as e:
            raise CheckpointError(f"pretrained extractor {path} does not fit the {m} extractor of this "
                                  f"model (width/channels/stem differ?): {str(e).splitlines()[0][:200]}") from None
        done.append(f"{m}: {path}")
    return done


# ---------------------------------------------------------------------------------------------
# One fold
# ---------------------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_fold(cfg: Config, fold_index: int, fold_dir: Path, progress: bool = True, test_only: bool = False,
             log=print) -> dict[str, Any]:
    """Train (or resume) cfg's model on fold `fold_index` (1-based) and write metrics.json."""
    from mrpn.evaluation.metrics import compute_metrics

    fold_dir = Path(fold_dir)
    fold_dir.mkdir(parents=True, exist_ok=True)
    probe = make_source(cfg, set())
    clips = probe.clips()
    if not clips:
        raise ConfigError(f"no usable clips in {cfg.data.cache}")
    genders = {c.actor: c.gender for c in clips}
    protocol = resolve_protocol(cfg, [c.actor for c in clips], genders)
    if not 1 <= fold_index <= len(protocol.folds):
        raise ConfigError(f"fold {fold_index} out of range: protocol {protocol.name} has {len(protocol.folds)} folds")
    fold = protocol.folds[fold_index - 1]
    source = make_source(cfg, set(fold.val_actors)) if cfg.data.dataset == "paired" else probe
    clips = source.clips()
    classes = list(source.classes)
    tr_idx, va_idx = fold_indices(clips, fold)
    if not tr_idx or not va_idx:
        raise ConfigError(f"fold {fold.name}: {len(tr_idx)} training and {len(va_idx)} validation clips; "
                          f"the cache holds actors {sorted(set(c.actor for c in clips))}")
    modalities = MODALITIES[cfg.model.kind]
    if "v" in modalities:  # the model remembers its crops' margin; predict cuts faces the same way
        from mrpn.data.face_geometry import training_face_margin

        cfg.data.face_margin, note = training_face_margin(cfg, source)
        if note:
            log(f"  note: {note}")
    from mrpn.training import distributed as D

    info, ddp_device = D.setup(cfg.train.device)
    device = ddp_device or pick_device(cfg.train.device)
    if not info.main:
        log = lambda *a, **k: None  # noqa: E731  (rank 0 speaks for all)
        progress = False
    seed_everything(cfg.train.seed)
    model = build(cfg, len(classes)).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
        for branch in model.branches.values():
            branch.channels_last = True
    cfg_dict = cfg.to_dict()
    cfg_dict["run_label"] = run_label(cfg)

    if cfg.train.strategy == "late" and not test_only:
        _prepare_late(cfg, model, fold_index, fold_dir, progress, log)
    else:
        for line in load_pretrained_extractors(model, cfg):
            log(f"  pretrained extractor {line}")
    core = model
    if info.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    from mrpn.data.loader import EmotionDataset

    train_ds = EmotionDataset(source, tr_idx, cfg.data, modalities, train=True, seed=cfg.train.seed)
    val_ds = EmotionDataset(source, D.shard(va_idx, info), cfg.data, modalities, train=False, seed=cfg.train.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.train.lr_factor,
                                                       patience=cfg.train.lr_patience)
    scaler = None
    if device.type == "cuda" and cfg.train.precision != "fp32" and not torch.cuda.is_bf16_supported():
        scaler = torch.amp.GradScaler("cuda")

    state = {"epoch": 0, "best": None, "best_epoch": 0, "since_best_loss": 0, "best_loss": float("inf"),
             "history": [], "wall_time_s": 0.0, "val_actors": list(fold.val_actors), "protocol": protocol.name}
    last_path, best_path = fold_dir / "last.pt", fold_dir / "best.pt"
    if last_path.is_file() and not test_only:
        ck = load_checkpoint(last_path, map_location=device)
        check_compatible(ck, cfg_dict, last_path)
        saved_val = ck["state"].get("val_actors")
        if saved_val is not None and sorted(saved_val) != sorted(fold.val_actors):
            raise CheckpointError(f"{last_path} was trained on another split (validation actors {saved_val}, "
                                  f"this fold validates on {list(fold.val_actors)}); choose another --name")
        load_model_weights(core, ck["model"], last_path)
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        state.update(ck["state"])
        log(f"  resuming {fold_dir} after epoch {state['epoch']}")
    elif test_only and last_path.is_file():  # keep the training record in the re-written metrics
        state.update(load_checkpoint(last_path)["state"])
    if info.main:
        atomic_write_json(fold_dir / "config.json", cfg_dict)

    t_start = time.perf_counter() - state["wall_time_s"]
    task = cfg.model.task
    def stopped_early() -> bool:
        return bool(cfg.train.early_stop) and state["since_best_loss"] >= cfg.train.early_stop

    while not test_only and state["epoch"] < cfg.train.epochs and not stopped_early():
        epoch = state["epoch"] + 1
        torch.manual_seed(cfg.train.seed * 7919 + epoch)  # dropout etc.: same per epoch after a resume
        train_ds.set_epoch(epoch)
        tr = train_one_epoch(model, make_loader(train_ds, cfg, True, epoch, info), opt, device, cfg.train.precision,
                             cfg.train.channels_last, cfg.train.grad_clip, task,
                             desc=f"{fold.name} epoch {epoch}/{cfg.train.epochs}", progress=progress, scaler=scaler)
        D.sync_buffers(core, info)  # BatchNorm running stats moved apart on each rank's own batches
        ev = D.gather_eval(evaluate(core, make_loader(val_ds, cfg, False), device, cfg.train.precision,
                                    cfg.train.channels_last, task, progress=progress), info)
        sched.step(ev["loss"])
        score = ev.get("accuracy", -ev["loss"]) if cfg.train.select == "accuracy" else -ev["loss"]
        improved = state["best"] is None or score > state["best"]
        if improved:
            state["best"], state["best_epoch"] = score, epoch
            if info.main:
                save_checkpoint(best_path, {"model": core.state_dict(), "config": cfg_dict, "epoch": epoch,
                                            "classes": classes})
        if ev["loss"] < state["best_loss"] - 1e-4:
            state["best_loss"], state["since_best_loss"] = ev["loss"], 0
        else:
            state["since_best_loss"] += 1
        state["epoch"] = epoch
        state["wall_time_s"] = time.perf_counter() - t_start
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": tr["loss"],
               "train_accuracy": tr["accuracy"], "val_loss": ev["loss"], "val_accuracy": ev.get("accuracy"),
               "clips_per_s": tr["clips_per_s"], "seconds": tr["seconds"]}
        state["history"].append(row)
        if info.main:
            save_checkpoint(last_path, {"model": core.state_dict(), "optimizer": opt.state_dict(),
                                        "scheduler": sched.state_dict(), "state": state, "config": cfg_dict})
            atomic_write_json(fold_dir / "history.json", state["history"])
        log(f"  {fold.name} epoch {epoch:3d}  loss {tr['loss']:.3f}  train acc {tr['accuracy']:.3f}  "
            f"val loss {ev['loss']:.3f}  val acc {ev.get('accuracy', float('nan')):.3f}  "
            f"lr {row['lr']:.1e}  {tr['clips_per_s']:.1f} clips/s{'  *' if improved else ''}")
        if stopped_early():
            log(f"  early stop: val loss has not dropped for {cfg.train.early_stop} epochs")

    # Final evaluation with the best weights.
    D.barrier(info)  # rank 0 has written best.pt
    if not best_path.is_file():
        raise CheckpointError(f"no best checkpoint in {fold_dir}: nothing was trained yet")
    ck = load_checkpoint(best_path, map_location=device)
    check_compatible(ck, cfg_dict, best_path)
    load_model_weights(core, ck["model"], best_path)
    ev = D.gather_eval(evaluate(core, make_loader(val_ds, cfg, False), device, cfg.train.precision,
                                cfg.train.channels_last, task, collect_features=cfg.train.save_features,
                                side_heads=cfg.model.kind in ("n1", "n2"), progress=progress), info)
    metrics = compute_metrics(ev["y_true"], ev["y_pred"], classes)
    metrics.update({
        "run_label": cfg_dict["run_label"], "model": cfg.model.kind, "strategy": cfg.train.strategy,
        "dataset": cfg.data.dataset, "protocol": protocol.name, "fold": fold.name, "fold_index": fold_index,
        "val_actors": list(fold.val_actors), "class_names": classes, "n_train": len(tr_idx), "n_val": len(va_idx),
        "world_size": info.world,
        "epochs": state["epoch"], "best_epoch": ck.get("epoch", state["best_epoch"]),
        "wall_time_s": round(state["wall_time_s"], 2), "val_loss": ev["loss"],
    })
    if "side_pred" in ev:
        metrics["modalities"] = {m: {k: v for k, v in compute_metrics(ev["y_true"], p, classes).items()
                                     if k in ("accuracy", "uar", "macro_f1")}
                                 for m, p in ev["side_pred"].items()}
    if not info.main:
        return metrics
    if cfg.train.save_features and "features" in ev:
        from mrpn.io import atomic_write_with

        feats = ev["features"]
        def write(p: Path) -> None:
            with open(p, "wb") as f:
                np.savez(f, labels=ev["y_true"], **feats)

        atomic_write_with(fold_dir / "features.npz", write)
    atomic_write_json(fold_dir / "metrics.json", metrics)
    return metrics


def protocol_val_actors(cfg: Config, fold_index: int) -> list[str]:
    clips = make_source(cfg, set()).clips()
    protocol = resolve_protocol(cfg, [c.actor for c in clips], {c.actor: c.gender for c in clips})
    return list(protocol.folds[fold_index - 1].val_actors)


def _prepare_late(cfg: Config, model, fold_index: int, fold_dir: Path, progress: bool, log) -> None:
    """Late fusion (paper 1.3, 3.3): uni-modal VM/AM trained first, then frozen under the fusion."""
    from mrpn.models.fusion import freeze_branches, load_branch_weights

    for m, kind in (("v", "vm"), ("a", "am")):
        src = cfg.train.unimodal_runs.get(m)
        if src:
            uni_dir = Path(src) / f"fold_{fold_index:02d}"
        else:
            uni_dir = fold_dir / f"unimodal_{m}"
            if not (uni_dir / "metrics.json").is_file():
                log(f"  late fusion: training the uni-modal {kind.upper()} first ({uni_dir})")
                ucfg = config_from_dict(cfg.to_dict())
                ucfg.model.kind, ucfg.train.strategy = kind, "end-to-end"
                run_fold(ucfg, fold_index, uni_dir, progress=progress, log=log)
        best = uni_dir / "best.pt"
        ck = load_checkpoint(best)
        mpath = uni_dir / "metrics.json"
        fold_val = protocol_val_actors(cfg, fold_index)
        if mpath.is_file():
            uval = json.loads(mpath.read_text()).get("val_actors")
            if uval is not None and sorted(uval) != sorted(fold_val):
                raise CheckpointError(f"late fusion: {uni_dir} validated on actors {uval}, but this fold "
                                      f"validates on {fold_val}: its frozen branch would have seen them")
        uni = build(config_from_dict(ck["config"]), cfg.model.n_classes)
        load_model_weights(uni, ck["model"], best)
        try:
            load_branch_weights(model, uni, m)
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(f"late fusion: the {kind.upper()} branch in {best} does not fit this model "
                                  f"(aggregator, width or stem differ?): {str(e).splitlines()[0][:200]}") from None
    freeze_branches(model, ("v", "a"))


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="cpu", choices=["paper", "cpu"],
                   help="paper: the paper's settings (for a GPU); cpu: smaller, trains a fold in minutes (default)")
    p.add_argument("--config", help="YAML config file (its keys override the preset)")
    p.add_argument("--model", choices=list(MODALITIES), help="vm, am, n0, n1 or n2 (= MRPN)")
    p.add_argument("--strategy", choices=["end-to-end", "late"])
    p.add_argument("--aggregator", choices=["lstm", "bilstm", "transformer"])
    p.add_argument("--dataset", help="ravdess, cremad, custom, synth or paired (RAVDESS audio + FER2013 faces)")
    p.add_argument("--cache", help="folder written by `mrpn prepare`")
    p.add_argument("--fer", help="FER2013 root (paired benchmark)")
    p.add_argument("--protocol", help="fold protocol name (see `mrpn folds`) or a fold JSON file")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, help="data loading worker processes")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--no-time-aug", action="store_true", help="no random time slicing (Table 1 'NT')")
    p.add_argument("--name", help="run name (default: derived from the settings)")
    p.add_argument("--out", help="parent folder of runs (default: runs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config key, e.g. --set data.segment_hop_s=1.0 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


FLAG_KEYS = {"model": "model.kind", "strategy": "train.strategy", "aggregator": "model.aggregator",
             "dataset": "data.dataset", "cache": "data.cache", "fer": "data.fer", "protocol": "data.protocol",
             "epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr", "seed": "train.seed",
             "workers": "data.workers", "device": "train.device", "name": "name", "out": "out"}


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = [f"{key}={getattr(args, flag)}" for flag, key in FLAG_KEYS.items()
                 if getattr(args, flag, None) is not None]
    if getattr(args, "no_time_aug", False):
        overrides.append("data.time_aug=false")
    cfg = load_config(args.preset, args.config, overrides + list(args.set))
    if not cfg.name:
        cfg.name = default_run_name(cfg)
    return cfg


def default_run_name(cfg: Config) -> str:
    parts = [cfg.data.dataset, cfg.model.kind]
    if cfg.model.kind in ("n0", "n1", "n2"):
        parts.append("late" if cfg.train.strategy == "late" else "e2e")
    parts.append("T" if cfg.data.time_aug else "NT")
    if cfg.data.protocol:
        parts.append(Path(cfg.data.protocol).stem)
    parts.append(cfg.preset)
    return "_".join(parts)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--fold", type=int, default=1, help="1-based fold index of the protocol (default 1)")
    p.add_argument("--test-only", action="store_true", help="evaluate the fold's best checkpoint, no training")


def main(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        run_dir = Path(cfg.out) / cfg.name
        save_run_config(cfg, run_dir)
        m = run_fold(cfg, args.fold, run_dir / f"fold_{args.fold:02d}", progress=not args.quiet,
                     test_only=args.test_only)
    except (ConfigError, CheckpointError) as e:
        print(f"mrpn train: error: {e}", file=sys.stderr)
        return 2
    from mrpn.training.distributed import is_main_process

    if not is_main_process():
        return 0
    print(f"{m['run_label']}  fold {m['fold']}: accuracy {m['accuracy']:.4f}  UAR {m['uar']:.4f}  "
          f"macro-F1 {m['macro_f1']:.4f}  ({m['n_val']} clips)  -> {run_dir}")
    return 0


def save_run_config(cfg: Config, run_dir: Path, **extra: Any) -> None:
    from mrpn.training.distributed import is_main_process

    if not is_main_process():
        return
    d = cfg.to_dict()
    d["run_label"] = run_label(cfg)
    d.update(extra)
    path = run_dir / "config.json"
    if path.is_file():
        old = json.loads(path.read_text())
        # what decides a fold's result must match; epochs, workers, device etc. may change on a resume
        same = ("run_label", "preset")
        diffs = [k for k in same if old.get(k) != d.get(k)]
        for section, keys in (("data", ("dataset", "protocol", "time_aug", "segment_s", "segment_hop_s",
                                        "spatial_aug", "video_fps", "max_frames", "face_size", "gray",
                                        "spec_size", "paired_faces")),
                              ("model", tuple(d["model"]) if "model" in d else ())):
            for k in keys:
                a, b = old.get(section, {}).get(k), d.get(section, {}).get(k)
                a, b = (tuple(a) if isinstance(a, list) else a), (tuple(b) if isinstance(b, list) else b)
                if k != "n_classes" and a != b:
                    diffs.append(f"{section}.{k}")
        if diffs:
            raise ConfigError(f"{run_dir} holds a run with other settings ({', '.join(diffs[:6])}); "
                              f"choose another --name (or delete the folder)")
        d.update({k: old[k] for k in ("n_folds", "protocol") if k in old and k not in d})
    atomic_write_json(path, d)
