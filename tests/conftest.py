"""Shared test fixtures.

Real-data tests read ../shared/data (or $MRPN_DATA). Without it they are skipped with the reason
printed, unless MRPN_REQUIRE_DATA=1 (set by .ci/run), which turns the skip into a failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tiny test tensors run 10-40x faster on one thread than on two on this shared 2-core machine.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MRPN_DATA", REPO.parent / "shared" / "data"))


def _require_data() -> bool:
    return os.environ.get("MRPN_REQUIRE_DATA", "") not in ("", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.is_dir():
        msg = f"real data not found at {DATA} (set MRPN_DATA or place ../shared/data beside the repo)"
        if _require_data():
            pytest.fail(msg + "; MRPN_REQUIRE_DATA=1 so this is an error, not a skip")
        pytest.skip(msg)
    return DATA


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A tiny generated audio-video corpus (4 actors x 3 emotions) prepared by the real pipeline."""
    from mrpn.data.datasets import scan
    from mrpn.data.prepare import PrepareConfig, run_prepare
    from mrpn.synth import generate_corpus

    root = tmp_path_factory.mktemp("pipeline")
    manifest = generate_corpus(root / "corpus", n_actors=4, clips_per_class=1,
                               classes=["neutral", "happy", "angry"], size=64, fps=15, seed=1, progress=False)
    sc = scan("custom", manifest)
    res = run_prepare(sc, root / "cache", PrepareConfig(face_size=32, gray=True, detect_every=3), workers=1,
                      progress=False)
    assert res.ok == len(sc.clips) == 12
    return root, sc
