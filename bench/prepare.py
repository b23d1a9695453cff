"""Benchmark `mrpn prepare`'s video path on the real 720p RAVDESS clips (../shared/data).

Measures, on the same clips:
  decode      PyAV decoding alone (thread_type AUTO, all cores), frames/s
  pipeline    decode + detect + track + crop (mrpn.data.faces) with N worker processes
              (started and warmed up before timing), frames/s; also with 1 process
  naive       the same Haar detector at full resolution on every frame, crop the largest face,
              RGB decode, one process (this process): frames/s and the ratio
  end-to-end  `run_prepare` as the CLI runs it (workers started inside, audio, writes), frames/s
  spectrogram torch.stft (Hann 512, hop 64) of 1 s segments of a 4 s clip: on the fly vs
              loading precomputed ones from an npz, plus their size

    python bench/prepare.py [--data DIR] [--workers 2] [--repeat 3] [--naive-clips 2] [--json OUT]
"""
from __future__ import annotations

import argparse
import glob
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MRPN_DATA", REPO.parent / "shared" / "data")) / "ravdess" / "video" / "Actor_01"


# ---------------------------------------------------------------------------------------------
# workers

def _init(threads: int) -> None:
    import cv2

    cv2.setNumThreads(1)
    global _DET, _THREADS
    from mrpn.data.faces import make_detector

    _DET = make_detector("opencv")
    _THREADS = threads


def _track(path: str) -> int:
    from mrpn.data.faces import FaceConfig, track_faces
    from mrpn.data.media import VideoReader

    with VideoReader(path, format="yuv", threads=_THREADS) as r:
        return len(track_faces(r, _DET, FaceConfig()).found)


def _noop(_: int) -> int:
    return 0


# ---------------------------------------------------------------------------------------------
# measurements

def decode_only(files: list[str], threads: int = 0) -> float:
    from mrpn.data.media import VideoReader

    n, t0 = 0, time.perf_counter()
    for f in files:
        with VideoReader(f, format="yuv", threads=threads) as r:
            for _ in r:
                n += 1
    return n / (time.perf_counter() - t0)


def pipeline(files: list[str], workers: int, repeat: int) -> tuple[float, list[float]]:
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("spawn")
    rates = []
    with ctx.Pool(workers, initializer=_init, initargs=(threads,)) as pool:
        pool.map(_noop, range(workers * 4))               # workers started and imported
        pool.map(_track, files[:workers])                 # and warm
        for _ in range(repeat):
            t0 = time.perf_counter()
            n = sum(pool.imap_unordered(_track, files, chunksize=1))
            rates.append(n / (time.perf_counter() - t0))
    return max(rates), rates


def pipeline_in_process(files: list[str]) -> float:
    _init(0)
    n, t0 = 0, time.perf_counter()
    for f in files:
        n += _track(f)
    return n / (time.perf_counter() - t0)


def naive(files: list[str]) -> float:
    """Haar (same settings) on every full-resolution frame; largest face; plain crop + resize."""
    import cv2

    from mrpn.data.faces import crop_square, largest, make_detector
    from mrpn.data.media import VideoReader

    det = make_detector("opencv")
    n, t0 = 0, time.perf_counter()
    for f in files:
        with VideoReader(f, format="rgb24", threads=0) as r:
            box = None
            for frame in r:
                best = largest(det.detect(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)))
                box = best[:4] if best else box
                if box is not None:
                    crop_square(frame, box, 112, 0.25)
                n += 1
    return n / (time.perf_counter() - t0)


def end_to_end(files: list[str], workers: int) -> dict:
    from mrpn.data.clip import Clip
    from mrpn.data.prepare import PrepareConfig, run_prepare

    clips = [Clip(id=Path(f).stem, dataset="ravdess", label=0, label_name="x", actor="01", video=f) for f in files]
    scan = type("Scan", (), {"dataset": "ravdess", "classes": ["x"], "clips": clips, "problems": []})
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = run_prepare(scan, d, PrepareConfig(), workers=workers, progress=False, log=lambda m: None)
        wall = time.perf_counter() - t0
    return {"frames": res.frames, "wall_s": round(wall, 2), "frames_per_s": round(res.frames / wall, 1),
            "ok": res.ok}


def spectrogram(repeat: int = 50) -> dict:
    import torch

    torch.set_num_threads(1)
    sr, n_fft, hop = 16000, 512, 64
    x = torch.randn(4 * sr)
    window = torch.hann_window(n_fft)
    starts = list(range(0, 3 * sr + 1, sr // 5))          # 1 s segments every 0.2 s: 16 segments
    segs = torch.stack([x[s:s + sr] for s in starts])

    def stft(batch):
        return torch.stft(batch, n_fft, hop_length=hop, window=window, return_complex=True).abs()

    stft(segs)
    t0 = time.perf_counter()
    for _ in range(repeat):
        spec = stft(segs)
    t_fly = (time.perf_counter() - t0) / repeat
    t0 = time.perf_counter()
    for _ in range(repeat):
        stft(segs[::5])                                      # 4 non-overlapping segments
    t_fly4 = (time.perf_counter() - t0) / repeat
    arr = spec.numpy().astype(np.float32)
    from mrpn.data.cache import npz_bytes

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "s.npz"
        p.write_bytes(npz_bytes({"spec": arr}))
        q = Path(d) / "a.npz"
        q.write_bytes(npz_bytes({"audio": x.numpy()}))
        t0 = time.perf_counter()
        for _ in range(repeat):
            with np.load(p) as z:
                z["spec"]
        t_load = (time.perf_counter() - t0) / repeat
        t0 = time.perf_counter()
        for _ in range(repeat):
            with np.load(q) as z:
                z["audio"]
        t_load_audio = (time.perf_counter() - t0) / repeat
        size_spec, size_audio = p.stat().st_size, q.stat().st_size
    return {
        "segments": len(starts), "spec_shape": list(arr.shape[1:]),
        "stft_16_segments_ms": round(t_fly * 1e3, 3), "stft_4_segments_ms": round(t_fly4 * 1e3, 3),
        "load_precomputed_16_ms": round(t_load * 1e3, 3), "load_raw_audio_ms": round(t_load_audio * 1e3, 3),
        "precomputed_bytes_per_clip": size_spec, "raw_audio_bytes_per_clip": size_audio,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="folder of .mp4 clips (default: RAVDESS actor 1)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive-clips", type=int, default=2, help="clips for the (slow) naive baseline")
    ap.add_argument("--skip", nargs="*", default=[], choices=["naive", "e2e", "spectrogram", "single"])
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.data, "*.mp4")))
    if not files:
        print(f"no .mp4 files in {args.data}", file=sys.stderr)
        return 2
    out: dict = {"clips": len(files), "cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg()[0]}
    out["decode_fps"] = round(decode_only(files), 1)
    print(f"decode only (PyAV, AUTO threads): {out['decode_fps']} frames/s", flush=True)
    best, rates = pipeline(files, args.workers, args.repeat)
    out["pipeline_fps"], out["pipeline_runs"] = round(best, 1), [round(r, 1) for r in rates]
    print(f"decode+detect+crop, {args.workers} workers: {best:.1f} frames/s (runs {out['pipeline_runs']})", flush=True)
    if "single" not in args.skip:
        out["pipeline_1proc_fps"] = round(pipeline_in_process(files), 1)
        print(f"decode+detect+crop, 1 process: {out['pipeline_1proc_fps']} frames/s", flush=True)
    if "naive" not in args.skip:
        out["naive_fps"] = round(naive(files[: args.naive_clips]), 1)
        out["ratio_vs_naive"] = round(best / out["naive_fps"], 1)
        print(f"naive (Haar on every full-res frame, 1 process): {out['naive_fps']} frames/s "
              f"-> pipeline is {out['ratio_vs_naive']}x faster", flush=True)
        if "pipeline_1proc_fps" in out:
            out["ratio_1proc_vs_naive"] = round(out["pipeline_1proc_fps"] / out["naive_fps"], 1)
            print(f"  (1 process vs naive: {out['ratio_1proc_vs_naive']}x)", flush=True)
    if "e2e" not in args.skip:
        out["end_to_end"] = end_to_end(files, args.workers)
        print(f"end to end (run_prepare, {args.workers} workers incl. start-up, audio, writes): "
              f"{out['end_to_end']}", flush=True)
    if "spectrogram" not in args.skip:
        out["spectrogram"] = spectrogram()
        print(f"spectrogram: {out['spectrogram']}", flush=True)
    out["load_avg_end"] = os.getloadavg()[0]
    print(f"load average (1 min) at start {out['load_avg_start']:.2f}, end {out['load_avg_end']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
