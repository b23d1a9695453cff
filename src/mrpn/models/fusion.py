"""The MRPN components and networks of section 4.1 (eqs. 1-9, Figures 6 and 7).

Units, named as the paper names them:
    DenseUnit      affine map (nn.Linear)                                   item 3
    FeatureNorm    batch normalisation of a feature vector                  item 3, note 1
    Scoring        features -> class scores                                 eq. (2)
    ResPerceptron  f' = f_hat + FeatureNorm(Sigmoid(DenseUnit(f_hat)))       eq. (6)
    FusionComponent  Concatenate(g_1..g_M) -> FeatureNorm -> Scoring         eqs. (3), (4)
    ModalityBranch   f_m = A_m(F_m(x_m))                                     eq. (1)
    FusionNet        N0 / N1 / N2 over any M >= 1 modalities                eqs. (7), (8), (9), Fig. 7
    UniModalNet      VM / AM of Table 1: s = Scoring(FeatureNorm(A(F(x))))

Batch / output contract (shared by FusionNet and UniModalNet):
    batch[m]          float [B, T_m, C, H, W]  the sequence of modality m (frames or spectrogram chunks)
    batch[m + "_len"] long  [B]                number of valid steps; steps beyond it are padding
    out["scores"]               [B, n_out]  the central branch: s_va (fusion) or s (uni-modal)
    out["features"][m]          [B, D_m]    f_hat_m = FeatureNorm(f_m)
    out["features"]["fused"]    [B, sum g]  Concatenate(g_1..g_M), the fusion input (FusionNet only)
    out["side_scores"][m]       [B, n_out]  s_m = DenseUnit(f_hat_m); N1/N2 in training mode only

Attribute names are stable across models so weights move by prefix: `branches.<m>.extractor`,
`branches.<m>.aggregator` and `norms.<m>` mean the same thing in a UniModalNet and a FusionNet,
which is what late fusion (load the uni-modal models, freeze their branches) needs.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import torch
from torch import nn

from .aggregators import valid_mask

__all__ = [
    "DenseUnit",
    "FeatureNorm",
    "Scoring",
    "ResPerceptron",
    "FusionComponent",
    "ModalityBranch",
    "FusionNet",
    "UniModalNet",
    "load_branch_weights",
    "freeze_branches",
    "VARIANTS",
    "TASKS",
]

VARIANTS = ("n0", "n1", "n2")
TASKS = ("classification", "regression")


class DenseUnit(nn.Linear):
    """DenseUnit of section 4.1 item 3: an affine map y = W x + b.

    A named subclass (not a bare nn.Linear) so the side heads of eqs. (8), (9) are easy to find and
    hook; it behaves exactly like nn.Linear and loads the same state_dict.
    """


class FeatureNorm(nn.BatchNorm1d):
    """FeatureNorm of section 4.1 item 3: batch normalisation over a batch of feature vectors [B, D].

    Note 1 of section 4.1: "All instances of FeatureNorm unit are implemented as batch normalization
    units." In eval mode it is the fixed affine map (x - running_mean) / sqrt(running_var + eps) *
    weight + bias.
    """


class Scoring(nn.Module):
    """Scoring of eq. (2): features -> class scores.

        Dropout -> DenseUnit -> ReLU -> FeatureNorm -> Dropout -> DenseUnit

    Eq. (2) lists DenseUnit -> ReLU -> FeatureNorm -> DenseUnit; the paper names Dropout as one of
    its units (item 3) and says all Dropout units are off at test time (note 4) without showing
    where they sit. We put one on the input (regularises the wide concatenated/aggregated features,
    where co-adaptation is largest) and one before the last DenseUnit (after FeatureNorm, so the
    dropped activations do not disturb the batch statistics). Both use the same rate.
    """

    def __init__(self, in_dim: int, hidden: int, n_out: int, dropout: float = 0.0):
        super().__init__()
        self.drop1 = nn.Dropout(dropout)
        self.dense1 = DenseUnit(in_dim, hidden)
        self.act = nn.ReLU(inplace=True)
        self.norm = FeatureNorm(hidden)
        self.drop2 = nn.Dropout(dropout)
        self.dense2 = DenseUnit(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.act(self.dense1(self.drop1(x))))
        return self.dense2(self.drop2(x))


class ResPerceptron(nn.Module):
    """Residual Perceptron (RP) of eq. (6): f' = f_hat + FeatureNorm(Sigmoid(DenseUnit(f_hat))).

    The residual path gives the fusion its own modified copy of the modality features, while the
    unmodified f_hat keeps serving the uni-modal side loss (section 4.2 item 2). Sigmoid rather than
    ReLU bounds the affine combinations before they are normalised (section 4.1 note 6).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dense = DenseUnit(dim, dim)
        self.norm = FeatureNorm(dim)

    def forward(self, f_hat: torch.Tensor) -> torch.Tensor:
        return f_hat + self.norm(torch.sigmoid(self.dense(f_hat)))


class FusionComponent(nn.Module):
    """FusionComponent of eqs. (3)-(4): s = Scoring(FeatureNorm(Concatenate(g_1, ..., g_M))).

    The paper is not consistent here: eq. (3) (second line) and the prose of item 5 ("concatenates
    its inputs, then makes the statistical normalization, and finally produces the vector of class
    scores") put a FeatureNorm between Concatenate and Scoring, while the arrow diagram of eq. (4)
    shows Concatenate -> Scoring. We follow eq. (3) and item 5 (two statements against one) and
    keep the normalisation by default; `input_norm=False` gives the literal eq. (4). The extra
    FeatureNorm matters mainly for N2, whose inputs f' = f_hat + FeatureNorm(...) are not unit-scaled;
    for N0/N1 (inputs already FeatureNorm outputs) it is a learned per-feature re-scaling.
    BatchNorm is per-feature, so normalising the concatenation equals normalising each g_m apart.
    """

    def __init__(self, dims: Sequence[int], hidden: int, n_out: int, dropout: float = 0.0,
                 input_norm: bool = True):
        super().__init__()
        self.dims = list(dims)
        in_dim = sum(self.dims)
        self.norm = FeatureNorm(in_dim) if input_norm else nn.Identity()
        self.scoring = Scoring(in_dim, hidden, n_out, dropout)

    def score_concat(self, fused: torch.Tensor) -> torch.Tensor:
        """Scores from an already concatenated input [B, sum(dims)]."""
        return self.scoring(self.norm(fused))

    def forward(self, gs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.score_concat(torch.cat(list(gs), dim=1))


class ModalityBranch(nn.Module):
    """One modality's path of eq. (1): f_m = A_m(F_m(x_m)).

    F_m (the extractor, e.g. ResNet18) maps one element [N, C, H, W] -> [N, D]; it is applied to
    every element of the sequence by folding time into the batch (B*T). A_m (the aggregator) maps
    the resulting [B, T, D] sequence and its lengths to f_m [B, out_dim].

    `skip_padded=True` (default) runs F_m only on the valid elements and writes zeros at padded
    positions. This saves compute and, in training mode, keeps padding out of the extractor's
    BatchNorm batch statistics (so a sequence padded with garbage trains the same as one padded
    with zeros). The selection has a data-dependent size (ONNX NonZero: it exports and runs in
    onnxruntime, tested); set `skip_padded = False` for runtimes that want static shapes. In eval
    mode both settings give the same f_m, since A_m ignores padded steps.
    """

    def __init__(self, extractor: nn.Module, aggregator: nn.Module, skip_padded: bool = True):
        super().__init__()
        self.extractor = extractor
        self.aggregator = aggregator
        self.skip_padded = skip_padded
        self.channels_last = False  # set by the trainer together with model.to(memory_format=...)
        self.out_dim = aggregator.out_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T = x.shape[:2]
        lengths = lengths.to(device=x.device, dtype=torch.long)
        frames = x.flatten(0, 1)  # [B*T, C, H, W]
        if self.channels_last:  # inputs are 5-D until here, so the memory format is set after folding
            frames = frames.contiguous(memory_format=torch.channels_last)
        if self.skip_padded:
            idx = valid_mask(lengths.clamp(1, T), T).flatten().nonzero().squeeze(1)
            feats = self.extractor(frames.index_select(0, idx))
            feats = feats.new_zeros(B * T, feats.size(1)).index_copy(0, idx, feats)
        else:
            feats = self.extractor(frames)
        return self.aggregator(feats.view(B, T, -1), lengths)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


class _BranchedNet(nn.Module):
    """Shared plumbing: `branches` (ModuleDict of ModalityBranch), `norms` (FeatureNorm per modality)
    and the frozen-branch bookkeeping used by `freeze_branches` and `freeze_extractors`."""

    branches: nn.ModuleDict
    norms: nn.ModuleDict

    def __init__(self) -> None:
        super().__init__()
        self.frozen: tuple[str, ...] = ()              # whole branches (F_m and A_m): late fusion
        self.frozen_extractors: tuple[str, ...] = ()   # F_m only: a pretrained extractor used as is

    @property
    def modalities(self) -> list[str]:
        return list(self.branches.keys())

    def train(self, mode: bool = True):
        super().train(mode)
        # a frozen branch stays in eval mode: in train mode its BatchNorms would keep updating their
        # running statistics (and its dropout would stay active) even though no weight changes,
        # silently moving the features the rest of the network was trained on
        for m in self.frozen:
            self.branches[m].eval()
        for m in self.frozen_extractors:
            self.branches[m].extractor.eval()
        return self

    def modality_features(self, batch: Mapping[str, torch.Tensor], m: str) -> torch.Tensor:
        """f_hat_m = FeatureNorm(A_m(F_m(x_m))) — eqs. (1), (7).

        When the batch holds `m + "_feat"` ([B, T, D]: F_m already applied to every element, e.g.
        once per frame for many overlapping prediction windows), F_m is not run again."""
        if m + "_feat" in batch:
            return self.norms[m](self.branches[m].aggregator(batch[m + "_feat"], batch[m + "_len"]))
        return self.norms[m](self.branches[m](batch[m], batch[m + "_len"]))


class FusionNet(_BranchedNet):
    """The multi-modal networks N0 (eq. 7), N1 (eq. 8) and N2 = MRPN (eq. 9), for any M >= 1 modalities (Fig. 7).

        f_m     = A_m(F_m(x_m))                     eq. (1)   branches[m]
        f_hat_m = FeatureNorm(f_m)                   eq. (7)   norms[m]
        g_m     = f_hat_m                  (N0, N1)
                = ResPerceptron(f_hat_m)   (N2)      eq. (6)   res[m]
        s       = FusionComponent(g_1..g_M)          eq. (4)   fusion        -> out["scores"]
        s_m     = DenseUnit(f_hat_m)       (N1, N2)  eq. (8)   side[m]       -> out["side_scores"][m]

    The side heads s_m exist only to add the terms L_m of the multi-term loss (eq. 5); following
    note 2 of section 4.1 they run only in training mode. Hence N0 and N1 have the same eval-mode
    computation (note 3) and the same state_dict apart from `side.*`.

    Args:
        branches: modality name -> ModalityBranch; the dict order is the concatenation order.
        n_out: classes (classification) or targets (regression).
        variant: "n0", "n1" or "n2".
        hidden: width of the hidden DenseUnit inside the FusionComponent's Scoring.
        dropout: Scoring dropout rate.
        task: "classification" or "regression"; read by `mrpn_loss`, the architecture is the same.
        input_norm: FeatureNorm after Concatenate in the FusionComponent (eq. 3 vs eq. 4, see there).
    """

    def __init__(self, branches: Mapping[str, ModalityBranch], n_out: int, variant: str = "n2",
                 hidden: int = 256, dropout: float = 0.3, task: str = "classification",
                 input_norm: bool = True):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        _check_task(task)
        if not branches:
            raise ValueError("FusionNet needs at least one modality branch")
        if "fused" in branches:
            raise ValueError("'fused' is reserved for the fusion input in out['features']")
        self.variant, self.task, self.n_out = variant, task, n_out
        self.branches = nn.ModuleDict(dict(branches))
        dims = {m: b.out_dim for m, b in self.branches.items()}
        self.norms = nn.ModuleDict({m: FeatureNorm(d) for m, d in dims.items()})
        self.res = nn.ModuleDict({m: ResPerceptron(d) for m, d in dims.items()}) if variant == "n2" else None
        self.side = (nn.ModuleDict({m: DenseUnit(d, n_out) for m, d in dims.items()})
                     if variant in ("n1", "n2") else None)
        self.fusion = FusionComponent(list(dims.values()), hidden, n_out, dropout, input_norm=input_norm)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict:
        f_hat = {m: self.modality_features(batch, m) for m in self.branches}
        g = [self.res[m](f_hat[m]) if self.res is not None else f_hat[m] for m in self.branches]
        fused = torch.cat(g, dim=1)
        out = {"scores": self.fusion.score_concat(fused), "features": {**f_hat, "fused": fused}}
        if self.training and self.side is not None:
            out["side_scores"] = {m: self.side[m](f_hat[m]) for m in self.branches}
        return out

    def forward_modality(self, batch: Mapping[str, torch.Tensor], m: str) -> torch.Tensor:
        """Uni-modal scores s_m = DenseUnit(f_hat_m) from the side head of modality m (N1/N2 only).

        Beyond the paper: the side heads are trained by the multi-term loss (eq. 5) to classify
        from one modality alone, so they can stand in for the fusion when the other modalities are
        missing (e.g. no face found). Only modality m is read from the batch. Works in either mode.
        """
        if self.side is None:
            raise RuntimeError(f"variant {self.variant!r} has no side heads; only N1/N2 can score one modality")
        return self.side[m](self.modality_features(batch, m))


class UniModalNet(_BranchedNet):
    """Uni-modal baseline (VM / AM of Table 1): s = Scoring(FeatureNorm(A(F(x)))) — eqs. (1)-(3), first line of (3).

    Same attribute names as FusionNet (`branches[modality]`, `norms[modality]`) so its trained
    branch loads into a FusionNet by prefix (late fusion, `load_branch_weights`).
    """

    def __init__(self, branch: ModalityBranch, n_out: int, modality: str, hidden: int = 256,
                 dropout: float = 0.3, task: str = "classification"):
        super().__init__()
        _check_task(task)
        self.task, self.n_out, self.modality = task, n_out, modality
        self.branches = nn.ModuleDict({modality: branch})
        self.norms = nn.ModuleDict({modality: FeatureNorm(branch.out_dim)})
        self.scoring = Scoring(branch.out_dim, hidden, n_out, dropout)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict:
        f_hat = self.modality_features(batch, self.modality)
        return {"scores": self.scoring(f_hat), "features": {self.modality: f_hat}}

    def forward_modality(self, batch: Mapping[str, torch.Tensor], m: str) -> torch.Tensor:
        """Same as forward(batch)["scores"]; exists so predictors treat every model alike."""
        if m != self.modality:
            raise KeyError(f"this model only has modality {self.modality!r}, not {m!r}")
        return self.forward(batch)["scores"]


# ---------------------------------------------------------------------------------- late fusion

def _strip_wrappers(key: str) -> str:
    # checkpoints saved from torch.compile / DDP models carry these prefixes
    for p in ("_orig_mod.", "module."):
        while key.startswith(p):
            key = key[len(p):]
    return key


def load_branch_weights(net: _BranchedNet, source: nn.Module | Mapping[str, torch.Tensor], modality: str,
                        source_modality: str | None = None, include_norm: bool = True) -> list[str]:
    """Copy a trained modality branch (F_m, A_m and, by default, FeatureNorm_m) into `net`.

    `source` is a UniModalNet / FusionNet (or its state_dict), or a bare ModalityBranch (or its
    state_dict). Keys are matched by the stable prefixes `branches.<m>.` and `norms.<m>.`; the load
    is strict, so a shape or name mismatch raises. `source_modality` defaults to `modality`.
    Returns the target keys that were loaded.
    """
    src_m = source_modality or modality
    if isinstance(source, ModalityBranch):
        branch_sd, norm_sd = source.state_dict(), None
    else:
        sd = source.state_dict() if isinstance(source, nn.Module) else source
        sd = {_strip_wrappers(k): v for k, v in sd.items()}
        bp, npfx = f"branches.{src_m}.", f"norms.{src_m}."
        branch_sd = {k[len(bp):]: v for k, v in sd.items() if k.startswith(bp)}
        norm_sd = {k[len(npfx):]: v for k, v in sd.items() if k.startswith(npfx)} or None
        if not branch_sd:  # a bare ModalityBranch state_dict
            branch_sd = {k: v for k, v in sd.items() if k.startswith(("extractor.", "aggregator."))}
        if not branch_sd:
            raise KeyError(f"no weights for modality {src_m!r} in source (expected keys 'branches.{src_m}.*')")
    net.branches[modality].load_state_dict(branch_sd, strict=True)
    loaded = [f"branches.{modality}.{k}" for k in branch_sd]
    if include_norm and norm_sd is not None:
        net.norms[modality].load_state_dict(norm_sd, strict=True)
        loaded += [f"norms.{modality}.{k}" for k in norm_sd]
    return loaded


def freeze_branches(net: _BranchedNet, modalities: Iterable[str]) -> _BranchedNet:
    """Freeze branches[m] (F_m and A_m) for late fusion: no gradients and BatchNorm stats fixed.

    requires_grad=False alone is not enough: a BatchNorm in train mode still updates its running
    mean/var on every forward pass, so the frozen features would drift away from what the
    uni-modal model learned. The net's `train()` therefore keeps frozen branches in eval mode.
    Calling it again adds modalities; it returns `net` for chaining.
    """
    modalities = list(modalities)
    for m in modalities:
        if m not in net.branches:
            raise KeyError(f"unknown modality {m!r}; the net has {net.modalities}")
        net.branches[m].requires_grad_(False)
    net.frozen = tuple(dict.fromkeys([*net.frozen, *modalities]))
    net.train(net.training)  # apply the eval-mode rule now, not only at the next train() call
    return net


def freeze_extractors(net: _BranchedNet, modalities: Iterable[str]) -> _BranchedNet:
    """Freeze only F_m of branches[m] (`train.freeze_extractors`): a pretrained extractor, such as the
    GE2E speaker encoder, used as a fixed feature map while A_m and the rest of the net train (a
    probe). Same rules as `freeze_branches`: no gradients, and eval mode kept by the net's train()."""
    modalities = list(modalities)
    for m in modalities:
        if m not in net.branches:
            raise KeyError(f"unknown modality {m!r}; the net has {net.modalities}")
        net.branches[m].extractor.requires_grad_(False)
    net.frozen_extractors = tuple(dict.fromkeys([*net.frozen_extractors, *modalities]))
    net.train(net.training)
    return net
