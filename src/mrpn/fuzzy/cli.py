"""`mrpn fuzzy`: sweep the fuzzy fraction of the synthetic corpus and compare VM, AM, N0, N1, N2.

For every seed (a new corpus: new actors, new clips) and fuzzy level, the six models train on
actor-disjoint folds; each model is tested on the held-out actors' clean clips and on the same
clips at the training level. The report (OUT/report.md) has a line plot of accuracy against the
fuzzy fraction (95 % CI over seeds x folds), the tables, and the paired differences N2-N1 and N2-N0
with confidence intervals. Resumable: re-running skips every finished fold.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .experiment import MODELS, Setup, level_tag


def _floats(s: str) -> list[float]:
    try:
        v = [float(x) for x in s.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0,0.1,0.2, got {s!r}") from None
    if not v or any(not 0.0 <= x <= 0.9 for x in v):
        raise argparse.ArgumentTypeError(f"fractions must be in [0, 0.9], got {s!r}")
    return sorted(set([0.0] + v))


def _ints(s: str) -> list[int]:
    try:
        return [int(x) for x in s.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1000,1001, got {s!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/fuzzy", help="output folder (default runs/fuzzy)")
    p.add_argument("--levels", type=_floats, default=[0.0, 0.1, 0.2, 0.3, 0.4],
                   help="fuzzy fractions (0 is always included; default 0,0.1,0.2,0.3,0.4)")
    p.add_argument("--seeds", type=_ints, default=[1000, 1001, 1002],
                   help="corpus and training seeds (default 1000,1001,1002; 100-199 were used to tune the generator)")
    p.add_argument("--folds", type=int, default=3, help="how many of the actor folds to run (default 3)")
    p.add_argument("--n-folds", type=int, default=4, help="actor-disjoint folds per corpus (default 4)")
    p.add_argument("--actors", type=int, default=12)
    p.add_argument("--clips-per-class", type=int, default=2)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--noise-kind", choices=["mixed", "missing", "fuzzy"], default="mixed",
                   help="what a fuzzy modality shows (paper 3.1): missing = neutral, fuzzy = another emotion")
    p.add_argument("--workers", type=int, default=2, help="parallel training processes (default 2)")
    p.add_argument("--quick", action="store_true", help="minutes: levels 0,0.3, one seed, one fold, 8 actors")
    p.add_argument("--report-only", action="store_true", help="only (re)write the report from finished runs")


def _job(job: tuple) -> tuple:
    import torch

    torch.set_num_threads(1)
    from .experiment import train_models
    from .results import runs_dir

    root, seed, level, fold, setup, folds, pretrained = job
    cache = Path(root) / f"seed{seed}" / f"cache_{level_tag(level)}"
    train_models(cache, runs_dir(Path(root), seed, level), Path(folds), [fold], setup, seed, pretrained)
    return seed, level, fold


class Progress:
    """tqdm on a terminal, otherwise one line per finished job with the elapsed time and an estimate."""

    def __init__(self, total: int, done: int):
        self.total, self.done, self.t0, self.start_done = total, done, time.perf_counter(), done
        self.bar = None
        from mrpn.progress import is_terminal

        if is_terminal(sys.stderr):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="job", desc="fuzzy sweep", file=sys.stderr)

    def update(self, what: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(what)
            return
        el = time.perf_counter() - self.t0
        rate = el / max(1, self.done - self.start_done)
        eta = rate * (self.total - self.done)
        print(f"[{self.done}/{self.total}] {what}  elapsed {el / 60:.1f} min, about {eta / 60:.0f} min left",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_sweep(out: Path, setup: Setup, seeds: list[int], levels: list[float], fold_ids: list[int],
              workers: int) -> None:
    from .experiment import make_corpus, pretrained_extractors, write_folds
    from .results import runs_dir

    pretrained = pretrained_extractors(out) if setup.pretrained else None
    jobs, done = [], 0
    for s in seeds:
        for lv in levels:
            make_corpus(out, setup, s, lv, workers=workers)
        folds = write_folds(out, setup, s)
        for lv in levels:
            for k in fold_ids:
                if (runs_dir(out, s, lv) / MODELS[-1][0] / f"fold_{k:02d}" / "metrics.json").is_file():
                    done += 1
                else:
                    jobs.append((str(out), s, lv, k, setup, str(folds), pretrained))
    bar = Progress(done + len(jobs), done)
    try:
        if workers <= 1:
            for j in jobs:
                s, lv, k = _job(j)
                bar.update(f"seed {s} level {level_tag(lv)} fold {k}")
        else:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(min(workers, max(1, len(jobs)))) as pool:
                for s, lv, k in pool.imap_unordered(_job, jobs):
                    bar.update(f"seed {s} level {level_tag(lv)} fold {k}")
    finally:
        bar.close()


def write_report(out: Path, setup: Setup, seeds: list[int], levels: list[float], fold_ids: list[int],
                 command: str) -> Path:
    from mrpn.io import atomic_write_json, atomic_write_text

    from .breakdown import breakdown, markdown_breakdown
    from .report import markdown_tables, plot_sweep
    from .results import collect, summarise

    rows = collect(out, seeds, levels, fold_ids)
    summary = summarise(rows, levels)
    plot_sweep(summary, out / "accuracy_vs_fuzzy.png",
               title=f"seeds {','.join(map(str, seeds))}, folds {','.join(map(str, fold_ids))} of {setup.n_folds}")
    atomic_write_json(out / "results.json", {"command": command, "setup": setup.to_dict(), "seeds": seeds,
                                             "levels": levels, "folds": fold_ids, "rows": rows, "summary": summary})
    bd = breakdown(out, seeds, levels, fold_ids)
    atomic_write_json(out / "breakdown.json", bd)
    md = ["# Controlled-fuzziness sweep (paper section 3)", "", f"Command: `{command}`", "",
          "![accuracy against fuzzy fraction](accuracy_vs_fuzzy.png)", "", markdown_tables(summary),
          markdown_breakdown(bd), f"Setup: `{json.dumps(setup.to_dict())}`", ""]
    atomic_write_text(out / "report.md", "\n".join(md))
    return out / "report.md"


def main(args: argparse.Namespace) -> int:
    setup = Setup(actors=args.actors, clips_per_class=args.clips_per_class, epochs=args.epochs,
                  n_folds=args.n_folds, noise_kind=args.noise_kind)
    levels, seeds, nf = args.levels, args.seeds, args.folds
    if args.quick:
        setup = Setup(actors=8, clips_per_class=2, epochs=8, n_folds=4, noise_kind=args.noise_kind)
        levels, seeds, nf = [0.0, 0.3], seeds[:1], 1
    if not 2 <= setup.n_folds <= setup.actors or not 1 <= nf <= setup.n_folds:
        print("mrpn fuzzy: need 2 <= --n-folds <= --actors and 1 <= --folds <= --n-folds", file=sys.stderr)
        return 2
    out, fold_ids = Path(args.out), list(range(1, nf + 1))
    command = "mrpn fuzzy " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "mrpn fuzzy"
    t0 = time.perf_counter()
    if not args.report_only:
        run_sweep(out, setup, seeds, levels, fold_ids, args.workers)
    path = write_report(out, setup, seeds, levels, fold_ids, command)
    print(f"report: {path}  ({(time.perf_counter() - t0) / 60:.1f} min)")
    return 0
