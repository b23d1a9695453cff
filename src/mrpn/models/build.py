"""Config -> model: the VM / AM baselines of Table 1 and the N0 / N1 / N2 networks of eqs. (7)-(9).

Section 5.2: every modality uses an extractor F_m (ResNet-18, or a plain CNN) and an
aggregator A_m (by default an LSTM); which modalities a kind uses, its FusionNet variant and the
aggregator classes come from `mrpn.registry`.
"""
from __future__ import annotations

from torch import nn

from mrpn import registry
from mrpn.config import ModelConfig

from .aggregators import make_aggregator
from .cnn import ConvNet
from .facecnn import FaceCNN
from .fusion import FusionNet, ModalityBranch, UniModalNet
from .ge2e import GE2EExtractor
from .resnet import ResNet18

__all__ = ["ModelConfig", "build_model", "build_branch", "build_aggregator", "count_parameters", "KINDS"]

KINDS = tuple(registry.KINDS)  # the built-in kinds, for tests and docs
EXTRACTORS = ("resnet18", "cnn", "facecnn", "ge2e")


def build_extractor(cfg: ModelConfig, modality: str) -> nn.Module:
    """F_m of eq. (1): the modality's own factory, or the network named by the ModelConfig fields
    `<prefix>_extractor` ("resnet18", the paper's, the plain 4-block "cnn", "facecnn" or the
    "ge2e" speaker encoder), `_in_channels`,
    `_width`, `_stem`, where the modality's spec names the prefix ("video", "audio")."""
    ext = registry.modality(modality).extractor
    if callable(ext):
        return ext(cfg)
    net = getattr(cfg, f"{ext}_extractor", "resnet18")
    channels, width = getattr(cfg, f"{ext}_in_channels"), getattr(cfg, f"{ext}_width")
    if net == "resnet18":
        return ResNet18(channels, width, getattr(cfg, f"{ext}_stem"), cfg.zero_init_residual)
    if net == "cnn":
        return ConvNet(channels, width, blocks=4, dropout=cfg.extractor_dropout)
    if net == "facecnn":  # 48x48 faces with a dense layer on the 3x3 map (FER2013 pretraining, models/facecnn.py)
        return FaceCNN(channels, width)
    if net == "ge2e":     # the GE2E speaker encoder on "ge2e" mel segments (models/ge2e.py); width unused
        return GE2EExtractor(channels)
    raise ValueError(f"extractor must be one of {EXTRACTORS}, got {net!r}")


def build_aggregator(cfg: ModelConfig, in_dim: int) -> nn.Module:
    """A_m by name (section 5.6): the registry's class with its options read from cfg."""
    spec = registry.AGGREGATORS.get(cfg.aggregator)
    extra = {arg: getattr(cfg, key) for arg, key in spec.options.items()} if spec else {}
    return make_aggregator(cfg.aggregator, in_dim, cfg.agg_hidden, num_layers=cfg.agg_layers,
                           dropout=cfg.agg_dropout, **extra)


def build_branch(cfg: ModelConfig, modality: str) -> ModalityBranch:
    """F_m + A_m for one registered modality — eq. (1)."""
    ext = build_extractor(cfg, modality)
    return ModalityBranch(ext, build_aggregator(cfg, ext.out_dim))


def build_model(cfg: ModelConfig) -> nn.Module:
    """A uni-modal kind: UniModalNet on its modality; a fusion kind: FusionNet over its modalities."""
    if cfg.kind not in registry.KINDS:
        raise ValueError(f"kind must be one of {tuple(registry.KINDS)}, got {cfg.kind!r}")
    kind = registry.kind(cfg.kind)
    if not kind.fusion:
        (m,) = kind.modalities
        return UniModalNet(build_branch(cfg, m), cfg.n_classes, modality=m, hidden=cfg.fusion_hidden,
                           dropout=cfg.dropout, task=cfg.task)
    branches = {m: build_branch(cfg, m) for m in kind.modalities}
    return FusionNet(branches, cfg.n_classes, variant=kind.variant, hidden=cfg.fusion_hidden,
                     dropout=cfg.dropout, task=cfg.task, input_norm=cfg.fusion_input_norm)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (only those with requires_grad when trainable_only)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
