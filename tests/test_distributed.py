"""`torchrun` with 2 CPU processes (gloo, loopback only) against one process on the same data."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# slow: > 10 s on this project's 2-core machine (`pytest -m "not slow"` skips them while working)
pytestmark = pytest.mark.slow

TINY = ["data.face_size=32", "data.spec_size=32x32", "data.video_fps=5", "data.max_frames=4", "data.workers=0",
        "model.video_width=4", "model.audio_width=4", "model.agg_hidden=8", "model.fusion_hidden=8",
        "train.epochs=2", "train.batch_size=4", "train.lr=3e-3", "data.dataset=synth", "train.early_stop=0"]


def _mrpn(args: list[str], nproc: int, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "mrpn.cli", *args]
    else:
        cmd = [sys.executable, "-m", "mrpn.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _args(root, name: str, *extra: str) -> list[str]:
    sets = [x for kv in TINY + [f"data.cache={root / 'cache'}", f"out={root / 'runs'}"] for x in ("--set", kv)]
    return ["train", "--model", "n2", "--fold", "1", "--name", name, "--quiet", *sets, *extra]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(corpus, tmp_path):
    root, _ = corpus
    r = _mrpn(_args(root, "ddp2"), 2, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    fold = root / "runs" / "ddp2" / "fold_01"
    m2 = json.loads((fold / "metrics.json").read_text())
    assert m2["world_size"] == 2 and m2["epochs"] == 2
    assert r.stdout.count(": accuracy") == 1, r.stdout   # rank 0 alone reports

    # the same checkpoint evaluated by one process gives exactly the same metrics (no padding bias)
    r1 = _mrpn(_args(root, "ddp2", "--test-only"), 1, tmp_path)
    assert r1.returncode == 0, r1.stderr[-3000:]
    m1 = json.loads((fold / "metrics.json").read_text())
    assert m1["world_size"] == 1
    for k in ("accuracy", "uar", "macro_f1", "confusion", "n_val", "modalities"):
        assert m1[k] == m2[k], k
    assert abs(m1["val_loss"] - m2["val_loss"]) < 1e-5
