"""Atomic file writes: write to a temporary file in the same folder, fsync, then os.replace.

A reader (or a re-run after a crash, a kill or a full disk) sees either the old file or the
complete new one, never a torn one; the temporary file is removed when the write fails.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


# Temporary files are named `.<name>.mrpn.<random><suffix>.tmp`, so a cleanup can tell mrpn's own
# leftovers from another program's `*.tmp` files and never delete the latter.
TMP_TAG = ".mrpn."
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TMP_TAG}", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def atomic_write_with(path: str | os.PathLike, writer: Callable[[Path], None], suffix: str = "") -> None:
    """Call `writer(tmp_path)` (e.g. torch.save, savefig) and move its output into place atomically."""
    with atomic_path(path, suffix=suffix) as tmp:
        writer(tmp)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_text(path: Path, limit: int = 64) -> dict[str, str]:
    """The tEXt chunks of a PNG ({} when it is not a PNG); reads chunk headers only, up to IDAT."""
    out: dict[str, str] = {}
    try:
        with open(path, "rb") as f:
            if f.read(8) != PNG_SIGNATURE:
                return {}
            for _ in range(limit):
                head = f.read(8)
                if len(head) < 8:
                    break
                n, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND") or n > 1 << 20:
                    break
                body = f.read(n)
                f.seek(4, os.SEEK_CUR)        # CRC
                if kind == b"tEXt" and b"\0" in body:
                    k, v = body.split(b"\0", 1)
                    out[k.decode("latin-1")] = v.decode("latin-1")
    except OSError:
        return {}
    return out


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


__all__ = [
    "TMP_TAG", "png_text", "atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
    "atomic_write_with", "sha256_file", "sha256_bytes",
]
