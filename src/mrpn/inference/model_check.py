"""A model file is untrusted data: validate it before anything it declares is allocated or printed.

Order of checks for a `.safetensors` model (every failure is one `ModelFileError` line naming the
file and the cause):

1. file size <= MAX_FILE_BYTES; header length (first 8 bytes) <= MAX_HEADER_BYTES and inside the file;
2. header JSON: every tensor has a known dtype, a shape of non-negative ints and data offsets that
   match its shape and lie inside the file; metadata values are strings of bounded length;
3. metadata schema: `format`, `config` (a JSON object; known keys only, types as in `mrpn.config`,
   sizes within LIMITS), `classes` (1..MAX_CLASSES unique printable names of <= MAX_CLASS_LEN chars,
   as many as model.n_classes);
4. the declared architecture is built on the *meta* device (no memory), its parameter count checked
   against MAX_PARAMS, and its tensor names and shapes compared with the file's header;
5. only then are the tensors read and the real model built.

Checkpoints (`.pt`) are read with `torch.load(weights_only=True)` after the size check and go
through steps 3-5. A pickle that needs more than plain tensors is refused with the safe way out.
"""
from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import torch

from mrpn.config import Config, ConfigError, config_from_dict
from mrpn.training.checkpoint import SAFE_WAY, CheckpointError

MAX_FILE_BYTES = 2 << 30          # 2 GiB: the paper-size N2 in fp32 is about 0.1 GB
MAX_HEADER_BYTES = 16 << 20
MAX_META_BYTES = 256 << 10
MAX_PARAMS = 300_000_000          # the paper's N2 has about 25 M
MAX_CLASSES = 256
MAX_CLASS_LEN = 64
DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}

# (low, high) for every size the model file can declare: values outside are refused before building.
LIMITS: dict[str, tuple[float, float]] = {
    "model.n_classes": (1, MAX_CLASSES), "model.video_width": (1, 256), "model.audio_width": (1, 256),
    "model.agg_hidden": (1, 4096), "model.agg_layers": (1, 8), "model.agg_heads": (1, 64),
    "model.agg_max_len": (1, 100_000), "model.fusion_hidden": (1, 8192),
    "model.video_in_channels": (1, 3), "model.audio_in_channels": (1, 3), "model.dropout": (0, 1),
    "model.agg_dropout": (0, 1), "data.face_size": (8, 512), "data.n_fft": (16, 16384),
    "data.hop_length": (1, 16384), "data.segment_s": (0.05, 10), "data.segment_hop_s": (0.01, 10),
    "data.sample_rate": (16000, 16000), "data.video_fps": (0, 240), "data.max_frames": (0, 10_000),
}


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


def check_classes(path, classes: Any) -> list[str]:
    if not isinstance(classes, list) or not 1 <= len(classes) <= MAX_CLASSES:
        raise _fail(path, f"classes must be a list of 1..{MAX_CLASSES} names")
    for c in classes:
        if not isinstance(c, str) or not 1 <= len(c) <= MAX_CLASS_LEN or not c.isprintable():
            shown = repr(c)[:40] if isinstance(c, str) else type(c).__name__
            raise _fail(path, f"class name {shown} is not 1..{MAX_CLASS_LEN} printable characters")
    if len(set(classes)) != len(classes):
        raise _fail(path, "class names repeat")
    return list(classes)


def check_config(path, cfg_dict: Any, n_classes: int | None) -> Config:
    """Config from a model file: known keys and types (mrpn.config), sizes within LIMITS."""
    if not isinstance(cfg_dict, dict) or not isinstance(cfg_dict.get("model", {}), dict) \
            or not isinstance(cfg_dict.get("data", {}), dict):
        raise _fail(path, "its config is not a mapping of sections")
    for key, (lo, hi) in LIMITS.items():
        sec, name = key.split(".")
        v = cfg_dict.get(sec, {}).get(name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise _fail(path, f"config {key}={str(v)[:40]} is outside {lo:g}..{hi:g}")
    spec = cfg_dict.get("data", {}).get("spec_size")
    if spec is not None and not (isinstance(spec, (list, tuple)) and len(spec) == 2
                                 and all(type(s) is int and 8 <= s <= 1024 for s in spec)):
        raise _fail(path, "config data.spec_size must be two integers in 8..1024")
    try:
        cfg = config_from_dict(cfg_dict)
    except ConfigError as e:
        raise _fail(path, f"config: {e}") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise _fail(path, f"config is malformed ({type(e).__name__})") from None
    if n_classes is not None and cfg.model.n_classes != n_classes:
        raise _fail(path, f"config says {cfg.model.n_classes} classes, the class list has {n_classes}")
    return cfg


def expected_shapes(path, cfg: Config) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of the declared model, built on the meta device (allocates nothing)."""
    from mrpn.models.build import build_model

    try:
        with torch.device("meta"):
            sd = build_model(cfg.model).state_dict()
    except (ValueError, RuntimeError, TypeError, AssertionError) as e:
        raise _fail(path, f"its config does not describe a buildable model ({str(e).splitlines()[0][:120]})") from None
    n = sum(math.prod(v.shape) for v in sd.values())
    if n > MAX_PARAMS:
        raise _fail(path, f"the declared model has {n / 1e6:.0f} M parameters, over the {MAX_PARAMS / 1e6:.0f} M limit")
    return {k: tuple(v.shape) for k, v in sd.items()}


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


__all__ = [
    "LIMITS",
    "MAX_CLASSES",
    "MAX_FILE_BYTES",
    "MAX_PARAMS",
    "SAFE_WAY",
    "ModelFileError",
    "check_classes",
    "check_config",
    "check_tensors",
    "expected_shapes",
    "load_safetensors_checked",
    "read_header",
]
