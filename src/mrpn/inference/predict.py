"""`mrpn predict VIDEO...`: emotion probabilities over time and for the whole file.

Prints a readable table per file, and with `--json` / `--plot` writes the JSON record
(label, probabilities, timeline, modalities_used, per-modality scores) and a timeline PNG.
A file that cannot be read gets a clear message and the others are still predicted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrpn import registry
from mrpn.argtypes import positive_float
from mrpn.inference.outputs import GENERATOR, OutputError, check_outputs, plan_outputs
from mrpn.io import atomic_write_json


def plot_timeline(pred: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from mrpn.io import atomic_write_with

    classes = pred["classes"]
    tl = [w for w in pred["timeline"] if w["probabilities"]]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 4.8), sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    cmap = plt.get_cmap("tab10")
    if tl:
        t = np.array([(w["start"] + w["end"]) / 2 for w in tl])
        for k, c in enumerate(classes):
            ax.plot(t, [w["probabilities"][c] for w in tl], label=c, color=cmap(k % 10), lw=2)
        half = (t[1] - t[0]) / 2 if len(t) > 1 else (tl[0]["end"] - tl[0]["start"]) / 2
        for c, w in zip(t, tl):  # each window's top label, centred like the curves above
            ax2.axvspan(c - half, c + half, color=cmap(classes.index(w["label"]) % 10), alpha=0.8, lw=0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title(f"{Path(pred['file']).name}: {pred['label']} "
                 f"({pred['probabilities'][pred['label']]:.0%}), modalities {'+'.join(pred['modalities_used'])}")
    ax2.set_yticks([])
    ax2.set_xlabel("time (s), window centres; bottom strip = top label per window")
    ax2.set_xlim(0, max(pred["duration_s"], 1e-3))
    fig.tight_layout()
    # the tEXt marker lets a re-run recognise (and replace) its own earlier plot, and only that
    atomic_write_with(path, lambda p: fig.savefig(p, dpi=110, format="png", metadata={"Software": GENERATOR}),
                      suffix=".png")
    plt.close(fig)


def format_prediction(pred: dict, max_rows: int = 20) -> str:
    classes = pred["classes"]
    short = [c[:7] for c in classes]
    lines = [f"{pred['file']}", f"  whole file: {pred['label']}  "
             + "  ".join(f"{c} {pred['probabilities'][c]:.2f}" for c in classes),
             f"  modalities: {'+'.join(pred['modalities_used'])}  duration {pred['duration_s']:.2f} s"]
    for m, p in pred.get("per_modality", {}).items():
        top = max(p, key=p.get)
        lines.append(f"  {registry.modality(m).title} head alone: {top} ({p[top]:.2f})")
    for n in pred.get("notes", []):
        lines.append(f"  note: {n}")
    tl = pred["timeline"]
    step = max(1, len(tl) // max_rows)
    lines.append("  " + f"{'start':>6} {'end':>6}  {'label':<10}" + " ".join(f"{s:>7}" for s in short))
    for w in tl[::step]:
        if w["probabilities"] is None:
            lines.append(f"  {w['start']:6.2f} {w['end']:6.2f}  {'(no input)':<10}")
            continue
        lines.append(f"  {w['start']:6.2f} {w['end']:6.2f}  {w['label']:<10}"
                     + " ".join(f"{w['probabilities'][c]:7.2f}" for c in classes))
    if step > 1:
        lines.append(f"  (every {step}th of {len(tl)} windows shown; all are in the JSON)")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", help="video files (anything PyAV reads), or images")
    p.add_argument("--audio", help="separate audio file for the (single) video")
    p.add_argument("--model", help="checkpoint (best.pt) or .safetensors model; default: the shipped model")
    p.add_argument("--json", help="write the predictions here (a file for one video, else a folder)")
    p.add_argument("--plot", help="write timeline PNG(s) here (a file for one video, else a folder)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    p.add_argument("--detector", default="opencv", help="face detector: opencv, dlib-hog, dlib-cnn, none")
    p.add_argument("--window", type=positive_float, default=1.0, help="window length in seconds (paper: 1 s)")
    p.add_argument("--hop", type=positive_float, default=0.2, help="window hop in seconds (paper: 0.2 s)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing --json/--plot files even when they are not earlier mrpn results")


def _plan(args: argparse.Namespace) -> tuple[list, list]:
    """Per-video JSON and PNG targets, checked before any work (raises OutputError)."""
    jsons = plan_outputs(args.json, args.videos, ".json", "--json")
    plots = plan_outputs(args.plot, args.videos, ".png", "--plot")
    targets = [(t, "json") for t in jsons if t] + [(t, "png") for t in plots if t]
    check_outputs(targets, list(args.videos) + [args.audio or "", args.model or ""], args.overwrite)
    return jsons, plots


def _write(path: Path | None, writer, what) -> bool:
    if path is None:
        return True
    try:
        writer(path, what)
    except OSError as e:       # a full disk or a read-only folder: say so, keep the other results
        print(f"{path}: cannot write: {e.strerror or e}", file=sys.stderr)
        return False
    print(f"  -> {path}")
    return True


def _hint(video: str, e: Exception, detector: str) -> str:
    """A face image with no face found is most often an already-cropped face (FER2013, 48x48)."""
    from mrpn.data.media import is_image

    if detector != "none" and is_image(video) and "face" in str(e):
        return "; if the image is already a cropped face (e.g. 48x48 FER2013), pass --detector none"
    return ""


def main(args: argparse.Namespace) -> int:
    from mrpn.config import ConfigError
    from mrpn.inference.predictor import Predictor
    from mrpn.checkpoint import CheckpointError

    if args.audio and len(args.videos) > 1:
        print("mrpn predict: error: --audio goes with a single video", file=sys.stderr)
        return 2
    if args.audio and not Path(args.audio).is_file():
        why = "is a folder" if Path(args.audio).is_dir() else "file not found"
        print(f"mrpn predict: error: --audio {args.audio}: {why}", file=sys.stderr)
        return 2
    try:
        jsons, plots = _plan(args)
    except OutputError as e:
        print(f"mrpn predict: error: {e}", file=sys.stderr)
        return 2
    try:
        pred = Predictor(args.model, device=args.device, backend=args.backend, detector=args.detector,
                         window_s=args.window, hop_s=args.hop)
    except (CheckpointError, ConfigError, ImportError, RuntimeError) as e:
        print(f"mrpn predict: error: {e}", file=sys.stderr)
        return 2
    ok = 0
    results = []
    for v, j, pth in zip(args.videos, jsons, plots):
        try:
            r = pred.predict_file(v, args.audio).to_dict()
        except Exception as e:  # noqa: BLE001 - one unreadable file must not stop the others
            from mrpn.data.media import MediaError

            kind = "" if isinstance(e, (MediaError, ValueError, FileNotFoundError)) else f"{type(e).__name__}: "
            print(f"{v}: cannot predict: {kind}{e}{_hint(v, e, args.detector)}", file=sys.stderr)
            continue
        ok += 1
        results.append(r)
        print(format_prediction(r))
        written = _write(j, lambda p, r: atomic_write_json(p, {"generator": GENERATOR, **r}), r)
        written = _write(pth, lambda p, r: plot_timeline(r, p), r) and written
        ok -= not written
    return 0 if ok else 1
