"""Receive one multipart upload into a private temporary folder, in chunks, with a size limit.

Starlette's own form parser spools the whole body before the handler runs; this parser streams
the request body through python-multipart and stops at the limit, so an oversize upload is refused
after at most `max_bytes` (plus one network chunk) reached the disk. Nothing from the client's file
name is used in a path: the file is `upload<suffix>` where the suffix comes from the content's magic
bytes (images need one, since `is_image` goes by suffix; PyAV probes the rest by content).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"BM", ".bmp"))
MAX_OTHER_FIELD = 64 * 1024


class UploadError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    path: Path
    name: str           # the client's file name, cleaned, for display only
    size: int
    fields: dict[str, str]


def display_name(raw: str | None) -> str:
    """The last path component, without control or odd characters, at most 120 characters."""
    base = re.split(r"[\\/]", raw or "")[-1]
    base = re.sub(r"[^\w.\- ()+,]", "_", base).strip(" .")
    return base[:120] or "upload"


def _suffix(head: bytes) -> str:
    return next((s for magic, s in _MAGIC if head.startswith(magic)), ".media")


async def receive_upload(request, folder: Path, max_bytes: int, field: str = "file") -> Upload:
    """Stream the multipart body of `request` into `folder`; raise UploadError with an HTTP status."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(400, f"send the video as multipart/form-data in a field named '{field}'")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
        raise UploadError(413, f"upload too large: {int(length) / 1e6:.1f} MB, the limit is {max_bytes / 1e6:.0f} MB")

    st = {"hname": b"", "hval": b"", "headers": {}, "out": None, "other": None, "size": 0, "name": None,
          "done": False, "head": b""}
    fields: dict[str, str] = {}
    tmp = folder / "upload.part"

    def on_part_begin():
        st["headers"], st["hname"], st["hval"] = {}, b"", b""

    def on_header_field(data, start, end):
        st["hname"] += data[start:end]

    def on_header_value(data, start, end):
        st["hval"] += data[start:end]

    def on_header_end():
        st["headers"][st["hname"].lower()] = st["hval"]
        st["hname"], st["hval"] = b"", b""

    def on_headers_finished():
        _, p = parse_options_header(st["headers"].get(b"content-disposition", b""))
        name = p.get(b"name", b"").decode("utf-8", "replace")
        if name == field and st["out"] is None and not st["done"]:
            st["name"] = p.get(b"filename", b"").decode("utf-8", "replace")
            st["out"] = open(tmp, "wb")
            st["other"] = None
        else:
            st["other"] = [name, b""]

    def on_part_data(data, start, end):
        chunk = data[start:end]
        if st["out"] is not None:
            st["size"] += len(chunk)
            if st["size"] > max_bytes:
                raise UploadError(413, f"upload too large: more than {max_bytes / 1e6:.0f} MB (the limit)")
            if len(st["head"]) < 16:
                st["head"] += chunk[:16]
            st["out"].write(chunk)
        elif st["other"] is not None:
            st["other"][1] += chunk
            if len(st["other"][1]) > MAX_OTHER_FIELD:
                raise UploadError(413, f"form field {display_name(st['other'][0])!r} is too large")

    def on_part_end():
        if st["out"] is not None:
            st["out"].close()
            st["out"], st["done"] = None, True
        elif st["other"] is not None:
            fields[st["other"][0]] = st["other"][1].decode("utf-8", "replace")
            st["other"] = None

    parser = MultipartParser(params[b"boundary"], callbacks={
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        raise
    except Exception as e:  # a malformed body: python-multipart raises its own errors
        raise UploadError(400, f"malformed multipart body ({type(e).__name__})") from None
    finally:
        if st["out"] is not None:
            st["out"].close()
    if not st["done"]:
        raise UploadError(400, f"no file in the upload: the multipart field must be named '{field}'")
    if st["size"] == 0:
        raise UploadError(422, f"{display_name(st['name'])}: empty file (0 bytes)")
    path = tmp.rename(folder / ("upload" + _suffix(st["head"])))
    return Upload(path=path, name=display_name(st["name"]), size=st["size"], fields=fields)
