"""`mrpn live` on a ~30 s real 720p file played at real-time speed and on the same file streamed from a
127.0.0.1 HTTP server: latency per hop, dropped hops, real-time factor; and, in this process, the live
path's work per second of input against a naive baseline on the same decoded input.

    python bench/live.py [--data ../shared/data] [--seconds 30] [--out docs/results/serving/live.json]
                         [--only-ratio]

The baseline predicts every window as if it were a separate 1 s clip: a fresh `StreamPredictor` per
window, so the face tracker starts anew on the window's frames and the audio is standardised over that
window alone, then the same model call. The live path (one `StreamPredictor` for the stream) tracks each
frame once and keeps the crops, and standardises audio with running statistics from the stream's start;
with a 1 s window and a 0.2 s hop the baseline tracks every frame five times. Both get the same decoded
frames and samples (decoding is timed in neither) and the same warmed-up predictor. The share of windows
with the same label mixes both differences (tracking and audio statistics). `--only-ratio` needs `--out`:
it writes only this comparison, and must not replace the full record.

The 30 s input is the 6 RAVDESS actor-1 clips (1280x720, 29.97 fps, AAC) decoded and re-encoded one after
another (and again from the first until 30 s) into a temporary mkv, never into the repository.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def concat_clips(videos: list[Path], seconds: float, out: Path) -> float:
    """Decode the clips in turn and encode them into one mkv (H.264 + AAC 48 kHz) of `seconds`."""
    import av

    with av.open(str(out), "w") as c:
        vs = c.add_stream("libx264", rate=Fraction(30000, 1001))
        vs.width, vs.height, vs.pix_fmt = 1280, 720, "yuv420p"
        vs.options = {"preset": "ultrafast", "threads": "2"}
        as_ = c.add_stream("aac", rate=48000, layout="mono")
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=48000)
        n_v, n_a, k = 0, 0, 0
        fifo = av.AudioFifo()
        while n_v / 29.97 < seconds:
            with av.open(str(videos[k % len(videos)])) as src:
                for frame in src.decode(src.streams.video[0], src.streams.audio[0]):
                    if isinstance(frame, av.VideoFrame):
                        if n_v / 29.97 >= seconds:
                            continue
                        f = frame.reformat(width=1280, height=720, format="yuv420p")
                        f.pts, f.time_base = n_v, Fraction(1001, 30000)
                        n_v += 1
                        for p in vs.encode(f):
                            c.mux(p)
                    else:
                        for r in resampler.resample(frame):
                            r.pts = None
                            fifo.write(r)
                        while fifo.samples >= 1024 and n_a / 48000 < n_v / 29.97:
                            a = fifo.read(1024)
                            a.pts, a.time_base = n_a, Fraction(1, 48000)
                            n_a += 1024
                            for p in as_.encode(a):
                                c.mux(p)
            k += 1
        for s in (vs, as_):
            for p in s.encode():
                c.mux(p)
    return n_v / 29.97


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_live(source: str, extra: list[str], tmp: Path, tag: str) -> dict:
    summary, hops = tmp / f"{tag}.json", tmp / f"{tag}.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    before = load_avg()
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "mrpn.cli", "live", source, *extra, "--summary", str(summary),
                        "--jsonl", str(hops)], env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"mrpn live failed: {r.stderr}")
    s = json.loads(summary.read_text())
    lat = [json.loads(x)["latency_s"] for x in hops.read_text().splitlines()]
    s.update({"command_wall_s": round(wall, 2), "load_avg_before": before, "load_avg_after": load_avg(),
              "latency_per_hop_s": lat, "stderr_tail": r.stderr.strip().splitlines()[-3:]})
    return s


def decode_all(path: Path, fps: float) -> tuple[list, list, float]:
    """The file through `mrpn live`'s own Reader, unpaced: kept frames and 16 kHz chunks with their times."""
    from mrpn.inference.live import Reader, open_source

    r = Reader(open_source(str(path)), fps, paced=False)
    r.start()
    frames, chunks = [], []
    while True:
        kind, t, data = r.q.get()
        if kind == "end":
            return frames, chunks, r.fps
        (frames if kind == "frame" else chunks).append((t, data))


def incremental_vs_naive(path: Path, fps: float = 15.0, threads: int = 1) -> dict:
    """Seconds of work per second of input, live path against the per-window baseline, in one process."""
    import numpy as np
    import torch

    from mrpn.inference.live import SR, warm_up
    from mrpn.inference.predictor import Predictor, StreamPredictor

    torch.set_num_threads(threads)
    frames, chunks, fps = decode_all(path, fps)
    if not frames or not chunks:
        sys.exit(f"{path}: the comparison needs a video with an audio track")
    audio = np.concatenate([c for _, c in chunks])
    media_s = min(len(frames) / fps, len(audio) / SR)
    pred = Predictor()
    warm_up(pred)
    before = load_avg()
    # live path: every frame and chunk pushed once, in arrival order (as Live.run feeds it)
    items = sorted([(t, 0, f) for t, f in frames] + [(t, 1, c) for t, c in chunks], key=lambda x: (x[0], x[1]))
    t0 = time.perf_counter()
    sp = StreamPredictor(pred, fps=fps)
    live = []
    for _, kind, data in items:
        live += sp.push([data]) if kind == 0 else sp.push((), data)
    live += sp.finish()
    live_s = time.perf_counter() - t0
    # baseline: each window from scratch
    t0 = time.perf_counter()
    naive = []
    for w in live:
        s, e = w["start"], w["end"]
        i0, i1 = int(round(s * fps)), int(round(e * fps))
        one = StreamPredictor(pred, fps=fps)
        got = one.push([f for _, f in frames[i0:i1]], audio[int(round(s * SR)):int(round(e * SR))])
        got += one.finish()
        naive.append(got[0] if got else None)
    naive_s = time.perf_counter() - t0
    same = sum(b is not None and a["label"] == b["label"] for a, b in zip(live, naive))
    return {"what": "work per second of input, in this process, on the same decoded frames and audio",
            "media_s": round(media_s, 2), "windows": len(live),
            "baseline_windows_missing": sum(b is None for b in naive), "fps": fps, "torch_threads": threads,
            "live_path_s": round(live_s, 3), "naive_per_window_s": round(naive_s, 3),
            "live_real_time_factor": round(live_s / media_s, 4),
            "naive_real_time_factor": round(naive_s / media_s, 4),
            "speedup": round(naive_s / live_s, 2), "same_label_share": round(same / max(len(live), 1), 4),
            "load_avg_before": before, "load_avg_after": load_avg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--out", help="the result (default docs/results/serving/live.json; required with --only-ratio)")
    ap.add_argument("--only-ratio", action="store_true", help="skip the two real-time runs of `mrpn live`")
    args = ap.parse_args()
    if args.only_ratio and not args.out:
        sys.exit("--only-ratio writes a partial result: give --out (the default file holds the full record)")
    args.out = args.out or str(REPO / "docs" / "results" / "serving" / "live.json")
    videos = sorted((Path(args.data) / "ravdess" / "video").rglob("*.mp4"))
    if not videos:
        sys.exit(f"no RAVDESS clips under {args.data}/ravdess/video")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clip = tmp / "ravdess30.mkv"
        dur = concat_clips(videos, args.seconds, clip)
        res = {"input": f"{len(videos)} RAVDESS actor-1 clips re-encoded into one {dur:.1f} s 1280x720 mkv",
               "cpu_count": os.cpu_count()}
        res["incremental_vs_naive"] = incremental_vs_naive(clip)
        if args.only_ratio:
            return report(res, args.out)
        res["file_realtime"] = run_live(str(clip), ["--realtime"], tmp, "file")
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp))
        handler.log_message = lambda *a, **k: None
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{httpd.server_address[1]}/{clip.name}"
            res["http_stream_127.0.0.1"] = run_live(url, [], tmp, "http")
        finally:
            httpd.shutdown()
    report(res, args.out)


def report(res: dict, out: str) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    r = res["incremental_vs_naive"]
    print(f"work per second of input: live path {r['live_real_time_factor']}, each window from scratch "
          f"{r['naive_real_time_factor']}: {r['speedup']}x; same label on {100 * r['same_label_share']:.1f} % "
          f"of {r['windows']} windows; load {r['load_avg_before']} -> {r['load_avg_after']}")
    for k in ("file_realtime", "http_stream_127.0.0.1"):
        if k not in res:
            continue
        s = res[k]
        print(f"{k}: {s['hops']} hops, dropped {s['dropped_hops']} ({100 * s['dropped_fraction']:.1f} %), latency "
              f"median {s['latency_median_s']} s p95 {s['latency_p95_s']} s max {s['latency_max_s']} s, "
              f"RTF {s['real_time_factor']}, load {s['load_avg_before']} -> {s['load_avg_after']}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
