"""Serving vs training on single FER2013 test images with the shipped model (issue 8).

    PYTHONPATH=src python3 bench/fer_serving.py --per-class 50 --out docs/results/fer_serving.json

Three ways to read the same 48x48 image: `mrpn predict` (Predictor.predict_file), the same with
face detection forced on (the behaviour before the fix: OpenCV Haar on a 48x48 crop), and the
training path of the paired benchmark, where the whole FER2013 image is the face (predict_arrays).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

FER_TO_MODEL = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy", "neutral": "neutral",
                "sad": "sad", "surprise": "surprised"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the results here (JSON)")
    args = ap.parse_args()
    import cv2
    import torch

    torch.set_num_threads(1)
    from mrpn.inference.predictor import Predictor

    served = Predictor()
    forced = Predictor()
    forced.is_face_crop = lambda path: False  # detect faces in every image (before the fix)
    rng = np.random.default_rng(args.seed)
    hits: dict[str, list[bool]] = {"mrpn predict": [], "mrpn predict, face detection forced (before the fix)": [],
                                   "training path (whole image as the face)": []}
    no_face = 0
    for fer, label in FER_TO_MODEL.items():
        files = sorted((Path(args.data) / "fer2013" / "test" / fer).glob("*.jpg"))
        if not files:
            sys.exit(f"no FER2013 test images under {args.data}/fer2013/test/{fer}")
        for f in rng.choice(files, min(args.per_class, len(files)), replace=False):
            hits["mrpn predict"].append(served.predict_file(str(f)).label == label)
            try:
                ok = forced.predict_file(str(f)).label == label
            except ValueError:  # no face found and no audio: nothing to predict from
                ok, no_face = False, no_face + 1
            hits["mrpn predict, face detection forced (before the fix)"].append(ok)
            img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            pred = served.predict_arrays(img[None, :, :, None], None, 1.0, None)
            hits["training path (whole image as the face)"].append(pred.label == label)
    res = {"images": len(hits["mrpn predict"]), "per_class": args.per_class, "seed": args.seed,
           "accuracy": {k: round(float(np.mean(v)), 4) for k, v in hits.items()},
           "no_face_found_with_detection": no_face}
    print(json.dumps(res, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
