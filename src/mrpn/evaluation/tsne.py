"""t-SNE of deep features, one panel per feature set, like the paper's Figure 4.

``plot_tsne({"v": fv, "a": fa, "fused": ff}, labels, class_names, "tsne.png")`` draws three
panels titled "Only image modality", "Only audio modality" and "Multi-modality", points coloured
by true class with one shared legend ("0: neutral", "1: calm", ...). The same subsample of points
is used in every panel; the embedding is deterministic for a given ``seed``.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mrpn import registry
from mrpn.evaluation.plots import new_figure, save_figure

__all__ = ["plot_tsne", "embed_tsne", "panel_title", "subsample_indices"]

#: panel titles for the feature-set keys written into features.npz
def panel_title(key: str) -> str:
    """Figure 4's panel titles: "Only image modality", "Only audio modality", "Multi-modality"."""
    return "Multi-modality" if key == "fused" else f"Only {registry.display_name(key)} modality"
#: up to this many points t-SNE uses exact gradients (faster for small N), Barnes-Hut above
EXACT_MAX_POINTS = 1000


def subsample_indices(labels: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` samples, drawn per class in proportion (stratified)."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chosen = []
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.floor(counts * max_points / n)).astype(int)
    for c, q in zip(classes, quota):
        idx = np.flatnonzero(labels == c)
        chosen.append(rng.choice(idx, size=min(q, idx.size), replace=False))
    out = np.concatenate(chosen)
    if out.size > max_points:
        out = rng.choice(out, size=max_points, replace=False)
    return np.sort(out)


def embed_tsne(x: np.ndarray, seed: int = 0, perplexity: float = 30.0, pca_dims: int = 50) -> np.ndarray:
    """2-D t-SNE embedding of ``x`` ``[N, D]``.

    Features are standardised per dimension and, when ``D > pca_dims``, reduced by PCA first (the
    usual speed-up; it barely changes the picture). Perplexity is clipped to ``N - 1`` (t-SNE needs
    it below the number of points); exact gradients up to ``EXACT_MAX_POINTS`` points, Barnes-Hut
    above. ``N < 3`` is returned as-is (padded to 2 columns) since
    t-SNE has nothing to do.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    n, d = x.shape
    if n < 3:
        out = np.zeros((n, 2))
        out[:, : min(2, d)] = x[:, : min(2, d)]
        return out
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    if d > pca_dims and n > pca_dims:
        x = PCA(n_components=pca_dims, random_state=seed).fit_transform(x)
    perp = float(max(1.0, min(perplexity, n - 1)))
    # exact gradients are much faster than Barnes-Hut for the few hundred points of one fold
    method = "exact" if n <= EXACT_MAX_POINTS else "barnes_hut"
    tsne = TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto",
                random_state=seed, n_jobs=1, method=method)
    return tsne.fit_transform(x)


def plot_tsne(features: Mapping[str, np.ndarray], labels: Sequence[int] | np.ndarray,
              class_names: Sequence[str], path: str | os.PathLike, title: str | None = None,
              seed: int = 0, max_points: int = 1000, perplexity: float = 30.0) -> Path:
    """Write a PNG with one t-SNE panel per entry of ``features`` (each ``[N, D]``, rows aligned with ``labels``).

    Keys "v", "a", "fused" come first in that order with the paper's titles; other keys follow
    in the given order, titled by their key. A feature set whose row count differs from
    ``labels`` is skipped with a warning. Rows with non-finite values are dropped from every
    panel. At most ``max_points`` points (stratified by class, the same ones in every panel) are
    embedded. Returns ``path``.
    """
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    n = labels.shape[0]
    if n == 0:
        raise ValueError("t-SNE: no samples")
    names = [str(c) for c in class_names]
    order = [*registry.MODALITIES, "fused"]  # Figure 4's order: modalities as registered, then the fusion
    keys = [k for k in order if k in features] + [k for k in features if k not in order]
    sets: dict[str, np.ndarray] = {}
    for k in keys:
        x = np.asarray(features[k])
        if x.ndim == 0 or x.shape[0] != n:
            rows = x.shape[0] if x.ndim else 0
            warnings.warn(f"t-SNE: feature set {k!r} has {rows} rows but there are {n} labels; skipped",
                          stacklevel=2)
            continue
        sets[k] = x.reshape(n, -1).astype(np.float64)
    if not sets:
        raise ValueError("t-SNE: no feature set matches the labels")

    finite = np.ones(n, dtype=bool)
    for x in sets.values():
        finite &= np.all(np.isfinite(x), axis=1)
    if not finite.all():
        warnings.warn(f"t-SNE: {int((~finite).sum())} of {n} rows have non-finite features; dropped", stacklevel=2)
    keep = np.flatnonzero(finite)
    keep = keep[subsample_indices(labels[keep], max_points, seed)]
    y = labels[keep]

    n_cls = max(len(names), int(y.max()) + 1 if y.size else 0)
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n_cls <= 10 else "tab20"]
    colours = [cmap(i % cmap.N) for i in range(n_cls)]

    k = len(sets)
    fig = new_figure((4.6 * k + 1.8, 4.8))
    handles = {}
    for p, (key, x) in enumerate(sets.items()):
        ax = fig.add_subplot(1, k, p + 1)
        xy = embed_tsne(x[keep], seed=seed, perplexity=perplexity) if keep.size else np.zeros((0, 2))
        for c in range(n_cls):
            m = y == c
            if not m.any():
                continue
            label = f"{c}: {names[c]}" if c < len(names) else str(c)
            h = ax.scatter(xy[m, 0], xy[m, 1], s=12 if keep.size > 500 else 20, color=colours[c],
                           alpha=0.8, linewidths=0, label=label)
            handles.setdefault(c, h)
        ax.set_title(panel_title(key), fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        if keep.size < 3:
            ax.text(0.5, 0.5, "too few points for t-SNE", transform=ax.transAxes, ha="center", va="center")
    if handles:
        order = sorted(handles)
        fig.legend([handles[c] for c in order], [handles[c].get_label() for c in order],
                   loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title="class",
                   markerscale=1.6)
    sub = f"t-SNE of {keep.size} validation samples (seed {seed})"
    fig.suptitle(f"{title}\n{sub}" if title else sub, fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path)
