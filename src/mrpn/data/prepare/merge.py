"""`mrpn prepare merge` (shard caches -> one cache) and `mrpn prepare verify` (checksums, unreadable
records, manifest rebuilt). Both write only into a cache (guard.py) and hold its lock."""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from mrpn.data.cache import Cache, CacheError
from mrpn.data.prepare.clip import PrepareError
from mrpn.data.prepare.guard import CacheGuardError, cache_writer, is_cache
from mrpn.data.prepare.run import cache_info
from mrpn.io import atomic_path, atomic_write_json


def _source(d: str | os.PathLike) -> tuple[Cache, dict]:
    if not is_cache(Path(d)):
        raise PrepareError(f"{d}: not a prepare cache (no marker or prepare.json)")
    try:
        src = Cache(d)
    except CacheError as e:
        raise PrepareError(str(e)) from None
    sinfo = cache_info(src)
    if not sinfo:
        raise PrepareError(f"{d}: not a prepare cache (no prepare.json or manifest.json)")
    return src, sinfo


def _copy_clips(src: Cache, target: Cache, d, log: Callable[[str], None]) -> None:
    copied = skipped = bad = 0
    for rec in src.all_records():
        cid = rec["clip"]["id"]
        mine = target.read_record(cid)
        if mine is not None and target.is_done(cid) and (mine.get("status") == "ok" or rec.get("status") != "ok"):
            skipped += 1
            continue
        if rec.get("status") == "ok":
            if not src.is_done(cid):
                log(f"warning: {d}: {cid}: npz missing or corrupted; not merged (re-run that shard)")
                bad += 1
                continue
            with atomic_path(target.npz_path(cid)) as tmp:
                shutil.copyfile(src.npz_path(cid), tmp)
        atomic_write_json(target.json_path(cid), rec)
        copied += 1
    for path, cause in src.unreadable().items():
        log(f"warning: {path}: unreadable record ({cause}); not merged (re-run that shard)")
    log(f"merged {d}: {copied} clip(s) copied, {skipped} already there, {bad} bad")


def merge(out: str | os.PathLike, shard_dirs: Sequence[str | os.PathLike],
          log: Callable[[str], None] = print, lock_wait_s: float = 5.0) -> Cache:
    """Copy the finished clips of several shard caches into `out` (checksums verified) and write
    one manifest. Clips already finished in `out` are left alone. Raises PrepareError when the
    shards were prepared with different settings or datasets, or `out` is not a cache."""
    try:
        with cache_writer(out, wait_s=lock_wait_s, exclusive=True):
            target = Cache(out, create=True)
            info = cache_info(target)
            problems = {p["path"] + "\0" + p["reason"]: p for p in (info.get("problems") or [])}
            for d in shard_dirs:
                src, sinfo = _source(d)
                if info:
                    if sinfo.get("prepare_config") != info.get("prepare_config"):
                        raise PrepareError(f"{d} was prepared with other settings than {out}: cannot merge")
                    if sinfo.get("dataset") != info.get("dataset") or sinfo.get("classes") != info.get("classes"):
                        raise PrepareError(f"{d} holds another dataset or class list than {out}: cannot merge")
                else:
                    info = sinfo
                for p in (sinfo.get("problems") or []):
                    problems[p["path"] + "\0" + p["reason"]] = p
                target.write_info(info.get("dataset") or "", info.get("classes") or [],
                                  info.get("prepare_config") or {}, list(problems.values()))
                _copy_clips(src, target, d, log)
            target.write_manifest()
    except CacheGuardError as e:
        raise PrepareError(str(e)) from None
    return target


def verify(out: str | os.PathLike, lock_wait_s: float = 5.0) -> tuple[Cache, list[str], dict[str, str]]:
    """(cache, ids of ok clips whose npz is missing or corrupt, {record path: cause} of unreadable
    records). The manifest and summary are rebuilt; unreadable records are listed in both."""
    try:
        with cache_writer(out, wait_s=lock_wait_s, must_exist=True, exclusive=True):
            cache = Cache(out)
            cache_info(cache)
            bad = cache.verify()
            unreadable = cache.unreadable()
            cache.write_manifest()
    except CacheGuardError as e:
        raise PrepareError(str(e)) from None
    return cache, bad, unreadable
