"""bench/audio_robustness.py: each degradation does what its name says (measured independently of the
code that makes it), and the per-condition summary counts right."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench_modules import load

SR = 16000


@pytest.fixture(scope="module")
def ar():
    return load("audio_robustness")


def voice(seconds: float = 1.5, f0: float = 140.0) -> np.ndarray:
    """A vowel-like test signal: harmonics of f0 up to 3.5 kHz under a syllable-rate envelope."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(3500 // f0)))
    return (0.1 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) / np.abs(x).max()).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2))


@pytest.mark.parametrize("cond,target", [("white 20 dB", 20), ("white 0 dB", 0), ("babble 10 dB", 10)])
def test_noise_lands_at_the_named_snr(ar, cond, target):
    x = voice()
    babble = np.random.default_rng(1).standard_normal(5000).astype(np.float32)   # shorter than x: repeated
    y = ar.degrade(x, cond, np.random.default_rng(0), babble)
    assert y.shape == x.shape and y.dtype == np.float32
    assert snr_db(x, y) == pytest.approx(target, abs=0.05)


def test_room_has_its_rt60_and_as_much_echo_as_direct_sound(ar):
    from mrpn.features.acoustics import room

    h = room(0.5, np.random.default_rng(0), SR, drr_db=0.0)
    assert h.size == int(0.5 * SR)                                       # the direct path + 0.5 s of tail
    assert np.sum(h ** 2) == pytest.approx(1.0, rel=1e-5)
    assert h[0] ** 2 == pytest.approx(np.sum(h[1:] ** 2), rel=1e-5)      # direct-to-reverberant ratio 0 dB
    tail = h[1:] ** 2
    early, late = tail[: SR // 20].mean(), tail[-SR // 20:].mean()       # first and last 50 ms
    assert 10 * np.log10(early / late) > 40                              # ~54 dB of the 60 dB decay between them
    x = voice()
    y = ar.degrade(x, "reverb 0.3 s", np.random.default_rng(0), np.zeros(1, np.float32))
    h = room(0.3, np.random.default_rng(0), SR, drr_db=0.0)                # the same draw, convolved here
    assert y.shape == x.shape
    assert np.allclose(y, np.convolve(x, h)[: x.size], atol=1e-6)
    assert not np.allclose(y, x * h[0], atol=1e-3)                        # an echo was added


def test_a_baseline_of_other_actors_is_refused_before_any_prediction(ar, tmp_path):
    f = tmp_path / "base.json"
    f.write_text('{"actors": [3, 4], "seed": 0, "model": "m", "conditions": {}}')
    assert ar.load_baseline(str(f), [3, 4], 0)["model"] == "m"
    with pytest.raises(SystemExit, match=r"actors \[3, 4\] seed 0, not actors \[1, 2\] seed 0"):
        ar.load_baseline(str(f), [1, 2], 0)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(SystemExit, match="not a result of bench/audio_robustness.py"):
        ar.load_baseline(str(tmp_path / "bad.json"), [1, 2], 0)
    with pytest.raises(SystemExit, match="not a result"):
        ar.load_baseline(str(tmp_path / "missing.json"), [1, 2], 0)


def test_telephone_removes_everything_above_4_khz(ar):
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    y = ar.degrade(x, "telephone 8 kHz", np.random.default_rng(0), np.zeros(1, np.float32))
    f = np.fft.rfftfreq(SR, 1 / SR)
    px, py = np.abs(np.fft.rfft(x)) ** 2, np.abs(np.fft.rfft(y[:SR])) ** 2
    assert py[f > 4200].sum() < 1e-3 * px[f > 4200].sum()
    assert py[(f > 300) & (f < 3000)].sum() == pytest.approx(px[(f > 300) & (f < 3000)].sum(), rel=0.05)


@pytest.mark.parametrize("cond", ["aac 32 kbit/s", "opus 12 kbit/s"])
def test_codecs_round_trip_aligned_and_lossy(ar, cond):
    x = voice()
    y = ar.degrade(x, cond, np.random.default_rng(0), np.zeros(1, np.float32))
    assert abs(y.size - x.size) <= 32
    n = min(x.size, y.size)
    assert np.corrcoef(x[:n], y[:n])[0, 1] > 0.9                         # in time with the input (priming cut)
    assert not np.allclose(x[:n], y[:n], atol=1e-4)                      # and not a copy


def test_clipping_flattens_the_peaks(ar):
    x = voice()
    y = ar.degrade(x, "clipped 12 dB", np.random.default_rng(0), np.zeros(1, np.float32))
    assert np.abs(y).max() == 1.0
    assert 0.01 < np.mean(np.abs(y) >= 1.0) < 0.5
    assert ar.degrade(x, "clean", None, None) is x
    with pytest.raises(ValueError, match="unknown condition"):
        ar.degrade(x, "underwater 3 m", np.random.default_rng(0), np.zeros(1, np.float32))


def test_summary_counts_answers(ar):
    classes = ["neutral", "happy", "sad"]
    true = ["neutral", "happy", "sad", "sad"]
    pred = ["sad", "happy", "sad", "sad"]
    clean = ["neutral", "happy", "sad", "happy"]
    s = ar.summary(pred, true, clean, classes)
    assert s["accuracy"] == 0.75 and s["uar"] == pytest.approx(round(2 / 3, 4))
    assert s["most_answered"] == "sad" and s["most_answered_share"] == 0.75
    assert s["same_as_clean"] == 0.5 and s["predicted_share"]["neutral"] == 0.0


def test_table_marks_a_collapse_and_gives_the_mean(ar):
    classes = ["neutral", "happy", "sad"]
    true = ["neutral", "happy", "sad", "sad"]
    res = {"model": "m", "conditions": {"clean": ar.summary(true, true, true, classes),
                                        "white 0 dB": ar.summary(["sad"] * 4, true, true, classes)},
           "mean_degraded_accuracy": 0.5}
    lines = ar.table([res], ["shipped"]).splitlines()
    assert lines[0] == "| condition | shipped |"
    assert lines[2] == "| clean | 100.0 % (sad 50 %) |"                  # a half is not a collapse
    assert lines[3] == "| white 0 dB | 50.0 % (**sad 100 %**) |"
    assert lines[4] == "| mean over the degraded conditions | **50.0 %** |"


def test_an_output_never_replaces_an_input(tmp_path):
    import subprocess
    import sys

    base = tmp_path / "base.json"
    base.write_text('{"actors": [1, 2], "seed": 0, "model": "m", "conditions": {}}')
    script = Path(__file__).resolve().parents[1] / "bench" / "audio_robustness.py"
    r = subprocess.run([sys.executable, str(script), "--baseline", str(base), "--out", str(base)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "is also an input of this run" in r.stderr
    assert base.read_text() == '{"actors": [1, 2], "seed": 0, "model": "m", "conditions": {}}'
