"""`train.pretrained_<m>` = a trained run's checkpoint: its F_m starts the new model (issue 9: the shipped
N2 starts F_a from an AM trained on the same training actors)."""
from __future__ import annotations

import pytest
import torch

from mrpn.checkpoint import save_checkpoint
from mrpn.config import ConfigError, load_config
from mrpn.models.build import build_model
from mrpn.training.checkpoint import CheckpointError
from mrpn.training.setup import load_pretrained_extractors


def _am_checkpoint(tmp_path, *overrides):
    cfg = load_config("cpu", overrides=["model.kind=am", "model.n_classes=8", *overrides])
    torch.manual_seed(3)
    am = build_model(cfg.model)
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"model": am.state_dict(), "config": cfg.to_dict(), "epoch": 7, "classes": list("abcdefgh")})
    return am, path


def test_audio_extractor_of_an_am_run_starts_an_n2(tmp_path):
    am, path = _am_checkpoint(tmp_path)
    cfg = load_config("cpu", overrides=["model.kind=n2", "model.n_classes=7", f"train.pretrained_a={path}"])
    torch.manual_seed(4)
    n2 = build_model(cfg.model)
    before_v = {k: v.clone() for k, v in n2.branches["v"].state_dict().items()}
    lines = load_pretrained_extractors(n2, cfg)
    assert lines == [f"a: the a extractor of {path}"]
    theirs = am.branches["a"].extractor.state_dict()
    for k, v in n2.branches["a"].extractor.state_dict().items():
        assert torch.equal(v, theirs[k]), k            # F_a copied exactly
    # only F_a: the rest of the audio branch and the whole face branch keep their own initialisation
    mine_agg, their_agg = n2.branches["a"].aggregator.state_dict(), am.branches["a"].aggregator.state_dict()
    assert any(not torch.equal(v, their_agg[k]) for k, v in mine_agg.items())
    assert all(torch.equal(v, before_v[k]) for k, v in n2.branches["v"].state_dict().items())


def test_a_run_with_another_front_end_or_width_is_refused(tmp_path):
    _, path = _am_checkpoint(tmp_path, "data.audio_frontend=linear", "data.spec_size=64x64")
    cfg = load_config("cpu", overrides=["model.kind=n2", "model.n_classes=7", f"train.pretrained_a={path}"])
    with pytest.raises(ConfigError, match=r"data.audio_frontend=logmel but .* has linear"):
        load_pretrained_extractors(build_model(cfg.model), cfg)
    _, path = _am_checkpoint(tmp_path, "model.audio_width=16")
    cfg = load_config("cpu", overrides=["model.kind=n2", "model.n_classes=7", f"train.pretrained_a={path}"])
    with pytest.raises(ConfigError, match="model.audio_width=32 but"):
        load_pretrained_extractors(build_model(cfg.model), cfg)


def test_a_run_without_that_branch_is_refused(tmp_path):
    cfg_vm = load_config("cpu", overrides=["model.kind=vm", "model.n_classes=7"])
    vm = build_model(cfg_vm.model)
    path = tmp_path / "vm.pt"
    save_checkpoint(path, {"model": vm.state_dict(), "config": cfg_vm.to_dict(), "epoch": 1, "classes": list("abcdefg")})
    cfg = load_config("cpu", overrides=["model.kind=n2", "model.n_classes=7", f"train.pretrained_a={path}"])
    with pytest.raises(CheckpointError, match="no a extractor"):
        load_pretrained_extractors(build_model(cfg.model), cfg)


def test_a_run_folder_gives_each_fold_its_own_extractor_and_refuses_another_split(tmp_path):
    """`train.pretrained_a=RUN_DIR` (the paired benchmark on 12 folds): fold k starts from that run's
    fold_k/best.pt, which must have tested on fold k's actors, so it never trained on them."""
    import json

    run = tmp_path / "am_run"
    ams = {}
    for k in (1, 2):
        (run / f"fold_{k:02d}").mkdir(parents=True)
        ams[k], path = _am_checkpoint(run / f"fold_{k:02d}")
        torch.manual_seed(10 + k)
        for p in ams[k].branches["a"].extractor.parameters():     # two folds, two different extractors
            p.data.normal_()
        save_checkpoint(path, {"model": ams[k].state_dict(), "config": torch.load(path)["config"], "epoch": 3,
                               "classes": list("abcdefgh")})
    (run / "fold_01" / "metrics.json").write_text(json.dumps({"val_actors": ["01", "02"]}))
    (run / "fold_02" / "metrics.json").write_text(json.dumps({"val_actors": ["03", "04"]}))
    cfg = load_config("cpu", overrides=["model.kind=n2", "model.n_classes=7", f"train.pretrained_a={run}"])
    n2 = build_model(cfg.model)
    assert load_pretrained_extractors(n2, cfg, 2, ["04", "03"]) == [f"a: the a extractor of {run / 'fold_02' / 'best.pt'}"]
    theirs = ams[2].branches["a"].extractor.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in n2.branches["a"].extractor.state_dict().items())
    with pytest.raises(ConfigError, match="may have trained on this fold's test actors"):
        load_pretrained_extractors(n2, cfg, 1, ["03", "04"])
    with pytest.raises(ConfigError, match="no finished fold"):
        load_pretrained_extractors(n2, cfg, 3, ["05", "06"])
    with pytest.raises(ConfigError, match="run folder"):
        load_pretrained_extractors(n2, cfg)
