"""Own data: a CSV manifest.

Custom manifest (`scan_manifest`)
    A CSV with header `video,audio,label,speaker` (optional columns: `id`, `gender`); either media
    column may be empty in a row, not both. Relative paths are resolved against the CSV's folder.
    The paths are only ever read; nothing is written based on them.
"""
from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable


from mrpn.data.clip import Clip, Problem
from mrpn.data.datasets.common import (DatasetError, Scan, size_problem, safe_id, sorted_clips)


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
        empty = size_problem(p) if p is not None else None
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

    base = [safe_id(r["id"] or (r["video"] or r["audio"]).stem) for r in rows]
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
    return Scan(dataset, names, sorted_clips(clips), problems)
