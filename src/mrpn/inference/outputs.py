"""Where `mrpn predict` writes, decided before anything is computed, so that a result never
replaces an input, two inputs never share an output, and a user's file is replaced only when it is
recognisably an earlier mrpn result (or with --overwrite).

An mrpn result carries a marker: the JSON has `"generator": "mrpn predict"`, the PNG a tEXt chunk
`Software: mrpn predict`. Files are compared with os.path.samefile (inode and device), not by name,
so `./clip.mp4`, a symlink to it or a hard link are all recognised as the input.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mrpn.io import png_text

GENERATOR = "mrpn predict"


class OutputError(Exception):
    """An output path that would replace an input, collide with another output or a user's file."""


def is_mrpn_json(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 22)   # results are small; a bigger file is not ours
        obj = json.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    return isinstance(obj, dict) and obj.get("generator") == GENERATOR


def is_mrpn_png(path: Path) -> bool:
    return png_text(path).get("Software") == GENERATOR


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:          # one of them does not exist (yet): cannot be the same file
        return False


def output_names(videos: list[str], suffix: str) -> list[str]:
    """One file name per input: the input's stem, plus a short hash of its absolute path when two
    inputs share a stem (a/clip.mp4 and b/clip.mp4, or clip.mp4 and clip.avi). Case-insensitive,
    as on macOS and Windows file systems. The same inputs always give the same names."""
    stems = [Path(v).stem for v in videos]
    count: dict[str, int] = {}
    for s in stems:
        count[s.lower()] = count.get(s.lower(), 0) + 1
    names = []
    for v, s in zip(videos, stems):
        if count[s.lower()] > 1:
            h = hashlib.sha1(os.path.abspath(v).encode("utf-8", "surrogateescape")).hexdigest()[:8]
            s = f"{s}-{h}"
        names.append(s + suffix)
    return names


def plan_outputs(base: str | None, videos: list[str], suffix: str, flag: str) -> list[Path | None]:
    """Target per video for `--json`/`--plot BASE`: a file for one video (unless BASE ends with "/"
    or is a folder), else BASE/<name>. Raises OutputError for a file where a folder is needed."""
    if not base:
        return [None] * len(videos)
    b = Path(base)
    folder = len(videos) > 1 or base.endswith(("/", os.sep)) or b.is_dir()
    if not folder:
        return [b]
    if b.exists() and not b.is_dir():
        raise OutputError(f"{flag} {base}: is a file, but {len(videos)} videos need a folder "
                          f"(give a folder, e.g. {flag} {b.with_suffix('')}/)")
    return [b / n for n in output_names(videos, suffix)]


def _parent_problem(t: Path) -> str | None:
    for d in t.parents:
        if d.exists():
            return None if d.is_dir() else f"{d} is a file, not a folder"
    return None


def check_outputs(targets: list[tuple[Path, str]], inputs: list[str], overwrite: bool) -> None:
    """Refuse (OutputError) a target that is an input, is given twice, is a folder or lies under a
    file, or is an existing file that is not an earlier mrpn result of its kind ("json"/"png")
    (unless overwrite)."""
    seen: list[Path] = []
    existing_inputs = [Path(i) for i in inputs if i and os.path.exists(i)]
    for t, kind in targets:
        for i in existing_inputs:
            if _same(t, i) or os.path.abspath(t) == os.path.abspath(i):
                raise OutputError(f"{t}: is an input ({i}); refusing to write a result over it")
        for s in seen:
            if _same(t, s) or os.path.normcase(os.path.abspath(t)) == os.path.normcase(os.path.abspath(s)):
                raise OutputError(f"{t}: two results would be written to the same file")
        seen.append(t)
        if t.is_dir():
            raise OutputError(f"{t}: is a folder; give a file name or end the path with '/'")
        if (why := _parent_problem(t)):
            raise OutputError(f"{t}: cannot be created: {why}")
        if t.exists() and not overwrite:
            ours = is_mrpn_png(t) if kind == "png" else is_mrpn_json(t)
            if not ours:
                raise OutputError(f"{t}: exists and is not an earlier mrpn result; "
                                  "choose another path or pass --overwrite")


__all__ = [
    "GENERATOR",
    "OutputError",
    "check_outputs",
    "is_mrpn_json",
    "is_mrpn_png",
    "output_names",
    "plan_outputs",
    "png_text",
]
