"""argparse types that check a value at parse time, so a wrong one ends in argparse's one-line
usage error (exit status 2) instead of a traceback later, and before any folder is created."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, low: float | None, low_open: bool, what: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number")
        if low is not None and (v <= low if low_open else v < low):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {what}")
        return v
    parse.__name__ = kind.__name__     # argparse names the type in its messages
    return parse


positive_int = _number(int, 0, True, "> 0")
nonneg_int = _number(int, 0, False, ">= 0")
positive_float = _number(float, 0.0, True, "> 0")
nonneg_float = _number(float, 0.0, False, ">= 0")


def int_at_least(n: int) -> Callable[[str], int]:
    return _number(int, n, False, f">= {n}")


def fold_spec(text: str) -> str:
    """'all', or fold numbers and ranges like '1,3,5-7' (each >= 1, ranges ascending)."""
    t = text.strip()
    if t == "all":
        return t
    parts = [x.strip() for x in t.split(",")]
    for part in parts:
        a, _, b = part.partition("-")
        if not a.isdigit() or (b and not b.isdigit()) or (_ and not b):
            raise argparse.ArgumentTypeError(f"{text!r}: expected 'all' or fold numbers like 1,3,5-7")
        if int(a) < 1 or (b and int(b) < int(a)):
            raise argparse.ArgumentTypeError(f"{text!r}: folds count from 1 and a range a-b needs a <= b")
    return t


__all__ = ["fold_spec", "int_at_least", "nonneg_float", "nonneg_int", "positive_float", "positive_int"]
