"""`mrpn serve` throughput on the real RAVDESS clips: requests/s and median/p95 latency for 1, 2 and 4
concurrent clients against 127.0.0.1, against the baseline of one `mrpn predict` process per clip.

    python bench/serve.py [--data ../shared/data] [--requests 12] [--workers 2]
                          [--out docs/results/serving/serve.json]

The load generator is bounded: each level sends `--requests` requests in all (the clips in turn), its
clients never more than the level; the server admits workers + queue requests, so none gets 503.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def level(url: str, clips: list[Path], clients: int, total: int) -> dict:
    import httpx

    lat: list[float] = []
    codes: list[int] = []
    lock = threading.Lock()
    todo = iter(range(total))

    def client() -> None:
        with httpx.Client(timeout=300) as c:
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                clip = clips[i % len(clips)]
                t0 = time.perf_counter()
                r = c.post(url + "/api/predict", files={"file": (clip.name, clip.read_bytes(), "video/mp4")})
                dt = time.perf_counter() - t0
                with lock:
                    lat.append(dt)
                    codes.append(r.status_code)

    load = [round(x, 2) for x in os.getloadavg()]
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    return {"clients": clients, "requests": total, "ok": codes.count(200), "wall_s": round(wall, 2),
            "req_per_s": round(codes.count(200) / wall, 3), "latency_median_s": round(statistics.median(lat), 3),
            "latency_p95_s": round(pct(lat, 0.95), 3), "load_avg_before": load}


def baseline(clips: list[Path]) -> dict:
    """One `mrpn predict` process per clip, one after another (start-up + model load every time)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    lat = []
    load = [round(x, 2) for x in os.getloadavg()]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for clip in clips:
            t1 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mrpn.cli", "predict", str(clip), "--json", f"{d}/p.json"],
                           env=env, check=True, capture_output=True, timeout=600)
            lat.append(time.perf_counter() - t1)
    wall = time.perf_counter() - t0
    return {"processes": len(clips), "wall_s": round(wall, 2), "req_per_s": round(len(clips) / wall, 3),
            "latency_median_s": round(statistics.median(lat), 3), "latency_p95_s": round(pct(lat, 0.95), 3),
            "load_avg_before": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--requests", type=int, default=12, help="requests per concurrency level")
    ap.add_argument("--workers", type=int, default=2, help="mrpn serve --workers")
    ap.add_argument("--out", default=str(REPO / "docs" / "results" / "serving" / "serve.json"))
    args = ap.parse_args()
    import httpx

    clips = sorted((Path(args.data) / "ravdess" / "video").rglob("*.mp4"))
    if not clips:
        sys.exit(f"no RAVDESS clips under {args.data}/ravdess/video")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    srv = subprocess.Popen([sys.executable, "-m", "mrpn.cli", "serve", "--port", str(port), "--workers",
                            str(args.workers), "--queue", "8"], env=env, stderr=subprocess.DEVNULL)
    res: dict = {"clips": [c.name for c in clips], "server": f"mrpn serve --workers {args.workers} --queue 8",
                 "cpu_count": os.cpu_count(), "levels": []}
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        level(url, clips[:2], 1, 2)  # warm-up: model load in the worker threads, first-call costs
        for n in (1, 2, 4):
            r = level(url, clips, n, args.requests)
            res["levels"].append(r)
            print(f"{n} client(s): {r['req_per_s']} req/s, latency median {r['latency_median_s']} s, "
                  f"p95 {r['latency_p95_s']} s ({r['ok']}/{r['requests']} ok, load {r['load_avg_before']})")
    finally:
        srv.terminate()
        srv.wait(30)
    res["baseline_one_process_per_clip"] = b = baseline(clips)
    print(f"baseline, one mrpn predict process per clip: {b['req_per_s']} req/s, latency median "
          f"{b['latency_median_s']} s, p95 {b['latency_p95_s']} s (load {b['load_avg_before']})")
    res["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
