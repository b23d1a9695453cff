"""The prepared-feature cache: one `.npz` + one `.json` record per clip, a manifest and a summary.

Layout of a cache folder::

    prepare.json            dataset, classes, the prepare config and the scan's problems
    clips/<clip_id>.npz     faces uint8 [T,S,S,C], face_found bool [T], boxes float32 [T,4],
                            fps float32 [], audio float32 [N] (16 kHz, standardised)
    clips/<clip_id>.json    the record (see `make_record`), written after its npz
    manifest.json           every record + config + classes (rebuilt from the records)
    summary.json            counts, per-clip face fraction, failed files, scan problems

Every file is written atomically (`mrpn.io`): a reader or a re-run after a kill sees either no
file or a complete one. A clip is *done* when its json exists and, for an ok clip, the sha256 of
its npz matches the record. The npz files are stored uncompressed (fast to load) and written
byte-for-byte deterministically (fixed zip timestamps), so the same input and config always give
the same checksum.
"""
from __future__ import annotations

import io
import json
import os
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from mrpn.io import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file

CLIPS_DIR = "clips"
MANIFEST = "manifest.json"
SUMMARY = "summary.json"
PREPARE = "prepare.json"
FORMAT_VERSION = 1
ARRAY_KEYS = ("faces", "face_found", "boxes", "fps", "audio")
# Flags that make a clip unusable by default: training skips such clips (with a warning) unless
# asked to include them. Other flags ("short", "no_audio", "silent_audio", "truncated") inform.
SKIP_FLAGS = ("no_face",)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _count(v: Any) -> bool:
    return type(v) is int and v >= 0


def _opt(kind: type) -> Any:
    return lambda v: v is None or (isinstance(v, kind) and not isinstance(v, bool))


# Fields other code computes with: a record (written by prepare, but a file on disk that a disk
# error or a hand edit can change) with another type there is unreadable, not a crash later.
_RECORD_FIELDS: dict[str, Any] = {
    "n_frames": _count, "audio_samples": _count, "npz_bytes": lambda v: v is None or _count(v),
    "sha256": _opt(str), "reason": _opt(str), "face_fraction": _opt((int, float)),
    "fps": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "duration_s": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "skip": lambda v: isinstance(v, bool),
    "flags": lambda v: isinstance(v, list) and all(isinstance(f, str) for f in v),
    "notes": lambda v: isinstance(v, list) and all(isinstance(f, str) for f in v),
}


def record_problem(rec: Any, clip_id: str | None = None) -> str | None:
    """Why `rec` is not a usable clip record (of `clip_id`), or None."""
    if not isinstance(rec, dict) or not isinstance(rec.get("clip"), dict) or not isinstance(rec["clip"].get("id"), str) \
            or (clip_id is not None and rec["clip"]["id"] != clip_id):
        return "not a clip record of this id"
    bad = [k for k, ok in _RECORD_FIELDS.items() if k in rec and not ok(rec[k])]
    if rec.get("status") not in ("ok", "failed") or bad:
        return f"fields of the wrong type or value ({', '.join(bad) or 'status'})"
    return None


def _checked_id(clip_id: str) -> str:
    """A clip id names a file inside clips/: refuse anything that could point elsewhere."""
    if not clip_id or "/" in clip_id or "\\" in clip_id or clip_id.startswith(".") or "\0" in clip_id:
        raise CacheError(f"unsafe clip id {clip_id!r}: ids must be plain file names")
    return clip_id


class CacheError(Exception):
    """A cache (or a clip in it) that is missing, corrupted or inconsistent."""


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An uncompressed .npz (np.load reads it) whose bytes depend only on the arrays."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arrays[key]), allow_pickle=False)
    return buf.getvalue()


def is_usable(record: Mapping[str, Any]) -> bool:
    """ok and not carrying a skip flag (or flagged but explicitly included at prepare time)."""
    if record.get("status") != "ok":
        return False
    return not record.get("skip", any(f in SKIP_FLAGS for f in record.get("flags", [])))


class Cache:
    """Read (and, for `mrpn prepare`, write) a cache folder.

    >>> cache = Cache("cache/ravdess")
    >>> for rec in cache.records():            # ok clips, no-face clips skipped with a warning
    ...     arrays = cache.load(rec["clip"]["id"])
    """

    def __init__(self, root: str | os.PathLike, create: bool = False):
        self.root = Path(root)
        self.clips_dir = self.root / CLIPS_DIR
        if create:
            self.clips_dir.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise CacheError(f"no cache at {self.root} (run `mrpn prepare ... --out {self.root}` first)")
        self._manifest_records: list[dict] | None = None

    # -- paths --------------------------------------------------------------------------------
    def npz_path(self, clip_id: str) -> Path:
        return self.clips_dir / f"{_checked_id(clip_id)}.npz"

    def json_path(self, clip_id: str) -> Path:
        return self.clips_dir / f"{_checked_id(clip_id)}.json"

    # -- metadata -----------------------------------------------------------------------------
    @property
    def info(self) -> dict:
        """prepare.json: dataset, classes, config, problems ({} when absent)."""
        p = self.root / PREPARE
        if not p.exists():
            m = self.root / MANIFEST
            if m.exists():
                d = json.loads(m.read_text())
                return {k: d.get(k) for k in ("dataset", "classes", "prepare_config", "problems")}
            return {}
        return json.loads(p.read_text())

    @property
    def classes(self) -> list[str]:
        return list(self.info.get("classes") or [])

    @property
    def config(self) -> dict:
        return dict(self.info.get("prepare_config") or {})

    def write_info(self, dataset: str, classes: Iterable[str], config: Mapping[str, Any],
                   problems: Iterable[Mapping[str, str]] = ()) -> None:
        atomic_write_json(self.root / PREPARE, {
            "format_version": FORMAT_VERSION, "dataset": dataset, "classes": list(classes),
            "prepare_config": dict(config), "problems": [dict(p) for p in problems],
        })

    # -- per-clip records -----------------------------------------------------------------------
    def ids(self) -> list[str]:
        return sorted(self._scan_ids()[0])

    def _scan_ids(self) -> tuple[list[str], int]:
        """(ids with a record, newest record mtime in ns)."""
        if not self.clips_dir.is_dir():
            return [], 0
        ids, newest = [], 0
        with os.scandir(self.clips_dir) as it:
            for e in it:
                if e.name.endswith(".json") and not e.name.startswith("."):
                    ids.append(e.name[:-5])
                    newest = max(newest, e.stat().st_mtime_ns)
        return ids, newest

    def read_record(self, clip_id: str) -> dict | None:
        return self.record_or_cause(clip_id)[0]

    def record_or_cause(self, clip_id: str) -> tuple[dict | None, str | None]:
        """(record, None), or (None, why it is unreadable); (None, None) when there is none.
        Atomic writes never leave a torn record, but a disk error or an edit by hand can."""
        p = self.json_path(clip_id)
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            return None, f"not valid JSON ({e})"
        except OSError as e:
            return None, f"cannot be read ({e.strerror or e})"
        cause = record_problem(rec, clip_id)
        return (None, cause) if cause else (rec, None)

    def unreadable(self) -> dict[str, str]:
        """{record path: cause} for every record file that exists but cannot be used."""
        out = {}
        for i in self.ids():
            rec, cause = self.record_or_cause(i)
            if cause:
                out[str(self.json_path(i))] = cause
        return out

    def all_records(self) -> list[dict]:
        """Every record (ok and failed), from manifest.json when it is newer than every record,
        else from the per-clip jsons (the source of truth)."""
        ids, newest = self._scan_ids()
        ids.sort()
        m = self.root / MANIFEST
        try:
            if m.stat().st_mtime_ns >= newest:
                recs = json.loads(m.read_text(encoding="utf-8")).get("records", [])
                if sorted(r["clip"]["id"] for r in recs) == ids and not any(map(record_problem, recs)):
                    return recs
        except (OSError, ValueError, KeyError, TypeError, RecursionError):   # ValueError: bad JSON or UTF-8
            pass
        out = []
        for i in ids:
            r = self.read_record(i)
            if r is not None:
                out.append(r)
        return out

    def records(self, status: str | None = "ok", include_flagged: bool = False) -> list[dict]:
        """Records with `status` ("ok", "failed" or None for all). Clips carrying a skip flag
        (no face found) are left out, with a warning naming how many, unless include_flagged."""
        recs = [r for r in self.all_records() if status is None or r.get("status") == status]
        if include_flagged:
            return recs
        keep = [r for r in recs if r.get("status") != "ok" or is_usable(r)]
        skipped = len(recs) - len(keep)
        if skipped:
            warnings.warn(f"{self.root}: skipping {skipped} clip(s) flagged {'/'.join(SKIP_FLAGS)} "
                          "(pass include_flagged=True, or prepare with --include-no-face, to use them)",
                          stacklevel=2)
        return keep

    def is_done(self, clip_id: str, retry_failed: bool = False, check_sha: bool = True) -> bool:
        rec = self.read_record(clip_id)
        if rec is None:
            return False
        if rec.get("status") == "failed":
            return not retry_failed
        return self._npz_ok(clip_id, rec, check_sha)

    def _npz_ok(self, clip_id: str, rec: Mapping[str, Any], check_sha: bool = True) -> bool:
        p = self.npz_path(clip_id)
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            return False
        if rec.get("npz_bytes") is not None and size != rec["npz_bytes"]:
            return False
        return not check_sha or sha256_file(p) == rec.get("sha256")

    # -- writing ------------------------------------------------------------------------------
    def write_clip(self, record: dict, arrays: Mapping[str, np.ndarray] | None = None) -> dict:
        """Write the npz (when given) and then the record; returns the record with sha256 set."""
        clip_id = record["clip"]["id"]
        if arrays is not None:
            data = npz_bytes(arrays)
            record = {**record, "sha256": sha256_bytes(data), "npz_bytes": len(data)}
            atomic_write_bytes(self.npz_path(clip_id), data)
        else:
            record = {**record, "sha256": None, "npz_bytes": None}
        atomic_write_json(self.json_path(clip_id), record)
        return record

    # -- reading arrays -----------------------------------------------------------------------
    def load(self, clip_id: str, verify: bool = False) -> dict[str, np.ndarray]:
        """The clip's arrays (faces, face_found, boxes, fps, audio). With verify=True the npz's
        sha256 is checked against the record first. Raises CacheError when missing/corrupt."""
        p = self.npz_path(clip_id)
        rec = None
        if verify:
            rec = self.read_record(clip_id)
            if rec is None:
                raise CacheError(f"{clip_id}: no record in {self.clips_dir}")
            if rec.get("status") != "ok":
                raise CacheError(f"{clip_id}: clip failed at prepare time: {rec.get('reason')}")
            if not p.exists():
                raise CacheError(f"{clip_id}: {p} is missing (re-run mrpn prepare to redo it)")
            if sha256_file(p) != rec.get("sha256"):
                raise CacheError(f"{clip_id}: {p} is corrupted: its sha256 does not match the record "
                                 "(re-run mrpn prepare to redo it)")
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise CacheError(f"{clip_id}: {p} is missing (re-run mrpn prepare to redo it)") from None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            raise CacheError(f"{clip_id}: {p} is unreadable ({e}); re-run mrpn prepare to redo it") from None

    def verify(self) -> list[str]:
        """Ids of ok clips whose npz is missing or does not match its checksum."""
        bad = []
        for rec in self.all_records():
            if rec.get("status") == "ok" and not self._npz_ok(rec["clip"]["id"], rec):
                bad.append(rec["clip"]["id"])
        return bad

    # -- manifest and summary ------------------------------------------------------------------
    def write_manifest(self, extra_summary: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
        """Rebuild manifest.json and summary.json from the per-clip records (safe any time)."""
        recs, unreadable = [], {}
        for i in self.ids():
            rec, cause = self.record_or_cause(i)
            if rec is not None:
                recs.append(rec)
            elif cause:
                unreadable[str(self.json_path(i))] = cause
        info = self.info
        manifest = {
            "format_version": FORMAT_VERSION,
            "dataset": info.get("dataset"),
            "classes": info.get("classes", []),
            "prepare_config": info.get("prepare_config", {}),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "records": recs,
            "unreadable": unreadable,     # listed, never silently dropped
        }
        atomic_write_json(self.root / MANIFEST, manifest, indent=1)
        summary = summarise(recs, (info.get("problems") or []))
        summary["counts"]["unreadable"] = len(unreadable)
        summary["unreadable"] = [f"{k}: {v}" for k, v in unreadable.items()]
        if extra_summary:
            summary.update(extra_summary)
        atomic_write_json(self.root / SUMMARY, summary)
        return self.root / MANIFEST, self.root / SUMMARY


def summarise(records: list[Mapping[str, Any]], problems: Iterable[Mapping[str, str]] = ()) -> dict:
    ok = [r for r in records if r.get("status") == "ok"]
    failed = [r for r in records if r.get("status") == "failed"]

    def flagged(f: str) -> int:
        return sum(1 for r in ok if f in r.get("flags", []))

    def where(r: Mapping[str, Any]) -> str:
        c = r["clip"]
        return c.get("video") or c.get("audio") or c["id"]

    problems = list(problems)
    return {
        "counts": {
            "clips": len(records), "ok": len(ok), "failed": len(failed),
            "usable": sum(1 for r in ok if is_usable(r)),
            "no_face": flagged("no_face"), "no_audio": flagged("no_audio"),
            "silent": flagged("silent_audio"), "short": flagged("short"), "truncated": flagged("truncated"),
            "scan_problems": len(problems),
        },
        "frames": int(sum(r.get("n_frames") or 0 for r in ok)),
        "audio_seconds": round(sum((r.get("audio_samples") or 0) for r in ok) / 16000.0, 3),
        "face_fraction": {r["clip"]["id"]: r.get("face_fraction") for r in ok if r.get("n_frames")},
        "flagged": {r["clip"]["id"]: r["flags"] for r in ok if r.get("flags")},
        "failed": [str(r.get("reason")) if str(r.get("reason")).startswith(where(r))
                   else f"{where(r)}: {r.get('reason')}" for r in failed],
        "problems": [f"{p.get('path')}: {p.get('reason')}" for p in problems],
    }


__all__ = ["Cache", "CacheError", "npz_bytes", "is_usable", "summarise", "SKIP_FLAGS", "ARRAY_KEYS",
           "CLIPS_DIR", "MANIFEST", "SUMMARY", "PREPARE"]
