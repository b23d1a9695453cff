"""The one-call Python API: `mrpn.predict("clip.mp4")` and `mrpn.load_model(...)`.

A thin layer over `Predictor` (the path `mrpn predict` uses): the same JSON record and the same
timeline PNG, wrapped in a `Result` with attribute access. Models are loaded once per
(path, options) and reused by later calls, so a loop over files pays for the model once.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

_CACHE: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def load_model(model: str | os.PathLike | None = "default", **options):
    """A `Predictor` for "default" (the shipped model), a checkpoint (`best.pt`) or a `.safetensors`
    model; options go to `Predictor` (device, backend, detector, window_s, hop_s). Cached."""
    from mrpn.inference.predictor import Predictor

    path = None if model in (None, "default") else str(model)
    key = (path, tuple(sorted(options.items())))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = Predictor(path, **options)
        return _CACHE[key]


class Result:
    """One file's prediction: `label`, `probabilities`, `timeline`, `modalities`, `notes`, and the
    full record `mrpn predict --json` writes (`to_dict()` / `to_json()`)."""

    def __init__(self, record: dict[str, Any]):
        self.record = record

    label = property(lambda self: self.record["label"])
    probabilities = property(lambda self: self.record["probabilities"])
    timeline = property(lambda self: self.record["timeline"])
    modalities = property(lambda self: self.record["modalities_used"])
    notes = property(lambda self: self.record["notes"])
    classes = property(lambda self: self.record["classes"])
    duration_s = property(lambda self: self.record["duration_s"])
    file = property(lambda self: self.record["file"])

    def to_dict(self) -> dict[str, Any]:
        return self.record

    def to_json(self, path: str | os.PathLike | None = None, indent: int | None = 2) -> str:
        """The JSON text; with `path`, also written there (atomically), as `mrpn predict --json` does."""
        if path is not None:
            from mrpn.io import atomic_write_json

            atomic_write_json(path, self.record, indent=indent)
        return json.dumps(self.record, indent=indent)

    def plot(self, path: str | os.PathLike) -> Path:
        """The timeline PNG of `mrpn predict --plot`."""
        from mrpn.inference.predict import plot_timeline

        plot_timeline(self.record, path)
        return Path(path)

    def to_dataframe(self):
        """One row per window: start, end, label, modalities and one probability column per class
        (NaN where the window had no usable input). Needs pandas."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Result.to_dataframe() needs pandas: pip install pandas") from None
        rows = []
        for w in self.timeline:
            row = {"start": w["start"], "end": w["end"], "label": w["label"], "modalities": "+".join(w["modalities"])}
            row.update({c: (w["probabilities"] or {}).get(c, float("nan")) for c in self.classes})
            rows.append(row)
        return pd.DataFrame(rows, columns=["start", "end", "label", "modalities", *self.classes])

    def __repr__(self) -> str:
        p = self.probabilities[self.label]
        return (f"Result({Path(self.file).name!r}: {self.label} {p:.2f}, modalities {'+'.join(self.modalities)}, "
                f"{len(self.timeline)} windows, {len(self.notes)} notes)")


def predict(video: str | os.PathLike, audio: str | os.PathLike | None = None,
            model: Any = "default", **options) -> Result:
    """Emotion over time for one video (or image) file: `mrpn.predict("clip.mp4").label`.

    `model` is "default", a model path or a `Predictor` from `load_model`; `audio` is an optional
    separate audio file. Raises `MediaError` / `ValueError` with a one-line reason for bad input."""
    from mrpn.inference.predictor import Predictor

    p = model if isinstance(model, Predictor) else load_model(model, **options)
    return Result(p.predict_file(str(video), None if audio is None else str(audio)).to_dict())
