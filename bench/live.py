"""`mrpn live` on a ~30 s real 720p file played at real-time speed and on the same file streamed from a
127.0.0.1 HTTP server: latency per hop, dropped hops, real-time factor.

    python bench/live.py [--data ../shared/data] [--seconds 30] [--out docs/results/serving/live.json]

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--out", default=str(REPO / "docs" / "results" / "serving" / "live.json"))
    args = ap.parse_args()
    videos = sorted((Path(args.data) / "ravdess" / "video").rglob("*.mp4"))
    if not videos:
        sys.exit(f"no RAVDESS clips under {args.data}/ravdess/video")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clip = tmp / "ravdess30.mkv"
        dur = concat_clips(videos, args.seconds, clip)
        res = {"input": f"{len(videos)} RAVDESS actor-1 clips re-encoded into one {dur:.1f} s 1280x720 mkv",
               "cpu_count": os.cpu_count()}
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
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    for k in ("file_realtime", "http_stream_127.0.0.1"):
        s = res[k]
        print(f"{k}: {s['hops']} hops, dropped {s['dropped_hops']} ({100 * s['dropped_fraction']:.1f} %), latency "
              f"median {s['latency_median_s']} s p95 {s['latency_p95_s']} s max {s['latency_max_s']} s, "
              f"RTF {s['real_time_factor']}, load {s['load_avg_before']} -> {s['load_avg_after']}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
