"""Dataset adapters: find the labelled files of a corpus on disk and describe them as `Clip` records.

Scanning reads file names, folder names, sizes and small CSV files only; it never decodes media,
so it takes well under a second for RAVDESS and a few seconds for the FER2013 CSV. Files that
cannot be used are returned as `Problem` entries (the scan goes on); a missing root, an unknown
option or a root without a single usable file raises `DatasetError`.

Layouts understood: one module per corpus, each documenting its own layout:
`ravdess` (`scan_ravdess`), `cremad` (`scan_cremad`), `fer2013` (`scan_fer2013`,
`load_fer2013_arrays`) and `manifest` (`scan_manifest`, own data as a CSV); `common` holds the class
lists, the `Scan` result and the file helpers they share.
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
