import json

import pytest

from mrpn.config import ConfigError, config_from_dict, load_config


def test_presets_resolve_and_cpu_differs_from_paper():
    paper, cpu = load_config("paper"), load_config("cpu")
    assert paper.train.lr == 5e-5 and paper.data.spec_size == (256, 250) and paper.data.n_fft == 512
    assert paper.data.hop_length == 64 and paper.data.segment_hop_s == 0.2 and paper.train.lr_factor == 0.5
    assert cpu.model.video_width < paper.model.video_width and cpu.data.spec_size == (64, 50)


def test_cpu_preset_is_the_audio_recipe():
    """configs/am_recipe.yaml adds only the run's own choices (inner validation, threads, workers) to
    the cpu preset: the recipe's model and training settings are the preset's (issue 9, item 1)."""
    from pathlib import Path

    recipe = load_config("cpu", file=str(Path(__file__).parent.parent / "configs" / "am_recipe.yaml"))
    cpu = load_config("cpu")
    assert recipe.model == cpu.model
    assert recipe.data == cpu.data.__class__(**{**cpu.data.__dict__, "workers": recipe.data.workers})
    own = {"inner_val", "threads"}
    assert {k: v for k, v in recipe.train.__dict__.items() if k not in own} == \
        {k: v for k, v in cpu.train.__dict__.items() if k not in own}


def test_overrides_are_typed():
    cfg = load_config("cpu", overrides=["train.lr=1e-4", "data.time_aug=false", "data.spec_size=32x40",
                                        "model.kind=n1", "train.unimodal_runs=v=runs/a,a=runs/b"])
    assert cfg.train.lr == 1e-4 and cfg.data.time_aug is False and cfg.data.spec_size == (32, 40)
    assert cfg.model.kind == "n1" and cfg.train.unimodal_runs == {"v": "runs/a", "a": "runs/b"}


@pytest.mark.parametrize("bad, msg", [
    ("train.lrr=1", "did you mean 'train.lr'"),
    ("trian.lr=1", "did you mean 'train'"),
    ("train.epochs=abc", "expected an integer"),
    ("model.kind=n7", "choose one of"),
    ("data.time_aug=maybe", "expected true/false"),
    ("train.lr", "key=value"),
])
def test_bad_overrides_get_clear_errors(bad, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config("cpu", overrides=[bad])


def test_yaml_file_and_unknown_key(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("train:\n  lr: 0.002\n  epochs: 3\nmodel:\n  kind: vm\n")
    cfg = load_config("cpu", str(good))
    assert cfg.train.lr == 0.002 and cfg.train.epochs == 3 and cfg.model.kind == "vm"
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config("cpu", str(bad))
    with pytest.raises(ConfigError, match="not found"):
        load_config("cpu", str(tmp_path / "missing.yaml"))


def test_roundtrip_through_json():
    cfg = load_config("cpu", overrides=["model.kind=n2", "train.seed=3"])
    again = config_from_dict(json.loads(cfg.to_json()))
    assert again.to_dict() == cfg.to_dict()
