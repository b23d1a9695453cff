"""The GE2E speaker encoder as an audio extractor (issue 9, item 2): front end, config, freezing, weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mrpn.config import ConfigError, load_config
from mrpn.features.spectrogram import audio_segments, ge2e_mels
from mrpn.models.build import build_model
from mrpn.models.ge2e import GE2E, weights_path

GE2E_AM = ["model.kind=am", "model.audio_extractor=ge2e", "data.audio_frontend=ge2e", "data.spec_size=40x100",
           "model.agg_hidden=8", "model.fusion_hidden=8"]
ENCODER = weights_path()
needs_weights = pytest.mark.skipif(ENCODER is None, reason="resemblyzer not installed (tools/install_dev.sh "
                                   "installs it; or pip install --no-deps 'resemblyzer>=0.1.4,<0.2')")


def _standardised(n: int, seed: int = 0) -> torch.Tensor:
    w = torch.from_numpy(np.random.default_rng(seed).normal(0, 1, n).astype(np.float32))
    return (w - w.mean()) / w.std()


def test_front_end_is_the_encoders_mel_of_the_segment_at_minus_30_dbfs():
    d = load_config("cpu", overrides=GE2E_AM).data
    wave = _standardised(40000)
    x = audio_segments(wave, d)
    assert x.shape == (4, 1, 40, 100)                        # (2.5 s - 1 s) / 0.5 s + 1 segments
    scale = 10 ** (-30 / 20)                                 # unit RMS -> -30 dBFS, resemblyzer's level
    for s, start in enumerate((0, 8000, 16000, 24000)):
        ref = ge2e_mels((wave[start:start + 16000] * scale).numpy())[:100].T
        assert torch.allclose(x[s, 0], ref, rtol=1e-4, atol=1e-7)
    assert (x >= 0).all()                                    # power, not logged: what the LSTM was trained on


def test_ge2e_extractor_and_front_end_go_together():
    load_config("cpu", overrides=GE2E_AM)
    with pytest.raises(ConfigError, match="go together"):
        load_config("cpu", overrides=["model.kind=am", "model.audio_extractor=ge2e"])
    with pytest.raises(ConfigError, match="go together"):
        load_config("cpu", overrides=["model.kind=am", "data.audio_frontend=ge2e", "data.spec_size=40x100"])
    with pytest.raises(ConfigError, match="40x100"):
        load_config("cpu", overrides=[*GE2E_AM, "data.spec_size=40x50"])
    with pytest.raises(ConfigError, match="model.audio_extractor=ge2e"):
        load_config("cpu", overrides=["model.kind=am", "train.pretrained_a=resemblyzer"])
    with pytest.raises(ConfigError, match="freeze_extractors"):
        load_config("cpu", overrides=[*GE2E_AM, "train.freeze_extractors=v"])   # the AM has no face branch


def _batch(n: int = 3, t: int = 4) -> dict:
    x = torch.rand(n, t, 1, 40, 100)
    return {"a": x, "a_len": torch.tensor([t, t - 1, 2][:n])}


def test_ge2e_am_every_parameter_gets_a_gradient():
    cfg = load_config("cpu", overrides=GE2E_AM).model
    m = build_model(cfg)
    out = m(_batch())
    torch.nn.functional.cross_entropy(out["scores"], torch.tensor([0, 1, 2])).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    with pytest.raises(ValueError, match="40"):
        m.branches["a"].extractor(torch.rand(2, 1, 64, 50))


def test_frozen_extractor_stays_fixed_while_the_rest_trains():
    from mrpn.models.fusion import freeze_extractors

    m = build_model(load_config("cpu", overrides=GE2E_AM).model)
    freeze_extractors(m, ["a"])
    ext, agg = m.branches["a"].extractor, m.branches["a"].aggregator
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    m.train()
    assert not ext.training and agg.training
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(_batch())["scores"], torch.tensor([0, 1, 2])).backward()
        opt.step()
    after = m.state_dict()
    for k in before:
        same = torch.equal(before[k], after[k])
        assert same if k.startswith("branches.a.extractor.") else True, k
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("branches.a.aggregator."))
    assert all(p.grad is None for p in ext.parameters())
    with pytest.raises(KeyError):
        freeze_extractors(m, ["v"])


@needs_weights
def test_resemblyzer_weights_load_into_the_am_and_embed_like_the_encoder():
    from mrpn.baselines.ge2e import load_encoder
    from mrpn.training.setup import load_pretrained_extractors

    cfg = load_config("cpu", overrides=[*GE2E_AM, "train.pretrained_a=resemblyzer"])
    m = build_model(cfg.model)
    lines = load_pretrained_extractors(m, cfg)
    assert lines and "GE2E" in lines[0]
    enc = load_encoder()
    for k, v in enc.state_dict().items():
        assert torch.equal(m.branches["a"].extractor.state_dict()[k], v), k
    seg = audio_segments(_standardised(16000, 1), cfg.data)
    ext = m.branches["a"].extractor.eval()
    with torch.no_grad():
        e = ext(seg)
        ref = enc(seg[:, 0].transpose(1, 2))
    assert e.shape == (1, 256) and torch.allclose(e, ref, atol=1e-6)
    assert abs(float(e.norm()) - 1) < 1e-5


@needs_weights
@pytest.mark.slow
def test_a_probe_run_keeps_the_pretrained_encoder_unchanged(corpus):
    """A fold with the GE2E encoder frozen (`train.freeze_extractors=a`): its checkpoint holds
    resemblyzer's weights exactly, and the run says it started from them."""
    from mrpn.baselines.ge2e import load_encoder
    from mrpn.checkpoint import load_checkpoint
    from mrpn.training.run import run_fold

    root, _ = corpus
    cfg = load_config("cpu", overrides=[
        *GE2E_AM, "train.pretrained_a=resemblyzer", "train.freeze_extractors=a", "train.epochs=1",
        "train.batch_size=4", "data.workers=0", "data.dataset=synth", f"data.cache={root / 'cache'}",
        f"out={root / 'runs'}", "name=ge2e_probe", "train.early_stop=0"])
    lines: list[str] = []
    fold_dir = root / "runs" / "ge2e_probe" / "fold_01"
    run_fold(cfg, 1, fold_dir, progress=False, log=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert any("GE2E speaker encoder" in s for s in lines) and any("kept fixed: a" in s for s in lines)
    sd = load_checkpoint(fold_dir / "best.pt")["model"]
    for k, v in load_encoder().state_dict().items():
        assert torch.equal(sd[f"branches.a.extractor.{k}"].float(), v), k
    saved = json.loads((fold_dir / "config.json").read_text())
    assert saved["train"]["freeze_extractors"] == "a" and saved["train"]["pretrained_a"] == "resemblyzer"


def test_ge2e_class_is_the_baselines_encoder():
    from mrpn.baselines import ge2e

    assert ge2e.GE2E is GE2E                               # one network, used by the probe and the AM
