"""Dataset adapters: find the labelled files of a corpus on disk and describe them as `Clip` records.

Scanning reads file names, folder names, sizes and small CSV files only; it never decodes media,
so it takes well under a second for RAVDESS and a few seconds for the FER2013 CSV. Files that
cannot be used are returned as `Problem` entries (the scan goes on); a missing root, an unknown
option or a root without a single usable file raises `DatasetError`.

Layouts understood
------------------
RAVDESS (`scan_ravdess`, classes = emotion code - 1)
    Any tree of files named `MM-VV-EE-II-SS-RR-AA.ext`: modality (01 audio-video, 02 video-only,
    03 audio-only), vocal channel (01 speech, 02 song), emotion, intensity, statement, repetition,
    actor (odd = male). The original download (`Actor_NN/` folders, flat or nested at any depth)
    and the project's shared copy (`audio16k/Actor_NN/03-….flac`, `audio48k/Actor_NN/03-….wav`,
    `video/Actor_NN/0[12]-….mp4`) both work. A take is identified by the six trailing fields,
    which are also the clip id (`01-03-01-01-01-01`).
      modality="audio": one clip per take from a `03-…` wav or flac; when a take exists in several
        files (e.g. a 16 kHz flac and a 48 kHz wav) the first by sorted path is kept.
      modality="av": one clip per take from `01-…mp4` (audio from the container, `audio=None`), or
        else from `02-…mp4` (silent) with the take's `03-…` file as `audio` (wav preferred over
        flac, then sorted path). A `02-…` without any `03-…` is a Problem.
    Song takes (vocal channel 02) are left out unless `include_song=True`.

CREMA-D (`scan_cremad`)
    `VideoFlash/AAAA_SSS_EEE_LL.flv` (or `VideoMP4/….mp4` as a fallback) and
    `AudioWAV/AAAA_SSS_EEE_LL.wav`: actor 1001-1091, sentence code, emotion
    (NEU, HAP, SAD, ANG, FEA, DIS), level (LO, MD, HI, XX). Genders come from
    `VideoDemographics.csv` (ActorID, Age, Sex, Race, Ethnicity) when it is present.
    The folders may sit directly under the root or one level deeper.

FER2013 (`scan_fer2013`, `load_fer2013_arrays`)
    Either the image-folder layout `train|test/<class>/*.jpg` (48x48 grayscale) or the Kaggle
    CSV `fer2013.csv` with columns `emotion,pixels,Usage` (Usage Training = train,
    PublicTest + PrivateTest = test). A CSV row is referenced as `Clip.video = "<csv>#<row>"`
    (row = 0-based data row index).

Custom manifest (`scan_manifest`)
    A CSV with header `video,audio,label,speaker` (optional columns: `id`, `gender`); either media
    column may be empty in a row, not both. Relative paths are resolved against the CSV's folder.
    The paths are only ever read; nothing is written based on them.
"""
from __future__ import annotations

import csv
import logging
import os
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

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


def scan(name: str, root: str | os.PathLike, **options: Any) -> Scan:
    """Scan dataset `name` ("ravdess", "cremad", "fer2013", "custom") under `root`."""
    key = name.lower().replace("-", "").replace("_", "")
    adapters = {"ravdess": scan_ravdess, "cremad": scan_cremad, "fer2013": scan_fer2013,
                "fer": scan_fer2013, "custom": scan_manifest, "manifest": scan_manifest}
    if key not in adapters:
        raise DatasetError(f"unknown dataset {name!r}; expected one of ravdess, cremad, fer2013, custom")
    return adapters[key](root, **options)


# ----------------------------------------------------------------------------- shared helpers

def _require_dir(root: str | os.PathLike, what: str) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"{what} root does not exist: {path}")
    if not path.is_dir():
        raise DatasetError(f"{what} root is not a folder: {path}")
    return path.absolute()


def _walk_files(root: Path, exts: set[str]) -> Iterator[Path]:
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


def _size_problem(path: Path | str) -> Problem | None:
    """A Problem when the file is empty or cannot be stat'ed, else None."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return Problem(str(path), f"cannot read file: {e.strerror or e}")
    return Problem(str(path), "zero-byte file") if size == 0 else None


def _safe_id(text: str) -> str:
    """`text` made safe as a file name: letters, digits, '.', '_' and '-' only, no leading dot."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:120]
    return s or "clip"


def _subdirs(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            return sorted(Path(e.path) for e in it if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def _find_dir(root: Path, name: str) -> Path | None:
    """`root` itself, a child or a grandchild folder called `name` (case-insensitive)."""
    if root.name.lower() == name.lower():
        return root
    children = _subdirs(root)
    for d in children + [g for c in children for g in _subdirs(c)]:
        if d.name.lower() == name.lower():
            return d
    return None


def _sorted_clips(clips: Iterable[Clip]) -> list[Clip]:
    return sorted(clips, key=lambda c: c.id)


# ----------------------------------------------------------------------------- RAVDESS

_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_RAVDESS_FIELDS = (("modality", 1, 3), ("vocal_channel", 1, 2), ("emotion", 1, 8), ("intensity", 1, 2),
                   ("statement", 1, 2), ("repetition", 1, 2), ("actor", 1, 24))
_RAVDESS_EXPECTED = "Actor_NN/MM-VV-EE-II-SS-RR-AA.mp4|wav|flac"


def parse_ravdess_name(filename: str) -> dict[str, int]:
    """Fields of a RAVDESS file name; ValueError with the reason when it does not follow the scheme."""
    stem = Path(filename).stem
    m = _RAVDESS_NAME.match(stem)
    if not m:
        raise ValueError("file name does not follow RAVDESS MM-VV-EE-II-SS-RR-AA")
    fields = {}
    for (name, lo, hi), text in zip(_RAVDESS_FIELDS, m.groups()):
        value = int(text)
        if not lo <= value <= hi:
            raise ValueError(f"RAVDESS {name} code {text} is outside {lo:02d}-{hi:02d}")
        fields[name] = value
    if fields["emotion"] == 1 and fields["intensity"] != 1:
        raise ValueError("RAVDESS neutral (emotion 01) has only intensity 01")
    return fields


@dataclass(frozen=True)
class _Take:
    path: Path
    fields: dict

    @property
    def take_id(self) -> str:
        return self.path.stem[3:]          # the six trailing fields

    @property
    def modality(self) -> int:
        return self.fields["modality"]


def _ravdess_take(path: Path) -> _Take | Problem:
    try:
        fields = parse_ravdess_name(path.name)
    except ValueError as e:
        return Problem(str(path), str(e))
    ext = path.suffix.lower()
    if fields["modality"] == 3 and ext not in AUDIO_EXTS:
        return Problem(str(path), f"RAVDESS modality 03 is audio-only but the file is {ext}")
    if fields["modality"] in (1, 2) and ext not in VIDEO_EXTS:
        return Problem(str(path), f"RAVDESS modality {fields['modality']:02d} is video but the file is {ext}")
    return _size_problem(path) or _Take(path, fields)


def _ravdess_takes(root: Path, include_song: bool) -> tuple[list[_Take], list[Problem], int]:
    takes, problems, n_files = [], [], 0
    for path in _walk_files(root, AUDIO_EXTS | VIDEO_EXTS):
        n_files += 1
        t = _ravdess_take(path)
        if isinstance(t, Problem):
            problems.append(t)
        elif include_song or t.fields["vocal_channel"] == 1:
            takes.append(t)
    return takes, problems, n_files


def _ravdess_clip(t: _Take, video: Path | None, audio: Path | None) -> Clip:
    f = t.fields
    return Clip(
        id=t.take_id, dataset="ravdess", label=f["emotion"] - 1,
        label_name=CLASSES["ravdess"][f["emotion"] - 1], actor=f"{f['actor']:02d}",
        gender="male" if f["actor"] % 2 else "female",
        video=str(video) if video else None, audio=str(audio) if audio else None,
        extra={k: f[k] for k in ("intensity", "statement", "repetition", "vocal_channel", "modality")},
    )


def _by_take(takes: Iterable[_Take], modality: int) -> dict[str, list[_Take]]:
    out: dict[str, list[_Take]] = defaultdict(list)
    for t in takes:
        if t.modality == modality:
            out[t.take_id].append(t)
    return out


def _ravdess_audio_clips(takes: list[_Take]) -> list[Clip]:
    out = []
    for group in _by_take(takes, 3).values():
        t = min(group, key=lambda t: str(t.path))
        out.append(_ravdess_clip(t, None, t.path))
    return out


def _ravdess_av_clips(takes: list[_Take], problems: list[Problem]) -> list[Clip]:
    v1, v2, a3 = _by_take(takes, 1), _by_take(takes, 2), _by_take(takes, 3)
    out = []
    for tid in sorted(set(v1) | set(v2)):
        if tid in v1:
            t = min(v1[tid], key=lambda t: str(t.path))
            out.append(_ravdess_clip(t, t.path, None))
        elif tid in a3:
            t = min(v2[tid], key=lambda t: str(t.path))
            a = min(a3[tid], key=lambda a: (a.path.suffix.lower() != ".wav", str(a.path)))
            out.append(_ravdess_clip(t, t.path, a.path))
        else:
            for t in v2[tid]:
                problems.append(Problem(str(t.path), f"no matching audio 03-{tid}.wav|flac file "
                                                     f"for video-only {t.path.name}"))
    return out


def scan_ravdess(root: str | os.PathLike, modality: str = "av", include_song: bool = False) -> Scan:
    """RAVDESS speech (and song when `include_song`) under `root`; see the module docstring."""
    if modality not in ("av", "audio"):
        raise DatasetError(f"RAVDESS modality must be 'av' or 'audio', not {modality!r}")
    root = _require_dir(root, "RAVDESS")
    takes, problems, n_files = _ravdess_takes(root, include_song)
    if n_files == 0:
        raise DatasetError(f"no RAVDESS files found under {root}: expected {_RAVDESS_EXPECTED}")
    clips = _ravdess_audio_clips(takes) if modality == "audio" else _ravdess_av_clips(takes, problems)
    if not clips:
        raise DatasetError(_nothing_usable("RAVDESS", modality, root, problems))
    return Scan("ravdess", list(CLASSES["ravdess"]), _sorted_clips(clips), problems)


def _nothing_usable(what: str, modality: str, root: Path, problems: list[Problem]) -> str:
    need = ("audio files (03-….wav|flac)" if modality == "audio"
            else "videos (01-….mp4, or 02-….mp4 with a matching 03-… audio file)")
    msg = f"no usable {what} {need} found under {root}"
    if problems:
        msg += f"; {len(problems)} files were skipped, e.g. " + "; ".join(map(str, problems[:3]))
    return msg


# ----------------------------------------------------------------------------- CREMA-D

_CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_CREMAD_EMOTIONS = {"NEU": 0, "HAP": 1, "SAD": 2, "ANG": 3, "FEA": 4, "DIS": 5}
_CREMAD_LEVELS = {"LO", "MD", "HI", "XX"}
_CREMAD_EXPECTED = "AudioWAV/AAAA_SSS_EEE_LL.wav and VideoFlash/AAAA_SSS_EEE_LL.flv"


def parse_cremad_name(filename: str) -> dict[str, str]:
    """Fields of a CREMA-D file name (actor, sentence, emotion, level); ValueError when malformed."""
    m = _CREMAD_NAME.match(Path(filename).stem)
    if not m:
        raise ValueError("file name does not follow CREMA-D AAAA_SSS_EEE_LL (e.g. 1001_DFA_ANG_XX)")
    actor, sentence, emotion, level = m.groups()
    if emotion not in _CREMAD_EMOTIONS:
        raise ValueError(f"unknown CREMA-D emotion code {emotion} (expected {', '.join(_CREMAD_EMOTIONS)})")
    if level not in _CREMAD_LEVELS:
        raise ValueError(f"unknown CREMA-D level code {level} (expected {', '.join(sorted(_CREMAD_LEVELS))})")
    return {"actor": actor, "sentence": sentence, "emotion": emotion, "level": level}


def _cremad_files(folder: Path | None, exts: set[str], problems: list[Problem]) -> dict[str, Path]:
    """stem -> file for well-named, non-empty files in `folder` (bad ones go to `problems`)."""
    out: dict[str, Path] = {}
    if folder is None:
        return out
    for path in _walk_files(folder, exts):
        try:
            parse_cremad_name(path.name)
        except ValueError as e:
            problems.append(Problem(str(path), str(e)))
            continue
        p = _size_problem(path)
        if p:
            problems.append(p)
        elif path.stem not in out:
            out[path.stem] = path
    return out


def read_cremad_genders(csv_path: str | os.PathLike) -> dict[str, str]:
    """actor id -> "male"/"female" from CREMA-D's VideoDemographics.csv."""
    out = {}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            sex = row.get("sex", "").lower()
            if row.get("actorid") and sex in ("male", "female"):
                out[row["actorid"]] = sex
    return out


def _cremad_clip(path_v: Path | None, path_a: Path | None, genders: dict[str, str]) -> Clip:
    stem = (path_v or path_a).stem
    f = parse_cremad_name(stem)
    label = _CREMAD_EMOTIONS[f["emotion"]]
    return Clip(id=stem, dataset="cremad", label=label, label_name=CLASSES["cremad"][label],
                actor=f["actor"], gender=genders.get(f["actor"]),
                video=str(path_v) if path_v else None, audio=str(path_a) if path_a else None,
                extra={"sentence": f["sentence"], "level": f["level"]})


def _cremad_genders(root: Path) -> dict[str, str]:
    for folder in (root, root.parent):
        csv_path = folder / "VideoDemographics.csv"
        if csv_path.is_file():
            return read_cremad_genders(csv_path)
    return {}


def scan_cremad(root: str | os.PathLike, modality: str = "av") -> Scan:
    """CREMA-D under `root`: audio-video clips (flv + wav) or, with modality="audio", AudioWAV only."""
    if modality not in ("av", "audio"):
        raise DatasetError(f"CREMA-D modality must be 'av' or 'audio', not {modality!r}")
    root = _require_dir(root, "CREMA-D")
    audio_dir = _find_dir(root, "AudioWAV")
    video_dirs = [_find_dir(root, "VideoFlash"), _find_dir(root, "VideoMP4")]
    if audio_dir is None and not any(video_dirs):
        raise DatasetError(f"no CREMA-D files found under {root}: expected {_CREMAD_EXPECTED}")
    problems: list[Problem] = []
    audio = _cremad_files(audio_dir, {".wav"}, problems)
    genders = _cremad_genders(audio_dir.parent if audio_dir else root)
    if modality == "audio":
        clips = [_cremad_clip(None, a, genders) for a in audio.values()]
    else:
        video = _cremad_files(video_dirs[1], {".mp4"}, problems)
        video.update(_cremad_files(video_dirs[0], {".flv"}, problems))   # flv preferred
        clips = [_cremad_clip(v, audio.get(stem), genders) for stem, v in video.items()]
        problems += [Problem(str(a), f"no matching VideoFlash/{stem}.flv for this audio file")
                     for stem, a in audio.items() if stem not in video]
    if not clips:
        raise DatasetError(_nothing_usable_cremad(modality, root, problems))
    return Scan("cremad", list(CLASSES["cremad"]), _sorted_clips(clips), problems)


def _nothing_usable_cremad(modality: str, root: Path, problems: list[Problem]) -> str:
    need = "AudioWAV/*.wav files" if modality == "audio" else (
        "VideoFlash/*.flv files (for audio-only CREMA-D use modality='audio')")
    msg = f"no usable CREMA-D {need} found under {root}"
    if problems:
        msg += f"; {len(problems)} files were skipped, e.g. " + "; ".join(map(str, problems[:3]))
    return msg


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
            cid = _safe_id(f"{split}-{CLASSES['fer2013'][label]}-{os.path.splitext(e.name)[0]}")
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
    return Scan("fer2013", list(CLASSES["fer2013"]), _sorted_clips(clips), problems)


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


# ----------------------------------------------------------------------------- custom manifest

_MANIFEST_EXPECTED = "header columns video,audio,label,speaker (optional: id, gender)"
_GENDERS = {"male": "male", "m": "male", "female": "female", "f": "female"}


def _manifest_rows(csv_path: Path) -> list[tuple[int, dict[str, str]]]:
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = {(h or "").strip().lower() for h in (reader.fieldnames or [])}
        if "label" not in fields or not fields & {"video", "audio"} or not fields & {"speaker", "actor"}:
            raise DatasetError(f"manifest {csv_path} must have {_MANIFEST_EXPECTED}; found {sorted(fields)}")
        return [(n + 2, {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None})
                for n, row in enumerate(reader)]


def _resolve(value: str, base: Path) -> Path | None:
    if not value:
        return None
    p = Path(value).expanduser()
    return Path(os.path.normpath(p if p.is_absolute() else base / p))


def _manifest_row(csv_path: Path, line: int, row: dict[str, str]) -> dict | Problem:
    """The checked fields of one manifest row, or a Problem."""
    where = f"{csv_path}:{line}"
    video, audio = _resolve(row.get("video", ""), csv_path.parent), _resolve(row.get("audio", ""), csv_path.parent)
    speaker = row.get("speaker") or row.get("actor") or ""
    if not (video or audio):
        return Problem(where, "row has neither a video nor an audio path")
    if not row.get("label") or not speaker:
        return Problem(where, "row has an empty label or speaker")
    for p in (video, audio):
        if p is not None and not p.is_file():
            return Problem(str(p), f"listed in {where} but does not exist")
        empty = _size_problem(p) if p is not None else None
        if empty:
            return empty
    return {"video": video, "audio": audio, "label": row["label"], "speaker": speaker,
            "id": row.get("id", ""), "gender": _GENDERS.get(row.get("gender", "").lower()), "line": line}


def _manifest_classes(labels: Iterable[str], classes: list[str] | None) -> list[str]:
    if classes is not None:
        return list(classes)
    uniq = set(labels)
    return sorted(uniq, key=int) if all(s.lstrip("-").isdigit() for s in uniq) else sorted(uniq)


def _manifest_ids(rows: list[dict]) -> list[str]:
    """Explicit ids, else the media file stem; stems used twice get a short hash of the path."""
    import hashlib

    base = [_safe_id(r["id"] or (r["video"] or r["audio"]).stem) for r in rows]
    count: dict[str, int] = defaultdict(int)
    for b in base:
        count[b] += 1
    return [b if count[b] == 1 else
            f"{b}-{hashlib.sha1(str(r['video'] or r['audio']).encode() + str(r['line']).encode()).hexdigest()[:8]}"
            for b, r in zip(base, rows)]


def scan_manifest(csv_path: str | os.PathLike, classes: list[str] | None = None, dataset: str = "custom") -> Scan:
    """A custom corpus listed in a CSV manifest (see the module docstring)."""
    path = Path(csv_path).expanduser()
    if not path.is_file():
        raise DatasetError(f"manifest CSV does not exist: {path}")
    path = path.absolute()
    rows, problems = [], []
    for line, raw in _manifest_rows(path):
        r = _manifest_row(path, line, raw)
        (problems if isinstance(r, Problem) else rows).append(r)
    names = _manifest_classes((r["label"] for r in rows), classes)
    problems += [Problem(f"{path}:{r['line']}", f"label {r['label']!r} is not one of the classes {names}")
                 for r in rows if r["label"] not in names]
    rows = [r for r in rows if r["label"] in names]
    if not rows:
        raise DatasetError(f"no usable rows in manifest {path}" +
                           (f"; e.g. {problems[0]}" if problems else f": expected {_MANIFEST_EXPECTED}"))
    clips = [Clip(id=cid, dataset=dataset, label=names.index(r["label"]), label_name=r["label"],
                  actor=r["speaker"], gender=r["gender"],
                  video=str(r["video"]) if r["video"] else None, audio=str(r["audio"]) if r["audio"] else None,
                  extra={"manifest_line": r["line"]})
             for cid, r in zip(_manifest_ids(rows), rows)]
    return Scan(dataset, names, _sorted_clips(clips), problems)


__all__ = [
    "CLASSES", "DatasetError", "Scan", "scan", "scan_ravdess", "scan_cremad", "scan_fer2013", "scan_manifest",
    "load_fer2013_arrays", "parse_ravdess_name", "parse_cremad_name", "read_cremad_genders",
]
