"""The `Clip` record: one labelled example, as the dataset adapters find it on disk.

Only the adapters in `mrpn.data.datasets` make Clips; everything downstream (prepare, loader,
folds, reports) reads them. Paths are absolute strings so a Clip survives a round trip through JSON.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Clip:
    id: str                    # unique within its dataset and safe as a file name, e.g. "01-01-03-01-01-01-01"
    dataset: str               # "ravdess", "cremad", "fer2013", "custom", "synth"
    label: int                 # index into the dataset's class list
    label_name: str            # e.g. "happy"
    actor: str                 # speaker / actor id as a string ("01", "1001")
    gender: str | None = None  # "male", "female" or None when unknown
    video: str | None = None   # path to a video (or an image for FER2013); None for audio-only clips
    audio: str | None = None   # path to a separate audio file; None when audio comes from the video container
    extra: dict[str, Any] = field(default_factory=dict)  # dataset-specific fields (intensity, statement, ...)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Clip":
        return cls(**d)


@dataclass(frozen=True)
class Problem:
    """A file that could not be used, with a reason a person can act on."""
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"
