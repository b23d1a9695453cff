"""End to end on a generated corpus: synth -> prepare -> train (resume, late fusion) -> report ->
predict (missing modalities) -> ONNX export. Tiny widths so the whole file runs in about a minute."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mrpn.config import load_config
from mrpn.training.checkpoint import CheckpointError, load_checkpoint

# slow: > 10 s on this project's 2-core machine (`pytest -m "not slow"` skips them while working)
pytestmark = pytest.mark.slow

TINY = ["data.face_size=32", "data.spec_size=32x32", "data.video_fps=5", "data.max_frames=4",
        "data.workers=0", "model.video_width=4", "model.audio_width=4", "model.agg_hidden=8",
        "model.fusion_hidden=8", "train.epochs=2", "train.batch_size=4", "train.lr=3e-3",
        "data.dataset=synth", "train.early_stop=0"]


def cfg_for(root: Path, name: str, *extra: str):
    return load_config("cpu", overrides=TINY + [f"data.cache={root / 'cache'}", f"out={root / 'runs'}",
                                                f"name={name}", *extra])


@pytest.fixture(scope="session")
def n2_run(corpus):
    from mrpn.training.cv import run_cv

    root, _ = corpus
    cfg = cfg_for(root, "n2", "model.kind=n2")
    run_cv(cfg, "1", progress=False, log=lambda *a: None)
    return root / "runs" / "n2"


def test_fold_outputs(n2_run):
    fold = n2_run / "fold_01"
    m = json.loads((fold / "metrics.json").read_text())
    for k in ("accuracy", "uar", "macro_f1", "confusion", "per_class_recall", "epochs", "wall_time_s",
              "modalities", "run_label", "fold"):
        assert k in m, k
    assert np.array(m["confusion"]).sum() == m["n_val"] > 0
    assert set(m["modalities"]) == {"v", "a"}
    with np.load(fold / "features.npz") as z:
        assert {"labels", "v", "a", "fused"} <= set(z.files) and len(z["labels"]) == m["n_val"]
    ck = load_checkpoint(fold / "best.pt")
    assert ck["config"]["model"]["kind"] == "n2" and ck["config"]["preset"] == "cpu"
    assert (n2_run / "config.json").is_file() and (n2_run / "summary.json").is_file()


def test_resume_continues_identically(corpus):
    from mrpn.training.run import run_fold

    root, _ = corpus
    # plateau: the schedule does not depend on the run's length, so a 1-epoch run extended to 2 stands
    # for a run killed after epoch 1 (a one-cycle run is killed for real in test_faults.py)
    full = cfg_for(root, "resume_full", "model.kind=n1", "train.schedule=plateau")
    run_fold(full, 1, root / "runs" / "resume_full" / "fold_01", progress=False, log=lambda *a: None)
    half = cfg_for(root, "resume_half", "model.kind=n1", "train.schedule=plateau", "train.epochs=1")
    d = root / "runs" / "resume_half" / "fold_01"
    run_fold(half, 1, d, progress=False, log=lambda *a: None)
    again = cfg_for(root, "resume_half", "model.kind=n1", "train.schedule=plateau")   # "killed" after epoch 1
    run_fold(again, 1, d, progress=False, log=lambda *a: None)
    a = load_checkpoint(root / "runs" / "resume_full" / "fold_01" / "last.pt")
    b = load_checkpoint(d / "last.pt")
    assert a["state"]["epoch"] == b["state"]["epoch"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert [h["val_loss"] for h in a["state"]["history"]] == [h["val_loss"] for h in b["state"]["history"]]


def test_a_one_cycle_run_is_not_resumed_with_another_length(corpus, tmp_path):
    from mrpn.config import ConfigError
    from mrpn.training.run import run_fold

    root, _ = corpus
    d = tmp_path / "fold_01"
    run_fold(cfg_for(root, "oc", "model.kind=am", "train.schedule=onecycle", "train.epochs=1"), 1, d,
             progress=False, log=lambda *a: None)
    longer = cfg_for(root, "oc", "model.kind=am", "train.schedule=onecycle", "train.epochs=2")
    with pytest.raises(ConfigError, match="train.epochs=1"):
        run_fold(longer, 1, d, progress=False, log=lambda *a: None)
    # the optimiser's per-group rates (train.extractor_lr_scale) cannot change on a resume either
    slower = cfg_for(root, "oc", "model.kind=am", "train.schedule=onecycle", "train.epochs=1",
                     "train.extractor_lr_scale=0.1")
    with pytest.raises(ConfigError, match="extractor_lr_scale=1.0"):
        run_fold(slower, 1, d, progress=False, log=lambda *a: None)


def test_late_fusion_keeps_unimodal_weights_frozen(corpus):
    from mrpn.training.run import run_fold

    root, _ = corpus
    cfg = cfg_for(root, "late", "model.kind=n0", "train.strategy=late")
    given = cfg.to_dict()
    d = root / "runs" / "late" / "fold_01"
    run_fold(cfg, 1, d, progress=False, log=lambda *a: None)
    assert cfg.to_dict() == given  # run_fold works on its own copy (n_classes, late-fusion settings)
    fused = load_checkpoint(d / "last.pt")["model"]
    for m in ("v", "a"):
        uni = load_checkpoint(d / f"unimodal_{m}" / "best.pt")["model"]
        keys = [k for k in uni if k.startswith(f"branches.{m}.")]
        assert keys
        for k in keys:   # extractor + aggregator, incl. BatchNorm running stats
            assert torch.equal(uni[k], fused[k]), k


def test_bad_checkpoints_give_clear_errors(n2_run, tmp_path):
    from mrpn.training.checkpoint import check_compatible

    good = n2_run / "fold_01" / "last.pt"
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good.read_bytes()[: 5000])
    with pytest.raises(CheckpointError, match="corrupt, truncated"):
        load_checkpoint(trunc)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(tmp_path / "empty.pt")
    other = load_config("paper", overrides=["model.kind=vm"]).to_dict()
    with pytest.raises(CheckpointError, match="another model or preset"):
        check_compatible(load_checkpoint(good), other, good)


def test_report_renders(n2_run, tmp_path):
    from mrpn.evaluation.report import load_runs, render_report

    written = render_report(load_runs([n2_run]), tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "N2" in md and any(str(v).endswith(".png") for v in written.values())


def test_predict_file_and_missing_modalities(n2_run, corpus, tmp_path):
    from mrpn.synth import write_mp4
    from mrpn.inference.predictor import Predictor

    root, sc = corpus
    p = Predictor(str(n2_run / "fold_01" / "best.pt"))
    clip = sc.clips[0]
    r = p.predict_file(clip.video).to_dict()
    assert r["modalities_used"] == ["v", "a"] and r["label"] in r["classes"]
    assert abs(sum(r["probabilities"].values()) - 1) < 1e-3
    assert r["timeline"] and r["timeline"][-1]["end"] <= r["duration_s"] + 1e-6
    assert set(r["per_modality"]) == {"v", "a"}

    # the same video without its audio stream: predicted from the face alone
    import av

    frames = []
    with av.open(clip.video) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    mute = tmp_path / "mute.mp4"
    write_mp4(mute, np.stack(frames), None, 15, 16000)
    r2 = p.predict_file(str(mute)).to_dict()
    assert r2["modalities_used"] == ["v"] and any("no audio" in n for n in r2["notes"])

    # no face anywhere (grey frames) but audio present: predicted from the voice alone
    blank = tmp_path / "blank.mp4"
    wave = np.random.default_rng(0).normal(0, 0.1, 16000 * 2).astype(np.float32)
    write_mp4(blank, np.full((30, 64, 64, 3), 128, np.uint8), wave, 15, 16000)
    r3 = p.predict_file(str(blank)).to_dict()
    assert r3["modalities_used"] == ["a"] and any("no face" in n for n in r3["notes"])

    # a long file: many windows, label = mean over windows
    long = tmp_path / "long.mp4"
    write_mp4(long, np.concatenate([np.stack(frames)] * 6), np.tile(wave, 6)[: 16000 * 12], 15, 16000)
    r4 = p.predict_file(str(long)).to_dict()
    assert len(r4["timeline"]) >= 40 and any("mean over windows" in n for n in r4["notes"])


def test_stream_predictor_emits_windows(n2_run, corpus):
    from mrpn.inference.predictor import Predictor, StreamPredictor
    from mrpn.data.audio import prepare_audio
    import av

    _, sc = corpus
    p = Predictor(str(n2_run / "fold_01" / "best.pt"))
    with av.open(sc.clips[1].video) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    audio = prepare_audio(sc.clips[1].video)
    raw = audio.samples * audio.std + audio.mean
    sp = StreamPredictor(p, fps=15)
    out = []
    for k in range(0, len(frames), 5):   # 1/3 s of video and audio at a time
        t0, t1 = k / 15, min(k + 5, len(frames)) / 15
        out += sp.push(frames[k:k + 5], raw[int(t0 * 16000):int(t1 * 16000)])
    out += sp.finish()
    duration = len(frames) / 15
    assert len(out) == int((duration - 1.0) / 0.2 + 1e-6) + 1 and all(w["label"] in p.classes for w in out)
    assert [w["start"] for w in out] == sorted(w["start"] for w in out)


def test_export_onnx_parity_and_backend(n2_run, corpus, tmp_path):
    pytest.importorskip("onnxruntime")
    from mrpn.inference.export import export_onnx
    from mrpn.inference.predictor import Predictor

    meta = export_onnx(str(n2_run / "fold_01" / "best.pt"), str(tmp_path / "onnx"), log=lambda *a: None)
    assert set(meta["graphs"]) == {"va", "v", "a"}
    assert all(g["max_abs_diff_probabilities"] <= 1e-4 for g in meta["graphs"].values())
    _, sc = corpus
    ck = str(n2_run / "fold_01" / "best.pt")
    a = Predictor(ck).predict_file(sc.clips[2].video).to_dict()
    b = Predictor(ck, backend="onnx").predict_file(sc.clips[2].video).to_dict()
    assert max(abs(a["probabilities"][c] - b["probabilities"][c]) for c in a["classes"]) <= 1e-4


def test_cli_train_errors_are_messages(corpus, capsys, tmp_path, monkeypatch):
    from mrpn.cli import main

    root, _ = corpus
    monkeypatch.chdir(tmp_path)  # the default --out is ./runs: keep it out of the working tree
    assert main(["train", "--cache", str(root / "nope"), "--model", "n2", "--quiet"]) == 2
    assert "cache folder not found" in capsys.readouterr().err
    assert main(["train", "--cache", str(root / "cache"), "--set", "train.lrr=1", "--quiet"]) == 2
    assert "did you mean 'train.lr'" in capsys.readouterr().err


@pytest.mark.realdata
def test_predict_on_real_ravdess_video(n2_run, shared_data):
    from mrpn.inference.predictor import Predictor

    vids = sorted((shared_data / "ravdess" / "video" / "Actor_01").glob("01-*.mp4"))
    assert vids, "expected real RAVDESS videos"
    r = Predictor(str(n2_run / "fold_01" / "best.pt")).predict_file(str(vids[0])).to_dict()
    assert r["modalities_used"] == ["v", "a"] and 3.0 < r["duration_s"] < 6.0
    assert not any("no face" in n for n in r["notes"])


def test_cli_predict_writes_json_and_plot_and_survives_bad_files(n2_run, corpus, tmp_path, capsys):
    from mrpn.cli import main

    _, sc = corpus
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    rc = main(["predict", sc.clips[0].video, str(bad), sc.clips[3].video, "--model",
               str(n2_run / "fold_01" / "best.pt"), "--json", str(tmp_path / "j") + "/", "--plot",
               str(tmp_path / "p") + "/"])
    io = capsys.readouterr()
    assert rc == 0 and "bad.mp4: cannot predict" in io.err and "whole file:" in io.out
    js = sorted((tmp_path / "j").glob("*.json"))
    assert len(js) == 2
    r = json.loads(js[0].read_text())
    assert {"label", "probabilities", "timeline", "modalities_used", "per_modality"} <= set(r)
    pngs = sorted((tmp_path / "p").glob("*.png"))
    assert len(pngs) == 2 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["predict", str(bad), "--model", str(n2_run / "fold_01" / "best.pt")]) == 1
    assert main(["predict", sc.clips[0].video, "--model", str(tmp_path / "missing.pt")]) == 2
    assert "not found" in capsys.readouterr().err


def test_changed_settings_are_refused_not_mixed(corpus, tmp_path):
    from mrpn.config import ConfigError
    from mrpn.training.cv import run_cv
    from mrpn.training.run import run_fold

    root, _ = corpus
    quiet = dict(progress=False, log=lambda *a: None)
    cfg = load_config("cpu", overrides=TINY + [f"data.cache={root / 'cache'}", f"out={tmp_path}", "name=r",
                                               "model.kind=am", "train.epochs=1"])
    run_cv(cfg, "1", **quiet)
    wo = load_config("cpu", overrides=TINY + [f"data.cache={root / 'cache'}", f"out={tmp_path}", "name=r",
                                              "model.kind=am", "train.epochs=1", "data.segment_hop_s=1.0"])
    with pytest.raises(ConfigError, match="other settings"):
        run_cv(wo, "1", **quiet)
    # the same folder resumed on another fold's split is refused, not trained on validation actors
    with pytest.raises(CheckpointError, match="another split"):
        run_fold(cfg, 2, tmp_path / "r" / "fold_01", **quiet)


def test_another_audio_front_end_is_other_settings_and_a_key_older_than_the_run_is_not(tmp_path):
    from mrpn.config import ConfigError
    from mrpn.training.run import save_run_config

    lin = load_config("cpu", overrides=["data.audio_frontend=linear", "data.spec_size=64x64",
                                        "model.audio_extractor=cnn"])
    save_run_config(lin, tmp_path)
    mel = load_config("cpu", overrides=["data.spec_size=64x64", "model.audio_extractor=cnn"])
    with pytest.raises(ConfigError, match="audio_frontend"):
        save_run_config(mel, tmp_path)
    # a run folder written before data.audio_frontend existed was a linear-spectrogram run
    old = json.loads((tmp_path / "config.json").read_text())
    del old["data"]["audio_frontend"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    save_run_config(lin, tmp_path)
    with pytest.raises(ConfigError, match="audio_frontend"):
        save_run_config(mel, tmp_path)


def test_early_stopped_fold_does_not_train_again(corpus, tmp_path):
    from mrpn.training.run import run_fold

    root, _ = corpus
    cfg = load_config("cpu", overrides=TINY + [f"data.cache={root / 'cache'}", "model.kind=am",
                                               "train.epochs=30", "train.early_stop=1", "train.lr=1e-9"])
    d = tmp_path / "fold_01"
    m1 = run_fold(cfg, 1, d, progress=False, log=lambda *a: None)
    # a tiny lr: only the BatchNorm running statistics still move, so the loss soon stops dropping
    assert m1["epochs"] < 30
    m2 = run_fold(cfg, 1, d, progress=False, log=lambda *a: None)
    assert m2["epochs"] == m1["epochs"]
