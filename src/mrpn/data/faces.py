"""Face detection, tracking and cropping for the cache.

Detectors share one interface: `make_detector(name).detect(image) -> [(x, y, w, h, score), ...]`
in the pixel coordinates of the image given (a uint8 grey [H, W] or BGR [H, W, 3] array):

- ``opencv``   OpenCV's frontal-face Haar cascade (``cv2.data.haarcascades``); light, the default.
- ``dlib-hog`` dlib's HOG + linear SVM frontal face detector (optional extra ``mrpn[dlib]``).
- ``dlib-cnn`` dlib's CNN (MMOD) detector, the one the paper used (optional extra ``mrpn[dlib]``;
               the weights come from ``face_recognition_models``). Accurate, slow on a CPU.
- ``none``     the input is already a face crop: the whole frame is the face.

`FaceTracker` makes detection cheap enough for whole data sets: it detects on a downscaled copy
(`detect_width`) of every `detect_every`-th frame (and of the last frame), keeps the largest face,
searches a window `roi` x the last face first (rescaled so the face is small: cheap), falling back
to the whole frame when the face is not there, interpolates the box linearly between detections that are at most `max_gap` frames apart,
holds the last box across longer misses (those frames are marked not found), smooths the boxes
with a centred moving average of `smooth` frames, and crops a square with `margin` around each
box, resized to `face_size` (uint8 RGB, or grey with `gray=True`). Frames stream through it with a
bounded look-ahead of `smooth // 2 + max_gap + 1` frames, so memory does not grow with clip length.
"""
from __future__ import annotations

import bisect
from collections import deque
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

Box = tuple[float, float, float, float, float]     # x, y, w, h, score


class DetectorUnavailable(RuntimeError):
    """A detector whose optional dependency is not installed (the message says what to install)."""


class Detector(Protocol):
    name: str
    wants_color: bool

    def detect(self, image: np.ndarray) -> list[Box]: ...


def _to_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class OpenCVDetector:
    """Haar cascade. `min_face` is the smallest face as a fraction of the image's shorter side."""

    name = "opencv"
    wants_color = False
    roi_face_px = 40           # face size to rescale a tracking window to (the cascade is 24 px)

    def __init__(self, scale_factor: float = 1.15, min_neighbors: int = 5, min_face: float = 0.2,
                 cascade: str = "haarcascade_frontalface_default.xml"):
        import cv2

        path = cv2.data.haarcascades + cascade
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise DetectorUnavailable(f"OpenCV Haar cascade not found or unreadable: {path}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face = min_face

    def detect(self, image: np.ndarray) -> list[Box]:
        gray = _to_gray(image)
        m = max(24, int(round(self.min_face * min(gray.shape[:2]))))
        if min(gray.shape[:2]) < m:
            m = 24
        if min(gray.shape[:2]) < 24:
            return []
        rects, neighbours = self._cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(m, m))
        return [(float(x), float(y), float(w), float(h), float(n))
                for (x, y, w, h), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(neighbours).reshape(-1))]


_DLIB_HINT = ("the dlib face detectors need the optional extra: pip install 'mrpn[dlib]' "
              "(installs dlib-bin and face-recognition-models)")


def _import_dlib():
    try:
        import dlib  # type: ignore[import-not-found]
    except ImportError:
        raise DetectorUnavailable(_DLIB_HINT) from None
    return dlib


class DlibHogDetector:
    """dlib's HOG detector. It finds faces of about 80 px and larger; `upsample=1` halves that."""

    name = "dlib-hog"
    wants_color = False
    roi_face_px = 100          # HOG finds faces from about 80 px

    def __init__(self, upsample: int = 0):
        dlib = _import_dlib()
        self._det = dlib.get_frontal_face_detector()
        self.upsample = upsample

    def detect(self, image: np.ndarray) -> list[Box]:
        gray = np.ascontiguousarray(_to_gray(image))
        rects, scores, _ = self._det.run(gray, self.upsample, 0.0)
        return [(float(r.left()), float(r.top()), float(r.width()), float(r.height()), float(s))
                for r, s in zip(rects, scores)]


def cnn_model_path() -> str:
    """mmod_human_face_detector.dat from face_recognition_models.

    Its `cnn_face_detector_model_location()` needs pkg_resources, which recent setuptools no
    longer ship; the file is then found beside the package instead."""
    try:
        import face_recognition_models  # type: ignore[import-not-found]

        return face_recognition_models.cnn_face_detector_model_location()
    except ImportError:
        import importlib.util
        from pathlib import Path

        try:
            spec = importlib.util.find_spec("face_recognition_models")
        except (ImportError, ValueError):
            spec = None
        for folder in (spec.submodule_search_locations or []) if spec else []:
            p = Path(folder) / "models" / "mmod_human_face_detector.dat"
            if p.is_file():
                return str(p)
    raise DetectorUnavailable(_DLIB_HINT)


class DlibCnnDetector:
    """dlib's CNN (MMOD) detector with the weights from face_recognition_models."""

    name = "dlib-cnn"
    wants_color = True
    roi_face_px = 100

    def __init__(self, upsample: int = 0, model_path: str | None = None):
        dlib = _import_dlib()
        if model_path is None:
            model_path = cnn_model_path()
        self._det = dlib.cnn_face_detection_model_v1(model_path)
        self.upsample = upsample

    def detect(self, image: np.ndarray) -> list[Box]:
        import cv2

        if image.ndim == 3 and image.shape[2] == 3:
            img = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        else:
            img = np.ascontiguousarray(_to_gray(image))
        out = []
        for d in self._det(img, self.upsample):
            r = d.rect
            out.append((float(r.left()), float(r.top()), float(r.width()), float(r.height()), float(d.confidence)))
        return out


class WholeFrameDetector:
    """For inputs that are already face crops (FER2013): the whole frame is the face."""

    name = "none"
    wants_color = False

    def detect(self, image: np.ndarray) -> list[Box]:
        h, w = image.shape[:2]
        return [(0.0, 0.0, float(w), float(h), 1.0)]


DETECTORS: dict[str, Callable[..., Detector]] = {
    "opencv": OpenCVDetector,
    "dlib-hog": DlibHogDetector,
    "dlib-cnn": DlibCnnDetector,
    "none": WholeFrameDetector,
}


def register_detector(name: str, factory: Callable[..., Detector]) -> None:
    """Add a detector backend (e.g. in tests). Worker processes see it only if it is registered
    at import time of a module they import; use workers=1 for ad-hoc detectors."""
    DETECTORS[name] = factory


def make_detector(name: str = "opencv", **options) -> Detector:
    """A detector by name: "opencv" (default), "dlib-hog", "dlib-cnn" or "none".

    Raises ValueError for an unknown name and DetectorUnavailable when an optional dependency is
    missing (the message tells the user to `pip install 'mrpn[dlib]'`)."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}") from None
    return factory(**options)


def largest(boxes: Sequence[Box]) -> Box | None:
    return max(boxes, key=lambda b: (b[2] * b[3], b[4])) if boxes else None


# ---------------------------------------------------------------------------------------------
# cropping

def square_region(box: Sequence[float], margin: float) -> tuple[int, int, int]:
    """(x0, y0, side) of the square centred on `box` with `margin` x its larger side added on
    every side (margin 0.25 -> a square 1.5 x the box)."""
    x, y, w, h = (float(v) for v in box[:4])
    side = max(w, h) * (1.0 + 2.0 * margin)
    s = max(1, int(round(side)))
    x0 = int(round(x + w / 2.0 - s / 2.0))
    y0 = int(round(y + h / 2.0 - s / 2.0))
    return x0, y0, s


def _resize_down(img: np.ndarray, size: int) -> np.ndarray:
    """Square `img` -> [size, size] with area averaging, fast: an integer-factor INTER_AREA step
    (OpenCV's fast path) to between size and 2*size, then INTER_LINEAR for the rest."""
    import cv2

    s = img.shape[0]
    f = s // size
    if f >= 2:
        s2 = f * (s // f)
        img = cv2.resize(img[:s2, :s2], (s2 // f, s2 // f), interpolation=cv2.INTER_AREA)
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)


def _take(plane: np.ndarray, x0: int, y0: int, s: int, fill: int) -> np.ndarray:
    """plane[y0:y0+s, x0:x0+s]; where the square leaves the plane, the edge pixels are repeated.

    Not black bars: a face near the side of a portrait video (or a large face in a narrow frame)
    then looks like the same face in a wide frame, where the square has real pixels around it; bars
    are a pattern the model never saw in training and changed its answer. `fill` is used only when
    the square misses the plane entirely."""
    H, W = plane.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + s <= W and y0 + s <= H:
        return plane[y0:y0 + s, x0:x0 + s]
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + s, W), min(y0 + s, H)
    if ix1 <= ix0 or iy1 <= iy0:
        return np.full((s, s) + plane.shape[2:], fill, np.uint8)
    pad = ((iy0 - y0, y0 + s - iy1), (ix0 - x0, x0 + s - ix1)) + ((0, 0),) * (plane.ndim - 2)
    return np.pad(plane[iy0:iy1, ix0:ix1], pad, mode="edge")


def _crop_yuv(frame, box: Sequence[float], size: int, margin: float, gray: bool) -> np.ndarray:
    import cv2

    x0, y0, s = square_region(box, margin)
    x0, y0, s = x0 - (x0 % 2), y0 - (y0 % 2), max(2, s + (s % 2))      # chroma-aligned
    y = _resize_down(_take(frame.y, x0, y0, s, 16), size)
    if gray:
        g = np.clip((y.astype(np.float32) - 16.0) * (255.0 / 219.0) + 0.5, 0, 255).astype(np.uint8)
        return g[:, :, None]
    even = size + (size % 2)
    if even != size:
        y = cv2.resize(y, (even, even), interpolation=cv2.INTER_LINEAR)
    u = _resize_down(_take(frame.u, x0 // 2, y0 // 2, s // 2, 128), even // 2)
    v = _resize_down(_take(frame.v, x0 // 2, y0 // 2, s // 2, 128), even // 2)
    i420 = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(even * 3 // 2, even)
    rgb = cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)
    if even != size:
        rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    return rgb


def crop_square(frame, box: Sequence[float], size: int, margin: float, gray: bool = False) -> np.ndarray:
    """uint8 [size, size, C] (C = 1 grey, 3 RGB) of the margin square around `box`; parts of the
    square outside the frame repeat the frame's edge pixels (`_take`). `frame` is uint8 RGB [H, W, 3], grey [H, W] or a
    `mrpn.data.media.YUVFrame`."""
    import cv2

    if not isinstance(frame, np.ndarray):
        return _crop_yuv(frame, box, size, margin, gray)
    if frame.ndim == 2:
        frame = frame[:, :, None]
    x0, y0, s = square_region(box, margin)
    region = _take(frame, x0, y0, s, 0)
    if s > size:
        out = _resize_down(region, size)
    else:
        out = cv2.resize(region, (size, size), interpolation=cv2.INTER_LINEAR)
    if out.ndim == 2:
        out = out[:, :, None]
    if gray and out.shape[2] == 3:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[:, :, None]
    elif not gray and out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out)


def detection_image(frame, width: int, color: bool = False) -> tuple[np.ndarray, float]:
    """(grey uint8 image, or BGR when `color`, scale) of `frame` downscaled to `width` (0 or a
    narrower frame: full size). Box coordinates found in it divide by `scale`."""
    import cv2

    H, W = frame.shape[:2]
    scale = width / W if 0 < width < W else 1.0
    size = (width, max(1, int(round(H * scale)))) if scale != 1.0 else None
    if not isinstance(frame, np.ndarray):          # YUVFrame
        if not color:
            img = frame.y
            return (cv2.resize(img, size, interpolation=cv2.INTER_AREA) if size else np.ascontiguousarray(img)), scale
        frame = frame.to_rgb()
    img = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if size else frame
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR if color else cv2.COLOR_RGB2GRAY)
    elif img.ndim == 3:
        img = img[:, :, 0]
    return img, scale


def roi_image(frame, box: Sequence[float], expand: float, face_px: int, color: bool = False
              ) -> tuple[np.ndarray, float, float, float]:
    """The square window `expand` x the box around `box`, rescaled so the face in it is about
    `face_px` wide -> (grey or BGR image, x0, y0, factor); a box (x, y, w, h) found in the image
    is (x / factor + x0, y / factor + y0, w / factor, h / factor) in the frame."""
    import cv2

    x, y, w, h = (float(v) for v in box[:4])
    side = max(w, h)
    s = max(2, int(round(side * expand)))
    x0 = int(round(x + w / 2 - s / 2))
    y0 = int(round(y + h / 2 - s / 2))
    out = max(24, int(round(face_px * expand)))
    if not isinstance(frame, np.ndarray):
        if not color:
            plane = _take(frame.y, x0, y0, s, 16)
            return _resize_any(plane, out), x0, y0, out / s
        frame = frame.to_rgb()
    if frame.ndim == 2:
        frame = frame[:, :, None]
    region = _resize_any(_take(frame, x0, y0, s, 0), out)
    if region.ndim == 3 and region.shape[2] == 3:
        region = cv2.cvtColor(region, cv2.COLOR_RGB2BGR if color else cv2.COLOR_RGB2GRAY)
    elif region.ndim == 3:
        region = region[:, :, 0]
    return region, x0, y0, out / s


def _resize_any(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if img.shape[0] > size:
        return _resize_down(img, size)
    if img.shape[0] == size:
        return np.ascontiguousarray(img)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)


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
            n = img.shape[0]
            # a face cut by the window's edge is not trusted: search the whole frame instead
            if (best is not None and best[2] > 0 and best[3] > 0 and best[0] > 1 and best[1] > 1
                    and best[0] + best[2] < n - 1 and best[1] + best[3] < n - 1):
                self.roi_hits += 1
                self._add(idx, np.array([best[0] / f + x0, best[1] / f + y0, best[2] / f, best[3] / f]))
                return
        width = 0 if name == "none" else int(self.cfg.detect_width or 0)
        img, scale = detection_image(frame, width, color=color)
        best = largest(self.detector.detect(img))
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


__all__ = [
    "Box", "Detector", "DetectorUnavailable", "OpenCVDetector", "DlibHogDetector", "DlibCnnDetector",
    "WholeFrameDetector", "DETECTORS", "register_detector", "make_detector", "largest",
    "square_region", "crop_square", "detection_image", "roi_image", "FaceConfig", "FaceTrack", "FaceTracker", "track_faces",
]
