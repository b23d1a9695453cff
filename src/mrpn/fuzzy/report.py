"""Figures and tables of a fuzziness experiment (line plot for the sweep, bars for the demo)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mrpn.evaluation.plots import new_figure, save_figure

from .experiment import LABELS, MODELS, level_tag
from .results import TESTS

# line style per run name: uni-modal baselines grey and dashed, fusion networks in colour (MRPN red)
_COLOURS = ["#1f77b4", "#17becf", "#ff7f0e", "#d62728"]


def _style(name: str) -> tuple[str, str, str]:
    from .experiment import FUSION, MRPN, UNIMODAL

    if name in UNIMODAL:
        return ("#9e9e9e", "--", "s") if name == UNIMODAL[0] else ("#bdbdbd", ":", "^")
    if name == MRPN:
        return "#d62728", "-", "*"
    return _COLOURS[FUSION.index(name) % 3], "-", "ovD"[FUSION.index(name) % 3]


def plot_sweep(summary: dict[str, Any], path: Path, title: str = "") -> Path:
    """Accuracy against the fuzzy fraction, one line per model, error bars = 95 % CI over (seed, fold);
    left panel tested on clean held-out clips, right panel on held-out clips at the same level."""
    fig = new_figure((11.0, 4.4))
    levels = summary["levels"]
    x = [100 * lv for lv in levels]
    axes = fig.subplots(1, 2, sharey=True)
    for ax, t in zip(axes, TESTS):
        for name, _, _ in MODELS:
            col, ls, mk = _style(name)
            cells = [summary["accuracy"][level_tag(lv)][name][t] for lv in levels]
            y = [100 * c["mean"] for c in cells]
            e = [0.0 if math.isnan(c["ci95"]) else 100 * c["ci95"] for c in cells]
            off = ([n for n, _, _ in MODELS].index(name) - 2.5) * 0.35      # spread the error bars apart
            ax.errorbar([v + off for v in x], y, yerr=e, color=col, ls=ls, marker=mk, capsize=3, lw=1.6,
                        ms=6 if mk != "*" else 9, label=LABELS[name])
        ax.set_title(f"tested on {'clean' if t == 'clean' else 'equally fuzzy'} held-out clips")
        ax.set_xlabel("fuzzy training clips (%)")
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy on held-out actors (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, bbox_to_anchor=(0.5, -0.06))
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_levels_bars(summary: dict[str, Any], path: Path, title: str = "") -> Path:
    """Grouped bars (the demo): per model, accuracy at each level and test set, with chance."""
    fig = new_figure((9.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    groups = [(lv, t) for lv in summary["levels"] for t in (TESTS if lv > 0 else ("clean",))]
    width = 0.8 / len(groups)
    colours = ["#4c72b0", "#dd8452", "#c44e52", "#55a868"]
    for j, (lv, t) in enumerate(groups):
        vals = [100 * summary["accuracy"][level_tag(lv)][name][t]["mean"] for name, _, _ in MODELS]
        xs = [i + (j - (len(groups) - 1) / 2) * width for i in range(len(MODELS))]
        lab = "clean training, clean test" if lv == 0 else f"{100 * lv:.0f} % fuzzy training, {t} test"
        bars = ax.bar(xs, vals, width, color=colours[j % len(colours)], label=lab)
        for b, v in zip(bars, vals):
            if not math.isnan(v):
                ax.text(b.get_x() + b.get_width() / 2, v + 1, f"{v:.0f}", ha="center", fontsize=7)
    ax.axhline(100 / 6, color="k", ls=":", lw=1, label="chance (6 classes)")
    ax.set_xticks(range(len(MODELS)))
    ax.set_xticklabels([LABELS[n] for n, _, _ in MODELS])
    ax.set_ylim(0, 122)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("accuracy on held-out actors (%)")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def _pct(c: dict[str, Any]) -> str:
    if c["n"] == 0 or math.isnan(c["mean"]):
        return "-"
    ci = "" if math.isnan(c["ci95"]) else f" ± {100 * c['ci95']:.1f}"
    return f"{100 * c['mean']:.1f}{ci}"


def markdown_tables(summary: dict[str, Any]) -> str:
    """Accuracy table (rows = models, columns = levels) per test set, and the paired differences."""
    levels = summary["levels"]
    lines = []
    for t in TESTS:
        lines += [f"**Accuracy (%) tested on {'clean' if t == 'clean' else 'equally fuzzy'} held-out clips** "
                  "(mean ± 95 % CI over seeds × folds)", "",
                  "| model | " + " | ".join(f"{100 * lv:.0f} % fuzzy" for lv in levels) + " |",
                  "| --- | " + " | ".join("---:" for _ in levels) + " |"]
        for name, _, _ in MODELS:
            cells = [_pct(summary["accuracy"][level_tag(lv)][name][t]) for lv in levels]
            lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["**Paired differences (percentage points, same seed and fold)**", "",
              "| difference | test | " + " | ".join(f"{100 * lv:.0f} %" for lv in levels) + " |",
              "| --- | --- | " + " | ".join("---:" for _ in levels) + " |"]
    keys = sorted({k.split(":")[0] for tag in summary["paired"].values() for k in tag})
    for key in keys:
        a, b = key.split("-")
        for t in TESTS:
            cells = [_pct(summary["paired"][level_tag(lv)][f"{key}:{t}"]) for lv in levels]
            lines.append(f"| {LABELS[a]} − {LABELS[b]} | {t} | " + " | ".join(cells) + " |")
    n = max((c["n"] for tag in summary["paired"].values() for c in tag.values()), default=0)
    lines += ["", f"n = {n} (seed, fold) pairs per cell at most; a CI that excludes 0 marks a difference "
              "larger than the spread between runs."]
    return "\n".join(lines) + "\n"
