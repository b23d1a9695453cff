"""One explicit training loop (torchvision references style): `train_one_epoch` and `evaluate`."""
from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import numpy as np
import torch

from mrpn.models.loss import mrpn_loss
from mrpn.progress import progress as progress_bar


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, precision: str):
    """bf16 autocast where it helps (measured ~2.3x for a ResNet-18 step on this CPU); fp32 otherwise."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", dtype=torch.bfloat16)


def to_device(batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool) -> dict[str, torch.Tensor]:
    # channels_last is applied inside each ModalityBranch, after time is folded into the batch
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def mixup_batch(batch: dict[str, torch.Tensor], alpha: float, generator: torch.Generator,
                modalities: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], torch.Tensor, float]:
    """Mixup (Zhang et al. 2018): x = lam x_i + (1 - lam) x_perm(i), for every modality with the same
    lam and partner, so the fused input stays one consistent mixed clip. Padded sequences are mixed
    element by element and keep the longer length (a padded step of the shorter clip is zeros).
    Returns the mixed batch, the partners' labels and lam; the loss is lam L(y) + (1 - lam) L(y_perm)."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample()) if alpha > 0 else 1.0
    lam = max(lam, 1.0 - lam)  # the first clip dominates, so its label is the "true" one for accuracy
    b = batch["label"].shape[0]
    perm = torch.randperm(b, generator=generator)
    out = dict(batch)
    for m in modalities:
        if m in batch:
            out[m] = lam * batch[m] + (1.0 - lam) * batch[m][perm]
            out[m + "_len"] = torch.maximum(batch[m + "_len"], batch[m + "_len"][perm])
    return out, batch["label"][perm], lam


def train_one_epoch(model: torch.nn.Module, loader, optimizer: torch.optim.Optimizer, device: torch.device,
                    precision: str = "auto", channels_last: bool = True, grad_clip: float = 0.0,
                    task: str = "classification", desc: str = "train", progress: bool = True,
                    scaler: Any = None, step_scheduler: Any = None, label_smoothing: float = 0.0,
                    mixup: float = 0.0, seed: int = 0) -> dict[str, float]:
    """One pass over `loader`. `step_scheduler` (one-cycle, cosine) is stepped after every batch;
    `mixup` > 0 mixes pairs of clips (classification only), with partners drawn from `seed`."""
    model.train()
    totals: dict[str, float] = {}
    n, correct, t0 = 0, 0, time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    modalities = tuple(getattr(getattr(model, "module", model), "modalities", ()))
    bar = progress_bar(loader, desc=desc, leave=False, unit="batch", disable=not progress)
    for batch in bar:
        y = batch["label"]
        if mixup > 0 and task == "classification":
            batch, y2, lam = mixup_batch(batch, mixup, gen, modalities)
        else:
            y2, lam = None, 1.0
        batch = to_device(batch, device, channels_last)
        y = y.to(device)
        with autocast(device, precision):
            out = model(batch)
            loss, terms = mrpn_loss(out, y, task=task, label_smoothing=label_smoothing)
            if y2 is not None and lam < 1.0:
                loss2, terms2 = mrpn_loss(out, y2.to(device), task=task, label_smoothing=label_smoothing)
                loss = lam * loss + (1.0 - lam) * loss2
                terms = {k: lam * v + (1.0 - lam) * terms2[k] for k, v in terms.items()}
        if not math.isfinite(loss.item()):  # before the step: a non-finite loss must not reach the weights
            raise FloatingPointError(f"loss became {loss.item()} in {desc}; lower train.lr or use train.precision=fp32")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if step_scheduler is not None:
            step_scheduler.step()
        b = y.shape[0]
        n += b
        for k, v in terms.items():
            totals[k] = totals.get(k, 0.0) + float(v) * b
        if task == "classification":
            correct += int((out["scores"].argmax(1) == y).sum())
        bar.set_postfix(loss=f"{totals.get('total', 0) / n:.3f}", acc=f"{correct / n:.3f}")
    secs = time.perf_counter() - t0
    res = {k: v / max(n, 1) for k, v in totals.items()}
    res["loss"] = res.get("total", 0.0)
    res.update(accuracy=correct / max(n, 1), clips=n, seconds=secs, clips_per_s=n / max(secs, 1e-9))
    return res


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, device: torch.device, precision: str = "auto",
             channels_last: bool = True, task: str = "classification", collect_features: bool = False,
             side_heads: bool = False, desc: str = "val", progress: bool = True) -> dict[str, Any]:
    """Central-branch predictions (paper 4.1 note 2: side branches are off in eval mode).

    With `side_heads`, also the uni-modal side heads of N1/N2 (s_m = DenseUnit(f̂_m)), run
    explicitly: they are what predicts when one modality is missing.
    """
    model.eval()
    losses, ys, preds, probs, idx = [], [], [], [], []
    feats: dict[str, list[np.ndarray]] = {}
    side: dict[str, list[np.ndarray]] = {}
    for batch in progress_bar(loader, desc=desc, leave=False, unit="batch", disable=not progress):
        batch = to_device(batch, device, channels_last)
        y = batch["label"]
        with autocast(device, precision):
            out = model(batch)
            loss, _ = mrpn_loss(out, y, task=task)
            if side_heads and hasattr(model, "forward_modality"):
                for m in getattr(model, "modalities", ()):
                    side.setdefault(m, []).append(model.forward_modality(batch, m).float().argmax(1).cpu().numpy())
        s = out["scores"].float()
        losses.append(float(loss) * y.shape[0])
        ys.append(y.cpu().numpy())
        idx.append(batch["index"].cpu().numpy())
        if task == "classification":
            p = torch.softmax(s, 1)
            probs.append(p.cpu().numpy())
            preds.append(p.argmax(1).cpu().numpy())
        else:
            preds.append(s.cpu().numpy())
        if collect_features:
            for k, v in out.get("features", {}).items():
                feats.setdefault(k, []).append(v.float().cpu().numpy())
    n = sum(len(y) for y in ys)
    res: dict[str, Any] = {
        "loss": sum(losses) / max(n, 1),
        "y_true": np.concatenate(ys) if ys else np.zeros(0, np.int64),
        "y_pred": np.concatenate(preds) if preds else np.zeros(0, np.int64),
        "index": np.concatenate(idx) if idx else np.zeros(0, np.int64),
    }
    if probs:
        res["probs"] = np.concatenate(probs)
    if task == "classification" and n:
        res["accuracy"] = float((res["y_pred"] == res["y_true"]).mean())
    if feats:
        res["features"] = {k: np.concatenate(v) for k, v in feats.items()}
    if side:
        res["side_pred"] = {k: np.concatenate(v) for k, v in side.items()}
    return res
