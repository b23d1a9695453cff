"""Dataset adapters: find the labelled files of a corpus on disk and describe them as `Clip` records.

Scanning reads file names, folder names, sizes and small CSV files only; it never decodes media,
so it takes well under a second for RAVDESS and a few seconds for the FER2013 CSV. Files that
cannot be used are returned as `Problem` entries (the scan goes on); a missing root, an unknown
option or a root without a single usable file raises `DatasetError`.

Layouts understood
------------------
RAVDESS (`scan_ravdess`, classes = emotion code - 1)
    Any tree of files named `MM-VV-EE-II-SS-RR-AA.ext`: modality (01 audio-video, 02 video-only,
    03 audio-only), vocal channel (01 speech, 02 song), emotion, intensity, statement, repetition,
    actor (odd = male). The original download (`Actor_NN/` folders, flat or nested at any depth)
    and the project's shared copy (`audio16k/Actor_NN/03-….flac`, `audio48k/Actor_NN/03-….wav`,
    `video/Actor_NN/0[12]-….mp4`) both work. A take is identified by the six trailing fields,
    which are also the clip id (`01-03-01-01-01-01`).
      modality="audio": one clip per take from a `03-…` wav or flac; when a take exists in several
        files (e.g. a 16 kHz flac and a 48 kHz wav) the first by sorted path is kept.
      modality="av": one clip per take from `01-…mp4` (audio from the container, `audio=None`), or
        else from `02-…mp4` (silent) with the take's `03-…` file as `audio` (wav preferred over
        flac, then sorted path). A `02-…` without any `03-…` is a Problem.
    Song takes (vocal channel 02) are left out unless `include_song=True`.

CREMA-D (`scan_cremad`)
    `VideoFlash/AAAA_SSS_EEE_LL.flv` (or `VideoMP4/….mp4` as a fallback) and
    `AudioWAV/AAAA_SSS_EEE_LL.wav`: actor 1001-1091, sentence code, emotion
    (NEU, HAP, SAD, ANG, FEA, DIS), level (LO, MD, HI, XX). Genders come from
    `VideoDemographics.csv` (ActorID, Age, Sex, Race, Ethnicity) when it is present.
    The folders may sit directly under the root or one level deeper.

FER2013 (`scan_fer2013`, `load_fer2013_arrays`)
    Either the image-folder layout `train|test/<class>/*.jpg` (48x48 grayscale) or the Kaggle
    CSV `fer2013.csv` with columns `emotion,pixels,Usage` (Usage Training = train,
    PublicTest + PrivateTest = test). A CSV row is referenced as `Clip.video = "<csv>#<row>"`
    (row = 0-based data row index).

Custom manifest (`scan_manifest`)
    A CSV with header `video,audio,label,speaker` (optional columns: `id`, `gender`); either media
    column may be empty in a row, not both. Relative paths are resolved against the CSV's folder.
    The paths are only ever read; nothing is written based on them.
"""
from __future__ import annotations

import os
from typing import Any

from mrpn.data.datasets.common import (AUDIO_EXTS, CLASSES, FER_CSV_TO_INDEX, IMAGE_EXTS, VIDEO_EXTS, DatasetError,
                                       Scan)
from mrpn.data.datasets.cremad import parse_cremad_name, read_cremad_genders, scan_cremad
from mrpn.data.datasets.fer2013 import load_fer2013_arrays, scan_fer2013
from mrpn.data.datasets.manifest import scan_manifest
from mrpn.data.datasets.ravdess import parse_ravdess_name, scan_ravdess

__all__ = ["CLASSES", "FER_CSV_TO_INDEX", "AUDIO_EXTS", "VIDEO_EXTS", "IMAGE_EXTS", "DatasetError", "Scan", "scan",
           "scan_ravdess", "scan_cremad", "scan_fer2013", "scan_manifest", "load_fer2013_arrays",
           "parse_ravdess_name", "parse_cremad_name", "read_cremad_genders"]

# A corpus = one adapter module here + one entry in this table (+ its CLASSES and default folds).
ADAPTERS = {"ravdess": scan_ravdess, "cremad": scan_cremad, "fer2013": scan_fer2013, "fer": scan_fer2013,
            "custom": scan_manifest, "manifest": scan_manifest}


def scan(name: str, root: str | os.PathLike, **options: Any) -> Scan:
    """Scan dataset `name` ("ravdess", "cremad", "fer2013", "custom") under `root`."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in ADAPTERS:
        raise DatasetError(f"unknown dataset {name!r}; expected one of ravdess, cremad, fer2013, custom")
    return ADAPTERS[key](root, **options)
