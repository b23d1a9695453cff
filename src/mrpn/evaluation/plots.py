"""Figures for reports: confusion matrices laid out like the paper's Figures 10-11.

Matplotlib is used through its object API (``Figure`` + Agg canvas), never ``pyplot``: no global
state, no GUI backend, safe in worker processes. Every PNG is written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from mrpn.io import atomic_write_with

__all__ = ["plot_confusion", "save_figure", "new_figure"]


def new_figure(figsize: tuple[float, float], dpi: int = 110):
    """A pyplot-free matplotlib Figure with an Agg canvas attached."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int | None = None) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically (the temporary name has no .png, so the format is explicit)."""
    path = Path(path)
    kw = {"format": "png", "bbox_inches": "tight", "facecolor": "white"}
    if dpi is not None:
        kw["dpi"] = dpi
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, **kw))
    return path


def plot_confusion(confusion: Sequence[Sequence[float]] | np.ndarray, class_names: Sequence[str],
                   path: str | os.PathLike, title: str | None = None, normalize: bool = True,
                   cmap: str = "Blues") -> Path:
    """Write a confusion-matrix PNG; rows = true class, columns = predicted class.

    With ``normalize`` (default) each cell shows the row-normalised percentage (the recall of the
    row's class on the diagonal) with the raw count below it, and the colour encodes the
    percentage on a fixed 0-100 % scale so figures of different runs compare. Rows without any
    sample are greyed and marked "no samples". With ``normalize=False`` colour and text are counts.
    Returns ``path``.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    names = [str(c) for c in class_names]
    n = len(names)
    if cm.shape != (n, n):
        raise ValueError(f"confusion shape {cm.shape} does not match {n} class names")
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(support[:, None] > 0, 100.0 * cm / support[:, None], np.nan)
    values = pct if normalize else cm
    integral = bool(np.all(cm == np.round(cm)))

    side = max(4.5, 0.78 * n + 2.4)
    fig = new_figure((side + 1.2, side))
    ax = fig.add_subplot(1, 1, 1)
    vmax = 100.0 if normalize else max(1.0, float(np.nanmax(cm)) if cm.size else 1.0)
    masked = np.ma.masked_invalid(values)
    import matplotlib

    cmap_obj = matplotlib.colormaps[cmap].with_extremes(bad="#dddddd")
    im = ax.imshow(masked, cmap=cmap_obj, vmin=0.0, vmax=vmax, interpolation="nearest", aspect="equal")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("% of true class (row)" if normalize else "count")

    fs = 10 if n <= 6 else (9 if n <= 8 else (7 if n <= 12 else 5.5))
    for i in range(n):
        for j in range(n):
            count = cm[i, j]
            count_s = f"{int(count)}" if integral else f"{count:.1f}"
            if support[i] <= 0:
                txt = "no samples" if j == i else ""
                colour = "#555555"
            elif normalize:
                txt = f"{pct[i, j]:.1f}%\n({count_s})"
                colour = "white" if pct[i, j] > 55.0 else "black"
            else:
                txt = count_s
                colour = "white" if count > 0.55 * vmax else "black"
            if txt:
                ax.text(j, i, txt, ha="center", va="center", fontsize=fs, color=colour,
                        fontweight="bold" if i == j else "normal")

    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_xticks(np.arange(-0.5, n, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    if title:
        ax.set_title(title, fontsize=11)
    return save_figure(fig, path)
