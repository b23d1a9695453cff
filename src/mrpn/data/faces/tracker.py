"""`FaceTracker`: detect every k-th downscaled frame, interpolate, smooth, crop (streaming)."""
from __future__ import annotations

import bisect
from collections import deque
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from mrpn.data.faces.crop import crop_square, detection_image, pad_edges, roi_image
from mrpn.data.faces.detectors import Detector, largest

# ---------------------------------------------------------------------------------------------
# tracking

@dataclass
class FaceConfig:
    detector: str = "opencv"
    face_size: int = 112
    gray: bool = False
    detect_every: int = 5      # run the detector on every k-th frame (and the last one)
    detect_width: int = 320    # ... on a copy downscaled to this width (0: full resolution)
    margin: float = 0.25       # added on every side of the box, as a fraction of its larger side
    max_gap: int = 15          # interpolate between detections at most this many frames apart
    smooth: int = 9            # centred moving average over this many frames (1: off)
    roi: float = 2.0           # search a window this many times the last face first (0: off)
    # A whole-frame detection that reaches the frame's border is searched again with the edges
    # repeated by this fraction of the shorter side, as the ROI window repeats them: a face wider
    # than a portrait frame, or cut by the frame's edge, is then boxed at its own size from the first
    # detection on, not smaller until the ROI search takes over (0: off, as caches made before it).
    edge_pad: float = 0.15

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FaceTrack:
    faces: np.ndarray          # uint8 [T, S, S, C]
    boxes: np.ndarray          # float32 [T, 4] x, y, w, h of the smoothed face box (full-resolution pixels)
    found: np.ndarray          # bool [T]
    detect_calls: int
    detections: int

    @property
    def face_fraction(self) -> float:
        return float(self.found.mean()) if len(self.found) else 0.0


def _touches_edge(box, shape, margin: float) -> bool:
    """Whether a detection (x, y, w, h, ...) comes within `margin` pixels of the image's border."""
    H, W = shape[:2]
    return (box[0] <= margin or box[1] <= margin or box[0] + box[2] >= W - margin
            or box[1] + box[3] >= H - margin)


class FaceTracker:
    """Streaming detector + tracker + cropper; see the module docstring for the rules.

    ``push(frame)`` takes uint8 RGB [H, W, 3] (or grey [H, W]) frames in order and returns the
    frames whose box is final as (crop, box[4], found) tuples; ``finish()`` returns the rest.
    """

    def __init__(self, detector: Detector, config: FaceConfig):
        self.detector = detector
        self.cfg = config
        whole = getattr(detector, "name", "") == "none"
        self.every = 1 if whole else max(1, int(config.detect_every))
        self.margin = 0.0 if whole else float(config.margin)
        self.max_gap = max(0, int(config.max_gap))
        self.radius = max(0, int(config.smooth) // 2)
        self.lookahead = self.radius + self.max_gap + 1
        self._buf: deque[tuple[int, np.ndarray]] = deque()
        self._n = 0
        self._frame_shape: tuple[int, int] | None = None
        self._det_idx: list[int] = []          # keyframes with a face, increasing
        self._det_box: list[np.ndarray] = []
        self._keyframes: set[int] = set()
        self._raw: dict[int, tuple[np.ndarray, bool]] = {}
        self._last: np.ndarray | None = None
        self._final_n: int | None = None
        self.detect_calls = 0
        self.detections = 0
        self.roi_hits = 0

    # -- detection ----------------------------------------------------------------------------
    def _detect(self, idx: int, frame) -> None:
        self._keyframes.add(idx)
        self.detect_calls += 1
        name = getattr(self.detector, "name", "")
        color = bool(getattr(self.detector, "wants_color", False))
        roi = float(self.cfg.roi or 0)
        if (roi > 0 and name != "none" and self._det_idx and idx - self._det_idx[-1] <= self.max_gap):
            img, x0, y0, f = roi_image(frame, self._det_box[-1], roi,
                                       int(getattr(self.detector, "roi_face_px", 64)), color)
            best = largest(self.detector.detect(img))
            # a face cut by the window's edge is not trusted: search the whole frame instead
            if best is not None and best[2] > 0 and best[3] > 0 and not _touches_edge(best, img.shape, 1):
                self.roi_hits += 1
                self._add(idx, np.array([best[0] / f + x0, best[1] / f + y0, best[2] / f, best[3] / f]))
                return
        width = 0 if name == "none" else int(self.cfg.detect_width or 0)
        img, scale = detection_image(frame, width, color=color)
        best = largest(self.detector.detect(img))
        side = min(img.shape[:2])
        pad = 0 if name == "none" else int(round(float(self.cfg.edge_pad or 0) * side))
        # Haar boxes a face cut by the frame's edge (or wider than a portrait frame) several pixels
        # inside the border (7 of 126) and smaller than it is. Search again with the edges repeated,
        # as the ROI window does, to box it at its own size. Only then: a face inside the frame keeps
        # exactly the box it always had (the detector's scale pyramid depends on the image size).
        if best is not None and pad and _touches_edge(best, img.shape, 0.1 * side):
            padded = largest(self.detector.detect(pad_edges(img, pad)))
            if padded is not None:
                best = (padded[0] - pad, padded[1] - pad, padded[2], padded[3])
        if best is not None and best[2] > 0 and best[3] > 0:
            self._add(idx, np.array(best[:4], np.float64) / scale)

    def _add(self, idx: int, box: np.ndarray) -> None:
        self.detections += 1
        self._det_idx.append(idx)
        self._det_box.append(box.astype(np.float64))

    # -- box rules ----------------------------------------------------------------------------
    def _fallback(self) -> np.ndarray:
        H, W = self._frame_shape  # type: ignore[misc]
        s = min(H, W)
        return np.array([(W - s) / 2.0, (H - s) / 2.0, s, s], np.float64)

    def _raw_box(self, u: int) -> tuple[np.ndarray, bool]:
        hit = self._raw.get(u)
        if hit is not None:
            return hit
        j = bisect.bisect_right(self._det_idx, u)
        p = self._det_idx[j - 1] if j > 0 else None
        n = self._det_idx[j] if j < len(self._det_idx) else None
        if p == u:
            res = (self._det_box[j - 1], True)
        elif p is not None and n is not None and n - p <= self.max_gap:
            a = (u - p) / (n - p)
            res = ((1 - a) * self._det_box[j - 1] + a * self._det_box[j], True)
        elif p is not None:
            res = (self._det_box[j - 1], False)
        elif n is not None and n - u <= self.max_gap:
            res = (self._det_box[j], False)
        else:
            res = (self._fallback(), False)
        final = self._final_n is not None or u <= self._n - 2 - self.max_gap
        if final:
            self._raw[u] = res
        return res

    def _release(self, t: int, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        last = (self._final_n if self._final_n is not None else self._n) - 1
        lo, hi = max(0, t - self.radius), min(last, t + self.radius)
        box = np.mean([self._raw_box(u)[0] for u in range(lo, hi + 1)], axis=0)
        found = self._raw_box(t)[1]
        for u in [k for k in self._raw if k < t - self.radius]:
            del self._raw[u]
        crop = crop_square(frame, box, self.cfg.face_size, self.margin, self.cfg.gray)
        return crop, box.astype(np.float32), found

    # -- streaming ----------------------------------------------------------------------------
    def push(self, frame: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        if self._final_n is not None:
            raise RuntimeError("push() after finish()")
        if self._frame_shape is None:
            self._frame_shape = frame.shape[:2]
        idx = self._n
        self._n += 1
        self._last = frame
        if idx % self.every == 0:
            self._detect(idx, frame)
        self._buf.append((idx, frame))
        out = []
        while self._buf and self._buf[0][0] <= self._n - 1 - self.lookahead:
            t, f = self._buf.popleft()
            out.append(self._release(t, f))
        return out

    def finish(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        if self._final_n is not None:
            return []
        last = self._n - 1
        if last >= 0 and last not in self._keyframes and self._last is not None:
            self._detect(last, self._last)
        self._final_n = self._n
        out = [self._release(t, f) for t, f in self._buf]
        self._buf.clear()
        self._last = None
        return out


def track_faces(frames: Iterable[np.ndarray], detector: Detector, config: FaceConfig) -> FaceTrack:
    """Run a FaceTracker over all frames and stack the results."""
    tracker = FaceTracker(detector, config)
    crops: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    found: list[bool] = []

    def take(items):
        for c, b, f in items:
            crops.append(c)
            boxes.append(b)
            found.append(f)

    for frame in frames:
        take(tracker.push(frame))
    take(tracker.finish())
    C = 1 if config.gray else 3
    S = int(config.face_size)
    return FaceTrack(
        faces=np.stack(crops) if crops else np.zeros((0, S, S, C), np.uint8),
        boxes=np.stack(boxes).astype(np.float32) if boxes else np.zeros((0, 4), np.float32),
        found=np.array(found, dtype=bool),
        detect_calls=tracker.detect_calls,
        detections=tracker.detections,
    )
