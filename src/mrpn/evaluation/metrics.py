"""Classification metrics for emotion recognition, named as in EmoBox.

Pure numpy. Every function here and every `metrics.json` uses the same names:

* ``accuracy``  -- weighted average recall (WAR): correct / total. This is the figure the paper's
  Tables 1-4 report (as a percentage).
* ``uar``       -- unweighted average recall: the mean of per-class recall over the classes that
  occur in ``y_true``. A class absent from the fold's ground truth has no recall and is left out
  (it does not count as 0). This equals ``sklearn.metrics.balanced_accuracy_score``.
* ``macro_f1``  -- the mean of per-class F1 over the classes that occur in ``y_true`` *or* in
  ``y_pred``. A class never seen and never predicted is left out; a class predicted but absent
  from ``y_true`` counts with F1 = 0 (all its predictions are wrong). This equals
  ``sklearn.metrics.f1_score(average="macro")`` with sklearn's default label set.
* ``confusion`` -- ``confusion[i][j]`` = number of samples of true class ``i`` predicted as ``j``
  (rows = true, columns = predicted), a list of lists of ints over *all* ``class_names``.
* ``per_class_recall`` -- ``{class_name: recall}``; ``None`` for a class absent from ``y_true``
  (JSON ``null``), so the dict always has every class name.

Empty inputs give NaN for the scalar metrics rather than raising, so a degenerate fold is still
recorded. Fold summaries use :func:`mean_std` (sample standard deviation, ``ddof=1``).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "compute_metrics", "metrics_from_confusion", "confusion_matrix", "mean_std", "format_pct",
    "format_mean_std", "paired_difference", "METRIC_NAMES",
]

#: scalar metric names, in display order
METRIC_NAMES = ("accuracy", "uar", "macro_f1")


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     n_classes: int) -> np.ndarray:
    """``[n_classes, n_classes]`` int64 counts, rows = true class, columns = predicted class."""
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} vs {p.shape[0]}")
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name} has labels outside [0, {n_classes}): min {a.min()}, max {a.max()}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def compute_metrics(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                    class_names: Sequence[str]) -> dict[str, Any]:
    """Metrics of integer predictions against integer labels (indices into ``class_names``).

    ``y_pred`` may also be scores of shape ``[N, C]`` (logits or probabilities); the arg-max is
    taken. Returns ``accuracy``, ``uar``, ``macro_f1``, ``confusion``, ``per_class_recall`` (see the
    module docstring for the exact definitions) plus ``n`` (samples), ``support`` and
    ``per_class_f1`` (``None`` where undefined), all JSON-serialisable.
    """
    y_pred_arr = np.asarray(y_pred)
    if y_pred_arr.ndim == 2:
        y_pred_arr = y_pred_arr.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred_arr, len(class_names))
    return metrics_from_confusion(cm, class_names)


def metrics_from_confusion(confusion: Sequence[Sequence[int]] | np.ndarray,
                           class_names: Sequence[str]) -> dict[str, Any]:
    """The same metrics as :func:`compute_metrics`, from a (possibly summed) confusion matrix."""
    cm = np.asarray(confusion, dtype=np.float64)
    names = [str(c) for c in class_names]
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(names):
        raise ValueError(f"confusion must be square with {len(names)} rows (one per class); got shape {cm.shape}")
    total = cm.sum()
    support = cm.sum(axis=1)       # true count per class
    predicted = cm.sum(axis=0)     # predicted count per class
    tp = np.diag(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        # F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (support + predicted); defined when either is > 0
        denom = support + predicted
        f1 = np.where(denom > 0, 2.0 * tp / denom, np.nan)

    accuracy = float(tp.sum() / total) if total > 0 else math.nan
    present = support > 0
    uar = float(recall[present].mean()) if present.any() else math.nan
    seen = denom > 0
    macro_f1 = float(f1[seen].mean()) if seen.any() else math.nan

    return {
        "accuracy": accuracy,
        "uar": uar,
        "macro_f1": macro_f1,
        "confusion": cm.astype(np.int64).tolist(),
        "per_class_recall": {n: _none_if_nan(r) for n, r in zip(names, recall)},
        "per_class_f1": {n: _none_if_nan(v) for n, v in zip(names, f1)},
        "support": {n: int(s) for n, s in zip(names, support)},
        "n": int(total),
    }


def mean_std(values: Iterable[float | None], ddof: int = 1) -> tuple[float, float]:
    """Mean and standard deviation of the finite values (``None``/NaN are ignored).

    The standard deviation is the sample one (``ddof=1``) by default -- the spread between folds;
    one value gives std 0.0, no values give ``(nan, nan)``.
    """
    a = np.array([float(v) for v in values if v is not None], dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return math.nan, math.nan
    mean = float(a.mean())
    std = float(a.std(ddof=ddof)) if a.size > ddof else 0.0
    return mean, std


def paired_difference(a: Iterable[float], b: Iterable[float]) -> str:
    """Two runs on the same folds, fold by fold: ``"+2.3 ± 1.5 points over 12 folds; better on 8, worse on 3"``.

    a, b: per-fold values in points (pairs with a None are left out). The ± is the standard error of the
    mean difference (sample std / sqrt n), left out below two folds: the comparison the two means hide.
    """
    d = np.array([x - y for x, y in zip(a, b) if x is not None and y is not None], dtype=np.float64)
    if d.size == 0:
        return "no fold in common"
    se = f" ± {d.std(ddof=1) / math.sqrt(d.size):.1f}" if d.size > 1 else ""
    return (f"{d.mean():+.1f}{se} points over {d.size} folds; better on {int((d > 1e-9).sum())}, "
            f"worse on {int((d < -1e-9).sum())}")


def format_pct(value: float | None, digits: int = 1, suffix: str = "%") -> str:
    """``0.975 -> "97.5%"``; ``None``/NaN -> ``""``."""
    if value is None or not math.isfinite(float(value)):
        return ""
    return f"{100.0 * float(value):.{digits}f}{suffix}"


def format_mean_std(mean: float, std: float, digits: int = 1) -> str:
    """``(0.9147, 0.034) -> "91.5 ± 3.4%"``; NaN mean -> ``""``."""
    if mean is None or not math.isfinite(mean):
        return ""
    s = std if (std is not None and math.isfinite(std)) else 0.0
    return f"{100.0 * mean:.{digits}f} ± {100.0 * s:.{digits}f}%"


def _as_labels(a: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.size == 0:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class indices; got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _none_if_nan(v: float) -> float | None:
    return None if not math.isfinite(float(v)) else float(v)
