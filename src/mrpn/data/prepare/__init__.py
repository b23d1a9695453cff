"""`mrpn prepare`: media files -> a fast, resumable feature cache (see docs/PREPARE.md).

    clip.py     one clip: decode, track and crop the face, resample the audio, write atomically
    run.py      a run: shards, resume, worker pool, manifest
    guard.py    the cache marker and the one-writer lock (docs/RELIABILITY.md)
    merge.py    merge shard caches; verify checksums and records
    preview.py  contact sheet of face crops
    cli.py      the command line
"""
from mrpn.data.prepare.cli import add_arguments, main
from mrpn.data.prepare.clip import (
                                    DATASETS,
                                    SHORT_S,
                                    PrepareConfig,
                                    PrepareError,
                                    failed_record,
                                    prepare_clip,
                                    process_clip,
)
from mrpn.data.prepare.merge import merge, verify
from mrpn.data.prepare.preview import write_preview
from mrpn.data.prepare.run import RunResult, parse_shard, run_prepare, shard_of

__all__ = [
                                    "DATASETS",
                                    "SHORT_S",
                                    "PrepareConfig",
                                    "PrepareError",
                                    "RunResult",
                                    "add_arguments",
                                    "failed_record",
                                    "main",
                                    "merge",
                                    "parse_shard",
                                    "prepare_clip",
                                    "process_clip",
                                    "run_prepare",
                                    "shard_of",
                                    "verify",
                                    "write_preview",
]
