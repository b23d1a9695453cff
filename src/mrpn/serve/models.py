"""The models a server offers: the shipped default plus every model file found in `--models DIR`.

Each candidate (`*.safetensors`, `*.pt`) is opened once at start-up with the safe loaders of
`mrpn.inference.model_io` (safetensors, or `torch.load(weights_only=True)`), so a pickle that would
run code, a damaged file or a checkpoint of something else is listed as refused, with the reason,
and never used. Predictors are built per worker thread (OpenCV's detector and the tracker state
are not shared across threads).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin", ".pkl", ".onnx")
SAFE = (".safetensors", ".pt")


@dataclass
class ModelEntry:
    name: str
    path: str | None          # None: the shipped model
    ok: bool
    error: str = ""
    kind: str = ""
    classes: list[str] = field(default_factory=list)

    def public(self) -> dict:
        return {"name": self.name, "ok": self.ok, "error": self.error, "kind": self.kind, "classes": self.classes}


def _check(name: str, path: str | None) -> ModelEntry:
    from mrpn.inference.model_io import load_for_inference

    if path is not None and Path(path).suffix.lower() not in SAFE:
        return ModelEntry(name, path, False, f"{name}: refused: only .safetensors models and .pt checkpoints "
                                             "(loaded without executing code) are accepted")
    try:
        _model, cfg, classes = load_for_inference(path)
    except Exception as e:  # CheckpointError, ConfigError, shape mismatches: all mean "not usable"
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if path is not None:
            msg = msg.replace(str(path), name)
        return ModelEntry(name, path, False, f"{name}: refused: {msg}")
    return ModelEntry(name, path, True, kind=cfg.model.kind, classes=list(classes))


class ModelRegistry:
    def __init__(self, models_dir: str | Path | None = None, max_files: int = 200, **predictor_options):
        self.options = predictor_options
        self.entries: dict[str, ModelEntry] = {"default": _check("default", None)}
        if models_dir is not None:
            root = Path(models_dir)
            if not root.is_dir():
                raise FileNotFoundError(f"--models {root}: not a folder")
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            for p in files[:max_files]:
                name = p.relative_to(root).as_posix()
                self.entries[name] = _check(name, str(p))
        self._local = threading.local()

    def public(self) -> list[dict]:
        return [e.public() for e in self.entries.values()]

    def predictor(self, name: str):
        """The Predictor for `name` in the calling thread (built on first use)."""
        from mrpn.inference.predictor import Predictor

        cache = self._local.__dict__.setdefault("cache", {})
        if name not in cache:
            cache[name] = Predictor(self.entries[name].path, **self.options)
        return cache[name]
