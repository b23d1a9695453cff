"""`mrpn live`: rolling predictions from a file played in real time and from a 127.0.0.1 HTTP stream,
with bounded lag (backlog dropped and counted), missing audio, bad sources and Ctrl-C."""
from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from media_factory import face_like_frame, write_video

REPO = Path(__file__).resolve().parents[1]
SECONDS = 3.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("live")
    return write_video(d / "talk.mkv", n_frames=int(SECONDS * 15), fps=15, size=(192, 144), frame_fn=face_like_frame)


def expected_hops(seconds: float, window: float = 1.0, hop: float = 0.2) -> int:
    return int((seconds - window) / hop + 1e-6) + 1


def run_live(argv, capsys):
    from mrpn.cli import main

    t0 = time.perf_counter()
    rc = main(["live", *argv])
    out = capsys.readouterr()
    return rc, out, time.perf_counter() - t0


def test_realtime_file_keeps_pace_and_reports_latency(clip, tmp_path, capsys):
    rc, out, wall = run_live([str(clip), "--realtime", "--jsonl", str(tmp_path / "w.jsonl"),
                              "--summary", str(tmp_path / "s.json")], capsys)
    assert rc == 0, out.err
    rows = [json.loads(x) for x in (tmp_path / "w.jsonl").read_text().splitlines()]
    s = json.loads((tmp_path / "s.json").read_text())
    assert wall >= SECONDS - 0.3, "--realtime must play at the file's speed"
    assert s["hops"] == len(rows) and s["hops"] + s["dropped_hops"] == expected_hops(SECONDS)
    assert s["dropped_fraction"] <= 0.10
    assert all(r["label"] in r["probabilities"] and r["modalities"] == ["v", "a"] for r in rows)
    starts = [r["start"] for r in rows]
    assert starts == sorted(starts) and all(0 < r["latency_s"] < 3.5 for r in rows)
    assert "latency median" in out.err and "real-time factor" in out.err
    assert len(out.out.splitlines()) == len(rows)  # one printed line per hop


def test_stream_from_localhost_http(clip, capsys):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=httpd.serve_forever, daemon=True)
    th.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{clip.name}"
        rc, out, wall = run_live([url, "--jsonl", "-", "--duration", "2.5"], capsys)
    finally:
        httpd.shutdown()
    assert rc == 0, out.err
    rows = [json.loads(x) for x in out.out.splitlines()]
    assert wall >= 2.0, "a URL is played in real time"
    assert len(rows) >= expected_hops(2.5) - 2 and all("latency_s" in r for r in rows)
    assert "(real time)" in out.err


def test_backlog_is_dropped_and_counted_so_lag_stays_bounded(clip, tmp_path, capsys):
    """With a lag bound far below one hop's work, the live loop must drop input rather than fall behind."""
    rc, out, wall = run_live([str(clip), "--realtime", "--max-lag", "0.01", "--summary", str(tmp_path / "s.json")],
                             capsys)
    assert rc == 0, out.err
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["drops"] >= 1 and s["dropped_hops"] >= 1 and "behind: dropped" in out.err
    assert s["hops"] + s["dropped_hops"] == expected_hops(SECONDS) and s["dropped_media_s"] > 0
    assert wall < SECONDS + 2.0, f"fell behind: {wall:.1f} s for {SECONDS} s of input"


def test_video_without_audio_uses_the_face_head(tmp_path, capsys):
    v = write_video(tmp_path / "mute.mkv", n_frames=30, fps=15, size=(192, 144), audio=None,
                    frame_fn=face_like_frame)
    rc, out, _ = run_live([str(v), "--jsonl", "-"], capsys)
    rows = [json.loads(x) for x in out.out.splitlines()]
    assert rc == 0 and rows and all(r["modalities"] == ["v"] for r in rows if r["label"])
    assert "no audio stream" in out.err


def test_bad_source_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "notes.mkv"
    bad.write_text("not a video\n" * 30)
    rc, out, _ = run_live([str(bad)], capsys)
    assert rc == 2 and "notes.mkv" in out.err and "Traceback" not in out.err
    rc, out, _ = run_live([str(tmp_path / "missing.mp4")], capsys)
    assert rc == 2 and "not found" in out.err


def test_ctrl_c_ends_with_a_summary(tmp_path):
    long = write_video(tmp_path / "long.mkv", n_frames=150, fps=15, size=(192, 144), frame_fn=face_like_frame)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "mrpn.cli", "live", str(long), "--realtime"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()  # the first hop is out: the loop is running
    assert first.strip(), p.stderr.read()
    p.send_signal(signal.SIGINT)
    rest, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert "interrupted (Ctrl-C)" in err and "hops over" in err and "Traceback" not in err
