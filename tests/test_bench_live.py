"""bench/live.py's in-process comparison: the live path and the per-window baseline predict the same
windows of the same decoded input (timings are only recorded, never checked)."""
from __future__ import annotations

from pathlib import Path

from bench_modules import load
from media_factory import write_video


def _bench():
    return load("live")


def test_live_path_and_per_window_baseline_cover_the_same_windows(tmp_path, monkeypatch):
    from mrpn.inference.predictor import Predictor

    seen = []   # (frames, samples) of every model call, live path first, then the baseline
    original = Predictor.predict_arrays

    def spy(self, faces, found, fps, wave, *a, **k):
        seen.append((0 if faces is None else len(faces), 0 if wave is None else len(wave)))
        return original(self, faces, found, fps, wave, *a, **k)

    monkeypatch.setattr(Predictor, "predict_arrays", spy)
    clip = write_video(tmp_path / "clip.mp4", n_frames=60, fps=20, size=(160, 120), audio="tone")  # 3 s
    r = _bench().incremental_vs_naive(clip, fps=10.0)
    # 1 s windows every 0.2 s over 3 s of input: starts 0.0 ... 2.0
    assert r["windows"] == 11 and r["baseline_windows_missing"] == 0
    assert r["media_s"] == 3.0 and r["fps"] == 10.0
    calls = seen[-22:]   # the warm-up's own calls come before
    # every window, on both paths, is the model on 1 s: 10 kept frames and 16000 samples
    assert calls == [(10, 16000)] * 22
    assert r["live_path_s"] > 0 and r["naive_per_window_s"] > 0 and r["speedup"] > 0


def test_only_ratio_needs_its_own_output_file(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "bench" / "live.py"
    r = subprocess.run([sys.executable, str(script), "--only-ratio"], capture_output=True, text=True)
    assert r.returncode == 1 and "--only-ratio writes a partial result: give --out" in r.stderr
