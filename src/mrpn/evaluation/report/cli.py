"""`mrpn report RUN [RUN ...]`."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


from mrpn.evaluation.report.render import render_report
from mrpn.evaluation.report.runs import ReportWarning, load_runs
from mrpn.evaluation.report.tables import build_tables, format_tables


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
