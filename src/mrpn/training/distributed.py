"""Distributed training under `torchrun` (PyTorch's own engine): DistributedDataParallel with NCCL
on GPUs and gloo on CPUs.

Conventions: `train.batch_size` is the global batch (each of W ranks takes batch_size // W);
validation is split without padding (rank r takes items r, r+W, ...) and the predictions are
gathered, so metrics are those of one process on the same data; only rank 0 logs and writes.
"""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device_name: str = "auto") -> tuple[DistInfo, torch.device | None]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else a no-op."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), None
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda") or device_name.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        # Without an explicit destroy, gloo's worker threads can outlive the interpreter and abort the
        # process at exit ("terminate called without an active exception", pytorch#190489): a
        # finished, correct run would then exit non-zero.
        atexit.register(teardown)
    device = None
    if use_cuda:
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return DistInfo(rank, world, local), device


def teardown() -> None:
    """Leave the process group while the interpreter is still alive (registered by `setup`)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shard(indices: list[int], info: DistInfo) -> list[int]:
    return indices[info.rank::info.world] if info.enabled else indices


def gather_eval(ev: dict[str, Any], info: DistInfo) -> dict[str, Any]:
    """Concatenate every rank's evaluation arrays, ordered by dataset index (no duplicates)."""
    if not info.enabled:
        return ev
    parts: list[Any] = [None] * info.world
    dist.all_gather_object(parts, ev)
    order = np.argsort(np.concatenate([p["index"] for p in parts]), kind="stable")
    out: dict[str, Any] = {}
    n = sum(len(p["y_true"]) for p in parts)
    out["loss"] = sum(p["loss"] * len(p["y_true"]) for p in parts) / max(n, 1)
    for key in ("y_true", "y_pred", "index", "probs"):
        if key in parts[0]:
            out[key] = np.concatenate([p[key] for p in parts])[order]
    for key in ("features", "side_pred"):
        if key in parts[0]:
            out[key] = {k: np.concatenate([p[key][k] for p in parts])[order] for k in parts[0][key]}
    if "accuracy" in parts[0]:
        out["accuracy"] = float((out["y_pred"] == out["y_true"]).mean()) if n else 0.0
    return out


def sync_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics) before a sharded evaluation."""
    if info.enabled:
        for b in model.buffers():
            dist.broadcast(b, 0)


def is_main_process() -> bool:
    """Rank 0, or not distributed (usable before the process group exists)."""
    return int(os.environ.get("RANK", "0")) == 0
