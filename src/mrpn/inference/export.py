"""`mrpn export`: the inference graph (extractors, aggregators, fusion) to ONNX, with dynamic
batch, number of frames and number of audio segments, checked against PyTorch on export.

One ONNX file per modality set the model can score (`registry.modality_sets`): the central branch
and, for kinds with side heads (N1/N2), each uni-modal side head, used when a modality is missing. `OnnxRunner` runs them with
onnxruntime behind the same interface as the PyTorch model (`mrpn predict --backend onnx`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from mrpn import registry


class ScoresGraph(nn.Module):
    """Tensor-in, scores-out wrapper: (x_m, x_m_len for m in use) -> s for the given modalities."""

    def __init__(self, model: nn.Module, use: tuple[str, ...], all_modalities: tuple[str, ...]):
        super().__init__()
        self.model, self.use, self.full = model, tuple(use), len(use) == len(all_modalities)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        batch = {}
        for k, m in enumerate(self.use):
            batch[m], batch[m + "_len"] = tensors[2 * k], tensors[2 * k + 1]
        if self.full:
            return self.model(batch)["scores"]
        return self.model.forward_modality(batch, self.use[0])


def example_inputs(cfg, use: tuple[str, ...], b: int = 2, t: int = 5, s: int = 3) -> dict[str, torch.Tensor]:
    """Random inputs of the modalities `use`: the first of `use` gets sequences of up to t elements,
    the others up to s (different lengths check that the graph keeps them apart)."""
    ex: dict[str, torch.Tensor] = {}
    g = torch.Generator().manual_seed(0)
    for k, m in enumerate(use):
        n, drop = (t, 2) if k == 0 else (s, 1)
        ex[m] = torch.randn(b, n, *registry.modality(m).element_shape(cfg.data), generator=g)
        ex[m + "_len"] = torch.tensor([n] + [max(1, n - drop)] * (b - 1))
    return ex


def modality_sets(kind: str) -> list[tuple[str, ...]]:
    return registry.modality_sets(kind)


def export_onnx(model_path: str | None, out_dir: str, opset: int = 17, check: bool = True, log=print) -> dict:
    from mrpn.inference.model_io import load_for_inference
    from mrpn.io import atomic_write_json, atomic_write_with

    model, cfg, classes = load_for_inference(model_path, "cpu")
    all_m = registry.modalities_of(cfg.model.kind)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for use in modality_sets(cfg.model.kind):
        graph = ScoresGraph(model, use, all_m).eval()
        ex = example_inputs(cfg, use)
        names, axes = [], {}
        for m in use:
            names += [m, m + "_len"]
            axes[m] = {0: "batch", 1: registry.modality(m).axis}
            axes[m + "_len"] = {0: "batch"}
        axes["scores"] = {0: "batch"}
        path = out / f"mrpn-{''.join(use)}.onnx"
        args = tuple(ex[n] for n in names)
        atomic_write_with(path, lambda p: torch.onnx.export(
            graph, args, str(p), input_names=names, output_names=["scores"], dynamic_axes=axes,
            opset_version=opset, dynamo=False), suffix=".onnx")
        info = {"file": path.name, "inputs": names}
        if check:
            info["max_abs_diff_probabilities"] = parity(graph, path, cfg, use)
            log(f"  {path.name}: max |p_onnx - p_torch| = {info['max_abs_diff_probabilities']:.2e}")
        written["".join(use)] = info
    meta = {"classes": classes, "config": cfg.to_dict(), "graphs": written, "opset": opset}
    atomic_write_json(out / "mrpn-onnx.json", meta)
    return meta


def parity(graph: nn.Module, path: Path, cfg, use: tuple[str, ...]) -> float:
    """Max abs difference of class probabilities, ONNX Runtime vs PyTorch, on shapes unlike export's."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for b, t, s in ((1, 3, 2), (3, 9, 6)):
        ex = example_inputs(cfg, use, b, t, s)
        with torch.no_grad():
            ref = torch.softmax(graph(*ex.values()).float(), 1).numpy()
        got = sess.run(["scores"], {k: v.numpy() for k, v in ex.items()})[0]
        got = np.exp(got - got.max(1, keepdims=True))
        got /= got.sum(1, keepdims=True)
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


class OnnxRunner:
    """onnxruntime sessions for each exported modality set; `run(batch, use) -> scores [B, K]`."""

    def __init__(self, folder: str | Path):
        import onnxruntime as ort

        folder = Path(folder)
        meta = json.loads((folder / "mrpn-onnx.json").read_text())
        self.sessions = {k: ort.InferenceSession(str(folder / v["file"]), providers=["CPUExecutionProvider"])
                         for k, v in meta["graphs"].items()}
        self.inputs = {k: v["inputs"] for k, v in meta["graphs"].items()}

    @classmethod
    def for_model(cls, model, cfg, model_path: str) -> "OnnxRunner":
        """Export next to the model once (or reuse that export) and open it."""
        import hashlib
        import os

        from mrpn.inference.model_io import default_model_path

        src = Path(model_path) if model_path and model_path != "default" else default_model_path()
        tag = hashlib.sha1(f"{src.resolve()}:{src.stat().st_mtime_ns}".encode()).hexdigest()[:10]
        folder = Path(os.environ.get("MRPN_CACHE", Path.home() / ".cache" / "mrpn")) / f"onnx-{tag}"
        if not (folder / "mrpn-onnx.json").is_file():
            export_onnx(str(src), str(folder), check=False, log=lambda *_: None)
        return cls(folder)

    def run(self, batch: dict[str, torch.Tensor], use: tuple[str, ...]) -> np.ndarray:
        key = "".join(use)
        feeds = {n: batch[n].cpu().numpy() for n in self.inputs[key]}
        return self.sessions[key].run(["scores"], feeds)[0]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="checkpoint (best.pt) or .safetensors; default: the shipped model")
    p.add_argument("--out", required=True, help="output folder for the .onnx files and mrpn-onnx.json")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")


def main(args: argparse.Namespace) -> int:
    from mrpn.config import ConfigError
    from mrpn.checkpoint import CheckpointError

    try:
        meta = export_onnx(args.model, args.out, args.opset, not args.no_check)
    except (CheckpointError, ConfigError, ImportError) as e:
        print(f"mrpn export: error: {e}", file=sys.stderr)
        return 2
    bad = [k for k, v in meta["graphs"].items() if v.get("max_abs_diff_probabilities", 0) > 1e-4]
    print(f"exported {', '.join(meta['graphs'])} to {args.out}")
    if bad:
        print(f"mrpn export: parity check failed for {bad} (> 1e-4)", file=sys.stderr)
        return 1
    return 0
