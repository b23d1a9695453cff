"""The multi-term loss of eq. (5): L = L_v + L_a + L_va, generalised to M modalities.

    L = sum_m L_m(s_m) + L_central(s)

L_central is the loss of the central branch (s_va of the FusionComponent, or s of a uni-modal
model); each L_m is the loss of a side head s_m = DenseUnit(f_hat_m) (N1 eq. 8, N2 eq. 9). N0, VM and
AM have no side heads, so their loss is the single central term (eq. 7). The side terms are taken
from whatever `out["side_scores"]` holds, so the same function serves every model; a side branch
that exists but is left out of the loss would show up as a parameter without a gradient (tested).

CrossEntropy(p, Softmax(s)) of eq. (5) is computed as F.cross_entropy on the raw scores, which is the
same quantity in a numerically stable form. For regression the terms are mean squared errors.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

__all__ = ["mrpn_loss"]


def _term(scores: torch.Tensor, target: torch.Tensor, task: str, label_smoothing: float) -> torch.Tensor:
    scores = scores.float()  # losses in fp32 even under bf16 autocast
    if task == "classification":
        return F.cross_entropy(scores, target, label_smoothing=label_smoothing)
    if task == "regression":
        return F.mse_loss(scores, target.to(scores.dtype).reshape(scores.shape))
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")


def mrpn_loss(out: Mapping, target: torch.Tensor, task: str = "classification",
              side_weight: float = 1.0, label_smoothing: float = 0.0) -> tuple[torch.Tensor, dict]:
    """Multi-term loss of eq. (5) for any model's output dict.

    Args:
        out: a model's output: "scores" [B, n_out] and, for N1/N2 in training mode, "side_scores" {m: [B, n_out]}.
        target: class indices, long [B] (classification), or targets [B, n_out] / [B] (regression).
        task: "classification" (cross-entropy) or "regression" (MSE).
        side_weight: weight of each side term L_m; the paper uses 1 (plain sum).
        label_smoothing: passed to cross-entropy; 0 in the paper.

    Returns:
        (loss, terms): the scalar loss to backpropagate, and detached terms for logging:
        "central" (L_va or the uni-modal L), one entry per side modality m (L_m), and "total".
    """
    central = _term(out["scores"], target, task, label_smoothing)
    loss = central
    terms = {"central": central.detach()}
    for m, s_m in out.get("side_scores", {}).items():
        l_m = _term(s_m, target, task, label_smoothing)
        loss = loss + side_weight * l_m
        terms[m] = l_m.detach()
    terms["total"] = loss.detach()
    return loss, terms
