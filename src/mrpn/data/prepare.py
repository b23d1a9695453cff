"""`mrpn prepare`: media files -> a fast, resumable feature cache (see docs/PREPARE.md).

    mrpn prepare DATASET ROOT --out DIR [options]     prepare (resumes; --shard i/n for a subset)
    mrpn prepare merge OUT SHARD_DIR [SHARD_DIR ...]  combine shard caches into one cache
    mrpn prepare verify OUT                           check checksums, rebuild manifest + summary

Per clip: decode the video (PyAV), track and crop the face (`mrpn.data.faces`), decode the audio
from the container or the paired file, resample it to 16 kHz mono and standardise it
(`mrpn.data.audio`), then write clips/<id>.npz and clips/<id>.json atomically (`mrpn.data.cache`).
A clip that cannot be read is recorded as failed with a reason naming the file; the run carries on.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from mrpn.data.audio import SAMPLE_RATE, prepare_audio
from mrpn.data.cache import Cache, CacheError, is_usable
from mrpn.data.clip import Clip, Problem
from mrpn.data.faces import DETECTORS, DetectorUnavailable, FaceConfig, make_detector, track_faces
from mrpn.data.media import MediaError, VideoReader, is_image, read_image
from mrpn.io import atomic_path, atomic_write_bytes, atomic_write_json

SHORT_S = 1.0
DATASETS = ("ravdess", "cremad", "fer2013", "custom")


class PrepareError(Exception):
    """An unusable input or setting; the CLI prints the message and exits with status 2."""


@dataclass
class PrepareConfig:
    """Everything that determines the cache's content (stored in prepare.json and every record)."""
    detector: str = "opencv"
    face_size: int = 112
    gray: bool = False
    detect_every: int = 5
    detect_width: int = 320
    margin: float = 0.25
    max_gap: int = 15
    smooth: int = 9
    roi: float = 2.0
    sample_rate: int = SAMPLE_RATE
    include_no_face: bool = False

    def face_config(self) -> FaceConfig:
        names = {f.name for f in fields(FaceConfig)}
        return FaceConfig(**{k: v for k, v in asdict(self).items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# one clip

def _where(clip: Clip) -> str:
    return clip.video or clip.audio or clip.id


def prepare_clip(clip: Clip, config: PrepareConfig, detector=None, decode_threads: int = 0
                 ) -> tuple[dict, dict[str, np.ndarray]]:
    """Decode, track, crop and resample one clip -> (record without sha, arrays).

    Raises MediaError (message names the file) when the clip is unusable."""
    t0 = time.perf_counter()
    flags: list[str] = []
    notes: list[str] = []
    C = 1 if config.gray else 3
    S = int(config.face_size)
    faces = np.zeros((0, S, S, C), np.uint8)
    found = np.zeros(0, bool)
    boxes = np.zeros((0, 4), np.float32)
    fps = 0.0
    frame_size = None
    detect_calls = detections = 0
    image = bool(clip.video) and is_image(clip.video)
    if not clip.video and not clip.audio:
        raise MediaError(f"{clip.id}: the clip has neither a video nor an audio file")

    if clip.video:
        detector = detector if detector is not None else make_detector(config.detector)
        fc = config.face_config()
        if image:
            img = read_image(clip.video)
            frame_size = list(img.shape[:2])
            track = track_faces([img], detector, fc)
        else:
            with VideoReader(clip.video, format="yuv", threads=decode_threads) as reader:
                track = track_faces(reader, detector, fc)
                fps = float(reader.fps)
                frame_size = [reader.height, reader.width]
                if reader.error:
                    flags.append("truncated")
                    notes.append(f"{clip.video}: {reader.error}; kept the frames before it")
        faces, found, boxes = track.faces, track.found, track.boxes
        detect_calls, detections = track.detect_calls, track.detections
        if len(found) and not found.any():
            flags.append("no_face")
            notes.append(f"{clip.video}: no face found in any of {len(found)} frame(s)")
        if fps <= 0 and not image and len(found):
            notes.append(f"{clip.video}: the container gives no frame rate")

    audio = np.zeros(0, np.float32)
    audio_src = clip.audio or (clip.video if clip.video and not image else None)
    source_rate = source_channels = None
    if audio_src:
        try:
            res = prepare_audio(audio_src, config.sample_rate)
        except MediaError as e:
            if not clip.video:
                raise
            res = None
            notes.append(f"{e}")
        if res is None:
            flags.append("no_audio")
            if not clip.audio:
                notes.append(f"{audio_src}: no audio stream and no paired audio file")
        else:
            audio = res.samples
            source_rate, source_channels = res.source_rate, res.source_channels
            if res.silent:
                flags.append("silent_audio")
                notes.append(f"{audio_src}: silent audio (RMS {res.std:.2g}); stored as zeros")

    if clip.video and not image:
        duration = len(found) / fps if fps > 0 else len(audio) / config.sample_rate
    else:
        duration = len(audio) / config.sample_rate
    if not image and duration < SHORT_S:
        flags.append("short")
    skip = "no_face" in flags and not config.include_no_face
    record = {
        "clip": clip.to_dict(),
        "status": "ok",
        "reason": None,
        "flags": flags,
        "notes": notes,
        "skip": skip,
        "n_frames": int(len(found)),
        "fps": round(fps, 6),
        "duration_s": round(float(duration), 4),
        "audio_samples": int(len(audio)),
        "face_fraction": round(float(found.mean()), 6) if len(found) else None,
        "frame_size": frame_size,
        "source_audio_rate": source_rate,
        "source_audio_channels": source_channels,
        "detect_calls": detect_calls,
        "detections": detections,
        "prepare_config": config.to_dict(),
        "prepare_seconds": round(time.perf_counter() - t0, 4),
    }
    arrays = {"faces": faces, "face_found": found, "boxes": boxes,
              "fps": np.asarray(fps, np.float32), "audio": audio.astype(np.float32, copy=False)}
    return record, arrays


def failed_record(clip: Clip, config: PrepareConfig, reason: str) -> dict:
    return {"clip": clip.to_dict(), "status": "failed", "reason": reason, "flags": [], "notes": [],
            "skip": True, "n_frames": 0, "fps": 0.0, "duration_s": 0.0, "audio_samples": 0,
            "face_fraction": None, "prepare_config": config.to_dict()}


def process_clip(clip: Clip, config: PrepareConfig, cache: Cache, detector=None, decode_threads: int = 0) -> dict:
    """prepare_clip + write; any error becomes a failed record (never raises for bad media)."""
    try:
        record, arrays = prepare_clip(clip, config, detector, decode_threads)
    except MediaError as e:
        return cache.write_clip(failed_record(clip, config, str(e)))
    except (KeyboardInterrupt, SystemExit, DetectorUnavailable):
        raise
    except Exception as e:  # noqa: BLE001 - a bad file must not stop the run
        return cache.write_clip(failed_record(clip, config, f"{_where(clip)}: {type(e).__name__}: {e}"))
    return cache.write_clip(record, arrays)


# ---------------------------------------------------------------------------------------------
# worker processes

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


# ---------------------------------------------------------------------------------------------
# a run

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


def _clean_stale_tmp(cache: Cache, older_than_s: float = 600.0) -> None:
    now = time.time()
    for d in (cache.root, cache.clips_dir):
        if not d.is_dir():
            continue
        for e in os.scandir(d):
            if e.name.startswith(".") and e.name.endswith(".tmp"):
                try:
                    if now - e.stat().st_mtime > older_than_s:
                        os.unlink(e.path)
                except FileNotFoundError:
                    pass


def _check_config(cache: Cache, config: PrepareConfig, dataset: str, classes: Sequence[str]) -> None:
    info = cache.info
    if not info:
        return
    old = info.get("prepare_config") or {}
    new = config.to_dict()
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


def run_prepare(scan: Any, out: str | os.PathLike, config: PrepareConfig, workers: int = 1,
                limit: int | None = None, shard: tuple[int, int] = (0, 1), retry_failed: bool = False,
                progress: bool = True, decode_threads: int | None = None,
                log: Callable[[str], None] | None = None) -> RunResult:
    """Prepare the clips of `scan` (anything with .dataset, .classes, .clips, .problems) into `out`.

    Finished clips are skipped (record present and npz checksum ok), partial or corrupt ones are
    redone, failed ones are retried only with retry_failed. Writes manifest.json and summary.json."""
    from tqdm import tqdm

    if log is None:
        log = lambda msg: tqdm.write(msg, file=sys.stderr)  # noqa: E731
    if config.detector not in DETECTORS:
        raise PrepareError(f"unknown detector {config.detector!r}; choose one of {', '.join(DETECTORS)}")
    try:
        detector = make_detector(config.detector)
    except DetectorUnavailable as e:
        raise PrepareError(str(e)) from None
    cache = Cache(out, create=True)
    classes = list(getattr(scan, "classes", []) or [])
    dataset = str(getattr(scan, "dataset", "") or "")
    _check_config(cache, config, dataset, classes)
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
    cache.write_info(dataset, classes, config.to_dict(), [{"path": p.path, "reason": p.reason} for p in problems])
    _clean_stale_tmp(cache)

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
        if rec["status"] == "ok":
            result.ok += 1
            result.frames += int(rec.get("n_frames") or 0)
        else:
            result.failed += 1
        for msg in _describe(rec):
            log(msg)
        bar.update(1)
        dt = time.perf_counter() - t_run
        if dt > 0:
            bar.set_postfix_str(f"{result.frames / dt:.0f} frames/s, {result.failed} failed", refresh=False)

    try:
        if workers == 1:
            for clip in todo:
                take(process_clip(clip, config, cache, detector, decode_threads))
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_worker,
                          initargs=(config.to_dict(), str(out), decode_threads)) as pool:
                try:
                    for rec in pool.imap_unordered(_work, [c.to_dict() for c in todo], chunksize=1):
                        take(rec)
                except BaseException:
                    pool.terminate()
                    raise
    finally:
        bar.close()
        result.seconds = time.perf_counter() - t_run
        cache.write_manifest()
    result.seconds = time.perf_counter() - t_run if result.seconds == 0 else result.seconds
    return result


# ---------------------------------------------------------------------------------------------
# preview

def _tile(face: np.ndarray, tile: int, found: bool) -> np.ndarray:
    import cv2

    img = np.repeat(face, 3, axis=2) if face.shape[2] == 1 else face
    if img.shape[0] != tile:
        img = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_NEAREST)
    img = np.ascontiguousarray(img)
    if not found:
        img = img.copy()
        cv2.rectangle(img, (0, 0), (tile - 1, tile - 1), (255, 0, 0), 3)
    return img


def write_preview(cache: Cache, path: str | os.PathLike, n_clips: int = 6, n_frames: int = 8) -> Path | None:
    """A contact sheet PNG so a person can check that the crops are faces.

    Videos: n_clips rows (spread over the sorted clip ids) of n_frames crops spread over each clip,
    each row labelled with the clip id, its face fraction and flags. Images (one frame per clip,
    e.g. FER2013): a grid of n_clips x n_frames images labelled with their class. Frames without
    a found face have a red border. Returns None when the cache holds no clip with frames."""
    import cv2

    recs = [r for r in cache.all_records() if r.get("status") == "ok" and (r.get("n_frames") or 0) > 0]
    if not recs:
        return None
    recs.sort(key=lambda r: r["clip"]["id"])
    usable = [r for r in recs if is_usable(r)] or recs
    images = all(r["n_frames"] == 1 for r in usable)
    want = n_clips * n_frames if images else n_clips
    if len(usable) > want:
        idx = np.linspace(0, len(usable) - 1, want).round().astype(int)
        usable = [usable[j] for j in idx]
    S = int(cache.config.get("face_size", 112))
    tile = max(S, 64)
    label_h, pad = 22, 4
    W = n_frames * (tile + pad) + pad
    font = cv2.FONT_HERSHEY_SIMPLEX
    rows = []
    if images:
        for start in range(0, len(usable), n_frames):
            row = np.full((tile + label_h + pad, W, 3), 255, np.uint8)
            for k, rec in enumerate(usable[start:start + n_frames]):
                try:
                    arr = cache.load(rec["clip"]["id"])
                except CacheError:
                    continue
                x = pad + k * (tile + pad)
                row[pad:pad + tile, x:x + tile] = _tile(arr["faces"][0], tile, bool(arr["face_found"][0]))
                cv2.putText(row, str(rec["clip"].get("label_name", ""))[:12], (x, tile + label_h - 6), font, 0.4,
                            (0, 0, 0), 1, cv2.LINE_AA)
            rows.append(row)
    else:
        for rec in usable:
            cid = rec["clip"]["id"]
            try:
                arr = cache.load(cid)
            except CacheError:
                continue
            faces, found = arr["faces"], arr["face_found"]
            row = np.full((label_h + tile + pad, W, 3), 255, np.uint8)
            frac = rec.get("face_fraction")
            text = f"{cid}  face {100 * frac:.1f}%" if frac is not None else cid
            if rec.get("flags"):
                text += "  [" + ",".join(rec["flags"]) + "]"
            cv2.putText(row, text, (pad, label_h - 7), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
            for k, t in enumerate(np.linspace(0, len(faces) - 1, min(n_frames, len(faces))).round().astype(int)):
                x = pad + k * (tile + pad)
                row[label_h:label_h + tile, x:x + tile] = _tile(faces[t], tile, bool(found[t]))
            rows.append(row)
    if not rows:
        return None
    sheet = np.concatenate(rows, axis=0)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    atomic_write_bytes(path, png.tobytes())
    return Path(path)


# ---------------------------------------------------------------------------------------------
# merge and verify

def merge(out: str | os.PathLike, shard_dirs: Sequence[str | os.PathLike],
          log: Callable[[str], None] = print) -> Cache:
    """Copy the finished clips of several shard caches into `out` (checksums verified) and write
    one manifest. Clips already finished in `out` are left alone. Raises PrepareError when the
    shards were prepared with different settings or datasets."""
    target = Cache(out, create=True)
    info = target.info
    problems: dict[str, dict] = {p["path"] + "\0" + p["reason"]: p for p in info.get("problems", [])}
    for d in shard_dirs:
        try:
            src = Cache(d)
        except CacheError as e:
            raise PrepareError(str(e)) from None
        sinfo = src.info
        if not sinfo:
            raise PrepareError(f"{d}: not a prepare cache (no prepare.json or manifest.json)")
        if info:
            if sinfo.get("prepare_config") != info.get("prepare_config"):
                raise PrepareError(f"{d} was prepared with other settings than {out}: cannot merge")
            if sinfo.get("dataset") != info.get("dataset") or sinfo.get("classes") != info.get("classes"):
                raise PrepareError(f"{d} holds another dataset or class list than {out}: cannot merge")
        else:
            info = sinfo
        for p in sinfo.get("problems", []):
            problems[p["path"] + "\0" + p["reason"]] = p
        target.write_info(info.get("dataset") or "", info.get("classes") or [], info.get("prepare_config") or {},
                          list(problems.values()))
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
        log(f"merged {d}: {copied} clip(s) copied, {skipped} already there, {bad} bad")
    target.write_manifest()
    return target


# ---------------------------------------------------------------------------------------------
# CLI

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.usage = ("mrpn prepare DATASET ROOT --out DIR [options]\n"
               "       mrpn prepare merge OUT SHARD_DIR [SHARD_DIR ...]\n"
               "       mrpn prepare verify OUT")
    p.add_argument("dataset", metavar="DATASET",
                   help=f"one of {', '.join(DATASETS)} (ROOT is a CSV manifest for custom); or merge / verify")
    p.add_argument("root", metavar="ROOT", help="the dataset's folder (merge/verify: the output cache)")
    p.add_argument("more", nargs="*", metavar="SHARD_DIR", help=argparse.SUPPRESS)
    p.add_argument("--out", metavar="DIR", help="cache folder to write (created; a re-run resumes)")
    p.add_argument("--modality", choices=["av", "audio"], default=None,
                   help="RAVDESS: audio-video clips (default) or the audio-only files")
    p.add_argument("--split", choices=["train", "test", "all"], default=None,
                   help="FER2013: which split to prepare (the scan's default: train)")
    p.add_argument("--detector", choices=list(DETECTORS), default=None,
                   help="face detector (default: none for fer2013, whose images are face crops; opencv otherwise)")
    p.add_argument("--face-size", type=int, default=112, metavar="PX", help="side of the square face crops (112)")
    p.add_argument("--gray", action="store_true", help="store grey crops [T,S,S,1] instead of RGB")
    p.add_argument("--detect-every", type=int, default=5, metavar="K", help="run the detector on every K-th frame (5)")
    p.add_argument("--detect-width", type=int, default=320, metavar="PX",
                   help="downscale frames to this width for detection (320; 0 = full resolution)")
    p.add_argument("--margin", type=float, default=0.25,
                   help="added on every side of the face box, as a fraction of its size (0.25)")
    p.add_argument("--max-gap", type=int, default=15, metavar="FRAMES",
                   help="interpolate boxes between detections at most this many frames apart (15)")
    p.add_argument("--smooth", type=int, default=9, metavar="FRAMES",
                   help="moving-average window for the boxes, in frames (9; 1 = off)")
    p.add_argument("--roi", type=float, default=2.0, metavar="X",
                   help="first search a window X times the last face, rescaled (2.0; 0 = always the whole frame)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    p.add_argument("--decode-threads", type=int, default=None, metavar="N",
                   help="PyAV decoding threads per worker (default: cores / workers)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N clips (by id)")
    p.add_argument("--shard", default=None, metavar="i/n", help="process only shard i of n (stable hash of the clip id)")
    p.add_argument("--retry-failed", action="store_true", help="redo clips that failed before")
    p.add_argument("--preview", nargs="?", const=True, default=None, metavar="PNG",
                   help="write a contact sheet of face crops (default OUT/preview.png)")
    p.add_argument("--include-no-face", action="store_true",
                   help="keep clips where no face was found as usable (centre crops; flag no_face stays)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _err(msg: str) -> int:
    print(f"mrpn prepare: error: {msg}", file=sys.stderr)
    return 2


def _scan(args: argparse.Namespace):
    root = Path(args.root)
    if not root.exists():
        raise PrepareError(f"{root} does not exist")
    if root.is_dir() and not any(p.is_file() for p in root.rglob("*")):
        raise PrepareError(f"{root} is an empty folder: no media files to prepare")
    if root.is_file() and args.dataset != "custom":
        raise PrepareError(f"{root} is a file; {args.dataset} expects the dataset's folder")
    try:
        datasets = importlib.import_module("mrpn.data.datasets")
    except ImportError as e:
        raise PrepareError(f"the dataset adapters (mrpn.data.datasets) cannot be imported: {e}") from None
    options = {}
    if args.modality:
        options["modality"] = args.modality
    if getattr(args, "split", None):
        options["split"] = args.split
    error_type = getattr(datasets, "DatasetError", ValueError)
    try:
        return datasets.scan(args.dataset, str(root), **options)
    except error_type as e:
        raise PrepareError(f"{args.dataset} at {root}: {e}") from None
    except (OSError, ValueError) as e:
        raise PrepareError(f"{args.dataset} at {root}: {e}") from None


def _print_summary(result: RunResult, cache: Cache, preview: Path | None) -> None:
    import json

    s = json.loads((cache.root / "summary.json").read_text())
    c = s["counts"]
    print(f"this run: {result.processed} clip(s) in {result.seconds:.1f} s, {result.frames} frames, "
          f"{result.fps:.0f} frames/s ({result.ok} ok, {result.failed} failed; "
          f"{result.already_done} already done)")
    print(f"cache: {c['clips']} clip(s): {c['ok']} ok ({c['usable']} usable), {c['failed']} failed, "
          f"{c['no_face']} no face, {c['no_audio']} no audio, {c['silent']} silent audio, {c['short']} short, "
          f"{c['scan_problems']} scan problem(s)")
    for line in s["failed"][:20]:
        print(f"  failed: {line}")
    if len(s["failed"]) > 20:
        print(f"  ... and {len(s['failed']) - 20} more failed (see summary.json)")
    for line in s["problems"][:20]:
        print(f"  scan problem: {line}")
    if len(s["problems"]) > 20:
        print(f"  ... and {len(s['problems']) - 20} more scan problems (see summary.json)")
    print(f"files: {cache.clips_dir}/<id>.npz|json, {cache.root / 'manifest.json'}, {cache.root / 'summary.json'}"
          + (f", preview {preview}" if preview else ""))


def main(args: argparse.Namespace) -> int:
    try:
        if args.dataset == "merge":
            if not args.more:
                return _err("merge needs: mrpn prepare merge OUT SHARD_DIR [SHARD_DIR ...]")
            cache = merge(args.root, args.more)
            bad = cache.verify()
            s = cache.records(status=None, include_flagged=True)
            print(f"merged into {cache.root}: {len(s)} clip(s), {len(bad)} bad")
            return 0 if any(is_usable(r) for r in s) else 1
        if args.dataset == "verify":
            cache = Cache(args.root)
            bad = cache.verify()
            cache.write_manifest()
            for b in bad:
                print(f"bad: {cache.npz_path(b)} missing or corrupted (a re-run of prepare redoes it)")
            print(f"{cache.root}: {len(cache.ids())} record(s), {len(bad)} bad; manifest.json and summary.json rewritten")
            return 1 if bad else 0
        if args.dataset not in DATASETS:
            return _err(f"unknown dataset {args.dataset!r}; choose one of {', '.join(DATASETS)} (or merge, verify)")
        if not args.out:
            return _err("--out DIR is required")
        if args.more:
            return _err(f"unexpected arguments: {' '.join(args.more)}")
        if args.face_size < 8 or args.detect_every < 1 or args.margin < 0 or args.workers < 1:
            return _err("--face-size >= 8, --detect-every >= 1, --margin >= 0 and --workers >= 1 are required")
        shard = parse_shard(args.shard)
        detector = args.detector or ("none" if args.dataset == "fer2013" else "opencv")
        config = PrepareConfig(detector=detector, face_size=args.face_size, gray=args.gray,
                               detect_every=args.detect_every, detect_width=args.detect_width, margin=args.margin,
                               max_gap=args.max_gap, smooth=args.smooth, roi=args.roi,
                               include_no_face=args.include_no_face)
        scan = _scan(args)
        for p in getattr(scan, "problems", []) or []:
            print(f"scan problem: {p.path}: {p.reason}", file=sys.stderr)
        if not scan.clips:
            return _err(f"no usable clips found for {args.dataset} in {args.root}"
                        + (f" ({len(scan.problems)} file(s) could not be used, listed above)" if scan.problems else ""))
        result = run_prepare(scan, args.out, config, workers=args.workers, limit=args.limit, shard=shard,
                             retry_failed=args.retry_failed, progress=not args.no_progress,
                             decode_threads=args.decode_threads)
    except PrepareError as e:
        return _err(str(e))
    except CacheError as e:
        return _err(str(e))
    cache = Cache(args.out)
    preview = None
    if args.preview:
        target = Path(args.out) / "preview.png" if args.preview is True else Path(args.preview)
        preview = write_preview(cache, target)
        if preview is None:
            print("preview: no clip with frames to show", file=sys.stderr)
    _print_summary(result, cache, preview)
    usable = sum(1 for r in cache.all_records() if is_usable(r))
    if usable == 0 and result.selected:
        print("mrpn prepare: nothing usable was produced (see the failures above)", file=sys.stderr)
        return 1
    return 0


__all__ = ["PrepareConfig", "PrepareError", "RunResult", "prepare_clip", "process_clip", "run_prepare",
           "write_preview", "merge", "shard_of", "parse_shard", "add_arguments", "main"]
