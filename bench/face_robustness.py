"""How the face head of a trained model reads faces degraded as real cameras degrade them (issue 9).

    python3 bench/face_robustness.py --out docs/results/face_robustness/shipped_private.json --png FIGURE.png
    python3 bench/face_robustness.py --model OTHER --baseline EARLIER.json --out ...   # side by side
    python3 bench/face_robustness.py --replot RESULT.json --png FIGURE.png    # draw a saved result again
    python3 bench/face_robustness.py --table A.json B.json ...                # saved results side by side

With --classifier, the network is the FER2013 pretraining's own (F_v and its linear head), so that
visual extractors can be compared before any fusion model is trained on them.

The face branch was trained on FER2013's 48 x 48 crops (and the paired benchmark's faces from them). Faces
cut from real video are blurred by focus and motion, small when the person is far away, compressed by
webcams and streams, dark and noisy in dim rooms, tilted, off-centre in the detector's box and partly
covered. This takes FER2013 test images (PrivateTest by default: the shipped model made no choice on
them; at most --per-class of each class, seeded), degrades each in every way below and reads it through
the evaluation path of `mrpn predict`'s network (`Predictor.predict_arrays`, the image as the face, no
audio: the answer is the face head's; bench/fer_serving.py shows that path and `mrpn predict` on the file
agree on every image). Per condition: accuracy, UAR, the share of each answer (a model that answers one
class for everything shows there) and how often the label stays the clean one. Every degradation is
seeded by the image and the condition's place in CONDITIONS (tests/test_face_robustness.py checks what
each one does). Nothing here is chosen: the conditions were fixed in CONDITIONS before any result.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import robustness  # noqa: E402  (bench/robustness.py: what the robustness benchmarks share)
from fer_serving import FER_TO_MODEL, USAGE_PREFIX, pick  # noqa: E402

CONDITIONS = ["clean", "blur 1 px", "blur 2 px", "motion blur 7 px", "low resolution 24 px",
              "low resolution 16 px", "jpeg quality 20", "jpeg quality 10", "sensor noise 8 %", "low light",
              "overexposed", "low contrast", "rotated 20°", "shifted 15 %", "tight box 80 %",
              "lower third covered", "mirrored"]


def _u8(f: np.ndarray) -> np.ndarray:
    """Back to 8-bit grey levels, rounded (truncation would darken by half a level on average)."""
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def _affine(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    import cv2

    h, w = x.shape
    return cv2.warpAffine(x, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def degrade(x: np.ndarray, cond: str, rng) -> np.ndarray:
    """The gray uint8 face x [H, W] under `cond`, one of CONDITIONS (uint8, the same size)."""
    import cv2

    h, w = x.shape
    f = x.astype(np.float32)
    if cond == "clean":
        return x
    if cond.startswith("blur"):          # defocus: a Gaussian of that sigma
        return cv2.GaussianBlur(x, (0, 0), float(cond.split()[1]), borderType=cv2.BORDER_REPLICATE)
    if cond.startswith("motion blur"):   # a head or camera moving during the exposure: a line in a random direction
        n = int(cond.split()[2])
        k = np.zeros((n, n), np.float32)
        k[n // 2] = 1.0 / n
        k = cv2.warpAffine(k, cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), float(rng.uniform(0, 180)), 1.0), (n, n))
        return cv2.filter2D(x, -1, k / k.sum(), borderType=cv2.BORDER_REPLICATE)
    if cond.startswith("low resolution"):   # a face that far away is this many pixels wide, scaled up again
        s = int(cond.split()[2])
        small = cv2.resize(x, (s, s * h // w), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if cond.startswith("jpeg"):
        ok, buf = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, int(cond.split()[2])])
        return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    if cond == "sensor noise 8 %":
        return _u8(f + rng.normal(0, 0.08 * 255, x.shape))
    if cond == "low light":              # a quarter of the light, then the sensor's noise on what is left
        return _u8(0.25 * f + rng.normal(0, 3.0, x.shape))
    if cond == "overexposed":
        return _u8(1.8 * f)
    if cond == "low contrast":           # haze, a flat light: half the contrast about the mean
        return _u8(0.5 * (f - f.mean()) + f.mean())
    if cond == "rotated 20°":            # a tilted head, either way
        return _affine(x, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 20.0 * rng.choice([-1, 1]), 1.0))
    if cond == "shifted 15 %":           # the detector's box off-centre by 15 % of its side, in a random direction
        a = rng.uniform(0, 2 * np.pi)
        return _affine(x, np.float32([[1, 0, 0.15 * w * np.cos(a)], [0, 1, 0.15 * h * np.sin(a)]]))
    if cond == "tight box 80 %":         # a box 80 % as wide: the centre of the face scaled up
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, 1 / 0.8)
        return _affine(x, m)
    if cond == "lower third covered":    # a hand, a microphone, a mask: mouth and chin at the image mean
        y = x.copy()
        y[h - h // 3:] = int(round(f.mean()))
        return y
    if cond == "mirrored":
        return np.ascontiguousarray(x[:, ::-1])
    raise ValueError(f"unknown condition {cond!r}")


def plot(res: dict, path: str, base: dict | None = None) -> None:
    title = (f"Face head of {res['model']} on degraded FER2013 {res['usage']} test faces "
             f"({res['images']} images, {len(res['classes'])} classes)")
    robustness.plot(res, path, title, "images", base)


class FerClassifier:
    """The FER2013 pretraining's own network (F_v + its linear head, a run's classifier.safetensors): the
    extractor alone, before any fusion model. Answers in the model's class names, without flip averaging."""

    def __init__(self, path: str):
        import torch
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        from mrpn.data.datasets.common import CLASSES
        from mrpn.training.fer import Classifier, FerRecipe, build_extractor

        try:
            with safe_open(path, "pt") as f:
                md, keys = f.metadata() or {}, list(f.keys())
            if md.get("task") != "fer2013" or not any(k.startswith("head.") for k in keys):
                raise ValueError("no FER2013 head in it")
            r = FerRecipe(extractor=md["extractor"], width=int(md["width"]), stem=md.get("stem", "imagenet"))
            self.net = Classifier(build_extractor(r), len(CLASSES["fer2013"]))
            self.net.load_state_dict(load_file(path))
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as e:   # missing, damaged, other shapes
            sys.exit(f"{path}: not a classifier.safetensors of `mrpn pretrain visual` ({str(e).splitlines()[0][:120]})")
        # the network's outputs are in the FER2013 cache's class order (training/fer.py, data/fer_cache.py)
        self.classes = [FER_TO_MODEL[c] for c in CLASSES["fer2013"]]
        self.torch = torch

    def labels(self, images: list[np.ndarray]) -> list[str]:
        from mrpn.training.fer import predict_logits

        logits, _ = predict_logits(self.net, self.torch.from_numpy(np.stack(images)))
        return [self.classes[i] for i in logits.argmax(1).tolist()]


def run(args, conds: list[str]) -> dict:
    """Predict every picked image under every condition of `conds`; the results record."""
    import cv2
    import torch

    torch.set_num_threads(1)
    from mrpn.inference.model_io import default_model_path
    from mrpn.inference.predictor import Predictor
    from mrpn.io import sha256_file

    if args.classifier:   # the network first: a wrong file is refused before the images are read
        p = FerClassifier(args.classifier)
        read = p.labels
    else:
        p = Predictor(args.model)
        read = lambda ys: [p.predict_arrays(y[None, :, :, None], None, 1.0, None).label for y in ys]   # noqa: E731
    items = pick(Path(args.data), args.usage, args.per_class, np.random.default_rng(args.seed))
    labels: dict[str, list[str]] = {c: [] for c in conds}
    for i, (f, _) in enumerate(items):
        img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if img is None:
            sys.exit(f"{f}: not an image OpenCV can read")
        # seeded by the condition's place in CONDITIONS: a subset draws the same
        ys = [degrade(img, c, np.random.default_rng([args.seed, i, CONDITIONS.index(c)])) for c in conds]
        for c, label in zip(conds, read(ys)):
            labels[c].append(label)
        if (i + 1) % 100 == 0:
            print(f"{i + 1}/{len(items)} images", file=sys.stderr, flush=True)
    true = [t for _, t in items]
    clean = labels.get("clean")
    model_file = args.classifier or args.model or str(default_model_path())
    res = {"model": args.name or args.classifier or args.model or "mrpn-default (shipped)",
           "model_file_sha256": sha256_file(model_file),
           "usage": args.usage, "per_class": args.per_class, "images": len(items), "classes": p.classes,
           "seed": args.seed,
           "conditions": {c: robustness.summary(labels[c], true, clean, p.classes) for c in conds},
           "command": "python3 bench/face_robustness.py " + " ".join(sys.argv[1:])}
    return robustness.with_mean(res)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("MRPN_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--usage", choices=sorted(USAGE_PREFIX), default="private", help="FER2013 test usage")
    ap.add_argument("--per-class", type=int, default=100, help="at most this many images per class (0 = all)")
    ap.add_argument("--classifier", help="instead of a model, the FER2013 pretraining's own network (a run's "
                                         "classifier.safetensors): the visual extractor alone")
    robustness.add_arguments(ap, CONDITIONS, "images")
    args = ap.parse_args()
    if args.classifier and args.model:
        sys.exit("give --model or --classifier, not both")
    if robustness.saved_only(args, plot):
        return
    conds = robustness.chosen(args, CONDITIONS)
    same = {"usage": args.usage, "per_class": args.per_class, "seed": args.seed}
    base = robustness.load_baseline(args.baseline, same, "bench/face_robustness.py") if args.baseline else None
    robustness.finish(args, run(args, conds), base, plot)


if __name__ == "__main__":
    main()
