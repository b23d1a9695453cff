"""A small log-mel CNN over the whole clip, trained from scratch: the from-scratch reference for the AM.

Input: a clip's log-mel spectrogram (40 bands, 25 ms windows, 10 ms hop), its leading and trailing
silence cut. Body: `mrpn.models.cnn.ConvNet` (4 conv-BN-ReLU-pool blocks, width 24: ~220 k
parameters), whose mean + max pooling over time accepts any clip length, then dropout and a linear
classifier. Training crops random 1.6 s windows (a shorter clip is padded with its quietest value),
with SpecAugment masks; evaluation sees each whole clip. All settings are fixed a priori (no
selection on any actor), and the last epoch's model is the one evaluated.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from mrpn.baselines.mfcc import log_mel_frames
from mrpn.features.spectrogram import spec_augment
from mrpn.models.cnn import ConvNet

__all__ = ["CNNConfig", "ClipCNN", "clip_logmel", "trim_silent_frames", "train_and_eval"]


@dataclass
class CNNConfig:
    n_mels: int = 40
    width: int = 24
    dropout: float = 0.3
    crop_frames: int = 160          # 1.6 s training windows
    epochs: int = 24
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    freq_mask: int = 8
    time_mask: int = 20


class ClipCNN(nn.Module):
    def __init__(self, n_classes: int, width: int = 24, dropout: float = 0.3):
        super().__init__()
        self.body = ConvNet(1, width=width, blocks=4, dropout=0.1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.body.out_dim, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 1, n_mels, T] -> logits [B, n_classes]."""
        return self.head(self.body(x))


def trim_silent_frames(logmel: torch.Tensor, below_db: float = 50.0, min_frames: int = 50) -> torch.Tensor:
    """Cut leading and trailing frames whose band-summed energy is `below_db` under the loudest frame's."""
    energy_db = 10 * torch.log10(logmel.exp().sum(0))
    loud = torch.nonzero(energy_db > energy_db.max() - below_db).flatten()
    a, b = int(loud[0]), int(loud[-1]) + 1
    if b - a < min_frames:                      # keep at least half a second around the loud part
        mid = (a + b) // 2
        a, b = max(0, mid - min_frames // 2), min(logmel.shape[1], mid + min_frames // 2)
    return logmel[:, a:b]


def clip_logmel(wave, n_mels: int = 40) -> torch.Tensor:
    """Wave [N] (16 kHz) -> trimmed log-mel [n_mels, T]."""
    return trim_silent_frames(log_mel_frames(torch.as_tensor(np.asarray(wave, np.float32)), n_mels=n_mels))


def _crop_batch(feats: list[torch.Tensor], frames: int, rng: np.random.Generator, cfg: CNNConfig) -> torch.Tensor:
    out = []
    for f in feats:
        T = f.shape[1]
        if T >= frames:
            t0 = int(rng.integers(0, T - frames + 1))
            f = f[:, t0:t0 + frames]
        else:
            f = torch.cat([f, f.min().expand(f.shape[0], frames - T)], 1)
        out.append(f)
    x = torch.stack(out).unsqueeze(1)                                     # [B, 1, F, W]
    return spec_augment(x, rng, cfg.freq_mask, cfg.time_mask)


@torch.no_grad()
def _evaluate(model: nn.Module, feats: list[torch.Tensor], labels: np.ndarray) -> float:
    model.eval()
    pred = [int(model(f[None, None]).argmax(1)) for f in feats]
    return float(np.mean(np.asarray(pred) == labels))


def train_and_eval(train_x: list[torch.Tensor], train_y: np.ndarray, test_x: list[torch.Tensor],
                   test_y: np.ndarray, n_classes: int, cfg: CNNConfig, seed: int = 0,
                   log=print) -> dict:
    """Train on (train_x, train_y) for cfg.epochs (one-cycle LR), return the last epoch's test accuracy."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ClipCNN(n_classes, cfg.width, cfg.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * int(np.ceil(len(train_x) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    y_all = torch.as_tensor(train_y, dtype=torch.long)
    history, t_start = [], time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(len(train_x))
        total, correct, loss_sum = 0, 0, 0.0
        for b in range(0, len(order), cfg.batch_size):
            idx = order[b:b + cfg.batch_size]
            x = _crop_batch([train_x[i] for i in idx], cfg.crop_frames, rng, cfg)
            y = y_all[idx]
            logits = model(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += len(idx)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += loss.item() * len(idx)
        history.append({"epoch": epoch, "train_loss": round(loss_sum / total, 4),
                        "train_acc": round(correct / total, 4)})
        log(f"  epoch {epoch}/{cfg.epochs} loss {loss_sum / total:.3f} train acc {correct / total:.3f} "
            f"({time.perf_counter() - t_start:.0f} s)")
    acc = _evaluate(model, test_x, np.asarray(test_y))
    return {"accuracy": acc, "history": history, "params": sum(p.numel() for p in model.parameters()),
            "train_s": round(time.perf_counter() - t_start, 1), "config": asdict(cfg)}
