"""The per-fold table of docs/RESULTS.md section 0: the AM recipe beside the three baselines and the paper.

Reads only committed files: the run's summary.json (`mrpn cv` / `mrpn report`), the baselines'
JSON (`bench/audio_baselines.py`) and the paper's Table 1 (AM rows, copied below from
Chang & Skarbek 2021, ../shared/paper). Prints a markdown table and a JSON summary.

    python3 tools/am_fold_table.py docs/results/ravdess_am_recipe/summary.json \
        --baselines docs/results/audio_baselines.json [--baselines docs/results/audio_baselines_cnn80.json] \
        [--json docs/results/ravdess_am_recipe/table.json]

`--beside OTHER/summary.json` adds another run's three rows (e.g. T beside NT) and the fold-by-fold
differences between the two runs; `--versus` prints each of the run's rows against each baseline, fold by
fold; `--fit` prints, per fold,
how the training went, read from the committed fold histories (no test actor involved).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

FOLDS = ["A1,2", "A3,4", "A5,6", "A7,8", "A9,10", "A11,12", "A13,14", "A15,16", "A17,18", "A19,20",
         "A21,22", "A23,24"]
# Table 1 of the paper (RAVDESS, ResNet-18 pretrained on speaker identification + LSTM, epoch chosen on the fold)
PAPER = {
    "T": [71.6, 77.5, 71.6, 90.0, 55.8, 69.1, 70.0, 69.1, 57.5, 63.3, 68.3, 68.3],
    "NT": [70.8, 55.0, 57.5, 74.1, 43.5, 65.8, 59.8, 57.5, 51.6, 55.5, 55.8, 63.3],
}
ROWS = [("accuracy_inner_selected", "recipe, epoch chosen on the inner actors"),
        ("accuracy_last_epoch", "recipe, last epoch (no choice)"),
        ("accuracy_test_selected", "recipe, epoch chosen on the test fold (paper's selection)")]
BASELINES = [("mfcc_svm", "baseline: MFCC statistics + RBF SVM"),
             ("speaker_probe", "baseline: frozen GE2E speaker encoder + logistic probe"),
             ("cnn", "baseline: log-mel clip CNN from scratch")]


def _stats(values: list[float | None]) -> tuple[float, float, int]:
    """Mean and population std (ddof 0, as `mrpn cv` summaries) over the folds that have a value."""
    v = np.array([x for x in values if x is not None], dtype=float)
    return (float(v.mean()), float(v.std()), len(v)) if len(v) else (float("nan"), float("nan"), 0)


def _run_rows(summary: dict, prefix: str = "") -> list[dict]:
    rows = []
    for key, label in ROWS:
        per = summary.get(key, {}).get("per_fold", {})
        rows.append({"row": prefix + label, "per_fold": [100 * per[f] if f in per else None for f in FOLDS]})
    return rows


def build(summary: dict, baselines: dict | list[dict], setting: str, beside: tuple[str, dict] | None = None) -> list[dict]:
    rows = _run_rows(summary)
    if beside is not None:
        rows += _run_rows(beside[1], prefix=f"{beside[0]}: ")
    for one in baselines if isinstance(baselines, list) else [baselines]:
        for key, label in BASELINES:
            per = one.get("baselines", {}).get(key, {}).get("folds", {})
            if not per and isinstance(baselines, list):
                continue                # a file holding one baseline adds only its own row
            epochs = {(v.get("config") or {}).get("epochs") for v in per.values()} - {None}
            if len(epochs) == 1:        # the CNN's budget names its row: two files may hold CNNs of two lengths
                label += f", {epochs.pop()} epochs"
            rows.append({"row": label, "per_fold": [100 * per[f]["accuracy"] if f in per else None for f in FOLDS]})
    rows.append({"row": f"paper, Table 1, AM ({setting})", "per_fold": list(PAPER[setting])})
    for r in rows:
        r["mean"], r["std"], r["n_folds"] = _stats(r["per_fold"])
    return rows


def paired(summary: dict, other: dict, label: str) -> str:
    """Per way of choosing the epoch: the mean fold-by-fold difference (this run − the other, points) and on
    how many of the folds both have this run is better, worse or tied: the comparison of two runs on the same
    folds, which the two means alone hide."""
    out = []
    for key, name in ROWS:
        a, b = summary.get(key, {}).get("per_fold", {}), other.get(key, {}).get("per_fold", {})
        d = np.array([100 * (a[f] - b[f]) for f in FOLDS if f in a and f in b])
        if not len(d):
            continue
        better, worse = int((d > 1e-9).sum()), int((d < -1e-9).sum())
        out.append(f"{name}: this run − {label} = {d.mean():+.1f} points over {len(d)} folds; better on {better}, "
                   f"worse on {worse}, tied on {len(d) - better - worse}")
    return "\n".join(out)


def versus_baselines(rows: list[dict]) -> str:
    """Each of the run's rows against each baseline row, fold by fold (`metrics.paired_difference`)."""
    from mrpn.evaluation.metrics import paired_difference

    runs = [r for r in rows if r["row"].startswith("recipe")]
    out = []
    for b in (r for r in rows if r["row"].startswith("baseline")):
        for r in runs:
            if sum(x is not None and y is not None for x, y in zip(r["per_fold"], b["per_fold"])) >= 2:
                out.append(f"{r['row']} − {b['row'][len('baseline: '):]}: "
                           + paired_difference(r["per_fold"], b["per_fold"]))
    return "\n".join(out)


def markdown(rows: list[dict]) -> str:
    head = "| | " + " | ".join(FOLDS) + " | mean ± std over folds (n) |"
    out = [head, "| --- |" + " ---: |" * (len(FOLDS) + 1)]
    for r in rows:
        cells = [f"{x:.1f}" if x is not None else "–" for x in r["per_fold"]]
        out.append(f"| {r['row']} | " + " | ".join(cells) + f" | {r['mean']:.1f} ± {r['std']:.1f} ({r['n_folds']}) |")
    return "\n".join(out)


def curves(run_dir: Path, epochs: tuple[int, ...] = (10, 20, 30, 35, 40)) -> str:
    """Mean over the folds of `run_dir/fold_*/history.json` of the training accuracy (augmented crops) and
    the inner-validation accuracy at a few epochs: whether the run was still learning when it stopped, read
    without the test actors."""
    hists = [json.loads(p.read_text()) for p in sorted(run_dir.glob("fold_*/history.json"))]
    out = ["| epoch | training accuracy (augmented) | inner-validation accuracy | folds |", "| ---: | ---: | ---: | ---: |"]
    for e in epochs:
        rows = [h[e - 1] for h in hists if len(h) >= e]
        if rows:
            tr = 100 * np.mean([r["train_accuracy"] for r in rows])
            inner = 100 * np.mean([r.get("inner_accuracy", np.nan) for r in rows])
            out.append(f"| {e} | {tr:.1f} | {inner:.1f} | {len(rows)} |")
    return "\n".join(out)


def fit(run_dir: Path, decay_epochs: int = 28) -> str:
    """Per fold (`run_dir/fold_*/history.json` + metrics.json): the first epoch whose training accuracy (on
    the augmented clips) reaches 99 %, the training accuracy at the last epoch, the inner-validation accuracy
    `decay_epochs` before the end and at the end (does the schedule's decay still help?), its peak and the first
epoch that reaches it (what the inner choice picked, when it picks by accuracy), whether the last
    epoch beats the inner choice on the test pair, and the wall time (a record, not a speed figure)."""
    out = [f"| fold | first epoch train ≥ 99 % | train acc, last epoch | inner acc (epoch), n-{decay_epochs} "
           "or the first → n | inner acc peak (epoch) | last epoch vs inner choice (test pair) | wall time (s) |",
           "| --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    for d in sorted(run_dir.glob("fold_*")):
        try:
            h = json.loads((d / "history.json").read_text())
            m = json.loads((d / "metrics.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"am_fold_table: {d}: skipped, {e}", file=sys.stderr)  # an unfinished fold has no metrics.json
            continue
        first = next((r["epoch"] for r in h if r["train_accuracy"] >= 0.99), None)
        inner = [r.get("inner_accuracy") for r in h]
        k = max(len(h) - decay_epochs, 1)
        last, chosen = m.get("accuracy_last_epoch"), m.get("accuracy_inner_selected")
        cmp = "–" if last is None or chosen is None else (
            "tie" if abs(last - chosen) < 1e-9 else ("better" if last > chosen else "worse"))
        # a run shorter than decay_epochs starts from its first epoch; the epochs are printed so it shows
        inner_txt = peak_txt = "–"
        if inner[-1] is not None:
            inner_txt = f"{100 * inner[k - 1]:.1f} ({h[k - 1]['epoch']}) → {100 * inner[-1]:.1f} ({h[-1]['epoch']})"
            j = int(np.argmax([-1.0 if v is None else v for v in inner]))   # the first epoch at the peak
            peak_txt = f"{100 * inner[j]:.1f} ({h[j]['epoch']})"
        out.append(f"| {m.get('fold', d.name)} | {first if first else '–'} | {100 * h[-1]['train_accuracy']:.1f} | "
                   f"{inner_txt} | {peak_txt} | {cmp} | {m.get('wall_time_s', float('nan')):.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("summary", type=Path, help="summary.json of the AM run")
    p.add_argument("--baselines", type=Path, action="append",
                   help="bench/audio_baselines.py output; repeat it for several files (default: "
                   "docs/results/audio_baselines.json)")
    p.add_argument("--setting", choices=sorted(PAPER), default="T", help="the paper row to compare with")
    p.add_argument("--json", type=Path, help="also write the rows here")
    p.add_argument("--curves", action="store_true", help="also print the mean training / inner-validation "
                   "accuracy by epoch from the fold histories beside the summary")
    p.add_argument("--beside", type=Path, help="another run's summary.json, whose three rows are added")
    p.add_argument("--beside-label", default="T", help="prefix of those rows")
    p.add_argument("--fit", action="store_true", help="also print per-fold training statistics")
    p.add_argument("--versus", action="store_true", help="also print each row of the run against each "
                   "baseline, fold by fold (mean difference ± its standard error, wins and losses)")
    a = p.parse_args(argv)
    try:
        a.baselines = a.baselines or [Path("docs/results/audio_baselines.json")]
        summary, baselines = json.loads(a.summary.read_text()), [json.loads(b.read_text()) for b in a.baselines]
        beside = (a.beside_label, json.loads(a.beside.read_text())) if a.beside else None
    except (OSError, json.JSONDecodeError) as e:
        print(f"am_fold_table: {e}", file=sys.stderr)
        return 2
    rows = build(summary, baselines, a.setting, beside)
    print(markdown(rows))
    if beside is not None:
        print()
        print(paired(summary, beside[1], beside[0]))
    if a.versus:
        print()
        print(versus_baselines(rows))
    if a.curves:
        print()
        print(curves(a.summary.parent))
    if a.fit:
        print()
        print(fit(a.summary.parent))
    if a.json:
        from mrpn.io import atomic_write_json

        atomic_write_json(a.json, {"summary": str(a.summary), "baselines": [str(b) for b in a.baselines], "folds": FOLDS,
                                   "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
