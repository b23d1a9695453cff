"""Tables like the paper's Tables 1-3 as data (`build_tables`), and as Markdown pieces."""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import numpy as np

from mrpn.evaluation.metrics import (
    METRIC_NAMES, format_mean_std, format_pct, mean_std, metrics_from_confusion,
)
from mrpn.evaluation.report.runs import DATASET_NAMES, modality_name, Run, _finite_number


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
            body.append([r["row_label"], modality_name(mk)] + cells
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
