"""Serving vs evaluation on single FER2013 test images with a trained model (issues 8 and 9).

    python3 bench/fer_serving.py --usage private --out docs/results/fer_serving_private.json   # all PrivateTest
    python3 bench/fer_serving.py --per-class 50 --forced --out docs/results/fer_serving.json     # issue 8's check
    python3 bench/fer_serving.py --usage private --held-s 3 --out ...   # also each image held for 3 s of video

Two ways to read the same 48x48 image with the same network (the shipped model unless --model):
`mrpn predict` (Predictor.predict_file: the file decoded and cropped as any picture a user gives) and the
evaluation path of the paired benchmark, where the decoded image is the face (predict_arrays); with
--held-s also that path with the image held still for that many seconds of 25 fps video (the frames a
real video of one person gives the face branch: the same face, many times). All of them see
the face alone (no audio), so the answer is the face head's. Per class: recall, and how often the class is
predicted (a model that answers one class for everything shows there). With --forced also the old
behaviour of issue 8 (OpenCV Haar on the 48x48 crop).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

FER_TO_MODEL = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy", "neutral": "neutral",
                "sad": "sad", "surprise": "surprised"}
USAGE_PREFIX = {"private": "PrivateTest_", "public": "PublicTest_", "all": ""}


def pick(root: Path, usage: str, per_class: int, rng) -> list[tuple[Path, str]]:
    """(file, model label) of the test images of `usage`, at most per_class of each class (0 = all)."""
    out = []
    for fer, label in FER_TO_MODEL.items():
        files = sorted(f for f in (root / "fer2013" / "test" / fer).glob("*.jpg") if f.name.startswith(USAGE_PREFIX[usage]))
        if not files:
            sys.exit(f"no FER2013 {usage} test images under {root}/fer2013/test/{fer}")
        if per_class and per_class < len(files):
            files = list(rng.choice(files, per_class, replace=False))
        out += [(f, label) for f in files]
    return out


def summary(pred: list[str], true: list[str], classes: list[str]) -> dict:
    p, t = np.array(pred), np.array(true)
    return {"accuracy": round(float(np.mean(p == t)), 4),
            "recall": {c: round(float(np.mean(p[t == c] == c)), 4) for c in classes if (t == c).any()},
            "predicted_share": {c: round(float(np.mean(p == c)), 4) for c in classes}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("MRPN_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--usage", choices=sorted(USAGE_PREFIX), default="all", help="FER2013 test usage (file-name prefix)")
    ap.add_argument("--per-class", type=int, default=0, help="at most this many images per class (0 = all)")
    ap.add_argument("--model", default=None, help="model file (default: the shipped mrpn-default)")
    ap.add_argument("--forced", action="store_true", help="also force face detection on every image (issue 8)")
    ap.add_argument("--held-s", type=float, default=0.0, help="also each image held for this many seconds of video")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the results here (JSON)")
    args = ap.parse_args()
    import cv2
    import torch

    torch.set_num_threads(1)
    from mrpn.data.paired import HELD_FACE_FPS
    from mrpn.inference.predictor import Predictor

    served = Predictor(args.model)
    forced = Predictor(args.model) if args.forced else None
    if forced is not None:
        forced.is_face_crop = lambda path: False  # detect faces in every image (before issue 8's fix)
    items = pick(Path(args.data), args.usage, args.per_class, np.random.default_rng(args.seed))
    paths = {"mrpn predict": [], "evaluation path (whole image as the face)": []}
    held = f"evaluation path, the image held for {args.held_s:g} s of {HELD_FACE_FPS:g} fps video"
    if args.held_s:
        paths[held] = []
    if forced is not None:
        paths["mrpn predict, face detection forced (before the fix)"] = []
    no_face = 0
    for i, (f, label) in enumerate(items):
        paths["mrpn predict"].append(served.predict_file(str(f)).label)
        img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        paths["evaluation path (whole image as the face)"].append(served.predict_arrays(img[None, :, :, None], None, 1.0, None).label)
        if args.held_s:
            n = max(1, int(round(args.held_s * HELD_FACE_FPS)))
            frames = np.repeat(img[None, :, :, None], n, 0)   # held as PairedSource lays out a held face
            paths[held].append(served.predict_arrays(frames, None, HELD_FACE_FPS, None).label)
        if forced is not None:
            try:
                paths["mrpn predict, face detection forced (before the fix)"].append(forced.predict_file(str(f)).label)
            except ValueError:  # no face found and no audio: nothing to predict from
                no_face += 1
                paths["mrpn predict, face detection forced (before the fix)"].append("(no face)")
        if (i + 1) % 500 == 0:
            print(f"{i + 1}/{len(items)} images", file=sys.stderr, flush=True)
    true = [label for _, label in items]
    a, b = paths["mrpn predict"], paths["evaluation path (whole image as the face)"]
    res = {"model": args.model or "mrpn-default (shipped)", "usage": args.usage, "images": len(items),
           "per_class": args.per_class, "seed": args.seed,
           "paths": {k: summary(v, true, served.classes) for k, v in paths.items()},
           "same_label_share": round(float(np.mean(np.array(a) == np.array(b))), 4),
           "command": "python3 bench/fer_serving.py " + " ".join(sys.argv[1:])}
    res["accuracy"] = {k: v["accuracy"] for k, v in res["paths"].items()}
    if forced is not None:
        res["no_face_found_with_detection"] = no_face
    print(json.dumps(res, indent=1))
    if args.out:
        from mrpn.io import atomic_write_json

        atomic_write_json(args.out, res)


if __name__ == "__main__":
    main()
