"""`mrpn pretrain`: visual on a FER2013-layout folder, audio as speaker identification; the
extractor weights they write load into `mrpn train` models."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import soundfile as sf
from safetensors.torch import load_file

from mrpn.config import ConfigError, load_config
from mrpn.training.fer import FerRecipe
from mrpn.data.datasets import CLASSES

# slow: > 10 s on this project's 2-core machine (`pytest -m "not slow"` skips them while working)
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MRPN_CACHE", str(tmp_path / "mrpn-cache"))


def _fer_folder(root, per_class=6):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for k, name in enumerate(CLASSES["fer2013"]):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 60, (48, 48), dtype=np.uint8)
                cv2.circle(img, (24, 24), 4 + 3 * k, 255, -1)    # class = circle size: learnable
                cv2.imwrite(str(d / f"{i}.jpg"), img)


def test_pretrain_visual_writes_loadable_extractor(tmp_path):
    from mrpn.training.pretrain import pretrain_visual
    from mrpn.training.run import load_pretrained_extractors
    from mrpn.models.build import build_model

    _fer_folder(tmp_path / "fer")
    r = pretrain_visual(str(tmp_path / "fer"), str(tmp_path / "out"),
                        FerRecipe(extractor="resnet18", width=4, epochs=2, batch_size=8), log=lambda *a: None)
    # test images without PublicTest_/PrivateTest_ names: the epoch is chosen on the whole test set, and it says so
    assert r["selected_on"] == "test" and 0.0 <= r["test_accuracy"] <= 1.0
    assert len(json.loads((tmp_path / "out" / "history.json").read_text())["history"]) == 2
    sd = load_file(tmp_path / "out" / "extractor.safetensors")
    assert "conv1.weight" in sd and sd["conv1.weight"].shape[1] == 1
    cfg = load_config("cpu", overrides=["model.kind=n2", "model.video_width=4",
                                        f"train.pretrained_v={tmp_path / 'out' / 'extractor.safetensors'}"])
    model = build_model(cfg.model)
    assert load_pretrained_extractors(model, cfg)
    assert np.allclose(model.branches["v"].extractor.conv1.weight.detach().numpy(), sd["conv1.weight"].numpy())
    meta = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert meta["recipe"]["task"] == "fer2013"


def test_pretrained_extractor_of_wrong_width_is_a_clear_error(tmp_path):
    from mrpn.training.checkpoint import CheckpointError
    from mrpn.training.pretrain import pretrain_visual
    from mrpn.training.run import load_pretrained_extractors
    from mrpn.models.build import build_model

    _fer_folder(tmp_path / "fer", per_class=2)
    pretrain_visual(str(tmp_path / "fer"), str(tmp_path / "out"),
                    FerRecipe(extractor="resnet18", width=4, epochs=1, batch_size=8), log=lambda *a: None)
    cfg = load_config("cpu", overrides=["model.kind=vm", "model.video_width=8",
                                        f"train.pretrained_v={tmp_path / 'out' / 'extractor.safetensors'}"])
    with pytest.raises((CheckpointError, ConfigError), match="does not fit"):
        load_pretrained_extractors(build_model(cfg.model), cfg)


def test_pretrain_audio_speaker_id_on_synthetic_voices(tmp_path):
    from mrpn.synth import make_actor
    from mrpn.synth.voice import synth_voice
    from mrpn.training.pretrain import pretrain_audio

    root = tmp_path / "speakers"
    for k in range(3):
        actor = make_actor(k, seed=3)
        for u in range(4):
            d = root / f"id{k:05d}" / f"video{u % 2}"
            d.mkdir(parents=True, exist_ok=True)
            wave = synth_voice(actor.voice, "neutral", 1.5, 16000, np.random.default_rng([k, u]))
            sf.write(d / f"{u:05d}.wav", wave, 16000)
    r = pretrain_audio(str(root), str(tmp_path / "out"), width=4, spec_size=(32, 32), epochs=2, batch_size=8,
                       log=lambda *a: None)
    assert r["n_speakers"] == 3 and 0.0 <= r["test_accuracy"] <= 1.0
    assert "layer4.1.conv2.weight" in load_file(tmp_path / "out" / "extractor.safetensors")


def test_pretrain_cli_errors(tmp_path, capsys):
    from mrpn.cli import main

    assert main(["pretrain", "audio", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "one" / "spk").mkdir(parents=True)
    assert main(["pretrain", "audio", str(tmp_path / "one"), "--out", str(tmp_path / "o")]) == 2
    assert "two speaker folders" in capsys.readouterr().err
