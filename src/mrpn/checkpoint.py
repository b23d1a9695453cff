"""Checkpoints: written atomically, read without executing code (`torch.load(weights_only=True)`).

A checkpoint holds the resolved config (so it documents itself and can be checked against the
run that loads it), the model, and for `last.pt` the optimiser, scheduler and RNG state needed for
an exact resume. Every failure to read one is a `CheckpointError` naming the file and the cause.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from mrpn.io import atomic_write_with


class CheckpointError(RuntimeError):
    pass


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    # Atomic: a kill or a full disk while writing leaves the previous checkpoint intact.
    atomic_write_with(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): it was truncated; delete it to start over")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # zip errors, unpickling refusals, EOF: all mean "do not trust this file"
        raise CheckpointError(f"checkpoint {path} is corrupt, truncated or not an mrpn checkpoint "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not an mrpn checkpoint (no 'model'/'config' entries)")
    return state


def check_compatible(state: dict[str, Any], cfg_dict: dict[str, Any], path: str | os.PathLike) -> None:
    """Refuse a checkpoint made for another model or preset, saying what differs."""
    saved = state.get("config", {})
    diffs = []
    for section, keys in (("model", None), ("data", ("face_size", "gray", "spec_size"))):
        a, b = saved.get(section, {}), cfg_dict.get(section, {})
        for k in (keys or sorted(set(a) | set(b))):
            va, vb = a.get(k), b.get(k)
            if isinstance(va, list):
                va = tuple(va)
            if isinstance(vb, list):
                vb = tuple(vb)
            if va != vb:
                diffs.append(f"{section}.{k}: checkpoint {va!r} vs run {vb!r}")
    if saved.get("preset") != cfg_dict.get("preset"):
        diffs.insert(0, f"preset: checkpoint {saved.get('preset')!r} vs run {cfg_dict.get('preset')!r}")
    if diffs:
        raise CheckpointError(f"checkpoint {path} was made for another model or preset:\n  " + "\n  ".join(diffs[:8]))


def load_model_weights(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        raise CheckpointError(f"weights in {path} do not fit this model: {str(e).splitlines()[0][:300]}") from None
