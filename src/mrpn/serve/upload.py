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


class _Parts:
    """python-multipart callbacks: the part named `field` goes to `tmp` (at most `max_bytes`), other
    small fields are kept as text."""

    def __init__(self, tmp: Path, max_bytes: int, field: str):
        self.tmp, self.max_bytes, self.field = tmp, max_bytes, field
        self.hname = self.hval = b""
        self.headers: dict[bytes, bytes] = {}
        self.out = None
        self.other: list | None = None
        self.size, self.name, self.done, self.head = 0, None, False, b""
        self.fields: dict[str, str] = {}

    def callbacks(self) -> dict:
        return {f"on_{k}": getattr(self, k) for k in ("part_begin", "header_field", "header_value", "header_end",
                                                        "headers_finished", "part_data", "part_end")}

    def part_begin(self):
        self.headers, self.hname, self.hval = {}, b"", b""

    def header_field(self, data, start, end):
        self.hname += data[start:end]

    def header_value(self, data, start, end):
        self.hval += data[start:end]

    def header_end(self):
        self.headers[self.hname.lower()] = self.hval
        self.hname, self.hval = b"", b""

    def headers_finished(self):
        from python_multipart.multipart import parse_options_header

        _, p = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = p.get(b"name", b"").decode("utf-8", "replace")
        if name == self.field and self.out is None and not self.done:
            self.name = p.get(b"filename", b"").decode("utf-8", "replace")
            self.out, self.other = open(self.tmp, "wb"), None
        else:
            self.other = [name, b""]

    def part_data(self, data, start, end):
        chunk = data[start:end]
        if self.out is not None:
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise UploadError(413, f"upload too large: more than {self.max_bytes / 1e6:.0f} MB (the limit)")
            if len(self.head) < 16:
                self.head += chunk[:16]
            self.out.write(chunk)
        elif self.other is not None:
            self.other[1] += chunk
            if len(self.other[1]) > MAX_OTHER_FIELD:
                raise UploadError(413, f"form field {display_name(self.other[0])!r} is too large")

    def part_end(self):
        if self.out is not None:
            self.out.close()
            self.out, self.done = None, True
        elif self.other is not None:
            self.fields[self.other[0]] = self.other[1].decode("utf-8", "replace")
            self.other = None


async def receive_upload(request, folder: Path, max_bytes: int, field: str = "file") -> Upload:
    """Stream the multipart body of `request` into `folder`; raise UploadError with an HTTP status."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(400, f"send the video as multipart/form-data in a field named '{field}'")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
        raise UploadError(413, f"upload too large: {int(length) / 1e6:.1f} MB, the limit is {max_bytes / 1e6:.0f} MB")
    st = _Parts(folder / "upload.part", max_bytes, field)
    parser = MultipartParser(params[b"boundary"], callbacks=st.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        raise
    except Exception as e:  # a malformed body: python-multipart raises its own errors
        raise UploadError(400, f"malformed multipart body ({type(e).__name__})") from None
    finally:
        if st.out is not None:
            st.out.close()
    if not st.done:
        raise UploadError(400, f"no file in the upload: the multipart field must be named '{field}'")
    if st.size == 0:
        raise UploadError(422, f"{display_name(st.name)}: empty file (0 bytes)")
    path = st.tmp.rename(folder / ("upload" + _suffix(st.head)))
    return Upload(path=path, name=display_name(st.name), size=st.size, fields=st.fields)
