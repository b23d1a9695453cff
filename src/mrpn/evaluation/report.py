"""Reports over finished (or partly finished) cross-validation runs: ``mrpn report RUN [RUN ...]``.

A run directory holds ``config.json`` and one ``fold_XX/`` per fold with ``metrics.json`` (and
optionally ``features.npz``); see :func:`load_runs`. :func:`render_report` writes into ``out_dir``:

``report.md``
    Per (dataset, protocol) group of runs, tables laid out like the paper's Tables 1-3:

    1. *Accuracy (WAR) per validation fold* -- a row per run (``run_label, setting``), a column
       per fold (the union of the runs' folds, in fold order; blank where a run lacks that fold),
       then ``mean ± std`` over the run's finished folds and ``folds`` ("k/N"). The best value of
       each column is bold when there are several rows.
    2. *Summary* -- mean ± std of accuracy (WAR), UAR and macro-F1, plus WAR/UAR pooled over all
       validation samples (from the summed confusion matrix), mean best epoch, total train time.
    3. *Per-class recall* from the summed confusion matrix (the diagonals of Figures 10-11).
    4. *Per-modality accuracy* when folds carry ``modalities`` (uni-modal side heads next to the
       fused prediction, like Table 1), with the folds where a uni-modal head beats fusion (the
       paper's "inferior multi-modal cases", Section 5.4).
    5. Links to the figures, the run directories, and any problems met while loading.
``tables.csv``
    One row per (run, fold, head) with accuracy/uar/macro_f1 and run metadata (``kind`` = "fold"),
    plus ``kind`` = "mean" / "std" / "pooled" summary rows.
``tables.json``
    Everything above as nested data (groups -> rows -> per-fold, mean, std, pooled, modalities).
``confusion_<slug>.png``
    Per run: confusion matrices summed over its finished folds, row-normalised (Figures 10-11).
``tsne_<slug>.png``
    Per run with features: t-SNE of the validation features of one fold (Figure 4); by default
    the first finished fold that has ``features.npz``.

Means are unweighted over folds; std is the sample standard deviation (ddof=1) over folds.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mrpn.evaluation.metrics import (
    METRIC_NAMES, format_mean_std, format_pct, mean_std, metrics_from_confusion,
)
from mrpn.io import atomic_write_json, atomic_write_text

__all__ = [
    "Run", "FoldResult", "ReportWarning", "load_runs", "load_run", "build_tables", "render_report",
    "format_tables", "add_arguments", "main",
]

_FOLD_DIR = re.compile(r"^fold_(\d+)$")
DATASET_NAMES = {"ravdess": "RAVDESS", "cremad": "CREMA-D", "crema-d": "CREMA-D", "crema_d": "CREMA-D",
                 "synth": "synthetic", "fer2013": "FER2013"}
MODALITY_NAMES = {"v": "image (v)", "a": "audio (a)", "fused": "multi-modal (fused)"}


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


# ------------------------------------------------------------------------------------------ tables

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "run"


def _dataset_title(dataset: str, protocol: str) -> str:
    name = DATASET_NAMES.get(dataset.lower(), dataset) if dataset else "unknown dataset"
    return f"{name} (protocol: {protocol})" if protocol else name


def _summ(values: Sequence[float | None]) -> dict[str, float | None]:
    m, s = mean_std(values)
    return {"mean": _num(m), "std": _num(s)}


def _num(v: Any) -> float | None:
    return float(v) if _finite_number(v) else None


def build_tables(runs: Sequence[Run]) -> dict[str, Any]:
    """The report's content as plain data (what ``tables.json`` holds, less figure paths)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    multi_group = len({(r.dataset, r.protocol) for r in runs}) > 1
    used_slugs: set[str] = set()
    used_labels: dict[tuple[str, str], set[str]] = {}
    for i, r in enumerate(runs):
        key = (r.dataset, r.protocol)
        g = groups.setdefault(key, {"dataset": r.dataset, "protocol": r.protocol,
                                    "title": _dataset_title(r.dataset, r.protocol),
                                    "folds": [], "_fold_index": {}, "class_names": [], "rows": []})
        for f in r.folds:
            if f.name not in g["_fold_index"]:
                g["_fold_index"][f.name] = f.index
            for c in f.class_names:
                if c not in g["class_names"]:
                    g["class_names"].append(c)
        label = r.row_label
        labels = used_labels.setdefault(key, set())
        if label in labels:   # two runs with the same label in one table: tell them apart by folder
            label = f"{label} [{r.path.name}]"
        labels.add(label)
        base = _slug(f"{r.dataset}_{r.row_label}" if multi_group and r.dataset else r.row_label)
        slug, k = base, 2
        while slug in used_slugs:
            slug, k = f"{base}_{k}", k + 1
        used_slugs.add(slug)
        row = _row(r, label, slug)
        row["run_index"] = i
        g["rows"].append(row)

    out_groups = []
    for g in groups.values():
        order = g.pop("_fold_index")
        g["folds"] = sorted(order, key=lambda n: (order[n], n))
        n_cols = len(g["folds"])
        for row in g["rows"]:
            row["n_folds_expected"] = max(row["n_folds_expected"] or 0, n_cols, row["n_folds_done"])
        out_groups.append(g)
    return {"groups": out_groups}


def _row(r: Run, label: str, slug: str) -> dict[str, Any]:
    per_fold: dict[str, dict[str, Any]] = {}
    mod_keys: list[str] = []
    for f in r.folds:
        m = f.metrics
        per_fold[f.name] = {
            "fold_index": f.index,
            **{k: _num(m.get(k)) for k in METRIC_NAMES},
            "n_val": m.get("n_val"), "epochs": m.get("epochs"), "best_epoch": m.get("best_epoch"),
            "wall_time_s": _num(m.get("wall_time_s")),
        }
        for mk, mv in (m.get("modalities") or {}).items():
            if isinstance(mv, dict) and mk not in mod_keys:
                mod_keys.append(mk)
    row: dict[str, Any] = {
        "row_label": label, "run_label": r.label, "setting": r.setting, "model": r._get("model", ""),
        "strategy": r._get("strategy", ""), "run_dir": str(r.path), "slug": slug,
        "n_folds_done": len(r.folds), "n_folds_expected": r.n_expected,
        "class_names": r.class_names, "per_fold": per_fold,
        "mean": {}, "std": {},
    }
    for k in METRIC_NAMES:
        s = _summ([pf[k] for pf in per_fold.values()])
        row["mean"][k], row["std"][k] = s["mean"], s["std"]
    cm, n_cm = r.summed_confusion()
    row["confusion_sum"] = cm.tolist() if cm is not None else None
    row["confusion_folds"] = n_cm
    if cm is not None:
        pooled = metrics_from_confusion(cm, r.class_names)
        row["pooled"] = {k: _num(pooled[k]) for k in METRIC_NAMES}
        row["per_class_recall"] = pooled["per_class_recall"]
    else:
        row["pooled"] = None
        row["per_class_recall"] = None
    best = [pf["best_epoch"] for pf in per_fold.values() if _finite_number(pf["best_epoch"])]
    row["best_epoch_mean"] = float(np.mean(best)) if best else None
    walls = [pf["wall_time_s"] for pf in per_fold.values() if pf["wall_time_s"] is not None]
    row["wall_time_s_total"] = float(sum(walls)) if walls else None

    modalities: dict[str, Any] = {}
    for mk in mod_keys:
        pf_mod: dict[str, dict[str, float | None]] = {}
        for f in r.folds:
            mv = (f.metrics.get("modalities") or {}).get(mk)
            if isinstance(mv, dict):
                pf_mod[f.name] = {k: _num(mv.get(k)) for k in METRIC_NAMES if k in mv}
        modalities[mk] = {"per_fold": pf_mod, "mean": {}, "std": {}}
        for k in METRIC_NAMES:
            vals = [d.get(k) for d in pf_mod.values()]
            if any(v is not None for v in vals):
                s = _summ(vals)
                modalities[mk]["mean"][k], modalities[mk]["std"][k] = s["mean"], s["std"]
    row["modalities"] = modalities
    # the paper's "inferior multi-modal case": a uni-modal head beats the fused prediction
    inferior = []
    for fname, pf in per_fold.items():
        fused = pf["accuracy"]
        unis = [(mk, modalities[mk]["per_fold"].get(fname, {}).get("accuracy")) for mk in mod_keys if mk != "fused"]
        unis = [(mk, v) for mk, v in unis if v is not None]
        if fused is not None and unis:
            mk, v = max(unis, key=lambda t: t[1])
            if v > fused:
                inferior.append({"fold": fname, "modality": mk, "uni_accuracy": v, "fused_accuracy": fused})
    row["inferior_folds"] = inferior
    return row


# ---------------------------------------------------------------------------------------- markdown

def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], left_cols: int = 1) -> str:
    aligns = [":---" if i < left_cols else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "|".join(aligns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_md_escape(c) for c in r) + " |")
    return "\n".join(lines)


def _bold_best(cells: list[list[str]], values: list[list[float | None]], n_rows: int) -> None:
    """Bold the best (rounded, as shown) value of each column, in place, when there are several rows."""
    if n_rows < 2:
        return
    for j in range(len(values[0]) if values else 0):
        col = [round(100 * v[j], 1) if v[j] is not None else None for v in values]
        present = [v for v in col if v is not None]
        if len(present) < 2:
            continue
        best = max(present)
        for i, v in enumerate(col):
            if v == best:
                cells[i][j] = f"**{cells[i][j]}**"


def _folds_cell(row: dict[str, Any]) -> str:
    return f"{row['n_folds_done']}/{row['n_folds_expected']}"


def accuracy_table(group: dict[str, Any], bold: bool = True) -> str:
    """Markdown: a row per run, a column per fold, then mean ± std and k/N folds (Tables 1-3)."""
    folds = group["folds"]
    header = ["Model"] + folds + ["mean ± std", "folds"]
    cells, values = [], []
    for row in group["rows"]:
        vals = [row["per_fold"].get(f, {}).get("accuracy") for f in folds]
        vals.append(row["mean"]["accuracy"])
        c = [format_pct(v) for v in vals[:-1]] + [format_mean_std(_nan(row["mean"]["accuracy"]),
                                                                   row["std"]["accuracy"] or 0.0)]
        cells.append(c)
        values.append(vals)
    if bold:
        _bold_best(cells, values, len(group["rows"]))
    body = [[row["row_label"]] + c + [_folds_cell(row)] for row, c in zip(group["rows"], cells)]
    return _md_table(header, body)


def summary_table(group: dict[str, Any]) -> str:
    header = ["Model", "folds", "accuracy (WAR)", "UAR", "macro-F1", "pooled WAR", "pooled UAR",
              "best epoch (mean)", "train time"]
    body = []
    for row in group["rows"]:
        pooled = row["pooled"] or {}
        be = row["best_epoch_mean"]
        body.append([row["row_label"], _folds_cell(row)]
                    + [format_mean_std(_nan(row["mean"][k]), row["std"][k] or 0.0) for k in METRIC_NAMES]
                    + [format_pct(pooled.get("accuracy")), format_pct(pooled.get("uar")),
                       f"{be:.1f}" if be is not None else "", _fmt_duration(row["wall_time_s_total"])])
    return _md_table(header, body)


def per_class_table(group: dict[str, Any]) -> str | None:
    names = group["class_names"]
    rows = [r for r in group["rows"] if r["per_class_recall"]]
    if not names or not rows:
        return None
    body = [[r["row_label"]] + [format_pct(r["per_class_recall"].get(c)) for c in names] for r in rows]
    return _md_table(["Model"] + names, body)


def modality_table(group: dict[str, Any]) -> str | None:
    rows = [r for r in group["rows"] if r["modalities"]]
    if not rows:
        return None
    folds = group["folds"]
    header = ["Model", "head"] + folds + ["mean ± std", "UAR mean ± std"]
    body = []
    for r in rows:
        heads = [(mk, r["modalities"][mk]) for mk in r["modalities"] if mk != "fused"]
        fused = {"per_fold": {f: {k: v[k] for k in METRIC_NAMES} for f, v in r["per_fold"].items()},
                 "mean": r["mean"], "std": r["std"]}
        heads.append(("fused", fused))
        for mk, d in heads:
            cells = [format_pct(d["per_fold"].get(f, {}).get("accuracy")) for f in folds]
            mean, std = d["mean"], d["std"]
            body.append([r["row_label"], MODALITY_NAMES.get(mk, mk)] + cells
                        + [format_mean_std(_nan(mean.get("accuracy")), std.get("accuracy") or 0.0),
                           format_mean_std(_nan(mean.get("uar")), std.get("uar") or 0.0)])
    return _md_table(header, body, left_cols=2)


def _nan(v: float | None) -> float:
    return math.nan if v is None else v


def _fmt_duration(s: float | None) -> str:
    if s is None:
        return ""
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {(s % 3600) // 60:02d}m"


def format_tables(tables: dict[str, Any], bold: bool = False) -> str:
    """The accuracy-per-fold table of every group as text (what ``mrpn report`` prints)."""
    parts = []
    for g in tables["groups"]:
        parts.append(f"{g['title']} — accuracy (WAR) per validation fold")
        parts.append(accuracy_table(g, bold=bold))
        parts.append("")
    return "\n".join(parts)


def _markdown(tables: dict[str, Any], title: str, figures: dict[str, dict[str, str]], notes: list[str]) -> str:
    out = [f"# {title}", ""]
    out.append("accuracy = WAR (weighted average recall = correct / all); UAR = mean recall over the classes "
               "present in the fold; macro-F1 over the classes present or predicted. Per-fold values are "
               "for each run's validation fold; mean ± std are over the run's finished folds (unweighted, "
               "sample std); blank = fold not (yet) run. *pooled* = over all validation samples of the "
               "finished folds (summed confusion matrix).")
    out.append("")
    for g in tables["groups"]:
        out += [f"## {g['title']}", ""]
        out += ["### Accuracy (WAR) per validation fold", "", accuracy_table(g), ""]
        out += ["### Summary", "", summary_table(g), ""]
        t = per_class_table(g)
        if t:
            out += ["### Per-class recall (summed confusion over finished folds)", "", t, ""]
        t = modality_table(g)
        if t:
            out += ["### Per-modality accuracy (uni-modal side heads vs. fusion)", "", t, ""]
            for r in g["rows"]:
                if not r["modalities"]:
                    continue
                inf = r["inferior_folds"]
                if inf:
                    desc = ", ".join(f"{d['fold']} ({MODALITY_NAMES.get(d['modality'], d['modality'])} "
                                     f"{format_pct(d['uni_accuracy'])} > {format_pct(d['fused_accuracy'])})"
                                     for d in inf)
                    out.append(f"- {r['row_label']}: a uni-modal head beats fusion in {len(inf)} of "
                               f"{r['n_folds_done']} folds: {desc}")
                else:
                    out.append(f"- {r['row_label']}: fusion is at least as good as every uni-modal head in all "
                               f"{r['n_folds_done']} finished folds")
            out.append("")
        figs = [(r, figures.get(r["slug"], {})) for r in g["rows"]]
        if any(f for _, f in figs):
            out += ["### Figures", ""]
            for r, f in figs:
                if f.get("confusion"):
                    out += [f"**{r['row_label']}** — confusion matrix summed over {r['confusion_folds']}/"
                            f"{r['n_folds_expected']} folds, row-normalised", "", f"![confusion {r['row_label']}]({f['confusion']})", ""]
                if f.get("tsne"):
                    out += [f"**{r['row_label']}** — t-SNE of validation features, fold {f.get('tsne_fold', '')}",
                            "", f"![t-SNE {r['row_label']}]({f['tsne']})", ""]
    out += ["## Runs", ""]
    for g in tables["groups"]:
        for r in g["rows"]:
            out.append(f"- {r['row_label']}: `{r['run_dir']}` ({_folds_cell(r)} folds)")
    out.append("")
    if notes:
        out += ["## Problems met while loading", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def _csv(tables: dict[str, Any]) -> str:
    cols = ["dataset", "protocol", "row_label", "run_label", "setting", "model", "strategy", "run_dir",
            "kind", "fold", "fold_index", "head", "accuracy", "uar", "macro_f1", "n_val", "epochs",
            "best_epoch", "wall_time_s", "n_folds_done", "n_folds_expected"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for g in tables["groups"]:
        for r in g["rows"]:
            base = {"dataset": g["dataset"], "protocol": g["protocol"], "row_label": r["row_label"],
                    "run_label": r["run_label"], "setting": r["setting"], "model": r["model"],
                    "strategy": r["strategy"], "run_dir": r["run_dir"], "n_folds_done": r["n_folds_done"],
                    "n_folds_expected": r["n_folds_expected"]}
            for fname, pf in r["per_fold"].items():
                w.writerow({**base, "kind": "fold", "fold": fname, "fold_index": pf["fold_index"], "head": "fused",
                            **{k: _csv_num(pf[k]) for k in METRIC_NAMES}, "n_val": pf["n_val"],
                            "epochs": pf["epochs"], "best_epoch": pf["best_epoch"],
                            "wall_time_s": _csv_num(pf["wall_time_s"])})
                for mk, md in r["modalities"].items():
                    mv = md["per_fold"].get(fname)
                    if mv:
                        w.writerow({**base, "kind": "fold", "fold": fname, "fold_index": pf["fold_index"],
                                    "head": mk, **{k: _csv_num(mv.get(k)) for k in METRIC_NAMES}})
            heads = [("fused", r["mean"], r["std"])] + [(mk, md["mean"], md["std"]) for mk, md in r["modalities"].items()]
            for head, mean, std in heads:
                w.writerow({**base, "kind": "mean", "head": head, **{k: _csv_num(mean.get(k)) for k in METRIC_NAMES}})
                w.writerow({**base, "kind": "std", "head": head, **{k: _csv_num(std.get(k)) for k in METRIC_NAMES}})
            if r["pooled"]:
                w.writerow({**base, "kind": "pooled", "head": "fused",
                            **{k: _csv_num(r["pooled"][k]) for k in METRIC_NAMES}})
    return buf.getvalue()


def _csv_num(v: Any) -> str:
    return "" if v is None else repr(float(v))


# ------------------------------------------------------------------------------------------ render

def _pick_tsne_fold(run: Run, tsne_fold: int | str | None) -> FoldResult | None:
    if tsne_fold is None:
        return next((f for f in run.folds if f.features_path is not None), None)
    key = str(tsne_fold)
    for f in run.folds:
        if f.name == key or (key.isdigit() and f.index == int(key)):
            return f
    return None


def _load_features(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        if "labels" not in z.files:
            raise ValueError("no 'labels' array")
        labels = np.asarray(z["labels"]).reshape(-1)
        feats = {k: np.asarray(z[k]) for k in z.files
                 if k != "labels" and z[k].ndim == 2 and z[k].shape[0] == labels.shape[0]
                 and np.issubdtype(z[k].dtype, np.number)}
    if not feats:
        raise ValueError("no [N, D] feature array matching 'labels'")
    return feats, labels


def render_report(runs: Sequence[Run], out_dir: str | os.PathLike, title: str | None = None, *,
                  tsne: bool = True, tsne_fold: int | str | None = None, tsne_max_points: int = 1000,
                  seed: int = 0, notes: Sequence[str] | None = None) -> dict[str, Path]:
    """Write report.md, tables.csv, tables.json and the figures into ``out_dir``; return the paths written.

    Keys of the result: "report.md", "tables.csv", "tables.json", and ``confusion_<slug>`` /
    ``tsne_<slug>`` (file stems) for the figures. ``tsne_fold`` picks the fold for t-SNE by index
    (1-based, as in fold_XX) or name ("A1,2"); by default the first finished fold with
    ``features.npz``. ``notes`` (e.g. the problems collected by :func:`load_runs`) are listed in
    report.md.
    """
    if not runs:
        raise ValueError("no runs to report")
    from mrpn.evaluation.plots import plot_confusion

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = title or "MRPN evaluation report"
    notes = list(notes or [])
    for r in runs:   # problems met while loading, unless the caller already passed them
        notes += [p for p in r.problems if p not in notes]
    tables = build_tables(runs)
    by_slug = {row["slug"]: (g, row) for g in tables["groups"] for row in g["rows"]}
    written: dict[str, Path] = {}
    figures: dict[str, dict[str, str]] = {}

    for slug, (g, row) in by_slug.items():
        run = runs[row["run_index"]]
        fig: dict[str, str] = {}
        if row["confusion_sum"] is not None:
            name = f"confusion_{slug}"
            pooled = row["pooled"] or {}
            ttl = (f"{row['row_label']} — {g['title']}\nsummed over {row['confusion_folds']}/"
                   f"{row['n_folds_expected']} folds: "
                   f"WAR {format_pct(pooled.get('accuracy'))}, UAR {format_pct(pooled.get('uar'))}")
            written[name] = plot_confusion(row["confusion_sum"], row["class_names"], out_dir / f"{name}.png", ttl)
            fig["confusion"] = f"{name}.png"
        if tsne:
            fold = _pick_tsne_fold(run, tsne_fold)
            if fold is None and tsne_fold is not None:
                msg = f"{run.path}: no finished fold {tsne_fold!r} for t-SNE; skipped"
                notes.append(msg)
                warnings.warn(msg, ReportWarning, stacklevel=2)
            elif fold is not None and fold.features_path is None:
                msg = f"{fold.dir / 'features.npz'}: not found; no t-SNE for {row['row_label']}"
                notes.append(msg)
                warnings.warn(msg, ReportWarning, stacklevel=2)
            elif fold is not None:
                try:
                    feats, labels = _load_features(fold.features_path)
                    from mrpn.evaluation.tsne import plot_tsne

                    name = f"tsne_{slug}"
                    written[name] = plot_tsne(feats, labels, fold.class_names or run.class_names,
                                              out_dir / f"{name}.png",
                                              title=f"{row['row_label']} — {g['title']}, fold {fold.name}",
                                              seed=seed, max_points=tsne_max_points)
                    fig["tsne"], fig["tsne_fold"] = f"{name}.png", fold.name
                except (OSError, ValueError, KeyError) as e:
                    msg = f"{fold.features_path}: unusable for t-SNE ({e}); skipped"
                    notes.append(msg)
                    warnings.warn(msg, ReportWarning, stacklevel=2)
        figures[slug] = fig
        row["figures"] = fig

    md = _markdown(tables, title, figures, notes)
    p = out_dir / "report.md"
    atomic_write_text(p, md)
    written["report.md"] = p
    p = out_dir / "tables.csv"
    atomic_write_text(p, _csv(tables))
    written["tables.csv"] = p
    p = out_dir / "tables.json"
    atomic_write_json(p, {"title": title, **tables, "notes": notes})
    written["tables.json"] = p
    return written


# --------------------------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directories (config.json + fold_XX/metrics.json); a folder of runs expands to them")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <first run's parent>/report)")
    parser.add_argument("--title", default=None, help="report title")
    parser.add_argument("--tsne-fold", default=None, metavar="K",
                        help="fold for t-SNE: index (1-12) or name ('A1,2'); default: first fold with features.npz")
    parser.add_argument("--no-tsne", action="store_true", help="skip t-SNE figures")
    parser.add_argument("--tsne-max-points", type=int, default=1000, metavar="N",
                        help="subsample at most N validation samples for t-SNE (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="t-SNE seed (default 0)")


def main(args: argparse.Namespace) -> int:
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = load_runs(args.runs, problems)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    if not runs:
        print("error: no usable run among " + ", ".join(map(str, args.runs)), file=sys.stderr)
        return 1
    out = args.out if args.out is not None else runs[0].path.resolve().parent / "report"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = render_report(runs, out, args.title, tsne=not args.no_tsne, tsne_fold=args.tsne_fold,
                                tsne_max_points=args.tsne_max_points, seed=args.seed, notes=problems)
        for w in caught:
            if issubclass(w.category, ReportWarning) or "t-SNE" in str(w.message):
                print(f"warning: {w.message}", file=sys.stderr)
    print(format_tables(build_tables(runs)))
    for name, p in written.items():
        print(f"wrote {p}")
    return 0
