"""`mrpn demo`: the controlled-fuzziness experiment in its shortest form, in minutes, from a fresh install.

synth (faces + voices that show an emotion; a clean corpus and the same corpus with a fraction of the
clips fuzzy in one modality) -> prepare (real decoding, real face detection) -> six models (VM, AM,
N0 late, N0 end-to-end, N1, N2 = MRPN) per level on held-out actors -> report (bars, tables,
confusion matrices, t-SNE) -> prediction on an example clip fixed by the seed -> a plain summary.
Every step resumes if the demo is interrupted and re-run; the two levels train in parallel processes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from mrpn.fuzzy.experiment import FUSION, LABELS, MODELS, MRPN, UNIMODAL, Setup, level_tag


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="mrpn-demo", help="output folder (default ./mrpn-demo)")
    p.add_argument("--actors", type=int, default=12, help="synthetic actors (default 12)")
    p.add_argument("--clips-per-class", type=int, default=2, help="clips per actor and emotion (default 2)")
    p.add_argument("--fuzzy", type=float, default=0.3,
                   help="fraction of clips fuzzy in one modality at the second level (default 0.3)")
    p.add_argument("--folds", type=int, default=1, help="how many of the 4 actor folds to run (default 1)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--workers", type=int, default=2, help="processes (the two levels train side by side)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small settings for a smoke test (CI)")


def _train_level(job: tuple) -> str:
    """Worker: the six models of one level (one torch thread: two levels share the two cores)."""
    import torch

    torch.set_num_threads(1)
    from mrpn.fuzzy.experiment import train_models

    cache, runs, folds, fold_ids, setup, seed, pretrained = job
    train_models(Path(cache), Path(runs), Path(folds), fold_ids, setup, seed, pretrained,
                 on_done=lambda name, k: print(f"    level {Path(runs).name[-3:]}: {LABELS[name]} fold {k} done",
                                               flush=True))
    return runs


def _train(jobs: list[tuple], workers: int) -> None:
    if workers <= 1 or len(jobs) == 1:
        for j in jobs:
            _train_level(j)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        for _ in pool.imap_unordered(_train_level, jobs):
            pass


def _example_clip(out: Path, setup: Setup, seed: int, folds: Path) -> dict:
    """A held-out clip of fold 1 drawn with the seed (not chosen by its result)."""
    import numpy as np

    from mrpn.data.folds import load_protocol

    val = set(load_protocol(str(folds)).folds[0].val_actors)
    info = json.loads((out / f"seed{seed}" / "corpus_p00" / "synth.json").read_text())
    clips = [c for c in info["clips"] if c["speaker"] in val]
    return clips[int(np.random.default_rng([seed, 11]).integers(len(clips)))]


def _summary_text(summary: dict, fuzzy: float) -> list[str]:
    acc = summary["accuracy"]
    clean = {n: acc["p00"][n]["clean"]["mean"] for n, _, _ in MODELS}
    fz = {n: acc[level_tag(fuzzy)][n]["clean"]["mean"] for n, _, _ in MODELS}
    best_uni = max(UNIMODAL, key=lambda n: clean[n])
    best_fus = max(FUSION, key=lambda n: clean[n])
    gain = clean[best_fus] - clean[best_uni]
    verdict = ("face and voice together beat either alone" if gain > 0 else
               "in this run fusion did not beat the best single modality")
    lines = [f"Clean training: the best fusion model is {LABELS[best_fus]} with {100 * clean[best_fus]:.0f} % on actors "
             f"it never saw, {100 * gain:+.0f} points against the best single modality "
             f"({LABELS[best_uni]}, {100 * clean[best_uni]:.0f} %): {verdict}."]
    change = {n: fz[n] - clean[n] for n in FUSION}
    held = max(FUSION, key=lambda n: change[n])
    hurt = min(FUSION, key=lambda n: change[n])
    best_fz = max(FUSION, key=lambda n: fz[n])
    lines.append(f"With {100 * fuzzy:.0f} % of the training clips fuzzy in one modality (tested on clean clips), "
                 f"{LABELS[best_fz]} is best ({100 * fz[best_fz]:.0f} %); {LABELS[held]} held up best "
                 f"({100 * change[held]:+.0f} points against its clean training), {LABELS[hurt]} suffered most "
                 f"({100 * change[hurt]:+.0f}).")
    agrees = "this run agrees" if held == MRPN else f"in this run {LABELS[held]} did"
    lines.append(f"The paper (section 3) expects N2 (MRPN) to suffer least from fuzzy modalities ({agrees}). One fold of a "
                 "small corpus is an illustration, not evidence: differences of a few points are within the "
                 "run-to-run spread; `mrpn fuzzy` sweeps the fraction over folds and seeds with confidence intervals.")
    return lines


def main(args: argparse.Namespace) -> int:
    from mrpn.fuzzy.experiment import make_corpus, pretrained_extractors, write_folds
    from mrpn.fuzzy.results import collect, runs_dir, summarise
    from mrpn.io import atomic_write_json, atomic_write_text

    setup = Setup(actors=args.actors, clips_per_class=args.clips_per_class, epochs=args.epochs)
    if args.quick:
        setup = Setup(actors=8, clips_per_class=2, epochs=8, n_folds=4)
        args.folds = 1
    if not 0.0 < args.fuzzy <= 0.9:
        print(f"mrpn demo: --fuzzy must be in (0, 0.9], got {args.fuzzy}", file=sys.stderr)
        return 2
    out, seed, levels = Path(args.out), args.seed, [0.0, args.fuzzy]
    fold_ids = list(range(1, min(args.folds, setup.n_folds) + 1))
    t0 = time.perf_counter()

    def step(msg: str) -> None:
        # CPU seconds of this process and its finished workers: under load the wall clock says little
        # about an idle machine, the CPU time does (about half of it on two idle cores)
        c = os.times()
        cpu = c.user + c.system + c.children_user + c.children_system
        print(f"[{time.perf_counter() - t0:5.0f} s, cpu {cpu:5.0f} s] {msg}", flush=True)

    step(f"1/5 synth + prepare: {setup.actors} actors x 6 emotions x {setup.clips_per_class} clips, clean and "
         f"{100 * args.fuzzy:.0f} % fuzzy (half in the face, half in the voice) -> {out}")
    caches = {lv: make_corpus(out, setup, seed, lv, workers=args.workers) for lv in levels}
    folds = write_folds(out, setup, seed)
    pretrained = pretrained_extractors(out) if setup.pretrained else None
    step(f"2/5 train VM, AM, N0 late, N0 end-to-end, N1, N2 at both levels, fold(s) {fold_ids} of "
         f"{setup.n_folds}, {setup.epochs} epochs")
    jobs = [(str(caches[lv]), str(runs_dir(out, seed, lv)), str(folds), fold_ids, setup, seed, pretrained)
            for lv in levels]
    _train(jobs, args.workers)
    step("3/5 score the fuzzy-trained models on the clean held-out clips too")
    rows = collect(out, [seed], levels, fold_ids)
    summary = summarise(rows, levels)
    step(f"4/5 report -> {out / 'report'}")
    _report(out, summary, rows, levels, setup, seed, args)
    step("5/5 predict an example clip (drawn with the seed from the held-out actors) with N2 trained clean")
    ex = _example_clip(out, setup, seed, folds)
    from mrpn.inference.predict import format_prediction
    from mrpn.inference.predictor import Predictor

    from mrpn.data.cache import Cache

    # from its prepared crops (margin 0, see experiment.make_corpus), not `predict_file`'s default margin
    best = runs_dir(out, seed, 0.0) / MRPN / "fold_01" / "best.pt"
    arr = Cache(out / f"seed{seed}" / "cache_p00").load(Path(ex["video"]).stem)
    pred = Predictor(str(best)).predict_arrays(arr["faces"], arr["face_found"], float(arr["fps"]), arr["audio"],
                                               name=ex["video"]).to_dict()
    print(format_prediction(pred, max_rows=6))
    ok = pred["label"] == ex["label"]
    print(f"  true label: {ex['label']}  -> {'correct' if ok else 'wrong'}")
    atomic_write_json(out / "report" / "example.json", {"clip": ex, "prediction": pred, "correct": ok})
    text = _summary_text(summary, args.fuzzy)
    atomic_write_text(out / "report" / "summary.txt", "\n".join(text) + "\n")
    step(f"done in {time.perf_counter() - t0:.0f} s. Open {out / 'report' / 'report.md'}\n")
    print("\n".join(text))
    return 0


def _report(out: Path, summary: dict, rows: list, levels: list[float], setup: Setup, seed: int, args) -> None:
    from mrpn.evaluation.report import load_runs, render_report
    from mrpn.fuzzy.report import markdown_tables, plot_levels_bars
    from mrpn.fuzzy.results import runs_dir
    from mrpn.io import atomic_write_json, atomic_write_text

    rep = out / "report"
    rep.mkdir(parents=True, exist_ok=True)
    plot_levels_bars(summary, rep / "accuracy.png", title=f"mrpn demo: held-out actors, seed {seed}")
    for lv in levels:
        runs = [runs_dir(out, seed, lv) / n for n, _, _ in MODELS]
        render_report(load_runs(runs), rep / level_tag(lv), title=f"mrpn demo, {100 * lv:.0f} % fuzzy training clips")
    atomic_write_json(rep / "results.json", {"setup": setup.to_dict(), "seed": seed, "rows": rows, "summary": summary})
    md = [f"# mrpn demo (seed {seed})", "", "![accuracy](accuracy.png)", "", markdown_tables(summary),
          "Per-level reports (confusion matrices, t-SNE): " +
          ", ".join(f"[{level_tag(lv)}]({level_tag(lv)}/report.md)" for lv in levels), "",
          f"Setup: `{json.dumps(setup.to_dict())}`", ""]
    atomic_write_text(rep / "report.md", "\n".join(md))
