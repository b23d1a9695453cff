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

from mrpn.evaluation.report.cli import add_arguments, main
from mrpn.evaluation.report.render import render_report
from mrpn.evaluation.report.runs import (DATASET_NAMES, FoldResult, ReportWarning, Run, load_run, load_runs,
                                         modality_name)
from mrpn.evaluation.report.tables import (accuracy_table, build_tables, format_tables, modality_table, per_class_table,
                                           summary_table)

__all__ = [
    "Run", "FoldResult", "ReportWarning", "load_runs", "load_run", "build_tables", "render_report",
    "format_tables", "add_arguments", "main", "accuracy_table", "summary_table", "per_class_table",
    "modality_table", "DATASET_NAMES", "modality_name",
]
