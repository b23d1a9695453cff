"""Load a trained model for inference: a training checkpoint (`best.pt`) or a shipped
`.safetensors` file whose metadata holds the resolved config and class names.

Neither path executes code from the file (`weights_only=True`, safetensors).
"""
from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import torch

from mrpn.config import Config, config_from_dict
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


def load_for_inference(path: str | os.PathLike | None = None, device: str = "cpu"
                       ) -> tuple[torch.nn.Module, Config, list[str]]:
    """(model in eval mode, its config, class names) from a checkpoint or shipped model."""
    from mrpn.models.build import build_model

    p = Path(path) if path else default_model_path()
    if not p.is_file():
        if path is None:
            raise CheckpointError(f"the default model is not installed at {p}; pass --model CHECKPOINT")
        raise CheckpointError(f"model file not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
                sd = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:
            raise CheckpointError(f"{p} is not a readable safetensors file: {e}") from None
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{p} is not an mrpn model (metadata format {meta.get('format')!r})")
        cfg_dict, classes = json.loads(meta["config"]), json.loads(meta["classes"])
    else:
        ck = load_checkpoint(p)
        cfg_dict, sd = ck["config"], ck["model"]
        classes = ck.get("classes") or [str(i) for i in range(cfg_dict["model"]["n_classes"])]
    cfg = config_from_dict(cfg_dict)
    model = build_model(cfg.model)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    load_model_weights(model, sd, p)
    return model.to(device).eval(), cfg, list(classes)
