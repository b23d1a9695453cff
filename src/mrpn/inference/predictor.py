"""Emotion over time for any video: load a model once, predict files, arrays or a live stream.

A file is read by `mrpn prepare`'s own per-clip step (`prepare_clip`: decode, track and crop faces,
16 kHz standardised audio), and each modality's per-element functions (`mrpn.registry`,
`mrpn/features/`) turn it into model inputs, as the data loader does for training and evaluation.
Over time, the paper's 1 s audio segment with a 0.2 s hop defines the windows; each window also
takes the face frames inside it. The whole-file label is the model
on the whole clip (as in training) for clips up to `max_clip_s`, and the mean of the window
probabilities for longer files, whose length the sequence models never saw in training.

Missing modality (beyond the paper): N1/N2 train a uni-modal head per modality anyway
(s_m = DenseUnit(f̂_m), eq. 8-9). When the audio is absent or silent, or a window holds no
detected face, the head of the modality that is present predicts, and the output says so.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

from mrpn import registry
from mrpn.data.loader import Example, collate

SR = 16000


@dataclass
class Prediction:
    file: str
    classes: list[str]
    label: str
    probabilities: dict[str, float]
    timeline: list[dict[str, Any]]
    modalities_used: list[str]
    per_modality: dict[str, dict[str, float]]
    duration_s: float
    notes: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "label": self.label, "probabilities": self.probabilities,
                "timeline": self.timeline, "modalities_used": self.modalities_used,
                "per_modality": self.per_modality, "duration_s": round(self.duration_s, 3),
                "classes": self.classes, "notes": self.notes, "timing": self.timing}


class Predictor:
    """Holds a model (PyTorch or ONNX Runtime) and the preprocessing settings it was trained with."""

    def __init__(self, model_path: str | None = None, device: str = "cpu", backend: str = "torch",
                 detector: str = "opencv", window_s: float = 1.0, hop_s: float = 0.2, max_clip_s: float = 8.0,
                 batch_windows: int = 64):
        from mrpn.inference.model_io import load_for_inference

        self.model, self.cfg, self.classes = load_for_inference(model_path, device)
        self.model_path = model_path or "default"
        self.device = torch.device(device)
        self.kind = self.cfg.model.kind
        spec = registry.kind(self.kind)
        self.modalities = spec.modalities
        self.has_side_heads = spec.side_heads
        self.window_s, self.hop_s, self.max_clip_s = window_s, hop_s, max_clip_s
        self.batch_windows = batch_windows
        self.detector_name = detector
        self._detector = None
        self.backend = backend
        self._onnx = None
        if backend == "onnx":
            from mrpn.inference.export import OnnxRunner

            self._onnx = OnnxRunner.for_model(self.model, self.cfg, self.model_path)

    # -- inputs ---------------------------------------------------------------------------------
    def face_config(self):
        from mrpn.data.faces import FaceConfig

        d = self.cfg.data
        # the margin the model's training faces were cut with (data.face_margin; 0.25 for older models)
        return FaceConfig(detector=self.detector_name, face_size=d.face_size, gray=d.gray, margin=d.face_margin)

    def detector(self):
        if self._detector is None:
            from mrpn.data.faces import make_detector

            self._detector = make_detector(self.detector_name)
        return self._detector

    def read_file(self, video: str, audio: str | None = None) -> dict[str, Any]:
        """Decode, track and crop faces, load and standardise audio: `mrpn prepare`'s own per-clip
        step (`prepare_clip`), so a file is read exactly as a training clip is."""
        from dataclasses import asdict

        from mrpn.data.clip import Clip
        from mrpn.data.faces import make_detector
        from mrpn.data.media import NoVideoStream, is_image
        from mrpn.data.prepare import PrepareConfig, prepare_clip

        t0 = time.perf_counter()
        if registry.V not in self.modalities:  # an audio model needs no face tracking
            video, audio = None, audio or video
        config = PrepareConfig(**asdict(self.face_config()), sample_rate=self.cfg.data.sample_rate,
                               include_no_face=True)
        detector, crop_note = self.detector(), None
        if video and self.is_face_crop(video):
            # A small image is a face crop already (FER2013: 48x48): used whole, as FER2013 images are
            # in training. Run through a face detector it is mostly not found, or cropped again.
            config.detector, detector = "none", make_detector("none")
            crop_note = "small image: taken as a face crop (no face detection)"
        clip = Clip(id="predict", dataset="", label=0, label_name="", actor="", video=video, audio=audio)
        try:
            record, arr = prepare_clip(clip, config, detector=detector)
        except NoVideoStream:       # an audio-only file (.mp4, .wav): the audio head predicts, and says so
            clip = Clip(id="predict", dataset="", label=0, label_name="", actor="", video=None, audio=audio or video)
            record, arr = prepare_clip(clip, config, detector=detector)
            crop_note = "no video stream: audio only"
        flags = record["flags"]
        # the notes below say the same in the words of a prediction (the cache stores silence as zeros)
        notes = [n for n in record["notes"] if not any(s in n for s in ("no face found", "silent audio",
                                                                          "no audio stream"))]
        fps = float(arr["fps"])
        faces, found = arr["faces"], arr["face_found"]
        if video and is_image(video):
            fps = 1.0  # one image is one second of "video"
        if crop_note:
            notes.append(crop_note)
        wave = arr["audio"]
        if "no_audio" in flags:
            notes.append("no audio stream")
        if "silent_audio" in flags:
            notes.append("audio is silent")
        if "no_audio" in flags or "silent_audio" in flags or not len(wave):
            wave = None
        return {"faces": faces, "found": found, "boxes": arr["boxes"], "fps": fps, "audio": wave,
                "silent": "silent_audio" in flags, "notes": notes, "timing": {"read_s": time.perf_counter() - t0}}

    def is_face_crop(self, path: str) -> bool:
        """An image no larger than twice the model's face crop is taken to be a face crop already."""
        from mrpn.data.media import MediaError, is_image, read_image

        if self.detector_name == "none" or not is_image(path):
            return False
        try:
            h, w = read_image(path).shape[:2]
        except (MediaError, OSError):
            return False  # prepare_clip reports the unreadable file
        return max(h, w) <= 2 * self.cfg.data.face_size

    @torch.no_grad()
    def _extract(self, m: str, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """F_m on every element once: [N, C, H, W] -> [N, D]."""
        ext = self.model.branches[m].extractor
        return torch.cat([ext(x[i:i + chunk].to(self.device)) for i in range(0, len(x), chunk)])

    def _inputs(self, ex: Example, m: str, keys_per_item: list[np.ndarray]) -> list[torch.Tensor | None]:
        """Model inputs of modality m for each item (window or whole clip), from its element keys.

        Each distinct element (a frame, a segment) is preprocessed and, for PyTorch, run through
        the extractor F_m once, whatever the number of overlapping windows it falls in; ONNX gets
        the raw elements (its graph starts at F_m)."""
        spec = registry.modality(m)
        d = self.cfg.data
        nonempty = [k for k in keys_per_item if len(k)]
        if not nonempty:
            return [None] * len(keys_per_item)
        uniq, inverse = np.unique(np.concatenate(nonempty), axis=0, return_inverse=True)
        x = spec.inputs(ex, uniq, d, None)
        table = x if self._onnx is not None else self._extract(m, x)
        out, k = [], 0
        inverse = inverse.reshape(-1)
        for keys in keys_per_item:
            if not len(keys):
                out.append(None)
                continue
            out.append(table[torch.from_numpy(inverse[k:k + len(keys)])])
            k += len(keys)
        return out

    def _items(self, ex: Example, keys: dict[str, list[np.ndarray]], n: int) -> list[dict]:
        """collate-ready items: m (raw, ONNX) or m + "_feat" (extractor features, PyTorch)."""
        suffix = "" if self._onnx is not None else "_feat"
        items: list[dict] = [{"label": 0, "index": j} for j in range(n)]
        for m, per_item in keys.items():
            for j, x in enumerate(self._inputs(ex, m, per_item)):
                if x is not None:
                    items[j][m + suffix] = x
        return items

    # -- model ----------------------------------------------------------------------------------
    @torch.no_grad()
    def _scores(self, items: list[dict], use: tuple[str, ...]) -> np.ndarray:
        """Class probabilities [N, K] for items, using the central branch when `use` has every
        modality of a fusion model and the uni-modal side head otherwise."""
        out = []
        for i in range(0, len(items), self.batch_windows):
            batch = collate(items[i:i + self.batch_windows])
            batch = {k: v.to(self.device) for k, v in batch.items()}
            if self._onnx is not None:
                s = torch.from_numpy(self._onnx.run(batch, use))
            elif len(use) == len(self.modalities):
                s = self.model(batch)["scores"]
            else:
                s = self.model.forward_modality(batch, use[0])
            out.append(torch.softmax(s.float(), 1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def _can_use(self, present: tuple[str, ...]) -> tuple[str, ...] | None:
        use = tuple(m for m in self.modalities if m in present)
        if not use:
            return None
        if len(use) < len(self.modalities) and not self.has_side_heads:
            return None
        return use

    @staticmethod
    def _only(item: dict, use: tuple[str, ...]) -> dict:
        return {k: v for k, v in item.items() if k in ("label", "index") or k.removesuffix("_feat") in use}

    # -- public ---------------------------------------------------------------------------------
    def predict_arrays(self, faces: np.ndarray | None, found: np.ndarray | None, fps: float,
                       audio: np.ndarray | None, name: str = "<arrays>", notes: list[str] | None = None
                       ) -> Prediction:
        """faces uint8 [T,H,W,C] crops, found bool [T], audio float32 standardised 16 kHz (or None)."""
        ex = Example(clip=None, faces=faces, fps=fps, audio=audio, face_found=found)
        return self.predict_example(ex, name, notes)

    def predict_example(self, ex: Example, name: str = "<arrays>", notes: list[str] | None = None) -> Prediction:
        """Emotion over time for one example holding the arrays of any registered modalities."""
        t_start = time.perf_counter()
        d = self.cfg.data
        notes = list(notes or [])
        specs = registry.MODALITIES
        usable = {m: s.usable(ex) for m, s in specs.items()}
        for m, s in specs.items():
            if s.absent_note and s.present(ex) and not usable[m] and s.duration(ex, d) > 0:
                notes.append(s.absent_note)
        dur = max([s.duration(ex, d) for m, s in specs.items() if usable[m]] + [0.0])
        present = tuple(m for m in specs if usable[m])
        use = self._can_use(present)
        if use is None:
            need = "+".join(self.modalities)
            raise ValueError(f"{name}: cannot predict: the model needs {need} but the file has "
                             f"{'+'.join(present) or 'none of them'}"
                             + ("" if self.has_side_heads else " (only N1/N2 models can use one modality)"))
        if len(use) < len(self.modalities):
            notes.append(f"predicted from {'+'.join(use)} only (uni-modal head of {self.kind.upper()})")

        # windows: the paper's 1 s segments with a 0.2 s hop
        starts = [0.0] if dur <= self.window_s else \
            [k * self.hop_s for k in range(int(math.floor((dur - self.window_s) / self.hop_s + 1e-9)) + 1)]
        windows = [(s, min(s + self.window_s, dur)) for s in starts]
        keys = {m: registry.modality(m).windows(ex, windows, d) for m in use}
        win_mod = [self._can_use(tuple(m for m in use if len(keys[m][j]))) or () for j in range(len(windows))]
        inputs = self._items(ex, keys, len(windows))
        groups: dict[tuple[str, ...], list[int]] = {}
        for j, wuse in enumerate(win_mod):
            if wuse:
                groups.setdefault(wuse, []).append(j)
        probs = np.full((len(starts), len(self.classes)), np.nan, np.float32)
        for wuse, js in groups.items():
            probs[js] = self._scores([self._only(inputs[j], wuse) for j in js], wuse)
        for m in use:
            gaps = sum(1 for wm in win_mod if m not in wm)
            if gaps:
                notes.append(f"{gaps} of {len(starts)} windows had no {registry.modality(m).missing}")

        timeline = []
        for j, s in enumerate(starts):
            w = {"start": round(s, 3), "end": round(min(s + self.window_s, dur), 3), "label": None,
                 "probabilities": None, "modalities": []}
            if win_mod[j]:
                w.update(label=self.classes[int(np.argmax(probs[j]))], probabilities=_probs(probs[j], self.classes),
                         modalities=list(win_mod[j]))
            timeline.append(w)

        # whole file: the model on the whole clip, as in training and evaluation
        per_mod: dict[str, dict[str, float]] = {}
        if dur <= self.max_clip_s:
            whole = self._items(ex, {m: [registry.modality(m).select(ex, 0.0, dur, d)] for m in use}, 1)[0]
            p_file = self._scores([whole], use)[0]
            if self.has_side_heads:  # the side heads reuse the features computed above
                for m in use:
                    per_mod[m] = _probs(self._scores([self._only(whole, (m,))], (m,))[0], self.classes)
        else:
            valid = ~np.isnan(probs).any(1)
            p_file = probs[valid].mean(0)
            notes.append(f"file longer than {self.max_clip_s:g} s: its label is the mean over windows")
        return Prediction(file=name, classes=list(self.classes), label=self.classes[int(np.argmax(p_file))],
                          probabilities=_probs(p_file, self.classes), timeline=timeline, modalities_used=list(use),
                          per_modality=per_mod, duration_s=dur, notes=notes,
                          timing={"model_s": round(time.perf_counter() - t_start, 4)})

    def predict_file(self, video: str, audio: str | None = None) -> Prediction:
        t0 = time.perf_counter()
        r = self.read_file(video, audio)
        pred = self.predict_arrays(r["faces"], r["found"], r["fps"], r["audio"], name=str(video), notes=r["notes"])
        pred.timing.update({k: round(v, 4) for k, v in r["timing"].items()})
        pred.timing["total_s"] = round(time.perf_counter() - t0, 4)
        pred.timing["real_time_factor"] = round(pred.timing["total_s"] / max(pred.duration_s, 1e-6), 4)
        return pred


def _probs(p: np.ndarray, classes: list[str]) -> dict[str, float]:
    return {c: round(float(v), 4) for c, v in zip(classes, p)}


class StreamPredictor:
    """Live use: push RGB frames and 16 kHz audio chunks as they arrive; get a window prediction
    every `hop_s`. Audio is standardised with running mean/std (the file path uses the whole clip's,
    paper 4.4; a stream cannot know it in advance)."""

    def __init__(self, predictor: Predictor, fps: float):
        from mrpn.data.faces import FaceTracker

        self.p, self.fps = predictor, fps
        self.tracker = FaceTracker(predictor.detector(), predictor.face_config())
        self.faces: list[np.ndarray] = []
        self.found: list[bool] = []
        self.audio = np.zeros(0, np.float32)
        self._n = 0
        self._sum = 0.0
        self._sq = 0.0
        self.next_start = 0.0
        self._v0 = self._a0 = 0.0  # stream time of the first kept frame / sample

    def push(self, frames: Iterable[np.ndarray] = (), audio16k: np.ndarray | None = None) -> list[dict]:
        for f in frames:
            for crop, _box, ok in self.tracker.push(f):
                self.faces.append(crop)
                self.found.append(ok)
        if audio16k is not None and len(audio16k):
            a = np.asarray(audio16k, np.float32)
            self._n += len(a)
            self._sum += float(a.sum())
            self._sq += float((a.astype(np.float64) ** 2).sum())
            self.audio = np.concatenate([self.audio, a])
        return self._emit()

    def finish(self) -> list[dict]:
        """End of stream: release the frames the tracker holds back and predict what is left.

        The tracker holds back `smooth // 2 + max_gap + 1` frames (it interpolates boxes between
        detections), which is the video latency of the stream (about 0.7 s at 30 fps)."""
        for crop, _box, ok in self.tracker.finish():
            self.faces.append(crop)
            self.found.append(ok)
        return self._emit()

    def _emit(self) -> list[dict]:
        """Predict every complete window; only the data of one window is run, and older data is dropped."""
        out = []
        p = self.p
        t_v = self._v0 + len(self.faces) / self.fps if self.fps else 0.0   # seconds of video received
        t_a = self._a0 + len(self.audio) / SR
        ends = [t for t, need in ((t_v, registry.V in p.modalities), (t_a, registry.A in p.modalities)) if need]
        avail = min(ends) if ends else 0.0
        while self.next_start + p.window_s <= avail + 1e-9:
            s, e = self.next_start, self.next_start + p.window_s
            faces = found = wave = None
            if registry.V in p.modalities and self.faces:
                i0, i1 = int(round((s - self._v0) * self.fps)), int(round((e - self._v0) * self.fps))
                faces, found = np.stack(self.faces[i0:i1]), np.array(self.found[i0:i1], bool)
            if registry.A in p.modalities:
                mean = self._sum / max(self._n, 1)
                std = math.sqrt(max(self._sq / max(self._n, 1) - mean ** 2, 0.0))
                a0, a1 = int(round((s - self._a0) * SR)), int(round((e - self._a0) * SR))
                wave = (self.audio[a0:a1] - mean) / std if std > 1e-4 else None
            try:
                pr = p.predict_arrays(faces, found, self.fps, wave, name="<stream>")
                out.append({"start": round(s, 3), "end": round(e, 3), "label": pr.label,
                            "probabilities": pr.probabilities, "modalities": pr.modalities_used})
            except ValueError as err:  # neither modality usable in this window
                out.append({"start": round(s, 3), "end": round(e, 3), "label": None, "probabilities": None,
                            "modalities": [], "note": str(err)})
            self.next_start += p.hop_s
            self._drop_before(self.next_start)
        return out

    def _drop_before(self, t: float) -> None:
        if self.fps:
            k = max(0, int((t - self._v0) * self.fps))
            if k:
                del self.faces[:k], self.found[:k]
                self._v0 += k / self.fps
        k = max(0, int((t - self._a0) * SR))
        if k:
            self.audio = self.audio[k:]
            self._a0 += k / SR
