"""`mrpn train`: train and evaluate one model on one fold (resumable; `--test-only` re-evaluates).

Fold folder layout: `RUN/fold_XX/` with `last.pt` (full state, for resume), `best.pt` (weights of
the best epoch + config), `history.json`, `metrics.json` (accuracy = WAR, UAR, macro-F1, confusion)
and `features.npz` (validation features for t-SNE). `RUN/config.json` holds the resolved config.

The fold itself is trained by `training/fold.py` from the pieces in `training/setup.py`; this module
is the command line and the run folder's config (names of both stay importable from here).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from mrpn import registry
from mrpn.argtypes import nonneg_int, positive_float, positive_int
from mrpn.config import LEGACY_DEFAULTS, Config, ConfigError, load_config
from mrpn.io import atomic_write_json
from mrpn.training.checkpoint import CheckpointError
from mrpn.training.fold import run_fold  # noqa: F401  (re-exported: cv, tests)
from mrpn.training.setup import (build, fold_indices, load_pretrained_extractors, make_loader,  # noqa: F401
                                 make_scheduler, make_source, protocol_val_actors, resolve_protocol, run_label,
                                 seed_everything, selection_summary, split_inner)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="cpu", choices=["paper", "cpu"],
                   help="paper: the paper's settings (for a GPU); cpu: smaller, trains a fold in minutes (default)")
    p.add_argument("--config", help="YAML config file (its keys override the preset)")
    p.add_argument("--model", choices=list(registry.KINDS), help=", ".join(registry.KINDS) + " (n2 = MRPN)")
    p.add_argument("--strategy", choices=["end-to-end", "late"])
    p.add_argument("--aggregator", choices=list(registry.AGGREGATORS))
    p.add_argument("--dataset", help="ravdess, cremad, custom, synth or paired (RAVDESS audio + FER2013 faces)")
    p.add_argument("--cache", help="folder written by `mrpn prepare`")
    p.add_argument("--fer", help="FER2013 root (paired benchmark)")
    p.add_argument("--protocol", help="fold protocol name (see `mrpn folds`) or a fold JSON file")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=nonneg_int, help="data loading worker processes")
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
    if registry.kind(cfg.model.kind).fusion:
        parts.append("late" if cfg.train.strategy == "late" else "e2e")
    parts.append("T" if cfg.data.time_aug else "NT")
    if cfg.data.protocol:
        parts.append(Path(cfg.data.protocol).stem)
    parts.append(cfg.preset)
    return "_".join(parts)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--fold", type=positive_int, default=1, help="1-based fold index of the protocol (default 1)")
    p.add_argument("--test-only", action="store_true", help="evaluate the fold's best checkpoint, no training")


def main(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        run_dir = Path(cfg.out) / cfg.name
        with new_run_guard(run_dir):
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


@contextlib.contextmanager
def new_run_guard(run_dir: Path):
    """A start that fails (ConfigError, CheckpointError) before any fold wrote a result leaves no
    run folder behind, so the same --name can be used again; an existing folder is never touched."""
    existed = run_dir.exists()
    created = [d for d in [run_dir, *run_dir.parents] if not d.exists()]     # e.g. runs/ and runs/NAME
    try:
        yield
    except (ConfigError, CheckpointError):
        if not existed and run_dir.is_dir():
            _remove_empty_run(run_dir)
            for d in created[1:]:
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
        raise


def _remove_empty_run(run_dir: Path) -> None:
    """Remove config.json and empty fold folders, then the run folder if that left it empty."""
    for d in sorted(run_dir.glob("fold_*")):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    if sorted(p.name for p in run_dir.iterdir()) == ["config.json"]:
        (run_dir / "config.json").unlink()
    if not any(run_dir.iterdir()):
        run_dir.rmdir()


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
                                        "spec_size", "paired_faces", "paired_fuzzy", "paired_video", "audio_frontend", "n_fft",
                                        "hop_length", "sample_rate", "wave_noise", "wave_snr_min",
                                        "wave_snr_max", "wave_reverb", "wave_lowpass")),
                              ("model", tuple(d["model"]) if "model" in d else ())):
            for k in keys:
                # a key older than the saved run counts with the value that reproduces the old behaviour
                a = old.get(section, {}).get(k, LEGACY_DEFAULTS.get(f"{section}.{k}"))
                b = d.get(section, {}).get(k)
                a, b = (tuple(a) if isinstance(a, list) else a), (tuple(b) if isinstance(b, list) else b)
                if k != "n_classes" and a != b:
                    diffs.append(f"{section}.{k}")
        if diffs:
            raise ConfigError(f"{run_dir} holds a run with other settings ({', '.join(diffs[:6])}); "
                              f"choose another --name (or delete the folder)")
        d.update({k: old[k] for k in ("n_folds", "protocol") if k in old and k not in d})
    atomic_write_json(path, d)
