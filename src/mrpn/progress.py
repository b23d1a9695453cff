"""Progress bars: tqdm on a terminal, a plain line every `interval` seconds anywhere else.

On a terminal tqdm redraws one line with carriage returns. Redirected to a log file, the same bar
writes thousands of `\\r` frames into it; there the bar prints a complete line at most every 30 s
(and one when it finishes), so a log stays readable with `less` and `grep`.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable

from tqdm import tqdm

LOG_INTERVAL_S = 30.0


class _NoCarriageReturn:
    """File wrapper that drops the bare "\\r" tqdm writes when it clears a line."""

    def __init__(self, fp: Any):
        self.fp = fp

    def write(self, s: str) -> Any:
        s = s.replace("\r", "")
        return self.fp.write(s) if s else 0

    def flush(self) -> None:
        getattr(self.fp, "flush", lambda: None)()


class _LineBar(tqdm):
    """tqdm that writes whole lines, at most one per `mininterval` (set_postfix refreshes would
    otherwise print one per step), plus the final count when it closes."""

    def display(self, msg: str | None = None, pos: int | None = None, force: bool = False) -> bool:
        if msg == "":  # tqdm clears a finished bar (leave=False) by drawing an empty string
            return True
        now = self._time()
        last = getattr(self, "_line_t", None)
        if not force and last is not None and now - last < self.mininterval:
            return True
        line = (msg if msg is not None else self.__str__()).strip()
        if line and line != getattr(self, "_last_line", None):
            self._line_t, self._last_line = now, line
            self.fp.write(line + "\n")
            self.fp.flush()
        return True

    def clear(self, nolock: bool = False) -> None:
        """tqdm.write() clears bars before printing; a line-based bar has nothing on screen to clear."""

    def close(self) -> None:
        if not self.disable and not getattr(self, "_closed", False):
            self._closed = True
            self.display(force=True)  # the final count, once
        self.leave = False  # every line already ends in a newline; nothing to clear
        super().close()


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress(iterable: Iterable | None = None, file: Any = None, **kwargs: Any) -> tqdm:
    """A tqdm bar (same arguments) that is line-based when `file` (default stderr) is not a terminal."""
    file = file if file is not None else sys.stderr
    if is_terminal(file):
        return tqdm(iterable, file=file, dynamic_ncols=True, **kwargs)
    kwargs.setdefault("mininterval", LOG_INTERVAL_S)
    kwargs.pop("dynamic_ncols", None)
    kwargs.setdefault("bar_format", "{desc}: {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]")
    return _LineBar(iterable, file=_NoCarriageReturn(file), **kwargs)
