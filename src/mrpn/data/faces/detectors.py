"""Face detectors behind one interface: `make_detector(name).detect(image) -> [(x, y, w, h, score)]`."""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

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
