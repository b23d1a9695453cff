"""A cache is a cache: `prepare`, `merge` and `verify` write only into an empty folder or one that
carries the marker prepare wrote, and only one of them at a time.

* Marker: `OUT/.mrpn-cache` (JSON, `{"generator": "mrpn prepare", ...}`), written under the lock
  before anything else. A cache made before the marker existed is recognised by its prepare.json
  (a JSON object with `format_version` and a `prepare_config` object, written only by prepare).
* Locks (`fcntl.flock`; the kernel releases them when the process exits, however it exits,
  kill -9 included, so a crash never leaves a stale lock):
  `OUT/.mrpn-cache.lock`, exclusive, held while the folder is checked, the marker written and the
  run's settings checked against prepare.json and written: one writer at a time does that, so
  two runs with other settings can never both pass the check. `OUT/.mrpn-cache.active`, shared
  by every writer while it writes clips (shards with the same settings may share a cache),
  exclusive for `verify`. A second run waits up to `wait_s` for a lock, then stops with a
  message naming the holder's pid.
* Temporary files: mrpn's atomic writes name theirs `.<name>.mrpn.<random>.tmp`; only those are
  removed here (a crashed writer's leftovers), never another program's `*.tmp`.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from mrpn.data.cache import CLIPS_DIR, PREPARE
from mrpn.io import TMP_TAG, atomic_write_json

MARKER = ".mrpn-cache"
LOCK = ".mrpn-cache.lock"
ACTIVE = ".mrpn-cache.active"
GENERATOR = "mrpn prepare"
_OUR_TMP = re.compile(r"^\..+" + re.escape(TMP_TAG) + r"[A-Za-z0-9_]+(\.[A-Za-z0-9]+)?\.tmp$")


class CacheGuardError(Exception):
    """The folder is not a cache, or another run holds it."""


def _read_json(p: Path, limit: int = 1 << 24) -> object:
    try:
        if p.stat().st_size > limit:
            return None
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def is_marked(root: Path) -> bool:
    d = _read_json(root / MARKER)
    return isinstance(d, dict) and d.get("generator") == GENERATOR


def is_legacy_cache(root: Path) -> bool:
    """A cache written by an mrpn prepare before the marker existed."""
    d = _read_json(root / PREPARE)
    return isinstance(d, dict) and isinstance(d.get("format_version"), int) \
        and isinstance(d.get("prepare_config"), dict) and (root / CLIPS_DIR).is_dir()


def is_cache(root: Path) -> bool:
    return root.is_dir() and (is_marked(root) or is_legacy_cache(root))


def _others(root: Path) -> list[str]:
    """Entries other than the lock and mrpn's own temporary files (a writer may be mid-write)."""
    return sorted(e for e in os.listdir(root) if e not in (LOCK, ACTIVE) and not _OUR_TMP.match(e))


def check_writable(root: Path, what: str = "cache") -> None:
    """Raise CacheGuardError unless `root` is absent, an empty folder or an mrpn cache."""
    if root.exists() and not root.is_dir():
        raise CacheGuardError(f"{root}: is a file, not a folder; give a folder for the {what}")
    if not root.is_dir() or not _others(root) or is_cache(root):
        return
    shown = ", ".join(_others(root)[:3])
    raise CacheGuardError(f"{root}: not an mrpn cache and not empty (holds {shown}"
                          f"{', ...' if len(_others(root)) > 3 else ''}); refusing to write there: "
                          "give an empty or new folder")


def require_cache(root: Path) -> None:
    """For verify: the folder must already be a cache (an empty folder is not one either)."""
    if not root.is_dir():
        raise CacheGuardError(f"{root}: no cache there (run `mrpn prepare ... --out {root}` first)")
    if not is_cache(root):
        raise CacheGuardError(f"{root}: not an mrpn cache (no {MARKER} marker or prepare.json); "
                              "refusing to write there")


def _flock(fd: int, mode: int, wait_s: float, poll_s: float = 0.05) -> bool:
    """flock with a bounded wait; False when it could not be had in `wait_s`."""
    import fcntl

    deadline = time.monotonic() + max(0.0, wait_s)
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)


def _busy(root: Path, fd: int, what: str) -> CacheGuardError:
    holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
    return CacheGuardError(f"{root}: another mrpn prepare (pid {holder}) is {what} this cache; "
                           "wait for it to finish, or use another --out")


class CacheWriter:
    """The two locks of a writer. `setup` (exclusive, short): folder check, marker, the caller's
    settings check and prepare.json write. `active` (shared while clips are written, so shards with
    the same settings can write one cache together; exclusive for verify): a writer that finds
    no other active writer removes mrpn's stale temporary files, which then belong to no one."""

    def __init__(self, root: Path, wait_s: float, must_exist: bool, exclusive: bool):
        import fcntl

        self.root = root
        (require_cache if must_exist else check_writable)(root)
        root.mkdir(parents=True, exist_ok=True)
        self._setup = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        self._active = None
        if not _flock(self._setup, fcntl.LOCK_EX, wait_s):
            err = _busy(root, self._setup, "setting up")
            self.close()
            raise err
        try:
            (require_cache if must_exist else check_writable)(root)   # the folder may have changed meanwhile
            if not is_marked(root):
                atomic_write_json(root / MARKER, {"generator": GENERATOR, "format_version": 1})
            self._active = os.open(root / ACTIVE, os.O_RDWR | os.O_CREAT, 0o666)
            alone = _flock(self._active, fcntl.LOCK_EX, wait_s if exclusive else 0.0)
            if exclusive and not alone:
                raise _busy(root, self._active, "writing")
            if alone:
                remove_own_tmp(root)
                os.ftruncate(self._active, 0)
                os.pwrite(self._active, str(os.getpid()).encode(), 0)
            if not exclusive:       # EX -> SH while holding `setup`: no other writer can slip in between
                fcntl.flock(self._active, fcntl.LOCK_SH)
            os.ftruncate(self._setup, 0)
            os.pwrite(self._setup, str(os.getpid()).encode(), 0)
        except BaseException:
            self.close()
            raise

    def setup_done(self) -> None:
        """Release the setup lock (the settings are checked and written)."""
        if self._setup is not None:
            os.close(self._setup)
            self._setup = None

    def close(self) -> None:
        for fd in (self._setup, self._active):
            if fd is not None:
                os.close(fd)      # closing the descriptor releases its flock (the kernel does it on a crash)
        self._setup = self._active = None


@contextlib.contextmanager
def cache_writer(root: str | os.PathLike, wait_s: float = 5.0, must_exist: bool = False,
                 exclusive: bool = False) -> Iterator[CacheWriter]:
    """Hold the cache's locks for the block (see CacheWriter); call `.setup_done()` once the
    settings are checked and written, so that other shards can start."""
    w = CacheWriter(Path(root), wait_s, must_exist, exclusive)
    try:
        yield w
    finally:
        w.close()


def remove_own_tmp(root: Path) -> list[Path]:
    """Delete leftovers of mrpn's atomic writes (only ours, by name) in the cache and clips/.
    Called only with the `active` lock held exclusively, so no live writer owns them."""
    gone = []
    for d in (root, root / CLIPS_DIR):
        if not d.is_dir():
            continue
        for e in os.scandir(d):
            if e.is_file(follow_symlinks=False) and _OUR_TMP.match(e.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(e.path)
                    gone.append(Path(e.path))
    return gone


__all__ = [
    "ACTIVE",
    "LOCK",
    "MARKER",
    "CacheGuardError",
    "CacheWriter",
    "cache_writer",
    "check_writable",
    "is_cache",
    "is_marked",
    "remove_own_tmp",
    "require_cache",
]
