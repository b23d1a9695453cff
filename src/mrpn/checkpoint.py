"""Checkpoints: written atomically, read without executing code (`torch.load(weights_only=True)`).

A checkpoint holds the resolved config (so it documents itself and can be checked against the
run that loads it), the model, and for `last.pt` the optimiser, scheduler and RNG state needed for
an exact resume. Every failure to read one is a `CheckpointError` naming the file and the cause.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import torch

from mrpn.io import atomic_write_with


class CheckpointError(RuntimeError):
    pass


SAFE_WAY = ("use a .safetensors model, or re-save the weights of a checkpoint you trust as safetensors "
            "(mrpn.inference.model_io.save_for_inference; tools/ship_model.py for mrpn checkpoints)")


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
    except pickle.UnpicklingError:
        # never repeat PyTorch's advice to lift weights_only: that is the unsafe path
        raise CheckpointError(f"{path}: refused: it holds pickled Python objects beyond plain tensors, which "
                              f"could run code when loaded; {SAFE_WAY}") from None
    except Exception as e:  # zip errors, EOF, bad records: all mean "do not trust this file"
        raise CheckpointError(f"checkpoint {path} is corrupt, truncated or not an mrpn checkpoint "
                              f"({type(e).__name__})") from None
    if not isinstance(state, dict) or "model" not in state or not isinstance(state.get("config"), dict):
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


# ---------------------------------------------------------------------------------------------
# safetensors files as untrusted data: the header is checked before any tensor is read
# (the model-level schema is in mrpn/inference/model_check.py)

MAX_FILE_BYTES = 2 << 30          # 2 GiB: the paper-size N2 in fp32 is about 0.1 GB
MAX_HEADER_BYTES = 16 << 20
MAX_META_BYTES = 256 << 10
DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


class ModelFileError(CheckpointError):
    """A model file that is malformed, inconsistent or too large; the message is one line."""


def _fail(path, why: str) -> ModelFileError:
    return ModelFileError(f"{path}: {why}")


def read_header(path: Path) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str]]:
    """({tensor name: (dtype, shape)}, metadata) from a safetensors header, every field checked."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _fail(path, f"{size / 2**30:.1f} GiB is over the {MAX_FILE_BYTES >> 30} GiB limit for a model file")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _fail(path, "not a safetensors file (shorter than its 8-byte header length)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise _fail(path, f"not a safetensors file (header length {n} does not fit the file of {size} bytes)")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _fail(path, "not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise _fail(path, "not a safetensors file (its header is not a JSON object)")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise _fail(path, "metadata must map strings to strings")
    if any(len(v) > MAX_META_BYTES for v in meta.values()):
        raise _fail(path, f"a metadata value is longer than {MAX_META_BYTES} bytes")
    return {k: _tensor_entry(path, k, v, size - 8 - n) for k, v in header.items()}, meta


def _tensor_entry(path, name: str, e: Any, data_bytes: int) -> tuple[str, tuple[int, ...]]:
    if not isinstance(e, dict) or e.get("dtype") not in DTYPE_BYTES:
        raise _fail(path, f"tensor {name[:80]!r}: unknown or missing dtype")
    shape, off = e.get("shape"), e.get("data_offsets")
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(s) is int and s >= 0 for s in shape):
        raise _fail(path, f"tensor {name[:80]!r}: shape must be a list of at most 8 non-negative integers")
    if not (isinstance(off, list) and len(off) == 2 and all(type(o) is int for o in off)
            and 0 <= off[0] <= off[1] <= data_bytes):
        raise _fail(path, f"tensor {name[:80]!r}: data offsets lie outside the file")
    if off[1] - off[0] != math.prod(shape) * DTYPE_BYTES[e["dtype"]]:
        raise _fail(path, f"tensor {name[:80]!r}: {off[1] - off[0]} bytes do not match shape {shape}")
    return e["dtype"], tuple(shape)


def check_tensors(path, found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                  what: str = "the declared model") -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"] if missing else []) + \
                ([f"unexpected {', '.join(repr(x[:60]) for x in extra[:3])}{' ...' if len(extra) > 3 else ''}"]
                 if extra else [])
        raise _fail(path, f"its tensors do not fit {what}: " + "; ".join(parts))
    for k, shape in expected.items():
        if tuple(found[k]) != shape:
            raise _fail(path, f"does not fit {what}: tensor {k} has shape {list(found[k])}, needs {list(shape)}")


def load_safetensors_checked(path: str | os.PathLike, expected: dict[str, tuple[int, ...]] | None = None,
                             what: str = "the declared model") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file whose header was checked first (and, given
    `expected`, whose names and shapes match it) so no tensor is read from a bad file."""
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: file not found")
    tensors, meta = read_header(p)
    if expected is not None:
        check_tensors(p, {k: s for k, (_d, s) in tensors.items()}, expected, what)
    try:
        with safe_open(str(p), framework="pt") as f:
            sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not iterable
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise _fail(p, f"not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None
    return sd, meta


