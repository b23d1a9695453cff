"""Load a trained model for inference: a training checkpoint (`best.pt`) or a shipped
`.safetensors` file whose metadata holds the resolved config and class names.

Neither path executes code from the file (`weights_only=True`, safetensors), and both validate
the file as untrusted data first (`mrpn.inference.model_check`).
"""
from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import torch

from mrpn.config import Config
from mrpn.inference.model_check import ModelFileError
from mrpn.checkpoint import CheckpointError, load_checkpoint, load_model_weights

DEFAULT_MODEL = "mrpn-default.safetensors"
FORMAT = "mrpn-model-1"


def default_model_path() -> Path:
    return Path(str(resources.files("mrpn") / "assets" / DEFAULT_MODEL))


def save_for_inference(model: torch.nn.Module, cfg_dict: dict, classes: list[str], path: str | os.PathLike,
                       half: bool = True, extra: dict | None = None) -> None:
    """Weights (fp16 by default: half the size, no measurable loss at these widths) + config."""
    from safetensors.torch import save_file

    from mrpn.io import atomic_write_with

    sd = {k: (v.half() if half and v.is_floating_point() else v).detach().contiguous().cpu()
          for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(cfg_dict), "classes": json.dumps(classes)}
    meta.update({k: json.dumps(v) for k, v in (extra or {}).items()})
    atomic_write_with(path, lambda p: save_file(sd, str(p), metadata=meta), suffix=".safetensors")


def _from_safetensors(p: Path) -> tuple[dict, Config, list[str]]:
    from mrpn.inference.model_check import (
        check_classes,
        check_config,
        check_tensors,
        expected_shapes,
        load_safetensors_checked,
        read_header,
    )

    tensors, meta = read_header(p)
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{p}: not an mrpn model (metadata format {str(meta.get('format'))[:40]!r}, "
                             f"expected {FORMAT!r})")
    for key in ("config", "classes"):
        if key not in meta:
            raise ModelFileError(f"{p}: its metadata has no {key!r} entry")
    try:
        cfg_dict, classes = json.loads(meta["config"]), json.loads(meta["classes"])
    except (json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{p}: its metadata 'config' or 'classes' is not valid JSON") from None
    classes = check_classes(p, classes)
    cfg = check_config(p, cfg_dict, len(classes))
    check_tensors(p, {k: s for k, (_d, s) in tensors.items()}, expected_shapes(p, cfg))
    sd, _ = load_safetensors_checked(p)
    return sd, cfg, classes


def _from_checkpoint(p: Path) -> tuple[dict, Config, list[str]]:
    from mrpn.inference.model_check import (
        MAX_FILE_BYTES,
        check_classes,
        check_config,
        check_tensors,
        expected_shapes,
    )

    if p.stat().st_size > MAX_FILE_BYTES:
        raise ModelFileError(f"{p}: over the {MAX_FILE_BYTES >> 30} GiB limit for a model file")
    ck = load_checkpoint(p)      # weights_only=True: plain tensors and containers, no code
    sd = ck["model"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise ModelFileError(f"{p}: its 'model' entry is not a mapping of names to tensors")
    n = (ck["config"].get("model") or {}).get("n_classes") if isinstance(ck["config"], dict) else None
    classes = ck.get("classes") or [str(i) for i in range(n if isinstance(n, int) and 0 < n <= 256 else 0)]
    classes = check_classes(p, classes)
    cfg = check_config(p, ck["config"], len(classes))
    check_tensors(p, {k: tuple(v.shape) for k, v in sd.items()}, expected_shapes(p, cfg))
    return sd, cfg, classes


def load_for_inference(path: str | os.PathLike | None = None, device: str = "cpu"
                       ) -> tuple[torch.nn.Module, Config, list[str]]:
    """(model in eval mode, its config, class names) from a checkpoint or shipped model.

    The file is validated before anything it declares is built (mrpn.inference.model_check)."""
    from mrpn.models.build import build_model

    p = Path(path) if path else default_model_path()
    if not p.is_file():
        if path is None:
            raise CheckpointError(f"the default model is not installed at {p}; pass --model CHECKPOINT")
        raise CheckpointError(f"model file not found: {p}")
    sd, cfg, classes = _from_safetensors(p) if p.suffix == ".safetensors" else _from_checkpoint(p)
    model = build_model(cfg.model)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    load_model_weights(model, sd, p)
    return model.to(device).eval(), cfg, list(classes)
