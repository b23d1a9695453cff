"""Config -> model: the VM / AM baselines of Table 1 and the N0 / N1 / N2 networks of eqs. (7)-(9).

Section 5.2: both modalities use a ResNet-18 extractor F_m and (by default) an LSTM aggregator A_m;
"v" is the face-frame sequence, "a" the sequence of one-second spectrogram chunks.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .aggregators import make_aggregator
from .fusion import FusionNet, ModalityBranch, UniModalNet
from .facecnn import FaceCNN
from .resnet import ResNet18

__all__ = ["ModelConfig", "build_model", "build_branch", "count_parameters", "KINDS"]

KINDS = ("vm", "am", "n0", "n1", "n2")


@dataclass
class ModelConfig:
    kind: str = "n2"                 # "vm", "am" (Table 1 uni-modal), "n0", "n1", "n2" (eqs. 7-9)
    n_classes: int = 8               # RAVDESS 8, CREMA-D 6; number of targets for regression
    task: str = "classification"     # or "regression"
    aggregator: str = "lstm"         # "lstm", "bilstm", "transformer" (section 5.6)
    agg_hidden: int = 256
    agg_layers: int = 1
    agg_heads: int = 4               # transformer only
    agg_dropout: float = 0.0         # between LSTM layers / inside transformer layers
    agg_pos: str = "learned"         # transformer positional encoding: "learned" or "sinusoidal"
    agg_max_len: int = 512           # transformer: longest sequence
    fusion_hidden: int = 256         # hidden DenseUnit of Scoring (eq. 2)
    fusion_input_norm: bool = True   # FeatureNorm after Concatenate (eq. 3) or not (eq. 4)
    dropout: float = 0.3             # Scoring dropout
    video_width: int = 64
    video_in_channels: int = 3
    video_stem: str = "imagenet"
    video_extractor: str = "resnet18"  # F_v: "resnet18" (paper 5.2) or "facecnn" (VGG-style, models/facecnn.py)
    audio_width: int = 64
    audio_in_channels: int = 1
    audio_stem: str = "imagenet"
    zero_init_residual: bool = False


def build_branch(cfg: ModelConfig, modality: str) -> ModalityBranch:
    """F_m (ResNet18) + A_m for modality "v" or "a" — eq. (1)."""
    if modality == "v" and cfg.video_extractor == "facecnn":
        ext = FaceCNN(cfg.video_in_channels, cfg.video_width)
    elif modality == "v":
        ext = ResNet18(cfg.video_in_channels, cfg.video_width, cfg.video_stem, cfg.zero_init_residual)
    elif modality == "a":
        ext = ResNet18(cfg.audio_in_channels, cfg.audio_width, cfg.audio_stem, cfg.zero_init_residual)
    else:
        raise ValueError(f"modality must be 'v' or 'a', got {modality!r}")
    extra = {}
    if cfg.aggregator == "transformer":
        extra = dict(heads=cfg.agg_heads, pos=cfg.agg_pos, max_len=cfg.agg_max_len)
    agg = make_aggregator(cfg.aggregator, ext.out_dim, cfg.agg_hidden, num_layers=cfg.agg_layers,
                          dropout=cfg.agg_dropout, **extra)
    return ModalityBranch(ext, agg)


def build_model(cfg: ModelConfig) -> nn.Module:
    """"vm" / "am": UniModalNet on "v" / "a"; "n0" / "n1" / "n2": FusionNet over {"v", "a"}."""
    if cfg.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {cfg.kind!r}")
    if cfg.kind in ("vm", "am"):
        m = cfg.kind[0]
        return UniModalNet(build_branch(cfg, m), cfg.n_classes, modality=m, hidden=cfg.fusion_hidden,
                           dropout=cfg.dropout, task=cfg.task)
    branches = {m: build_branch(cfg, m) for m in ("v", "a")}
    return FusionNet(branches, cfg.n_classes, variant=cfg.kind, hidden=cfg.fusion_hidden,
                     dropout=cfg.dropout, task=cfg.task, input_norm=cfg.fusion_input_norm)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (only those with requires_grad when trainable_only)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
