"""FER2013 decoded once into one uint8 array, cached as .npz, with each image's official usage.

FER2013 has three usages: Training (28,709 images), PublicTest (3,589) and PrivateTest (3,589). The
challenge chose models on PublicTest and reported PrivateTest, and `mrpn pretrain visual` does the
same. The usage is read from the image's file name in the folder layout (`PrivateTest_123.jpg`,
`PublicTest_456.jpg`, `Training_789.jpg`) or from the Usage column of the Kaggle CSV; test images
whose name says neither are `TEST` (usable for a plain test accuracy, not for the selection).

The cache file is keyed by a checksum of the file list (relative names and sizes, or the CSV's size
and mtime), so adding, removing or replacing an image rebuilds it; it is written atomically and is
never put inside the data folder.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrpn.config import ConfigError

TRAIN, PUBLIC, PRIVATE, TEST = 0, 1, 2, 3
USAGE_NAMES = {TRAIN: "train", PUBLIC: "public_test", PRIVATE: "private_test", TEST: "test"}
_PREFIXES = (("privatetest", PRIVATE), ("publictest", PUBLIC), ("training", TRAIN))
CACHE_VERSION = 1


@dataclass
class FerArrays:
    images: np.ndarray      # uint8 [N, 48, 48]
    labels: np.ndarray      # int64 [N], index into `classes`
    usage: np.ndarray       # uint8 [N]: TRAIN, PUBLIC, PRIVATE or TEST
    classes: list[str]

    def subset(self, *usages: int) -> tuple[np.ndarray, np.ndarray]:
        keep = np.isin(self.usage, usages)
        return self.images[keep], self.labels[keep]


def usage_of(name: str, split: str) -> int:
    """Usage code of one image from its file name (folder layout) or its CSV Usage value."""
    base = os.path.basename(name).lower()
    for prefix, code in _PREFIXES:
        if base.startswith(prefix):
            return code
    return TRAIN if split == "train" else TEST


def _clip_usage(clip) -> int:
    split = clip.extra.get("split", "train")
    if "usage" in clip.extra:  # the Kaggle CSV says it explicitly
        return usage_of(clip.extra["usage"], split)
    return usage_of(clip.video, split)


def file_list_key(clips, root: Path) -> str:
    """sha1 over (relative name, size) of every image; a CSV is keyed by its size and mtime."""
    h = hashlib.sha1(f"fer-cache-{CACHE_VERSION}".encode())
    seen_csv = set()
    for c in clips:
        path = c.video.split("#", 1)[0]
        if "#" in c.video:  # CSV row: hash the file once
            if path not in seen_csv:
                st = os.stat(path)
                h.update(f"{os.path.basename(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
                seen_csv.add(path)
            continue
        h.update(f"{os.path.relpath(path, root)}|{os.path.getsize(path)}|{c.label}\n".encode())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(os.environ.get("MRPN_CACHE") or Path.home() / ".cache" / "mrpn")


def load_fer(root: str | os.PathLike, cache_dir: str | os.PathLike | None = None, log=None) -> FerArrays:
    """All FER2013 images (train and test) with labels and usage, from the cache when it is current."""
    from mrpn.data.datasets import CLASSES, DatasetError, load_fer2013_arrays, scan_fer2013
    from mrpn.data.datasets.fer2013 import _fer_folder_arrays, _fer_layout
    from mrpn.io import atomic_write_with

    try:
        layout, data_path = _fer_layout(root)
        scan = scan_fer2013(root, "all")
    except DatasetError as e:
        raise ConfigError(str(e)) from None
    root_p = data_path if layout == "folders" else data_path.parent
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if _inside(cache.resolve(), root_p.resolve()):
        raise ConfigError(f"cache folder {cache} is inside the FER2013 data folder {root_p}; choose another")
    clips = scan.clips
    path = cache / f"fer2013_{file_list_key(clips, root_p)}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                out = FerArrays(z["images"], z["labels"].astype(np.int64), z["usage"], list(CLASSES["fer2013"]))
            if out.images.ndim == 3 and len(out.images) == len(out.labels) == len(out.usage):
                return out
        except Exception as e:  # a damaged cache file is rebuilt, never trusted
            if log:
                log(f"rebuilding damaged FER2013 cache {path}: {type(e).__name__}")
    if layout == "csv":
        images, labels = load_fer2013_arrays(root, "all")  # the CSV rows in file order = clip order
        usage = np.array([_clip_usage(c) for c in clips], np.uint8)
    else:
        problems: list = []
        images, labels = _fer_folder_arrays(clips, problems)
        bad = {p.path for p in problems}
        usage = np.array([_clip_usage(c) for c in clips if c.video not in bad], np.uint8)
        for p in problems[:5]:
            if log:
                log(f"skipping {p.path}: {p.reason}")
    if len(usage) != len(images):
        raise ConfigError(f"{root}: {len(images)} images decoded but {len(usage)} usages found")

    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, images=images, labels=labels, usage=usage)

    atomic_write_with(path, write)
    return FerArrays(images, labels.astype(np.int64), usage, list(CLASSES["fer2013"]))


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False
