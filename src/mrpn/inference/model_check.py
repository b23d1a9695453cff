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

Steps 1-2 (and the name/shape comparison) live in `mrpn.checkpoint`, where training reads
pretrained extractors with them too. Checkpoints (`.pt`) are read with `torch.load(weights_only=True)` after the size check and go
through steps 3-5. A pickle that needs more than plain tensors is refused with the safe way out.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from mrpn.config import Config, ConfigError, config_from_dict
from mrpn.checkpoint import (MAX_FILE_BYTES, SAFE_WAY, ModelFileError, check_tensors,  # noqa: F401 (re-exported)
                             load_safetensors_checked, read_header)

MAX_PARAMS = 300_000_000          # the paper's N2 has about 25 M
MAX_CLASSES = 256
MAX_CLASS_LEN = 64

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


def _fail(path, why: str) -> ModelFileError:
    return ModelFileError(f"{path}: {why}")


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
