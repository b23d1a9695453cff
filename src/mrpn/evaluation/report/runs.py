"""Finished (or partly finished) runs as records: `load_runs` reads run folders, tolerating
missing, corrupt and partial files (each problem becomes a `ReportWarning` naming the file)."""
from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from mrpn import registry
from mrpn.evaluation.metrics import METRIC_NAMES, metrics_from_confusion

_FOLD_DIR = re.compile(r"^fold_(\d+)$")
DATASET_NAMES = {"ravdess": "RAVDESS", "cremad": "CREMA-D", "crema-d": "CREMA-D", "crema_d": "CREMA-D",
                 "synth": "synthetic", "fer2013": "FER2013"}
def modality_name(key: str) -> str:
    """Row label of a per-modality result: "image (v)", "audio (a)", "multi-modal (fused)"."""
    return "multi-modal (fused)" if key == "fused" else f"{registry.display_name(key)} ({key})"


class ReportWarning(UserWarning):
    """A run, fold or file that could not be (fully) used; the message names the file."""


@dataclass
class FoldResult:
    name: str                    # fold name as in the paper, e.g. "A1,2"
    index: int                   # 1-based fold index (column order)
    dir: Path
    metrics: dict[str, Any]      # metrics.json, with accuracy/uar/macro_f1 filled in from confusion when absent
    features_path: Path | None   # fold_XX/features.npz when present

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.metrics.get("class_names") or []]


@dataclass
class Run:
    path: Path
    config: dict[str, Any]
    folds: list[FoldResult]                    # finished folds, sorted by index
    n_expected: int | None = None              # folds the run should have, when known
    problems: list[str] = field(default_factory=list)

    def _get(self, key: str, default: Any = None) -> Any:
        v = self.config.get(key)
        if v in (None, "") and self.folds:
            v = self.folds[0].metrics.get(key)
        return default if v in (None, "") else v

    @property
    def label(self) -> str:
        lab = self._get("run_label")
        if lab:
            return str(lab)
        model, strategy = self._get("model"), self._get("strategy")
        if model:
            return f"{str(model).upper()} ({strategy})" if strategy else str(model).upper()
        return self.path.name

    @property
    def setting(self) -> str:
        return str(self._get("setting", ""))

    @property
    def row_label(self) -> str:
        """``run_label, setting`` (the setting is left out when empty or already in the label)."""
        lab, s = self.label, self.setting
        return f"{lab}, {s}" if s and s not in lab else lab

    @property
    def dataset(self) -> str:
        return str(self._get("dataset", ""))

    @property
    def protocol(self) -> str:
        return str(self._get("protocol", ""))

    @property
    def class_names(self) -> list[str]:
        names: list[str] = []
        for f in self.folds:
            for c in f.class_names:
                if c not in names:
                    names.append(c)
        return names

    def summed_confusion(self) -> tuple[np.ndarray | None, int]:
        """Confusion matrices of the folds summed (aligned by class name), and how many folds had one."""
        names = self.class_names
        if not names:
            return None, 0
        pos = {c: i for i, c in enumerate(names)}
        total = np.zeros((len(names), len(names)), dtype=np.int64)
        used = 0
        for f in self.folds:
            cm = f.metrics.get("confusion")
            if cm is None:
                continue
            cm = np.asarray(cm, dtype=np.int64)
            idx = [pos[c] for c in f.class_names]
            total[np.ix_(idx, idx)] += cm
            used += 1
        return (total if used else None), used


# ----------------------------------------------------------------------------------------- loading

def _warn(msg: str, sink: list[str] | None) -> None:
    warnings.warn(msg, ReportWarning, stacklevel=3)
    if sink is not None:
        sink.append(msg)


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _normalise_metrics(m: dict[str, Any], fold_dir_index: int | None) -> tuple[dict[str, Any], list[str]]:
    """Validate one metrics.json; fill accuracy/uar/macro_f1 from the confusion when missing.

    Raises ValueError when the fold is unusable (no accuracy and no confusion, values out of range).
    Returns the metrics and a list of non-fatal issues.
    """
    issues: list[str] = []
    m = dict(m)
    names = m.get("class_names")
    cm = m.get("confusion")
    derived = None
    if cm is not None:
        try:
            arr = np.asarray(cm, dtype=np.float64)
            if names is None:
                names = [str(i) for i in range(arr.shape[0])] if arr.ndim == 2 else None
                m["class_names"] = names
            derived = metrics_from_confusion(arr, names or [])
            if np.any(arr < 0):
                raise ValueError("negative counts")
        except (ValueError, TypeError) as e:
            issues.append(f"confusion ignored ({e})")
            m["confusion"] = None
            derived = None
    for key in METRIC_NAMES:
        v = m.get(key)
        if v is None and derived is not None:
            m[key] = derived[key]
            continue
        if v is None:
            if key == "accuracy":
                raise ValueError("no 'accuracy' and no usable 'confusion'")
            m[key] = math.nan
            continue
        if not _finite_number(v) or not (0.0 <= v <= 1.0):
            raise ValueError(f"{key!r} = {v!r} is not a fraction in [0, 1]")
    if m.get("fold_index") is None or not isinstance(m.get("fold_index"), int):
        m["fold_index"] = fold_dir_index if fold_dir_index is not None else 0
    if not m.get("fold"):
        m["fold"] = f"fold {m['fold_index']:02d}"
    m["fold"] = str(m["fold"])
    mods = m.get("modalities")
    if mods is not None and not isinstance(mods, dict):
        issues.append("'modalities' is not an object; ignored")
        m["modalities"] = None
    if m.get("confusion") is not None and derived is not None and m.get("n_val") is None:
        m["n_val"] = derived["n"]
    return m, issues


def load_run(path: str | os.PathLike, problems: list[str] | None = None) -> Run | None:
    """Load one run directory; ``None`` (with a :class:`ReportWarning`) when nothing usable is there.

    Folds are the ``fold_XX/`` sub-folders with a readable ``metrics.json``; a directory that has
    ``metrics.json`` itself and no fold folders is read as a single-fold run. A missing or corrupt
    ``metrics.json`` is skipped with a warning naming the file.
    """
    path = Path(path)
    if not path.is_dir():
        _warn(f"{path}: not a directory; skipped", problems)
        return None
    run_problems: list[str] = []

    def note(msg: str) -> None:
        run_problems.append(msg)
        _warn(msg, problems)

    config: dict[str, Any] = {}
    cfg_path = path / "config.json"
    if cfg_path.is_file():
        try:
            config = _read_json(cfg_path)
        except (OSError, ValueError) as e:
            note(f"{cfg_path}: unreadable ({e}); using the fields of metrics.json instead")
    fold_dirs = sorted((d for d in path.iterdir() if d.is_dir() and _FOLD_DIR.match(d.name)),
                       key=lambda d: int(_FOLD_DIR.match(d.name).group(1)))
    candidates: list[tuple[Path, int | None]] = [(d, int(_FOLD_DIR.match(d.name).group(1))) for d in fold_dirs]
    if not candidates and (path / "metrics.json").is_file():
        candidates = [(path, None)]
    if not candidates:
        _warn(f"{path}: no fold_XX/ folders and no metrics.json (not a run directory?); skipped", problems)
        return None

    folds: list[FoldResult] = []
    for d, idx in candidates:
        mpath = d / "metrics.json"
        if not mpath.is_file():
            note(f"{mpath}: not found (fold unfinished?); fold skipped")
            continue
        try:
            raw = _read_json(mpath)
            m, issues = _normalise_metrics(raw, idx)
        except (OSError, ValueError, TypeError) as e:
            note(f"{mpath}: corrupt ({e}); fold skipped")
            continue
        for issue in issues:
            note(f"{mpath}: {issue}")
        feats = d / "features.npz"
        folds.append(FoldResult(name=m["fold"], index=int(m["fold_index"]), dir=d, metrics=m,
                                features_path=feats if feats.is_file() else None))
    folds.sort(key=lambda f: (f.index, f.name))
    seen: set[str] = set()
    for f in list(folds):
        if f.name in seen:
            note(f"{f.dir / 'metrics.json'}: fold {f.name!r} appears twice in {path}; the later one is skipped")
            folds.remove(f)
        seen.add(f.name)
    if not folds:
        _warn(f"{path}: no finished fold (no readable fold_XX/metrics.json); skipped", problems)
        return None

    n_expected = _expected_folds(config, len(fold_dirs))
    return Run(path=path, config=config, folds=folds, n_expected=n_expected, problems=run_problems)


def _expected_folds(config: dict[str, Any], n_fold_dirs: int) -> int | None:
    for key in ("n_folds", "num_folds"):
        v = config.get(key)
        if isinstance(v, int) and v > 0:
            return v
    v = config.get("folds")
    if isinstance(v, (list, tuple)) and v:
        return len(v)
    return n_fold_dirs or None


def _expand(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Paths as given; a folder that is not a run but whose sub-folders are runs expands to them (sorted)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        is_run = p.is_dir() and ((p / "config.json").is_file() or (p / "metrics.json").is_file()
                                 or any(_FOLD_DIR.match(d.name) for d in p.iterdir() if d.is_dir()))
        if p.is_dir() and not is_run:
            subs = sorted(d for d in p.iterdir() if d.is_dir() and (
                (d / "config.json").is_file() or any(_FOLD_DIR.match(x.name) for x in d.iterdir() if x.is_dir())))
            if subs:
                out.extend(subs)
                continue
        out.append(p)
    return out


def load_runs(paths: Iterable[str | os.PathLike], problems: list[str] | None = None) -> list[Run]:
    """Load run directories in the order given, skipping (with a :class:`ReportWarning`) unusable ones.

    A directory holding run directories (e.g. ``runs/``) is expanded to them. Warning messages
    are also appended to ``problems`` when a list is passed.
    """
    runs = []
    for p in _expand(paths):
        r = load_run(p, problems)
        if r is not None:
            runs.append(r)
    return runs
