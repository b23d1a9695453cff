"""Collect the accuracies of a fuzziness experiment: per (seed, level, fold, model), tested on the
clean held-out clips and on the same clips at the training level (fuzzy), plus paired differences.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .experiment import MODELS, level_tag

TESTS = ("clean", "fuzzy")


def cell_accuracy(runs: Path, root: Path, seed: int, level: float, name: str, fold: int) -> dict[str, float] | None:
    """{"clean": acc, "fuzzy": acc} of one trained model, or None when it is not finished.

    "fuzzy" is the fold's own validation result (held-out clips at the training level); "clean"
    scores the same checkpoint on the clean cache (for level 0 both are the same number)."""
    from .experiment import evaluate_on

    fold_dir = runs / name / f"fold_{fold:02d}"
    mpath = fold_dir / "metrics.json"
    if not mpath.is_file():
        return None
    own = json.loads(mpath.read_text())["accuracy"]
    if level == 0:
        return {"clean": own, "fuzzy": own}
    clean = evaluate_on(fold_dir, root / f"seed{seed}" / "cache_p00", fold)["accuracy"]
    return {"clean": clean, "fuzzy": own}


def runs_dir(root: Path, seed: int, level: float) -> Path:
    return root / f"seed{seed}" / f"runs_{level_tag(level)}"


def collect(root: Path, seeds: list[int], levels: list[float], folds: list[int]) -> list[dict[str, Any]]:
    """One row per finished (seed, level, fold, model)."""
    rows = []
    for s in seeds:
        for lv in levels:
            for k in folds:
                for name, _, _ in MODELS:
                    acc = cell_accuracy(runs_dir(root, s, lv), root, s, lv, name, k)
                    if acc is not None:
                        rows.append({"seed": s, "level": lv, "fold": k, "model": name, **acc})
    return rows


def mean_ci(x: np.ndarray, z: float = 1.96) -> tuple[float, float, float]:
    """Mean, standard deviation and half-width of a 95 % confidence interval of the mean (t quantile
    for small n)."""
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    m = float(np.mean(x))
    if n == 1:
        return m, 0.0, math.nan
    sd = float(np.std(x, ddof=1))
    return m, sd, _t95(n - 1) * sd / math.sqrt(n)


def _t95(df: int) -> float:
    """Two-sided 95 % Student t quantile (table for small df, normal beyond)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
             10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000}
    for k in sorted(table):
        if df <= k:
            return table[k]
    return 1.96


def _pairs() -> list[tuple[str, str]]:
    """MRPN against every other fusion run (N2-N1, N2-N0 end-to-end, N2-N0 late)."""
    from .experiment import FUSION, MRPN

    return [(MRPN, b) for b in reversed(FUSION) if b != MRPN]


def summarise(rows: list[dict[str, Any]], levels: list[float]) -> dict[str, Any]:
    """Per level, model and test set: mean, sd, CI and n; paired differences N2-N1 and N2-N0 (e2e
    and late) over the (seed, fold) units where both finished."""
    out: dict[str, Any] = {"levels": levels, "models": [m for m, _, _ in MODELS], "accuracy": {}, "paired": {}}
    for lv in levels:
        tag = level_tag(lv)
        out["accuracy"][tag] = {}
        for name, _, _ in MODELS:
            out["accuracy"][tag][name] = {}
            for t in TESTS:
                x = np.array([r[t] for r in rows if r["level"] == lv and r["model"] == name], float)
                m, sd, ci = mean_ci(x)
                out["accuracy"][tag][name][t] = {"mean": m, "sd": sd, "ci95": ci, "n": len(x)}
        out["paired"][tag] = {}
        for a, b in _pairs():
            for t in TESTS:
                ua = {(r["seed"], r["fold"]): r[t] for r in rows if r["level"] == lv and r["model"] == a}
                ub = {(r["seed"], r["fold"]): r[t] for r in rows if r["level"] == lv and r["model"] == b}
                d = np.array([ua[u] - ub[u] for u in sorted(set(ua) & set(ub))], float)
                m, sd, ci = mean_ci(d)
                out["paired"][tag][f"{a}-{b}:{t}"] = {"mean": m, "sd": sd, "ci95": ci, "n": len(d)}
    return out
