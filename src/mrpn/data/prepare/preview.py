"""`mrpn prepare --preview`: a contact sheet of face crops, so a person can check they are faces."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from mrpn.data.cache import Cache, CacheError, is_usable
from mrpn.io import atomic_write_bytes

PREVIEW_SOFTWARE = "mrpn prepare"


def with_text(png: bytes, key: str, value: str) -> bytes:
    """`png` with a tEXt chunk after IHDR (8-byte signature + 25-byte IHDR chunk): a marker that
    lets a re-run recognise its own earlier preview."""
    body = key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png[:33] + chunk + png[33:]


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
    atomic_write_bytes(path, with_text(png.tobytes(), "Software", PREVIEW_SOFTWARE))
    return Path(path)


