"""`render_report`: report.md, tables.csv/json, confusion and t-SNE figures into one folder."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from mrpn.evaluation.metrics import (
    format_pct,
)
from mrpn.io import atomic_write_json, atomic_write_text
from mrpn.evaluation.report.markdown import _csv, _markdown
from mrpn.evaluation.report.runs import FoldResult, ReportWarning, Run
from mrpn.evaluation.report.tables import build_tables


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
