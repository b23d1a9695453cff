"""train.feature_views: fixed extractors run once per view; training must see what it would have seen."""
from __future__ import annotations

import json

import pytest
import torch

from mrpn.config import ConfigError, load_config

TINY = ["data.face_size=32", "data.spec_size=16x10", "data.audio_frontend=logmel", "model.audio_extractor=cnn",
        "model.video_extractor=cnn", "model.audio_width=4", "model.video_width=4", "model.agg_hidden=8",
        "model.fusion_hidden=8", "train.batch_size=4", "train.schedule=onecycle", "data.workers=0",
        "data.dataset=synth", "model.kind=n2", "train.early_stop=0", "train.precision=fp32",
        "train.freeze_extractors=v,a", "data.specaug_freq=3", "data.specaug_time=2"]


def test_feature_views_need_every_extractor_fixed_and_no_mixup():
    load_config("cpu", overrides=["model.kind=n2", "train.freeze_extractors=v,a", "train.feature_views=4"])
    with pytest.raises(ConfigError, match="freeze_extractors=v,a"):
        load_config("cpu", overrides=["model.kind=n2", "train.freeze_extractors=a", "train.feature_views=4"])
    with pytest.raises(ConfigError, match="mixup"):
        load_config("cpu", overrides=["model.kind=am", "train.freeze_extractors=a", "train.feature_views=4",
                                      "train.mixup=0.2"])
    load_config("cpu", overrides=["model.kind=n2", "train.strategy=late", "train.feature_views=2"])


def _fold(root, name, extra):
    from mrpn.training.run import run_fold

    cfg = load_config("cpu", overrides=[*TINY, f"data.cache={root / 'cache'}", f"out={root / 'runs'}",
                                        f"name={name}", *extra])
    lines: list[str] = []
    d = root / "runs" / name / "fold_01"
    m = run_fold(cfg, 1, d, progress=False, log=lambda *a, **k: lines.append(" ".join(map(str, a))))
    return m, json.loads((d / "history.json").read_text()), lines


@pytest.mark.slow
def test_cached_views_train_exactly_like_the_extractor_run_every_epoch(corpus, tmp_path):
    """With as many views as epochs the cached run draws the same augmented inputs, so every epoch's
    losses match the uncached run; a second run with the same cache folder reads the views back."""
    root, _ = corpus
    m0, h0, _ = _fold(root, "fc_plain", ["train.epochs=3"])
    cache = tmp_path / "views"
    m1, h1, log1 = _fold(root, "fc_cached", ["train.epochs=3", "train.feature_views=3", f"train.feature_cache={cache}"])
    for a, b in zip(h0, h1):
        for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), (a["epoch"], k)
    assert m0["accuracy"] == pytest.approx(m1["accuracy"])
    assert sum("view" in line and "clips" in line for line in log1) == 4     # 3 training views + evaluation
    assert len(list(cache.glob("*.pt"))) == 4
    m2, h2, log2 = _fold(root, "fc_again", ["train.epochs=3", "train.feature_views=3", f"train.feature_cache={cache}"])
    assert not any("view" in line and "clips" in line for line in log2)       # nothing computed again
    assert [r["train_loss"] for r in h2] == pytest.approx([r["train_loss"] for r in h1])


@pytest.mark.slow
def test_fewer_views_repeat_and_a_damaged_cache_file_is_computed_again(corpus, tmp_path):
    from mrpn.data.loader import EmotionDataset
    from mrpn.models.fusion import freeze_extractors
    from mrpn.training.feature_cache import FeatureViewDataset
    from mrpn.training.setup import build, make_source

    root, _ = corpus
    cfg = load_config("cpu", overrides=[*TINY, f"data.cache={root / 'cache'}", "data.time_aug=true"])
    src = make_source(cfg, set())
    model = freeze_extractors(build(cfg, len(src.classes)), ["v", "a"])
    exts = {m: model.branches[m].extractor for m in ("v", "a")}
    base = EmotionDataset(src, list(range(len(src.clips()))), cfg.data, ("v", "a"), train=True, seed=0)
    ds = FeatureViewDataset(base, exts, views=2, batch_size=4, cache_dir=str(tmp_path), log=lambda *a: None)
    assert [ds.view_of(e) for e in (1, 2, 3, 4)] == [1, 2, 1, 2]
    feats = {}
    for e in (1, 2, 3):
        ds.set_epoch(e)
        feats[e] = [ds[k]["a_feat"] for k in range(len(ds))]
    assert all(torch.equal(x, y) for x, y in zip(feats[1], feats[3]))      # epoch 3 repeats view 1
    assert not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(feats[1], feats[2]))
    # F_m as the branch runs it, on view 2's inputs
    base.set_epoch(2)
    item = base[0]
    with torch.no_grad():
        ref = exts["a"].eval()(item["a"])
    assert torch.allclose(feats[2][0], ref, atol=1e-5)
    for f in tmp_path.glob("*.pt"):
        f.write_bytes(b"not a tensor file")
    again = FeatureViewDataset(base, exts, views=2, batch_size=4, cache_dir=str(tmp_path), log=lambda *a: None)
    again.set_epoch(1)
    assert all(torch.equal(again[k]["a_feat"], feats[1][k]) for k in range(len(ds)))


def test_a_data_key_added_later_keeps_older_caches_valid_at_its_default():
    """A view's key hashes the data settings; a key added since (data.paired_fuzzy) is left out at the value
    that reproduces the older data, so a cache written before keeps its name. The constant is the key
    the code of commit 8e3aa2e (before data.paired_fuzzy) computed for these settings. Adding a data key
    changes it: add that key to feature_cache._ADDED_LATER."""
    from types import SimpleNamespace

    from mrpn.config import DataConfig
    from mrpn.training.feature_cache import FeatureViewDataset

    def key(cfg) -> str:
        ds = FeatureViewDataset.__new__(FeatureViewDataset)
        ds.base = SimpleNamespace(cfg=cfg, modalities=("v", "a"), train=True, seed=0, indices=[0, 1, 2])
        ds._digests = {"v": "x", "a": "y"}
        return ds._key(1)

    assert key(DataConfig()) == "811ac5b0d4dbf8da1cc79f58"
    assert key(DataConfig(paired_fuzzy=0.3)) != "811ac5b0d4dbf8da1cc79f58"
