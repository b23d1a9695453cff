"""The three selections (inner / last epoch / test fold) of the paired benchmark's runs, on the folds that
every run has finished (docs/RESULTS.md section 3). Reads each run's summary.json (`mrpn cv`).

    python3 tools/paired_selections.py runs/paired2_vm runs/paired2_am runs/paired2_n0_late \
        runs/paired2_n0_e2e runs/paired2_n1_e2e runs/paired2_n2_e2e --json docs/results/paired_v2/selections.json

`--previous SELECTIONS.json` adds the runs of an earlier output (its per-fold values: the run folders need
not be there); `--diff A,B` prints, per selection, run A − run B fold by fold (mean ± standard error, wins).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

KEYS = [("accuracy_inner_selected", "epoch chosen on the inner actors"), ("accuracy_last_epoch", "last epoch"),
        ("accuracy_test_selected", "epoch chosen on the test fold (paper's selection)")]


def diff(table: dict, a: str, b: str) -> str:
    """Run a − run b over the table's folds, per selection (`metrics.paired_difference`, in points)."""
    from mrpn.evaluation.metrics import paired_difference

    lines = []
    for k, label in KEYS:
        x, y = table["runs"][a][k]["per_fold"], table["runs"][b][k]["per_fold"]
        lines.append(f"{a} − {b}, {label}: " + paired_difference([100 * x[f] for f in table["folds"]],
                                                                   [100 * y[f] for f in table["folds"]]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", type=Path, help="run folders (mrpn cv --name)")
    ap.add_argument("--json", type=Path, help="also write the table as JSON here")
    ap.add_argument("--previous", type=Path, help="an earlier --json output whose runs are added")
    ap.add_argument("--diff", action="append", default=[], metavar="A,B", help="print run A − run B by fold")
    a = ap.parse_args(argv)
    try:
        summaries = {r.name: json.loads((r / "summary.json").read_text()) for r in a.runs}
        if a.previous:
            for name, row in json.loads(a.previous.read_text())["runs"].items():
                summaries.setdefault(name, {k: {"per_fold": row[k]["per_fold"]} for k, _ in KEYS})
    except (OSError, ValueError, KeyError) as e:
        print(f"paired_selections: {e}", file=sys.stderr)
        return 1
    pairs = [pair.split(",") for pair in a.diff]
    if not summaries or any(len(p) != 2 or not set(p) <= set(summaries) for p in pairs):
        print(f"paired_selections: no runs, or a --diff that is not two of {', '.join(summaries)} (A,B)",
              file=sys.stderr)
        return 1
    per_run = [set(s[k]["per_fold"]) for s in summaries.values() for k, _ in KEYS]
    folds = [f for f in next(iter(summaries.values()))[KEYS[0][0]]["per_fold"] if all(f in p for p in per_run)]
    out = {"folds": folds, "std": "population (ddof 0), as mrpn cv summaries", "runs": {}}
    print(f"folds finished by every run: {', '.join(folds)}\n")
    print("| run | " + " | ".join(label for _, label in KEYS) + " |")
    print("| --- |" + " ---: |" * len(KEYS))
    for name, s in summaries.items():
        row = {}
        for k, _ in KEYS:
            v = np.array([s[k]["per_fold"][f] for f in folds], dtype=float)
            row[k] = {"mean": float(v.mean()), "std": float(v.std()), "per_fold": dict(zip(folds, v.tolist()))}
        out["runs"][name] = row
        print(f"| {name} | " + " | ".join(f"{100 * row[k]['mean']:.1f} ± {100 * row[k]['std']:.1f} %"
                                           for k, _ in KEYS) + " |")
    for run_a, run_b in pairs:
        print()
        print(diff(out, run_a, run_b))
    if a.json:
        from mrpn.io import atomic_write_json
        atomic_write_json(a.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
