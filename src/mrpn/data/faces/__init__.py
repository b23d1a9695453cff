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
to the whole frame when the face is not there, interpolates the box linearly between detections that
are at most `max_gap` frames apart, holds the last box across longer misses (those frames are marked
not found), smooths the boxes with a centred moving average of `smooth` frames, and crops a square
with `margin` around each box, resized to `face_size` (uint8 RGB, or grey with `gray=True`). Frames
stream through it with a bounded look-ahead of `smooth // 2 + max_gap + 1` frames, so memory does not
grow with clip length.

Modules: `detectors` (the detectors and their registry), `crop` (square crops from RGB or YUV
frames), `tracker` (`FaceTracker`, `track_faces`).
"""
from mrpn.data.faces.crop import crop_square, detection_image, roi_image, square_region
from mrpn.data.faces.detectors import (DETECTORS, Box, Detector, DetectorUnavailable, DlibCnnDetector, DlibHogDetector,
                                       OpenCVDetector, WholeFrameDetector, cnn_model_path, largest, make_detector,
                                       register_detector)
from mrpn.data.faces.tracker import FaceConfig, FaceTrack, FaceTracker, track_faces

__all__ = ["DETECTORS", "Box", "Detector", "DetectorUnavailable", "DlibCnnDetector", "DlibHogDetector",
           "OpenCVDetector", "WholeFrameDetector", "cnn_model_path", "largest", "make_detector", "register_detector",
           "crop_square", "detection_image", "roi_image", "square_region", "FaceConfig", "FaceTrack", "FaceTracker",
           "track_faces"]
