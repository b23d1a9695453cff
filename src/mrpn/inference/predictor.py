"""Emotion over time for any video: load a model once, predict files, arrays or a live stream.

The same transforms as evaluation (`mrpn.data.loader`) turn face crops and the standardised
16 kHz wave into model inputs. Over time, the paper's 1 s audio segment with a 0.2 s hop defines
the windows; each window also takes the face frames inside it. The whole-file label is the model
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

from mrpn.data.loader import collate, faces_to_tensor, select_frames
from mrpn.features.spectrogram import spectrogram_segments

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
        self.modalities = {"vm": ("v",), "am": ("a",)}.get(self.kind, ("v", "a"))
        self.has_side_heads = self.kind in ("n1", "n2")
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
        """Decode + track faces + load audio: the same steps as `mrpn prepare`."""
        from mrpn.data.audio import prepare_audio
        from mrpn.data.faces import track_faces
        from mrpn.data.media import MediaError, VideoReader, is_image

        t0 = time.perf_counter()
        notes: list[str] = []
        faces = found = None
        fps = 0.0
        if "v" in self.modalities or self.kind in ("n0", "n1", "n2"):
            if is_image(video):
                from mrpn.data.media import read_image

                frames: Iterable[np.ndarray] = [read_image(video)]
                fps = 1.0
                track = track_faces(frames, self.detector(), self.face_config())
            else:
                with VideoReader(video, format="yuv") as r:  # the same decode path as prepare
                    fps = r.fps
                    track = track_faces(r, self.detector(), self.face_config())
                    if r.error:
                        notes.append(f"video stream broke off after {r.n_decoded} frames: {r.error}")
            faces, found = track.faces, track.found
        t1 = time.perf_counter()
        wave, silent = None, False
        try:
            res = prepare_audio(audio or video)
        except MediaError as e:
            res = None
            notes.append(f"audio unreadable: {e}")
        if res is None:
            notes.append("no audio stream")
        elif res.silent:
            silent = True
            notes.append("audio is silent")
        else:
            wave = res.samples
        t2 = time.perf_counter()
        return {"faces": faces, "found": found, "fps": fps, "audio": wave, "silent": silent, "notes": notes,
                "timing": {"decode_faces_s": t1 - t0, "audio_s": t2 - t1}}

    def _video_item(self, faces, found, fps, t0, t1):
        d = self.cfg.data
        idx = select_frames(len(faces), fps, t0, t1, d.video_fps, d.max_frames, found)
        has_face = bool(found[idx].any()) if found is not None and len(idx) else False
        x = faces_to_tensor(faces[idx], d.face_size, d.gray)
        return (x - 0.5) / 0.5, has_face

    def _window_frames(self, n: int, fps: float, found: np.ndarray | None,
                       windows: list[tuple[float, float]]) -> list[np.ndarray]:
        """Frames of each window, taken from one grid at `video_fps` shared by all windows, so that
        overlapping windows reuse the same frames (and their extractor features)."""
        d = self.cfg.data
        fps = fps if fps > 0 else 1.0
        step = fps / d.video_fps if d.video_fps and d.video_fps < fps else 1.0
        grid = np.unique(np.floor(np.arange(0, n, step)).astype(np.int64))
        ok = found[grid] if found is not None and len(found) == n else np.ones(len(grid), bool)
        t = grid / fps
        out = []
        for s, e in windows:
            sel = grid[(t >= s - 1e-9) & (t < e - 1e-9) & ok]
            if d.max_frames and len(sel) > d.max_frames:
                sel = sel[np.linspace(0, len(sel) - 1, d.max_frames).round().astype(np.int64)]
            out.append(sel)
        return out

    @torch.no_grad()
    def _extract(self, m: str, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """F_m on every element once: [N, C, H, W] -> [N, D]."""
        ext = self.model.branches[m].extractor
        return torch.cat([ext(x[i:i + chunk].to(self.device)) for i in range(0, len(x), chunk)])

    def _window_inputs(self, faces, sels, audio, windows, use) -> list[dict]:
        """Per-window model inputs. PyTorch: extractor features computed once per distinct frame and
        segment ("v_feat"/"a_feat"); ONNX: the raw crops and spectrograms (its graph starts at F_m)."""
        d = self.cfg.data
        raw = self._onnx is not None
        items: list[dict] = [{"label": 0, "index": j} for j in range(len(windows))]
        if "v" in use and any(len(sel) for sel in sels):
            uniq = np.unique(np.concatenate([sel for sel in sels if len(sel)]))
            x = (faces_to_tensor(faces[uniq], d.face_size, d.gray) - 0.5) / 0.5
            table = x if raw else self._extract("v", x)
            pos = {int(f): r for r, f in enumerate(uniq)}
            for j, sel in enumerate(sels):
                if len(sel):
                    items[j]["v" if raw else "v_feat"] = table[[pos[int(f)] for f in sel]]
        if "a" in use:
            segs = [self._audio_item(audio, s, e) for s, e in windows]
            flat = torch.cat(segs)
            table = flat if raw else self._extract("a", flat)
            k = 0
            for j, sg in enumerate(segs):
                items[j]["a" if raw else "a_feat"] = table[k:k + len(sg)]
                k += len(sg)
        return items

    def _audio_item(self, wave, t0, t1):
        d = self.cfg.data
        a0, a1 = int(t0 * SR), max(int(t1 * SR), int(t0 * SR) + 1)
        return spectrogram_segments(torch.from_numpy(np.ascontiguousarray(wave[a0:a1], np.float32)), SR,
                                    d.segment_s, d.segment_hop_s, d.n_fft, d.hop_length, tuple(d.spec_size))

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

    # -- public ---------------------------------------------------------------------------------
    def predict_arrays(self, faces: np.ndarray | None, found: np.ndarray | None, fps: float,
                       audio: np.ndarray | None, name: str = "<arrays>", notes: list[str] | None = None
                       ) -> Prediction:
        """faces uint8 [T,H,W,C] crops, found bool [T], audio float32 standardised 16 kHz (or None)."""
        t_start = time.perf_counter()
        notes = list(notes or [])
        has_v = faces is not None and len(faces) > 0 and (found is None or bool(found.any()))
        if faces is not None and len(faces) and found is not None and not found.any():
            notes.append("no face found in any frame")
        has_a = audio is not None and len(audio) > 0
        dur = max(len(audio) / SR if has_a else 0.0, len(faces) / fps if has_v and fps > 0 else 0.0)
        present = tuple(m for m, ok in (("v", has_v), ("a", has_a)) if ok)
        use = self._can_use(present)
        if use is None:
            need = "+".join(self.modalities)
            raise ValueError(f"{name}: cannot predict: the model needs {need} but the file has "
                             f"{'+'.join(present) or 'neither a face nor audio'}"
                             + ("" if self.has_side_heads else " (only N1/N2 models can use one modality)"))
        if len(use) < len(self.modalities):
            notes.append(f"predicted from {'+'.join(use)} only (uni-modal head of {self.kind.upper()})")

        # windows: the paper's 1 s segments with a 0.2 s hop
        starts = [0.0] if dur <= self.window_s else \
            [k * self.hop_s for k in range(int(math.floor((dur - self.window_s) / self.hop_s + 1e-9)) + 1)]
        windows = [(s, min(s + self.window_s, dur)) for s in starts]
        sels = self._window_frames(len(faces), fps, found, windows) if "v" in use else None
        win_mod = []
        for j in range(len(windows)):
            mods = [m for m in use if m == "a" or len(sels[j])]
            win_mod.append(self._can_use(tuple(mods)) or ())
        inputs = self._window_inputs(faces, sels, audio, windows, use)
        groups: dict[tuple[str, ...], list[int]] = {}
        for j, wuse in enumerate(win_mod):
            if wuse:
                groups.setdefault(wuse, []).append(j)
        probs = np.full((len(starts), len(self.classes)), np.nan, np.float32)
        for wuse, js in groups.items():
            items = [{k: v for k, v in inputs[j].items() if k in ("label", "index") or k.split("_")[0] in wuse}
                     for j in js]
            probs[js] = self._scores(items, wuse)
        n_noface = sum(1 for m in win_mod if "v" in use and "v" not in m)
        if n_noface:
            notes.append(f"{n_noface} of {len(starts)} windows had no detected face")

        timeline = []
        for j, s in enumerate(starts):
            if not win_mod[j]:
                timeline.append({"start": round(s, 3), "end": round(min(s + self.window_s, dur), 3), "label": None,
                                 "probabilities": None, "modalities": []})
                continue
            timeline.append({"start": round(s, 3), "end": round(min(s + self.window_s, dur), 3),
                             "label": self.classes[int(np.argmax(probs[j]))],
                             "probabilities": _probs(probs[j], self.classes), "modalities": list(win_mod[j])})

        # whole file
        per_mod: dict[str, dict[str, float]] = {}
        if dur <= self.max_clip_s:
            raw = self._onnx is not None
            whole: dict[str, Any] = {"label": 0, "index": 0}
            if "v" in use:
                x, _ = self._video_item(faces, found, fps, 0.0, dur)
                whole["v" if raw else "v_feat"] = x if raw else self._extract("v", x)
            if "a" in use:
                a = self._audio_item(audio, 0.0, dur)
                whole["a" if raw else "a_feat"] = a if raw else self._extract("a", a)
            p_file = self._scores([whole], use)[0]
            if self.has_side_heads:  # the side heads reuse the features computed above
                for m in use:
                    one = {k: v for k, v in whole.items() if k in ("label", "index") or k.split("_")[0] == m}
                    per_mod[m] = _probs(self._scores([one], (m,))[0], self.classes)
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
        ends = [t for t, need in ((t_v, "v" in p.modalities), (t_a, "a" in p.modalities)) if need]
        avail = min(ends) if ends else 0.0
        while self.next_start + p.window_s <= avail + 1e-9:
            s, e = self.next_start, self.next_start + p.window_s
            faces = found = wave = None
            if "v" in p.modalities and self.faces:
                i0, i1 = int(round((s - self._v0) * self.fps)), int(round((e - self._v0) * self.fps))
                faces, found = np.stack(self.faces[i0:i1]), np.array(self.found[i0:i1], bool)
            if "a" in p.modalities:
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
