"""The audio baselines' feature code (issue 9): MFCCs, the GE2E front end and encoder, the clip CNN,
and the benchmark's fold parsing and resumable results file."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mrpn.baselines import ge2e
from mrpn.baselines.clipcnn import ClipCNN, clip_logmel, trim_silent_frames
from mrpn.baselines.mfcc import dct_matrix, deltas, log_mel_frames, mfcc, mfcc_stats
from mrpn.features.spectrogram import mel_to_hz, hz_to_mel

SR = 16000
REPO = Path(__file__).resolve().parents[1]


def tone(freq: float, seconds: float, amp: float = 0.1) -> torch.Tensor:
    t = torch.arange(int(seconds * SR)) / SR
    return amp * torch.sin(2 * math.pi * freq * t)


# ----------------------------------------------------------------------------- MFCC

def test_dct_matrix_is_orthonormal():
    d = dct_matrix(40, 40).double()
    assert torch.allclose(d @ d.T, torch.eye(40, dtype=torch.float64), atol=1e-5)


def test_mfcc_shape_and_tone_band():
    w = tone(1000.0, 1.0)
    logmel = log_mel_frames(w)
    assert logmel.shape == (40, 1 + len(w) // 160)
    # the loudest band of a 1 kHz tone is the HTK band whose centre is nearest 1 kHz
    centres = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(SR / 2), 42))[1:-1]
    assert int(logmel[:, 50].argmax()) == int(np.abs(centres - 1000).argmin())
    c = mfcc(w)
    assert c.shape == (20, logmel.shape[1]) and torch.isfinite(c).all()


def test_mfcc_gain_moves_only_c0():
    # log-mel + 2 log(a) under a gain a; the orthonormal DCT's row 0 is 1/sqrt(40): c0 moves by
    # 2 log(a) sqrt(40), the other coefficients stay (the 1e-6 floor is far below white noise's bands)
    w = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, SR // 2).astype(np.float32))
    a = 10.0
    c1, c2 = mfcc(w), mfcc(a * w)
    mid = slice(5, -5)
    assert torch.allclose(c2[0, mid] - c1[0, mid], torch.full_like(c1[0, mid], 2 * math.log(a) * math.sqrt(40)),
                          atol=1e-2)
    assert torch.allclose(c2[1:, mid], c1[1:, mid], atol=1e-2)


def test_deltas_of_a_ramp_are_its_slope():
    x = torch.arange(20, dtype=torch.float32)[None].repeat(3, 1) * 0.5
    d = deltas(x)
    assert torch.allclose(d[:, 2:-2], torch.full((3, 16), 0.5))


def test_mfcc_stats_vector():
    f = mfcc_stats(tone(300.0, 1.2).numpy())
    assert f.shape == (120,) and np.isfinite(f).all()
    assert (f[20:40] >= 0).all()          # the MFCC standard deviations


# ----------------------------------------------------------------------------- GE2E front end

def test_slaney_scale_roundtrip_and_break_at_1khz():
    f = np.array([0.0, 200.0, 999.0, 1000.0, 4000.0, 8000.0])
    assert np.allclose(ge2e._slaney_to_hz(ge2e._hz_to_slaney(f)), f)
    assert ge2e._hz_to_slaney(1000.0) == pytest.approx(15.0)          # linear (200/3 Hz per mel) below
    assert ge2e._hz_to_slaney(600.0) == pytest.approx(9.0)


def test_slaney_filterbank_unit_area():
    fb = ge2e.slaney_mel_filterbank()
    assert fb.shape == (40, 201) and (fb >= 0).all()
    area = fb.sum(1) * (SR / 400)                    # rows integrate to 1 over Hz (Slaney norm)
    assert torch.allclose(area[10:], torch.ones(30), atol=0.05)


def test_ge2e_mels_shape_and_tone_band():
    w = tone(2000.0, 1.0)
    m = ge2e.ge2e_mels(w.numpy())
    assert m.shape == (1 + len(w) // 160, 40) and (m >= 0).all()
    edges = ge2e._slaney_to_hz(np.linspace(0, ge2e._hz_to_slaney(SR / 2), 42))
    assert int(m[50].argmax()) == int(np.abs(edges[1:-1] - 2000).argmin())


def test_partial_slices():
    assert ge2e.partial_slices(SR) == [(0, 160)]                      # shorter than one partial: one
    s = ge2e.partial_slices(5 * SR)
    assert all(b - a == 160 for a, b in s) and s[1][0] - s[0][0] == 77   # 1.3 partials per second
    assert (5 * SR - s[-1][0] * 160) / (160 * 160) >= 0.75               # last one at least 75 % covered


def test_trim_long_silences_removes_a_long_pause():
    rng = np.random.default_rng(0)
    speech = lambda s: rng.normal(0, 0.1, int(s * SR))               # noqa: E731
    wave = np.concatenate([np.zeros(SR), speech(0.5), np.zeros(2 * SR), speech(0.5), np.zeros(SR)])
    out = ge2e.trim_long_silences(wave)
    assert SR <= len(out) < 2 * SR                                    # both bursts kept, most silence gone


ENCODER = ge2e.weights_path()


@pytest.mark.skipif(ENCODER is None, reason="resemblyzer not installed (pip install 'mrpn[speaker]')")
def test_encoder_loads_weights_only_and_embeds_unit_vector(monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*a, **kw):
        calls.append(kw.get("weights_only"))
        return real_load(*a, **kw)

    monkeypatch.setattr(torch, "load", spy)
    enc = ge2e.load_encoder()
    assert calls == [True]
    rng = np.random.default_rng(0)
    wave = np.concatenate([tone(f, 0.4).numpy() for f in (180, 220, 260, 200, 240)]) + rng.normal(0, 1e-3, 32000)
    e = ge2e.embed_clip(enc, wave.astype(np.float32))
    assert e.shape == (256,) and abs(float(np.linalg.norm(e)) - 1) < 1e-5 and (e >= 0).all()
    # a frozen network: the same clip gives the same vector, another voice-like clip a different one
    assert np.allclose(e, ge2e.embed_clip(enc, wave.astype(np.float32)))
    other = ge2e.embed_clip(enc, rng.normal(0, 0.1, 32000).astype(np.float32))
    assert float(e @ other) < 0.999


def test_load_encoder_without_weights_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="mrpn\\[speaker\\]"):
        ge2e.load_encoder(tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- clip CNN

def test_clip_cnn_size_and_any_length():
    model = ClipCNN(8).eval()
    n = sum(p.numel() for p in model.parameters())
    assert 150_000 < n < 300_000
    with torch.no_grad():
        assert model(torch.randn(2, 1, 40, 160)).shape == (2, 8)
        assert model(torch.randn(1, 1, 40, 333)).shape == (1, 8)


def test_trim_silent_frames_cuts_leading_and_trailing_silence():
    rng = np.random.default_rng(1)
    wave = np.concatenate([np.zeros(SR), rng.normal(0, 0.3, SR), np.zeros(SR)]).astype(np.float32)
    lm = clip_logmel(wave)
    assert lm.shape[0] == 40 and 95 <= lm.shape[1] <= 110               # ~1 s of 10 ms frames kept
    short = trim_silent_frames(torch.log(torch.full((40, 300), 1e-6)).index_fill(1, torch.tensor([150]), 0.0))
    assert short.shape[1] == 50                                          # at least half a second around the peak


# ----------------------------------------------------------------------------- the benchmark script

def _bench():
    spec = importlib.util.spec_from_file_location("audio_baselines", REPO / "bench" / "audio_baselines.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_fold_spec_and_resumable_results(tmp_path):
    b = _bench()
    assert b.parse_folds("1-3,7,2", 12) == [1, 2, 3, 7]
    with pytest.raises(ValueError, match="outside 1-12"):
        b.parse_folds("11-13", 12)
    out = tmp_path / "r.json"
    header = {"protocol": "p", "run": {"command": "x", "started": "t0", "uptime_at_start": "u"}}
    b.update_results(out, header, "mfcc_svm", "A1,2", {"accuracy": 0.5})
    b.update_results(out, header, "mfcc_svm", "A3,4", {"accuracy": 0.7})
    b.update_results(out, header, "speaker_probe", None, None, skipped="not installed")
    d = json.loads(out.read_text())
    m = d["baselines"]["mfcc_svm"]
    assert m["n_folds"] == 2 and m["mean"] == pytest.approx(0.6) and m["std"] == pytest.approx(math.sqrt(0.02))
    assert d["baselines"]["speaker_probe"]["skipped"] == "not installed" and len(d["runs"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]          # no lock or temporary file left
    out.write_text("{not json")
    with pytest.raises(SystemExit, match="cannot read"):
        b.read_results(out)


def test_bench_skips_speaker_probe_without_resemblyzer(tmp_path, monkeypatch, capsys):
    b = _bench()
    monkeypatch.setattr(b.ge2e, "weights_path", lambda: None)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "manifest.json").write_text("{}")
    out = tmp_path / "r.json"
    assert b.main(["--cache", str(cache), "--only", "speaker_probe", "--folds", "1", "--out", str(out)]) == 0
    assert "resemblyzer is not installed" in capsys.readouterr().out
    assert "mrpn[speaker]" in json.loads(out.read_text())["baselines"]["speaker_probe"]["skipped"]
    assert b.main(["--cache", str(cache), "--only", "nope", "--out", str(out)]) == 2


def _resemblyzer_audio():
    """resemblyzer's own front end, importable only with its full dependencies (librosa, webrtcvad, setuptools<81)."""
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from resemblyzer import audio
            from resemblyzer.voice_encoder import VoiceEncoder
        return audio, VoiceEncoder
    except Exception:  # ImportError, or pkg_resources missing under setuptools>=81
        return None


@pytest.mark.skipif(_resemblyzer_audio() is None, reason="resemblyzer's front end not importable "
                    "(needs librosa, webrtcvad and setuptools<81)")
def test_front_end_matches_resemblyzer():
    # only its mel function and a staticmethod are called: no VoiceEncoder is built, no weights unpickled
    audio, VoiceEncoder = _resemblyzer_audio()
    rng = np.random.default_rng(0)
    w = (0.03 * rng.normal(size=3 * SR) * np.sin(np.linspace(0, 20, 3 * SR))).astype(np.float32)
    ref = audio.wav_to_mel_spectrogram(w)
    ours = ge2e.ge2e_mels(w).numpy()
    assert ours.shape == ref.shape and np.abs(ours - ref).max() <= 1e-5 * ref.max()
    for n in (SR, 40000, 70000, 5 * SR):
        _, mel_slices = VoiceEncoder.compute_partial_slices(n, 1.3, 0.75)
        assert [(s.start, s.stop) for s in mel_slices] == ge2e.partial_slices(n)
