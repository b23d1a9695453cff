"""The registry is the one place that declares modalities, model kinds and aggregators.

A toy third modality ("toy": a 10 Hz one-dimensional signal, elements of 4 samples), a fusion kind
over audio + toy with side heads, and a masked-mean aggregator are registered from this test
alone; the model is then built, trained, saved, predicted with the `Predictor` and exported to
ONNX by the library's own code, which is not touched.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from mrpn import registry
from mrpn.config import load_config
from mrpn.data.clip import Clip
from mrpn.data.loader import EmotionDataset, Example, collate
from mrpn.models.aggregators import valid_mask
from mrpn.models.build import build_model
from mrpn.training.loop import evaluate, train_one_epoch

TOY_HZ, BLOCK = 10.0, 4
AUDIO = registry.A


# ------------------------------------------------------------------ the toy modality's feature code

def _toy(ex):
    return getattr(ex, "extra", {}).get("toy")


def toy_duration(ex, d) -> float:
    x = _toy(ex)
    return len(x) / TOY_HZ if x is not None else 0.0


def toy_select(ex, t0: float, t1: float, d) -> np.ndarray:
    """Blocks of 4 samples that start in [t0, t1) (at least one)."""
    n_blocks = max(1, len(_toy(ex)) // BLOCK)
    first = min(int(t0 * TOY_HZ) // BLOCK, n_blocks - 1)
    last = max(first + 1, min(n_blocks, int(np.ceil(t1 * TOY_HZ / BLOCK))))
    return np.arange(first, last, dtype=np.int64)


def toy_inputs(ex, keys: np.ndarray, d, rng=None) -> torch.Tensor:
    x = np.asarray(_toy(ex), np.float32)
    blocks = np.stack([np.resize(x[k * BLOCK:(k + 1) * BLOCK], BLOCK) for k in keys])
    if rng is not None:  # training augmentation: a little noise
        blocks = blocks + rng.normal(0, 0.05, blocks.shape).astype(np.float32)
    return torch.from_numpy(blocks).view(len(keys), 1, 1, BLOCK)


class ToyExtractor(nn.Module):
    """F_toy: one element [1, 1, 4] -> 8 features."""

    out_dim = 8

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(BLOCK, 8), nn.ReLU())

    def forward(self, x):
        return self.net(x)


class MeanAggregator(nn.Module):
    """A_m = masked mean over the valid steps, then a linear map: the aggregator a user adds."""

    def __init__(self, in_dim: int, hidden: int = 16, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.proj, self.out_dim = nn.Linear(in_dim, hidden), hidden

    def forward(self, x, lengths):
        w = valid_mask(lengths, x.shape[1]).unsqueeze(2).to(x.dtype)
        return self.proj((x * w).sum(1) / lengths.clamp(min=1).unsqueeze(1).to(x.dtype))


@pytest.fixture
def toy_registered():
    registry.register_modality(registry.ModalitySpec(
        name="toy", title="toy signal", axis="blocks", duration=toy_duration,
        present=lambda ex: _toy(ex) is not None, usable=lambda ex: _toy(ex) is not None and len(_toy(ex)) > 0,
        select=toy_select, inputs=toy_inputs, element_shape=lambda d: (1, 1, BLOCK),
        extractor=lambda cfg: ToyExtractor(), missing="toy signal"))
    registry.register_kind(registry.ModelKind("n2toy", "N2 audio+toy", (AUDIO, "toy"), variant="n2",
                                              side_heads=True))
    registry.register_aggregator(registry.AggregatorSpec("mean", MeanAggregator))
    yield
    for name in ("n2toy", "mean", "toy"):
        registry.unregister(name)


class ToySource:
    """Clips in memory: class 1 has a positive toy signal, class 0 a negative one; audio is noise."""

    classes = ["low", "high"]

    def __init__(self, n: int = 24, seed: int = 0):
        rng = np.random.default_rng(seed)
        self._clips = [Clip(id=f"c{i}", dataset="toy", label=i % 2, label_name=self.classes[i % 2],
                            actor=str(i % 4)) for i in range(n)]
        self.examples = []
        for c in self._clips:
            sign = 1.0 if c.label else -1.0
            toy = (sign + rng.normal(0, 0.3, 20)).astype(np.float32)            # 2 s at 10 Hz
            audio = rng.normal(0, 1, 32000).astype(np.float32)                   # 2 s at 16 kHz
            self.examples.append(Example(clip=c, faces=None, fps=0.0, audio=audio, extra={"toy": toy}))

    def clips(self):
        return self._clips

    def load(self, i):
        return self.examples[i]


def toy_config():
    return load_config("cpu", overrides=[
        "model.kind=n2toy", "model.aggregator=mean", "model.agg_hidden=16", "model.fusion_hidden=16",
        "model.n_classes=2", "model.audio_width=4", "data.spec_size=16x16", "data.segment_hop_s=1.0",
        "data.time_aug=false"])


def test_toy_modality_trains_predicts_and_exports(toy_registered, tmp_path, monkeypatch):
    monkeypatch.setenv("MRPN_CACHE", str(tmp_path / "cache"))  # where the ONNX backend keeps its export
    from mrpn.inference.export import export_onnx
    from mrpn.inference.model_io import save_for_inference
    from mrpn.inference.predictor import Predictor

    cfg = toy_config()  # validation accepts the registered kind and aggregator
    torch.manual_seed(0)
    model = build_model(cfg.model)
    assert set(model.branches) == {AUDIO, "toy"} and isinstance(model.branches["toy"].aggregator, MeanAggregator)

    src = ToySource()
    ds = EmotionDataset(src, list(range(len(src.clips()))), cfg.data, registry.modalities_of("n2toy"), train=True)
    item = ds[0]
    assert item["toy"].shape == (5, 1, 1, BLOCK) and item[AUDIO].shape == (2, 1, 16, 16)
    loader = DataLoader(ds, batch_size=8, shuffle=True, collate_fn=collate, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(12):
        ds.set_epoch(epoch)
        train_one_epoch(model, loader, opt, torch.device("cpu"), precision="fp32", channels_last=False,
                        progress=False)
    val = EmotionDataset(src, list(range(len(src.clips()))), cfg.data, registry.modalities_of("n2toy"), train=False)
    ev = evaluate(model, DataLoader(val, batch_size=8, collate_fn=collate), torch.device("cpu"), "fp32", False,
                  side_heads=True, progress=False)
    assert ev["accuracy"] >= 0.9                                   # the toy signal carries the label
    assert (ev["side_pred"]["toy"] == ev["y_true"]).mean() >= 0.9  # ... and its side head learnt it alone

    path = tmp_path / "toy.safetensors"
    save_for_inference(model, cfg.to_dict(), src.classes, path, half=False)
    p = Predictor(str(path))
    ex = src.load(1)
    pred = p.predict_example(ex, name="toy clip")
    assert pred.modalities_used == [AUDIO, "toy"] and pred.label == "high"
    assert set(pred.per_modality) == {AUDIO, "toy"} and pred.timeline
    # without audio, the toy side head predicts alone (N2's missing-modality path)
    alone = p.predict_example(Example(clip=None, faces=None, fps=0.0, audio=None, extra=ex.extra))
    assert alone.modalities_used == ["toy"] and alone.label == "high"

    meta = export_onnx(str(path), str(tmp_path / "onnx"), log=lambda *_: None)
    assert set(meta["graphs"]) == {AUDIO + "toy", AUDIO, "toy"}
    assert all(g["max_abs_diff_probabilities"] < 1e-4 for g in meta["graphs"].values())
    onnx_pred = Predictor(str(path), backend="onnx").predict_example(ex)
    assert onnx_pred.label == pred.label


def test_registry_drives_config_and_cli_choices(toy_registered):
    from mrpn.training.run import add_config_arguments, run_label
    import argparse

    p = argparse.ArgumentParser()
    add_config_arguments(p)
    assert p.parse_args(["--model", "n2toy", "--aggregator", "mean"]).model == "n2toy"
    assert run_label(toy_config()).startswith("N2 audio+toy (end-to-end) [NT+WO")


def test_built_in_registry():
    assert registry.modality_sets("n2") == [(registry.V, AUDIO), (registry.V,), (AUDIO,)]
    assert registry.modality_sets("n0") == [(registry.V, AUDIO)]
    assert registry.unimodal_kind(AUDIO).name == "am" and not registry.kind("am").fusion
    with pytest.raises(ValueError, match="unknown model kind"):
        registry.kind("n9")
    with pytest.raises(ValueError, match="unknown modalities"):
        registry.register_kind(registry.ModelKind("bad", "bad", ("nope",)))
