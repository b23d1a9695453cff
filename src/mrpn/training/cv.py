"""`mrpn cv`: cross-validation over the actor-disjoint folds, resumable fold by fold.

Finished folds (metrics.json present) are skipped; an interrupted fold resumes from its last.pt.
At the end `RUN/summary.json` holds mean and std of accuracy (WAR), UAR and macro-F1 over folds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mrpn.argtypes import fold_spec
from mrpn.config import ConfigError
from mrpn.io import atomic_write_json
from mrpn.training.checkpoint import CheckpointError
from mrpn.training.run import add_config_arguments, config_from_args, new_run_guard, run_fold, save_run_config


def parse_folds(spec: str | None, n: int) -> list[int]:
    """'1,3,5-7' -> [1, 3, 5, 6, 7]; None or 'all' -> every fold."""
    if not spec or spec == "all":
        return list(range(1, n + 1))
    import argparse

    from mrpn.argtypes import fold_spec

    try:
        fold_spec(spec)
    except argparse.ArgumentTypeError as e:
        raise ConfigError(f"--folds {e}") from None
    out: list[int] = []
    for part in spec.split(","):
        a, _, b = part.strip().partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    bad = [k for k in out if not 1 <= k <= n]
    if bad:
        raise ConfigError(f"folds {bad} out of range 1..{n}")
    return sorted(dict.fromkeys(out))


def summarise(run_dir: Path) -> dict:
    rows = []
    for f in sorted(run_dir.glob("fold_*/metrics.json")):
        try:
            rows.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError):
            print(f"warning: unreadable {f}, left out of the summary", file=sys.stderr)
    summary: dict = {"folds": [r["fold"] for r in rows], "n_folds": len(rows)}
    for k in ("accuracy", "uar", "macro_f1"):
        vals = np.array([r[k] for r in rows], dtype=float)
        summary[k] = {"mean": float(vals.mean()) if len(vals) else None,
                      "std": float(vals.std()) if len(vals) else None,
                      "per_fold": dict(zip(summary["folds"], vals.tolist()))}
    # the same fold accuracy under each way of choosing the epoch (training.setup.selection_summary):
    # "test_selected" is the paper's (optimistic), "inner_selected" never looked at the test actors
    for k in ("accuracy_test_selected", "accuracy_inner_selected", "accuracy_last_epoch"):
        have = [(r["fold"], r[k]) for r in rows if r.get(k) is not None]
        if have and len(have) == len(rows):
            vals = np.array([v for _, v in have], dtype=float)
            summary[k] = {"mean": float(vals.mean()), "std": float(vals.std()), "per_fold": dict(have)}
    if rows:
        summary["run_label"] = rows[0].get("run_label")
        summary["selection"] = sorted({r.get("selection", "test-fold") for r in rows})
    atomic_write_json(run_dir / "summary.json", summary)
    return summary


def run_cv(cfg, folds_spec: str | None = None, progress: bool = True, log=print) -> dict:
    from mrpn.training.distributed import is_main_process
    from mrpn.training.run import make_source, resolve_protocol

    if not is_main_process():
        log, progress = (lambda *a, **k: None), False

    run_dir = Path(cfg.out) / cfg.name
    clips = make_source(cfg, set()).clips()
    protocol = resolve_protocol(cfg, [c.actor for c in clips], {c.actor: c.gender for c in clips})
    save_run_config(cfg, run_dir, n_folds=len(protocol.folds), protocol=protocol.name)
    folds = parse_folds(folds_spec, len(protocol.folds))
    log(f"{cfg.name}: {len(folds)} of {len(protocol.folds)} folds of {protocol.name} -> {run_dir}")
    for k in folds:
        fold_dir = run_dir / f"fold_{k:02d}"
        if (fold_dir / "metrics.json").is_file():
            m = json.loads((fold_dir / "metrics.json").read_text())
            want = sorted(protocol.folds[k - 1].val_actors)
            if sorted(m.get("val_actors", want)) != want:
                raise ConfigError(f"{fold_dir} holds a result for validation actors {m.get('val_actors')}, "
                                  f"not {want}: choose another --name")
            log(f"  fold {k:2d} {m['fold']}: done before (accuracy {m['accuracy']:.4f})")
            continue
        t0 = time.perf_counter()
        m = run_fold(cfg, k, fold_dir, progress=progress, log=log)
        log(f"  fold {k:2d} {m['fold']}: accuracy {m['accuracy']:.4f}  UAR {m['uar']:.4f}  "
            f"macro-F1 {m['macro_f1']:.4f}  ({time.perf_counter() - t0:.0f} s)")
    if not is_main_process():
        return {}
    s = summarise(run_dir)
    if s["n_folds"]:
        log(f"{cfg.name}: accuracy {100 * s['accuracy']['mean']:.1f} ± {100 * s['accuracy']['std']:.1f} %  "
            f"UAR {100 * s['uar']['mean']:.1f} %  over {s['n_folds']} folds (epoch chosen on "
            f"{' and '.join(s.get('selection', ['test-fold']))})")
        for k, what in (("accuracy_test_selected", "epoch chosen on the test fold (paper)"),
                        ("accuracy_inner_selected", "epoch chosen on inner actors"),
                        ("accuracy_last_epoch", "last epoch")):
            if k in s:
                log(f"  {what}: {100 * s[k]['mean']:.1f} ± {100 * s[k]['std']:.1f} %")
    return s


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--folds", default="all", type=fold_spec, help="which folds, e.g. 1,2,3 or 1-4 (default all)")


def main(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        with new_run_guard(Path(cfg.out) / cfg.name):
            run_cv(cfg, args.folds, progress=not args.quiet)
    except (ConfigError, CheckpointError) as e:
        print(f"mrpn cv: error: {e}", file=sys.stderr)
        return 2
    return 0
