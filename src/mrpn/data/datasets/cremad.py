"""CREMA-D adapter.

CREMA-D (`scan_cremad`)
    `VideoFlash/AAAA_SSS_EEE_LL.flv` (or `VideoMP4/….mp4` as a fallback) and
    `AudioWAV/AAAA_SSS_EEE_LL.wav`: actor 1001-1091, sentence code, emotion
    (NEU, HAP, SAD, ANG, FEA, DIS), level (LO, MD, HI, XX). Genders come from
    `VideoDemographics.csv` (ActorID, Age, Sex, Race, Ethnicity) when it is present.
    The folders may sit directly under the root or one level deeper.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path


from mrpn.data.clip import Clip, Problem
from mrpn.data.datasets.common import (CLASSES, DatasetError, Scan, require_dir, walk_files, size_problem, find_dir, sorted_clips)


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
    for path in walk_files(folder, exts):
        try:
            parse_cremad_name(path.name)
        except ValueError as e:
            problems.append(Problem(str(path), str(e)))
            continue
        p = size_problem(path)
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
    root = require_dir(root, "CREMA-D")
    audio_dir = find_dir(root, "AudioWAV")
    video_dirs = [find_dir(root, "VideoFlash"), find_dir(root, "VideoMP4")]
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
    return Scan("cremad", list(CLASSES["cremad"]), sorted_clips(clips), problems)


def _nothing_usable_cremad(modality: str, root: Path, problems: list[Problem]) -> str:
    need = "AudioWAV/*.wav files" if modality == "audio" else (
        "VideoFlash/*.flv files (for audio-only CREMA-D use modality='audio')")
    msg = f"no usable CREMA-D {need} found under {root}"
    if problems:
        msg += f"; {len(problems)} files were skipped, e.g. " + "; ".join(map(str, problems[:3]))
    return msg
