"""A `mrpn prepare` run: select the clips (shard, limit), skip the finished ones (resume), prepare
the rest in one process or a pool of spawned workers, then rebuild the manifest.

The settings check and the write of prepare.json happen under the cache's setup lock
(`guard.cache_writer`); clips are then written under a shared lock that shards with the same
settings hold together and `verify` excludes."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrpn.data.cache import Cache
from mrpn.data.clip import Clip, Problem
from mrpn.data.faces import DETECTORS, DetectorUnavailable, make_detector
from mrpn.data.prepare.clip import PrepareConfig, PrepareError, _where, process_clip
from mrpn.data.prepare.guard import CacheGuardError, cache_writer

_W: dict[str, Any] = {}


def _init_worker(config: dict, out: str, decode_threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    cfg = PrepareConfig(**config)
    _W.update(config=cfg, cache=Cache(out, create=True), detector=make_detector(cfg.detector),
              threads=decode_threads)


def _work(clip_dict: dict) -> dict:
    clip = Clip.from_dict(clip_dict)
    return process_clip(clip, _W["config"], _W["cache"], _W["detector"], _W["threads"])


def shard_of(clip_id: str, n: int) -> int:
    """Stable shard index of a clip id (sha1, independent of Python's hash seed and clip order)."""
    return int(hashlib.sha1(clip_id.encode("utf-8")).hexdigest()[:8], 16) % n


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise PrepareError(f"--shard expects i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise PrepareError(f"--shard {text}: need 0 <= i < n")
    return i, n


@dataclass
class RunResult:
    out: Path
    selected: int = 0              # clips in this shard (after --limit)
    already_done: int = 0
    processed: int = 0
    ok: int = 0
    failed: int = 0
    frames: int = 0
    seconds: float = 0.0
    records: list[dict] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def cache_info(cache: Cache) -> dict:
    """prepare.json (or the manifest's header), as a PrepareError when it is unreadable."""
    try:
        info = cache.info
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
        raise PrepareError(f"{cache.root}: prepare.json or manifest.json is unreadable ({e}); "
                           "use another --out") from None
    fields = {  # field -> valid value (absent fields are fine: an empty or new cache)
        "dataset": lambda v: v is None or isinstance(v, str),
        "classes": lambda v: v is None or (isinstance(v, list) and all(isinstance(c, str) for c in v)),
        "prepare_config": lambda v: v is None or isinstance(v, dict),
        "problems": lambda v: v is None or (isinstance(v, list) and all(
            isinstance(p, dict) and isinstance(p.get("path"), str) and isinstance(p.get("reason"), str) for p in v)),
    }
    bad = [k for k, ok in fields.items() if isinstance(info, dict) and not ok(info.get(k))]
    if not isinstance(info, dict) or bad:
        raise PrepareError(f"{cache.root}: prepare.json is not a prepare record ({', '.join(bad) or 'not an object'}); "
                           "use another --out")
    return info


# settings added after caches were made, with the value that reproduces what those caches did
_BEFORE_FIELD = {"edge_pad": 0.0}


def _check_config(cache: Cache, config: PrepareConfig, dataset: str, classes: Sequence[str]) -> None:
    info = cache_info(cache)
    if not info:
        return
    old = info.get("prepare_config") or {}
    new = config.to_dict()
    old = {**_BEFORE_FIELD, **old}   # a cache made before a setting existed was made with its old behaviour
    diff = [f"{k}={old.get(k)!r} there, {new[k]!r} now" for k in new if k in old and old.get(k) != new[k]]
    if diff:
        raise PrepareError(f"{cache.root} was prepared with other settings ({'; '.join(diff)}): "
                           "use another --out, or the same settings to resume")
    if info.get("dataset") not in (None, dataset) or (info.get("classes") and list(info["classes"]) != list(classes)):
        raise PrepareError(f"{cache.root} holds dataset {info.get('dataset')!r} with classes {info.get('classes')}: "
                           "use another --out")


def _describe(rec: dict) -> list[str]:
    where = rec["clip"].get("video") or rec["clip"].get("audio") or rec["clip"]["id"]
    if rec["status"] == "failed":
        return [f"FAILED {rec['reason']}" if str(rec["reason"]).startswith(where) else f"FAILED {where}: {rec['reason']}"]
    msgs = []
    if "no_face" in rec["flags"]:
        msgs.append(f"warning: {where}: no face found; "
                    + ("kept (--include-no-face)" if not rec.get("skip") else "training skips it by default"))
    return msgs


def _unique_clips(scan: Any) -> tuple[list[Clip], list[Problem]]:
    problems = [Problem(str(p.path), str(p.reason)) if not isinstance(p, Problem) else p
                for p in (getattr(scan, "problems", []) or [])]
    clips: list[Clip] = []
    seen: set[str] = set()
    for c in sorted(scan.clips, key=lambda c: c.id):
        if c.id in seen:
            problems.append(Problem(_where(c), f"duplicate clip id {c.id!r}; kept the first"))
            continue
        seen.add(c.id)
        clips.append(c)
    return clips, problems


def _run_clips(todo: list[Clip], config: PrepareConfig, cache: Cache, detector, workers: int,
               decode_threads: int, take: Callable[[dict], None]) -> None:
    if workers == 1:
        for clip in todo:
            take(process_clip(clip, config, cache, detector, decode_threads))
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker,
                  initargs=(config.to_dict(), str(cache.root), decode_threads)) as pool:
        try:
            for rec in pool.imap_unordered(_work, [c.to_dict() for c in todo], chunksize=1):
                take(rec)
        except BaseException:
            pool.terminate()
            raise


def run_prepare(scan: Any, out: str | os.PathLike, config: PrepareConfig, workers: int = 1,
                limit: int | None = None, shard: tuple[int, int] = (0, 1), retry_failed: bool = False,
                progress: bool = True, decode_threads: int | None = None,
                log: Callable[[str], None] | None = None, lock_wait_s: float = 5.0) -> RunResult:
    """Prepare the clips of `scan` (anything with .dataset, .classes, .clips, .problems) into `out`.

    Finished clips are skipped (record present and npz checksum ok), partial or corrupt ones are
    redone, failed ones are retried only with retry_failed. Writes manifest.json and summary.json.
    `out` must be new, empty or a cache; another run writing it makes this one wait `lock_wait_s`."""
    if config.detector not in DETECTORS:
        raise PrepareError(f"unknown detector {config.detector!r}; choose one of {', '.join(DETECTORS)}")
    try:
        detector = make_detector(config.detector)
    except DetectorUnavailable as e:
        raise PrepareError(str(e)) from None
    try:
        with cache_writer(out, wait_s=lock_wait_s) as writer:
            return _locked_run(scan, out, config, detector, workers, limit, shard, retry_failed, progress,
                               decode_threads, log, writer)
    except CacheGuardError as e:
        raise PrepareError(str(e)) from None


def _locked_run(scan, out, config, detector, workers, limit, shard, retry_failed, progress, decode_threads,
                log, writer) -> RunResult:
    from tqdm import tqdm

    if log is None:
        log = lambda msg: tqdm.write(msg, file=sys.stderr)  # noqa: E731
    cache = Cache(out, create=True)
    classes = list(getattr(scan, "classes", []) or [])
    dataset = str(getattr(scan, "dataset", "") or "")
    _check_config(cache, config, dataset, classes)
    clips, problems = _unique_clips(scan)
    cache.write_info(dataset, classes, config.to_dict(), [{"path": p.path, "reason": p.reason} for p in problems])
    writer.setup_done()            # settings checked and written: shards with the same ones may start
    i, n = shard
    mine = [c for c in clips if n == 1 or shard_of(c.id, n) == i]
    if limit is not None:
        mine = mine[: max(0, int(limit))]
    todo = [c for c in mine if not cache.is_done(c.id, retry_failed=retry_failed)]
    result = RunResult(out=Path(out), selected=len(mine), already_done=len(mine) - len(todo))
    if result.already_done:
        log(f"resuming: {result.already_done} of {len(mine)} clip(s) already done in {out}")
    workers = max(1, min(int(workers), len(todo) or 1))
    if decode_threads is None:
        decode_threads = 0 if workers == 1 else max(1, (os.cpu_count() or 1) // workers)
    from mrpn.progress import progress as progress_bar

    bar = progress_bar(total=len(todo), unit="clip", disable=not progress, file=sys.stderr)
    t_run = time.perf_counter()

    def take(rec: dict) -> None:
        result.processed += 1
        result.records.append(rec)
        result.ok += rec["status"] == "ok"
        result.failed += rec["status"] != "ok"
        result.frames += int(rec.get("n_frames") or 0) if rec["status"] == "ok" else 0
        for msg in _describe(rec):
            log(msg)
        bar.update(1)
        if (dt := time.perf_counter() - t_run) > 0:
            bar.set_postfix_str(f"{result.frames / dt:.0f} frames/s, {result.failed} failed", refresh=False)

    try:
        _run_clips(todo, config, cache, detector, workers, decode_threads, take)
    finally:
        bar.close()
        result.seconds = time.perf_counter() - t_run
        cache.write_manifest()
    return result
