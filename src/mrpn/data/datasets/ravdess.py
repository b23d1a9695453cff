"""RAVDESS adapter.

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
"""
from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable


from mrpn.data.clip import Clip, Problem
from mrpn.data.datasets.common import (AUDIO_EXTS, VIDEO_EXTS, CLASSES, DatasetError, Scan, require_dir, walk_files, size_problem, sorted_clips)


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
    return size_problem(path) or _Take(path, fields)


def _ravdess_takes(root: Path, include_song: bool) -> tuple[list[_Take], list[Problem], int]:
    takes, problems, n_files = [], [], 0
    for path in walk_files(root, AUDIO_EXTS | VIDEO_EXTS):
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
    root = require_dir(root, "RAVDESS")
    takes, problems, n_files = _ravdess_takes(root, include_song)
    if n_files == 0:
        raise DatasetError(f"no RAVDESS files found under {root}: expected {_RAVDESS_EXPECTED}")
    clips = _ravdess_audio_clips(takes) if modality == "audio" else _ravdess_av_clips(takes, problems)
    if not clips:
        raise DatasetError(_nothing_usable("RAVDESS", modality, root, problems))
    return Scan("ravdess", list(CLASSES["ravdess"]), sorted_clips(clips), problems)


def _nothing_usable(what: str, modality: str, root: Path, problems: list[Problem]) -> str:
    need = ("audio files (03-….wav|flac)" if modality == "audio"
            else "videos (01-….mp4, or 02-….mp4 with a matching 03-… audio file)")
    msg = f"no usable {what} {need} found under {root}"
    if problems:
        msg += f"; {len(problems)} files were skipped, e.g. " + "; ".join(map(str, problems[:3]))
    return msg
