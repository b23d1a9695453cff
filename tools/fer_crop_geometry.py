"""Where the face sits in a FER2013 image vs in a crop `mrpn prepare`/`predict` cut from real video.

The same detector measures both: OpenCV's Haar cascade (the default of prepare/predict) is run on
FER2013 training images and on the 48x48 grey crops that the serving path (`track_faces`, the
function predict and prepare use) cuts from the RAVDESS actor-1 videos with a given margin. Each
picture is upscaled 4x and padded with mid-grey (a tight crop cuts the face at the edge, where the
cascade would not fire), and the found box's side is divided by the picture's side. Equal
fractions = the same kind of picture. The videos are only looked at, never used for a choice.

    python3 tools/fer_crop_geometry.py ../shared/data/fer2013 ../shared/data/ravdess/video \
        --out docs/results/fer2013/crop_geometry.json [--png /tmp/crops.png]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import cv2
import numpy as np

from mrpn.data.faces import FaceConfig, OpenCVDetector, largest, track_faces
from mrpn.io import atomic_write_json

UP, PAD = 4, 48


def box_fraction(det: OpenCVDetector, img: np.ndarray) -> tuple[float, float, float] | None:
    """(box side / image side, centre x, centre y as fractions) of the largest face, or None."""
    n = img.shape[0]
    big = cv2.resize(img, (n * UP, n * UP), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=128)
    b = largest(det.detect(big))
    if b is None:
        return None
    x, y, w, h = (v / (n * UP) for v in (b[0] - PAD, b[1] - PAD, b[2], b[3]))
    return w, x + w / 2, y + h / 2


def summary(rows: list, total: int) -> dict:
    a = np.array(rows) if rows else np.zeros((0, 3))
    q = np.percentile(a[:, 0], [10, 25, 50, 75, 90]).round(3).tolist() if len(a) else []
    return {"found": len(a), "of": total, "box_over_side_p10_p25_p50_p75_p90": q,
            "centre_xy_median": np.median(a[:, 1:], 0).round(3).tolist() if len(a) else []}


def video_frames(path: str):
    cap = cv2.VideoCapture(path)
    while True:
        ok, fr = cap.read()
        if not ok:
            return
        yield cv2.cvtColor(fr, cv2.COLOR_BGR2RGB)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fer_root")
    p.add_argument("video_dir")
    p.add_argument("--out", required=True)
    p.add_argument("--n-fer", type=int, default=800)
    p.add_argument("--margins", default="0.25,0.0")
    p.add_argument("--every", type=int, default=5, help="measure every k-th video crop")
    p.add_argument("--png", default="", help="a side-by-side picture (not for the repository: it shows data)")
    a = p.parse_args(argv)
    det = OpenCVDetector(min_face=0.1)
    files = sorted(glob.glob(os.path.join(a.fer_root, "train", "*", "*.jpg")))
    if not files:
        print(f"no FER2013 train images under {a.fer_root}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    files = [files[i] for i in rng.choice(len(files), min(a.n_fer, len(files)), replace=False)]
    fer_imgs = [cv2.imread(f, cv2.IMREAD_GRAYSCALE) for f in files]
    fer = [r for r in (box_fraction(det, im) for im in fer_imgs if im is not None) if r is not None]
    out = {"detector": "opencv haar (frontalface_default), as mrpn prepare/predict",
           "fer2013_train": summary(fer, len(files))}
    videos = sorted(glob.glob(os.path.join(a.video_dir, "**", "*.mp4"), recursive=True))
    crops_by_margin = {}
    for m in (float(v) for v in a.margins.split(",")):
        rows, crops, n = [], [], 0
        for v in videos:
            track = track_faces(video_frames(v), OpenCVDetector(), FaceConfig(face_size=48, gray=True, margin=m))
            for c in track.faces[::a.every]:
                n += 1
                crops.append(c[:, :, 0])
                r = box_fraction(det, c[:, :, 0])
                if r is not None:
                    rows.append(r)
        out[f"video_crops_margin_{m:g}"] = {"videos": len(videos), **summary(rows, n)}
        crops_by_margin[m] = crops
    fer_med = out["fer2013_train"]["box_over_side_p10_p25_p50_p75_p90"][2]
    out["margin_matching_fer"] = round((1 / fer_med - 1) / 2, 3)
    atomic_write_json(a.out, out)
    print(json.dumps(out, indent=1))
    if a.png:
        rows = [np.concatenate(fer_imgs[:12], 1)]
        for crops in crops_by_margin.values():
            idx = np.linspace(0, len(crops) - 1, 12).astype(int)
            rows.append(np.concatenate([crops[i] for i in idx], 1))
        cv2.imwrite(a.png, cv2.resize(np.concatenate(rows, 0), None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
