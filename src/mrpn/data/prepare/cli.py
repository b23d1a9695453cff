"""`mrpn prepare` command line (see docs/PREPARE.md)::

    mrpn prepare DATASET ROOT --out DIR [options]     prepare (resumes; --shard i/n for a subset)
    mrpn prepare merge OUT SHARD_DIR [SHARD_DIR ...]  combine shard caches into one cache
    mrpn prepare verify OUT                           check checksums and records, rebuild manifest + summary
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from mrpn.argtypes import int_at_least, nonneg_float, nonneg_int, positive_int
from mrpn.data.cache import Cache, CacheError, is_usable
from mrpn.data.faces import DETECTORS
from mrpn.data.prepare.clip import DATASETS, PrepareConfig, PrepareError
from mrpn.data.prepare.merge import merge, verify
from mrpn.data.prepare.preview import PREVIEW_SOFTWARE, write_preview
from mrpn.data.prepare.run import RunResult, parse_shard, run_prepare


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
    p.add_argument("--face-size", type=int_at_least(8), default=112, metavar="PX", help="side of the square face crops (112)")
    p.add_argument("--gray", action="store_true", help="store grey crops [T,S,S,1] instead of RGB")
    p.add_argument("--detect-every", type=positive_int, default=5, metavar="K", help="run the detector on every K-th frame (5)")
    p.add_argument("--detect-width", type=nonneg_int, default=320, metavar="PX",
                   help="downscale frames to this width for detection (320; 0 = full resolution)")
    p.add_argument("--margin", type=nonneg_float, default=0.25,
                   help="added on every side of the face box, as a fraction of its size (0.25)")
    p.add_argument("--max-gap", type=nonneg_int, default=15, metavar="FRAMES",
                   help="interpolate boxes between detections at most this many frames apart (15)")
    p.add_argument("--smooth", type=positive_int, default=9, metavar="FRAMES",
                   help="moving-average window for the boxes, in frames (9; 1 = off)")
    p.add_argument("--roi", type=nonneg_float, default=2.0, metavar="X",
                   help="first search a window X times the last face, rescaled (2.0; 0 = always the whole frame)")
    p.add_argument("--edge-pad", type=nonneg_float, default=0.15, metavar="X",
                   help="a whole-frame detection at the frame's border is searched again with the edges "
                        "repeated by X x the shorter side, so a face cut by the edge is boxed at its size "
                        "(0.15; 0 = off)")
    p.add_argument("--workers", type=positive_int, default=2, help="worker processes (2)")
    p.add_argument("--decode-threads", type=nonneg_int, default=None, metavar="N",
                   help="PyAV decoding threads per worker (default: cores / workers)")
    p.add_argument("--limit", type=nonneg_int, default=None, metavar="N", help="only the first N clips (by id)")
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


def _merge(args: argparse.Namespace) -> int:
    if not args.more:
        return _err("merge needs: mrpn prepare merge OUT SHARD_DIR [SHARD_DIR ...]")
    cache = merge(args.root, args.more)
    bad = cache.verify()
    s = cache.records(status=None, include_flagged=True)
    print(f"merged into {cache.root}: {len(s)} clip(s), {len(bad)} bad")
    return 0 if any(is_usable(r) for r in s) else 1


def _verify(args: argparse.Namespace) -> int:
    cache, bad, unreadable = verify(args.root)
    for b in bad:
        print(f"bad: {cache.npz_path(b)} missing or corrupted (a re-run of prepare redoes it)")
    for path, cause in unreadable.items():
        print(f"bad: {path}: unreadable record: {cause} (listed in manifest.json 'unreadable'; "
              "a re-run of prepare redoes the clip)")
    n_bad = len(bad) + len(unreadable)
    print(f"{cache.root}: {len(cache.ids())} record(s), {n_bad} bad; manifest.json and summary.json rewritten")
    return 1 if n_bad else 0


def _prepare(args: argparse.Namespace) -> RunResult:
    if args.dataset not in DATASETS:
        raise PrepareError(f"unknown dataset {args.dataset!r}; choose one of {', '.join(DATASETS)} (or merge, verify)")
    if not args.out:
        raise PrepareError("--out DIR is required")
    if args.more:
        raise PrepareError(f"unexpected arguments: {' '.join(args.more)}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise PrepareError(f"--out {args.out}: is a file, not a folder; give a folder for the cache")
    shard = parse_shard(args.shard)
    detector = args.detector or ("none" if args.dataset == "fer2013" else "opencv")
    config = PrepareConfig(detector=detector, face_size=args.face_size, gray=args.gray,
                           detect_every=args.detect_every, detect_width=args.detect_width, margin=args.margin,
                           max_gap=args.max_gap, smooth=args.smooth, roi=args.roi, edge_pad=args.edge_pad,
                           include_no_face=args.include_no_face)
    scan = _scan(args)
    for p in getattr(scan, "problems", []) or []:
        print(f"scan problem: {p.path}: {p.reason}", file=sys.stderr)
    if not scan.clips:
        raise PrepareError(f"no usable clips found for {args.dataset} in {args.root}"
                           + (f" ({len(scan.problems)} file(s) could not be used, listed above)" if scan.problems else ""))
    return run_prepare(scan, args.out, config, workers=args.workers, limit=args.limit, shard=shard,
                       retry_failed=args.retry_failed, progress=not args.no_progress,
                       decode_threads=args.decode_threads)


def _preview(args: argparse.Namespace, cache: Cache) -> Path | None:
    """The contact sheet; outside the cache an existing file is replaced only when it is an
    earlier preview (PNG tEXt `Software: mrpn prepare`)."""
    from mrpn.io import png_text

    target = Path(args.out) / "preview.png" if args.preview is True else Path(args.preview)
    inside = Path(args.out).resolve() in target.resolve().parents
    if target.exists() and not inside and png_text(target).get("Software") != PREVIEW_SOFTWARE:
        print(f"mrpn prepare: --preview {target}: exists and is not an earlier mrpn preview; not replaced "
              "(choose another path)", file=sys.stderr)
        return None
    preview = write_preview(cache, target)
    if preview is None:
        print("preview: no clip with frames to show", file=sys.stderr)
    return preview


def main(args: argparse.Namespace) -> int:
    try:
        if args.dataset == "merge":
            return _merge(args)
        if args.dataset == "verify":
            return _verify(args)
        result = _prepare(args)
    except (PrepareError, CacheError) as e:
        return _err(str(e))
    cache = Cache(args.out)
    preview = _preview(args, cache) if args.preview else None
    _print_summary(result, cache, preview)
    usable = sum(1 for r in cache.all_records() if is_usable(r))
    if usable == 0 and result.selected:
        print("mrpn prepare: nothing usable was produced (see the failures above)", file=sys.stderr)
        return 1
    return 0
