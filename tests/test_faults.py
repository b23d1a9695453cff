"""Faults of long jobs: disk full mid-write, a training run killed mid-epoch, hostile manifest ids."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from mrpn.io import atomic_write_bytes, atomic_write_with
from mrpn.training.checkpoint import load_checkpoint, save_checkpoint


def _disk_full(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(3)}, "config": {"a": 1}})
    before = path.read_bytes()

    def half_then_full(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 partial")
        _disk_full()

    monkeypatch.setattr(torch, "save", half_then_full)
    with pytest.raises(OSError):
        save_checkpoint(path, {"model": {"w": torch.zeros(3)}, "config": {"a": 2}})
    monkeypatch.undo()
    assert path.read_bytes() == before and torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]       # no temporary file left behind


def test_disk_full_while_writing_the_cache_keeps_finished_clips(tmp_path, monkeypatch):
    from mrpn.data.cache import Cache

    cache = Cache(tmp_path / "c", create=True)
    rec = {"clip": {"id": "a"}, "status": "ok"}
    good = cache.write_clip(rec, {"audio": np.ones(10, np.float32)})
    import mrpn.data.cache as cache_mod

    monkeypatch.setattr(cache_mod, "atomic_write_bytes", lambda *a, **k: _disk_full())
    with pytest.raises(OSError):
        cache.write_clip(rec, {"audio": np.zeros(10, np.float32)})
    monkeypatch.undo()
    assert np.array_equal(cache.load("a", verify=True)["audio"], np.ones(10, np.float32))
    assert cache.read_record("a")["sha256"] == good["sha256"]


def test_atomic_write_failure_leaves_no_partial_file(tmp_path):
    p = tmp_path / "f.json"
    atomic_write_bytes(p, b"old")
    with pytest.raises(OSError):
        atomic_write_with(p, lambda t: (open(t, "wb").write(b"new, half"), _disk_full()))
    assert p.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_manifest_ids_cannot_escape_the_cache(tmp_path):
    from media_factory import write_video

    from mrpn.data.cache import Cache, CacheError
    from mrpn.data.datasets import scan
    from mrpn.data.prepare import PrepareConfig, run_prepare

    data = tmp_path / "data"
    data.mkdir()
    write_video(data / "v.mp4", n_frames=20)
    (data / "m.csv").write_text("id,video,audio,label,speaker\n../../escape,v.mp4,,happy,s1\n"
                                "/abs/evil,v.mp4,,sad,s2\n")
    sc = scan("custom", data / "m.csv")
    assert all("/" not in c.id and not c.id.startswith(".") for c in sc.clips)
    out = tmp_path / "deep" / "cache"
    run_prepare(sc, out, PrepareConfig(face_size=32), workers=1, progress=False)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents and data not in p.parents]
    assert outside == []
    with pytest.raises(CacheError, match="unsafe clip id"):
        Cache(out).npz_path("../../x")


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_to_the_same_result(corpus, tmp_path):
    root, _ = corpus
    sets = ["data.face_size=32", "data.spec_size=32x32", "data.video_fps=5", "data.max_frames=4",
            "data.workers=0", "model.video_width=4", "model.audio_width=4", "model.agg_hidden=8",
            "model.fusion_hidden=8", "train.epochs=4", "train.batch_size=2", "train.lr=3e-3",
            "data.dataset=synth", "train.early_stop=0", f"data.cache={root / 'cache'}", f"out={tmp_path}"]
    args = [x for kv in sets for x in ("--set", kv)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mrpn.cli", "train", "--model", "n1", "--quiet"]
    subprocess.run(cmd + args + ["--name", "whole"], env=env, check=True, capture_output=True, timeout=600)

    proc = subprocess.Popen(cmd + args + ["--name", "killed"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    last = tmp_path / "killed" / "fold_01" / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    # killed as soon as epoch 1 is saved, i.e. in epoch 2 (an epoch of this tiny run can take well under
    # a second, so waiting longer could let the run finish before the kill)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert last.exists(), "the run should have finished epoch 1 before the kill"
    done_at_kill = load_checkpoint(last)["state"]["epoch"]
    assert done_at_kill < 4
    r = subprocess.run(cmd + args + ["--name", "killed"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    a = load_checkpoint(tmp_path / "whole" / "fold_01" / "last.pt")
    b = load_checkpoint(last)
    assert b["state"]["epoch"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    ma = json.loads((tmp_path / "whole" / "fold_01" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "killed" / "fold_01" / "metrics.json").read_text())
    assert ma["accuracy"] == mb["accuracy"] and ma["confusion"] == mb["confusion"]
