"""`mrpn demo`: the whole system on a generated corpus, in minutes, from a fresh install.

synth (faces + voices that show an emotion, with some clips deliberately fuzzy in one modality)
-> prepare (real decoding, real face detection) -> cross-validation of VM, AM, N0 late fusion,
N0 end-to-end, N1 and N2 (MRPN) on actor-disjoint folds -> report (tables, confusion matrices,
t-SNE) -> predict on one clip. Every step resumes if the demo is interrupted and re-run.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

MODELS = [("vm", "end-to-end"), ("am", "end-to-end"), ("n0", "late"), ("n0", "end-to-end"),
          ("n1", "end-to-end"), ("n2", "end-to-end")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="mrpn-demo", help="output folder (default ./mrpn-demo)")
    p.add_argument("--actors", type=int, default=6)
    p.add_argument("--clips-per-class", type=int, default=3)
    p.add_argument("--folds", type=int, default=2, help="how many of the actor folds to run")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--noise", type=float, default=0.15,
                   help="fraction of clips whose face, and of clips whose voice, shows another emotion")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny settings for a smoke test (CI)")


def main(args: argparse.Namespace) -> int:
    from mrpn.config import load_config
    from mrpn.data.datasets import scan
    from mrpn.data.prepare import PrepareConfig, run_prepare, write_preview
    from mrpn.synth import generate_corpus
    from mrpn.evaluation.report import load_runs, render_report
    from mrpn.training.cv import run_cv

    if args.quick:
        args.actors, args.clips_per_class, args.folds, args.epochs = 4, 2, 1, 2
    out = Path(args.out)
    t0 = time.perf_counter()

    def step(msg: str) -> None:
        print(f"\n[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    step(f"1/5 synth: {args.actors} actors x 6 emotions x {args.clips_per_class} clips "
         f"(face noise {args.noise:.0%}, voice noise {args.noise:.0%}) -> {out / 'corpus'}")
    manifest = generate_corpus(out / "corpus", n_actors=args.actors, clips_per_class=args.clips_per_class,
                               size=96, fps=25, face_noise=args.noise, voice_noise=args.noise, seed=args.seed,
                               workers=args.workers)
    step(f"2/5 prepare: decode, detect and crop faces (OpenCV), 16 kHz audio -> {out / 'cache'}")
    sc = scan("custom", manifest)
    res = run_prepare(sc, out / "cache", PrepareConfig(face_size=48, gray=True, detect_every=3),
                      workers=args.workers)
    print(f"  {getattr(res, 'ok', '?')} clips ready")
    from mrpn.data.cache import Cache

    write_preview(Cache(out / "cache"), out / "preview.png")
    runs = []
    for i, (kind, strategy) in enumerate(MODELS, 1):
        step(f"3/5 train {i}/{len(MODELS)}: {kind.upper()} ({strategy}), folds 1-{args.folds}, "
             f"{args.epochs} epochs each")
        name = kind if kind in ("vm", "am") else f"{kind}_{'late' if strategy == 'late' else 'e2e'}"
        ov = [f"model.kind={kind}", f"train.strategy={strategy}", f"train.epochs={args.epochs}",
              f"data.cache={out / 'cache'}", "data.dataset=synth", f"data.workers={min(args.workers, 1)}",
              f"train.seed={args.seed}", f"out={out / 'runs'}", f"name={name}", "train.lr=3e-3",
              "train.batch_size=8", "model.agg_hidden=64", "model.fusion_hidden=64"]
        if strategy == "late":
            ov.append(f"train.unimodal_runs=v={out / 'runs' / 'vm'},a={out / 'runs' / 'am'}")
        cfg = load_config("cpu", overrides=ov)
        run_cv(cfg, f"1-{args.folds}", progress=sys.stderr.isatty())
        runs.append(out / "runs" / name)
    step(f"4/5 report -> {out / 'report'}")
    written = render_report(load_runs(runs), out / "report", title="mrpn demo (synthetic corpus)")
    for k, v in (written.items() if isinstance(written, dict) else []):
        print(f"  {k}: {v}")
    step("5/5 predict on one clip with the N2 (MRPN) model of fold 1")
    from mrpn.inference.predict import format_prediction
    from mrpn.inference.predictor import Predictor

    clip = sc.clips[0]
    pred = Predictor(str(out / "runs" / "n2_e2e" / "fold_01" / "best.pt")).predict_file(clip.video, clip.audio)
    print(format_prediction(pred.to_dict(), max_rows=8))
    print(f"  (true label: {clip.label_name})")
    step(f"done in {time.perf_counter() - t0:.0f} s. Open {out / 'report' / 'report.md'}")
    return 0
