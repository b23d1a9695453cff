"""FER2013 adapter.

FER2013 (`scan_fer2013`, `load_fer2013_arrays`)
    Either the image-folder layout `train|test/<class>/*.jpg` (48x48 grayscale) or the Kaggle
    CSV `fer2013.csv` with columns `emotion,pixels,Usage` (Usage Training = train,
    PublicTest + PrivateTest = test). A CSV row is referenced as `Clip.video = "<csv>#<row>"`
    (row = 0-based data row index).
"""
from __future__ import annotations

import csv
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from mrpn.data.clip import Clip, Problem
from mrpn.data.datasets.common import (IMAGE_EXTS, CLASSES, FER_CSV_TO_INDEX, DatasetError, Scan, safe_id, sorted_clips)

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- FER2013

_FER_SPLITS = {"train": ("train",), "test": ("test",), "all": ("train", "test")}
_FER_USAGE = {"training": "train", "publictest": "test", "privatetest": "test"}
_FER_EXPECTED = "train|test/<class>/*.jpg or fer2013.csv (emotion,pixels,Usage)"
_FER_PIXELS = 48 * 48


def _fer_layout(root: str | os.PathLike) -> tuple[str, Path]:
    """("folders", root) or ("csv", csv_path) for a FER2013 root (a folder or the CSV itself)."""
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"FER2013 root does not exist: {path}")
    path = path.absolute()
    if path.is_file():
        return "csv", path
    if (path / "train").is_dir() or (path / "test").is_dir():
        return "folders", path
    for name in ("fer2013.csv", "icml_face_data.csv"):
        if (path / name).is_file():
            return "csv", path / name
    raise DatasetError(f"no FER2013 files found under {path}: expected {_FER_EXPECTED}")


def _fer_class_dirs(split_dir: Path, problems: list[Problem]) -> list[tuple[int, Path]]:
    out = []
    for d in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if d.name.lower() in CLASSES["fer2013"]:
            out.append((CLASSES["fer2013"].index(d.name.lower()), d))
        else:
            problems.append(Problem(str(d), f"unknown FER2013 class folder {d.name!r} "
                                            f"(expected {', '.join(CLASSES['fer2013'])})"))
    return out


def _fer_folder_clips(root: Path, split: str, problems: list[Problem]) -> list[Clip]:
    split_dir = root / split
    if not split_dir.is_dir():
        raise DatasetError(f"FER2013 split folder does not exist: {split_dir}")
    clips, seen = [], set()
    for label, d in _fer_class_dirs(split_dir, problems):
        with os.scandir(d) as it:
            entries = sorted((e for e in it if e.is_file() and not e.name.startswith(".")), key=lambda e: e.name)
        for e in entries:
            if os.path.splitext(e.name)[1].lower() not in IMAGE_EXTS:
                continue
            cid = safe_id(f"{split}-{CLASSES['fer2013'][label]}-{os.path.splitext(e.name)[0]}")
            if e.stat().st_size == 0:
                problems.append(Problem(e.path, "zero-byte file"))
            elif cid in seen:
                problems.append(Problem(e.path, f"duplicate image name (clip id {cid} already used)"))
            else:
                seen.add(cid)
                clips.append(Clip(id=cid, dataset="fer2013", label=label, label_name=CLASSES["fer2013"][label],
                                  actor="unknown", video=e.path, extra={"split": split}))
    return clips


def _fer_csv_rows(csv_path: Path, splits: tuple[str, ...], problems: list[Problem]
                  ) -> Iterator[tuple[int, int, str, str]]:
    """(row index, label, usage, pixel string) for valid rows of the wanted splits."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = {"emotion", "pixels", "usage"} - set(header)
        if missing:
            raise DatasetError(f"FER2013 CSV {csv_path} lacks columns {sorted(missing)}; expected emotion,pixels,Usage")
        ie, ip, iu = header.index("emotion"), header.index("pixels"), header.index("usage")
        for i, row in enumerate(reader):
            where = f"{csv_path}#{i}"
            try:
                label, usage, pixels = int(row[ie]), row[iu].strip(), row[ip].strip()
            except (ValueError, IndexError):
                problems.append(Problem(where, "malformed row (expected emotion,pixels,Usage)"))
                continue
            split = _FER_USAGE.get(usage.lower())
            if not 0 <= label < len(CLASSES["fer2013"]) or split is None:
                problems.append(Problem(where, f"emotion {label} or Usage {usage!r} out of range"))
            elif pixels.count(" ") != _FER_PIXELS - 1:
                problems.append(Problem(where, f"expected {_FER_PIXELS} pixel values, found {len(pixels.split())}"))
            elif split in splits:
                yield i, FER_CSV_TO_INDEX[label], usage, pixels


def _fer_csv_clip(csv_path: Path, i: int, label: int, usage: str) -> Clip:
    return Clip(id=f"fer2013-{i:05d}", dataset="fer2013", label=label, label_name=CLASSES["fer2013"][label],
                actor="unknown", video=f"{csv_path}#{i}",
                extra={"usage": usage, "split": _FER_USAGE[usage.lower()]})


def _fer_splits(split: str) -> tuple[str, ...]:
    if split not in _FER_SPLITS:
        raise DatasetError(f"FER2013 split must be 'train', 'test' or 'all', not {split!r}")
    return _FER_SPLITS[split]


def scan_fer2013(root: str | os.PathLike, split: str = "train") -> Scan:
    """FER2013 images of `split` ("train", "test", "all") from the image folders or the Kaggle CSV."""
    splits = _fer_splits(split)
    layout, path = _fer_layout(root)
    problems: list[Problem] = []
    if layout == "csv":
        clips = [_fer_csv_clip(path, i, y, u) for i, y, u, _ in _fer_csv_rows(path, splits, problems)]
    else:
        clips = [c for s in splits for c in _fer_folder_clips(path, s, problems)]
    if not clips:
        raise DatasetError(f"no FER2013 {split} images found under {path}: expected {_FER_EXPECTED}")
    return Scan("fer2013", list(CLASSES["fer2013"]), sorted_clips(clips), problems)


def _read_gray48(path: str) -> np.ndarray | None:
    import cv2

    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None
    if img.shape != (48, 48):
        img = cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)
    return img


def _fer_folder_arrays(clips: list[Clip], problems: list[Problem]) -> tuple[np.ndarray, np.ndarray]:
    workers = min(8, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        imgs = list(pool.map(_read_gray48, [c.video for c in clips]))
    keep = [i for i, im in enumerate(imgs) if im is not None]
    problems += [Problem(clips[i].video, "unreadable image") for i, im in enumerate(imgs) if im is None]
    images = np.stack([imgs[i] for i in keep]) if keep else np.zeros((0, 48, 48), np.uint8)
    return images, np.array([clips[i].label for i in keep], dtype=np.int64)


def _fer_csv_arrays(csv_path: Path, splits: tuple[str, ...], problems: list[Problem]
                    ) -> tuple[np.ndarray, np.ndarray]:
    rows = list(_fer_csv_rows(csv_path, splits, problems))
    labels = np.array([r[1] for r in rows], dtype=np.int64)
    if not rows:
        return np.zeros((0, 48, 48), np.uint8), labels
    flat = np.array(" ".join(r[3] for r in rows).split(), dtype=np.int64)
    if flat.min() < 0 or flat.max() > 255:
        raise DatasetError(f"FER2013 CSV {csv_path} has pixel values outside 0-255")
    return flat.astype(np.uint8).reshape(len(rows), 48, 48), labels


def load_fer2013_arrays(root: str | os.PathLike, split: str = "train",
                        problems: list[Problem] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All FER2013 images of `split` as uint8 [N, 48, 48] and labels int64 [N], in clip-id order.

    Reads either layout (images in a thread pool; non-48x48 images are resized). Unreadable images
    are skipped and, when a `problems` list is given, appended to it. Nothing is cached here."""
    problems = [] if problems is None else problems
    n_before = len(problems)
    splits = _fer_splits(split)
    layout, path = _fer_layout(root)
    if layout == "csv":
        images, labels = _fer_csv_arrays(path, splits, problems)
    else:
        found = scan_fer2013(path, split)
        problems += found.problems
        images, labels = _fer_folder_arrays(found.clips, problems)
    if len(problems) > n_before:
        log.warning("FER2013 %s: %d images skipped, e.g. %s", split, len(problems) - n_before, problems[n_before])
    return images, labels
