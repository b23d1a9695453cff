"""What every corpus adapter shares: class lists, the `Scan` result, `DatasetError` and file helpers."""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator


from mrpn.data.clip import Clip, Problem


log = logging.getLogger(__name__)

CLASSES: dict[str, list[str]] = {
    "ravdess": ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"],
    "cremad": ["neutral", "happy", "sad", "angry", "fearful", "disgust"],
    "fer2013": ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"],
}

# The Kaggle fer2013.csv numbers emotions 0=Angry 1=Disgust 2=Fear 3=Happy 4=Sad 5=Surprise 6=Neutral;
# the image-folder layout (and CLASSES["fer2013"]) is alphabetical. CSV code -> class index:
FER_CSV_TO_INDEX = [0, 1, 2, 3, 5, 6, 4]

AUDIO_EXTS = {".wav", ".flac"}
VIDEO_EXTS = {".mp4"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}


class DatasetError(ValueError):
    """The dataset cannot be scanned at all (missing root, nothing usable, bad option)."""


@dataclass
class Scan:
    dataset: str
    classes: list[str]
    clips: list[Clip]
    problems: list[Problem] = field(default_factory=list)

    @property
    def actors(self) -> list[str]:
        return sorted({c.actor for c in self.clips})

    def summary(self) -> str:
        return (f"{self.dataset}: {len(self.clips)} clips, {len(self.actors)} actors, "
                f"{len(self.classes)} classes, {len(self.problems)} problems")




# ----------------------------------------------------------------------------- shared helpers

def require_dir(root: str | os.PathLike, what: str) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"{what} root does not exist: {path}")
    if not path.is_dir():
        raise DatasetError(f"{what} root is not a folder: {path}")
    return path.absolute()


def walk_files(root: Path, exts: set[str]) -> Iterator[Path]:
    """Files under `root` with one of `exts` (any case), sorted, skipping hidden files and folders.

    Symbolic links are followed, each real folder visited once (no loops)."""
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in exts:
                yield Path(dirpath, f)


def size_problem(path: Path | str) -> Problem | None:
    """A Problem when the file is empty or cannot be stat'ed, else None."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return Problem(str(path), f"cannot read file: {e.strerror or e}")
    return Problem(str(path), "zero-byte file") if size == 0 else None


def safe_id(text: str) -> str:
    """`text` made safe as a file name: letters, digits, '.', '_' and '-' only, no leading dot."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:120]
    return s or "clip"


def subdirs(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            return sorted(Path(e.path) for e in it if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def find_dir(root: Path, name: str) -> Path | None:
    """`root` itself, a child or a grandchild folder called `name` (case-insensitive)."""
    if root.name.lower() == name.lower():
        return root
    children = subdirs(root)
    for d in children + [g for c in children for g in subdirs(c)]:
        if d.name.lower() == name.lower():
            return d
    return None


def sorted_clips(clips: Iterable[Clip]) -> list[Clip]:
    return sorted(clips, key=lambda c: c.id)
