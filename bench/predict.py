"""End-to-end latency of `mrpn predict` on the real 720p RAVDESS clips (decode + faces + audio + model),
PyTorch and ONNX Runtime, against a naive baseline in the same process (the same detector on every
full-resolution frame).

    python bench/predict.py [--model CKPT] [--data ../shared/data] [--repeat 3] [--out results.json]

With --out the table is also written as JSON (with the load average before and after and the machine),
the committed source of the figures in docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint or .safetensors (default: the shipped model)")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the results here as JSON")
    args = ap.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    import torch

    torch.set_num_threads(args.threads)
    from mrpn.inference.predictor import Predictor

    videos = sorted((Path(args.data) / "ravdess" / "video").rglob("01-*.mp4"))
    if not videos:
        sys.exit(f"no RAVDESS audio-video clips under {args.data}/ravdess/video")
    variants = {"torch": Predictor(args.model), "onnx": Predictor(args.model, backend="onnx")}
    naive = Predictor(args.model)
    fc = naive.face_config()
    fc.detect_every, fc.detect_width = 1, 0
    naive.face_config = lambda: fc  # the same detector on every full-resolution frame
    variants["naive (torch, detect every full-res frame)"] = naive
    for p in variants.values():          # warm up: model load, ONNX export, first-call costs
        p.predict_file(str(videos[0]))
    rows, durations = {}, {}
    for name, p in variants.items():
        totals, parts = [], []
        for _ in range(args.repeat):
            for v in videos:
                t0 = time.perf_counter()
                r = p.predict_file(str(v))
                totals.append(time.perf_counter() - t0)
                durations[v.name] = r.duration_s
                parts.append(r.timing)
        rows[name] = (min(totals), statistics.median(totals), statistics.median(t["read_s"] for t in parts),
                      statistics.median(t["model_s"] for t in parts),
                      statistics.median(t["real_time_factor"] for t in parts))
    dur = statistics.mean(durations.values())
    print(f"{len(videos)} clips of ~{dur:.1f} s, 1280x720, {args.repeat} repeats, {args.threads} threads; "
          f"seconds per clip: best and median of all runs, parts are medians")
    print(f"{'variant':46s} {'best':>6s} {'median':>7s} {'read (prepare_clip)':>20s} {'model':>7s} {'RTF':>6s}")
    for name, (b, t, d, m, rtf) in rows.items():
        print(f"{name:46s} {b:6.3f} {t:7.3f} {d:20.3f} {m:7.3f} {rtf:6.3f}")
    base = rows["naive (torch, detect every full-res frame)"][1]
    print(f"median speed-up over naive: torch {base / rows['torch'][1]:.2f}x, onnx {base / rows['onnx'][1]:.2f}x; "
          f"model part onnx vs torch {rows['torch'][3] / rows['onnx'][3]:.2f}x")
    if args.out:
        _write(args, rows, durations, load_before)


def _write(args: argparse.Namespace, rows: dict, durations: dict[str, float], load_before: list[float]) -> None:
    from mrpn.io import atomic_write_json
    from mrpn.provenance import machine_record

    keys = ("best_s", "median_s", "read_median_s", "model_median_s", "real_time_factor_median")
    base = rows["naive (torch, detect every full-res frame)"][1]
    atomic_write_json(Path(args.out), {
        "model": args.model or "shipped (mrpn-default)",
        "clip_s": {k: round(v, 3) for k, v in durations.items()}, "repeat": args.repeat, "threads": args.threads,
        "variants": {name: dict(zip(keys, (round(x, 4) for x in r))) for name, r in rows.items()},
        "median_speedup_over_naive": {n: round(base / rows[n][1], 3) for n in ("torch", "onnx")},
        "load_avg_before": load_before, "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine_record()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
