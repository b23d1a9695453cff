"""One source of truth: which modalities, model kinds and aggregators exist.

Everything that needs to know "which modalities does an N2 use", "how is an audio segment made",
"what are the aggregator choices" asks this module: config validation, the CLI choices, the
trainer (`training/run.py`), the data loader and `collate`, the `Predictor`, ONNX export and the
model builder. Nothing else in src/ spells a modality or model-kind name (a test checks).

* A **modality** (`ModalitySpec`) is a key in batches and state dicts (`batch[m]`, `batch[m + "_len"]`,
  `model.branches[m]`) plus its per-element preprocessing, which lives in `mrpn/features/<modality>.py`:
  choose the elements (frames, segments) of a time range, turn them into normalised tensors
  [N, C, H, W], and the extractor F_m that embeds one element (paper eq. 1).
* A **model kind** (`ModelKind`) is a network of the paper over some modalities: a uni-modal baseline
  (Table 1 VM/AM) or a FusionNet variant (N0/N1/N2, eqs. 7-9; N1/N2 have uni-modal side heads).
* An **aggregator** (`AggregatorSpec`) is an A_m of section 5.6: a class in `models/aggregators.py`
  and the ModelConfig fields passed to it.

This module imports only the feature code of the built-in modalities (pure tensor functions), so
config, data, models, training and inference can all depend on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from mrpn.features import audio as _audio
from mrpn.features import video as _video


@dataclass(frozen=True)
class ModalitySpec:
    """A modality and its per-element preprocessing (see `mrpn/features/video.py` for the contract).

    Functions take an example `ex` (anything with the arrays the modality reads, e.g.
    `data.loader.Example`) and the `DataConfig` `d`; element keys are an int64 array, one row per element.
    """
    name: str                                   # batch / state-dict key
    title: str                                  # "video": used in messages
    axis: str                                   # sequence axis name ("frames"): ONNX dynamic axis
    duration: Callable[[Any, Any], float]       # seconds of this modality in ex (0 when absent)
    present: Callable[[Any], bool]              # ex carries this modality's data at all
    usable: Callable[[Any], bool]               # ... and it can be used (e.g. a face was found)
    select: Callable[[Any, float, float, Any], Any]           # keys of the elements in [t0, t1)
    inputs: Callable[[Any, Any, Any, Any], Any]               # (ex, keys, d, rng|None) -> [N, C, H, W]
    element_shape: Callable[[Any], tuple[int, ...]]           # (C, H, W) of one element for config d
    extractor: str | Callable[[Any], Any]       # ModelConfig prefix of a ResNet18 ("video"), or cfg -> nn.Module
    select_windows: Callable[[Any, list, Any], list] | None = None  # keys of many windows at once
    setting: Callable[[Any], str | None] = lambda d: None      # tag in run labels ("AO", "VA")
    setting_order: int = 0                      # tags are sorted by this (the paper writes AO before VA)
    missing: str = ""                           # what a window lacks when unusable ("detected face")
    absent_note: str = ""                       # note when present but not usable in a whole file
    display: str = ""                           # the paper's word in tables and figures ("image")

    def windows(self, ex, windows: list[tuple[float, float]], d) -> list:
        """Keys of each window; one `select` per window unless the modality shares elements."""
        if self.select_windows is not None:
            return self.select_windows(ex, windows, d)
        return [self.select(ex, s, e, d) for s, e in windows]


@dataclass(frozen=True)
class ModelKind:
    """A network of the paper: `variant` None = UniModalNet (VM/AM), else the FusionNet variant."""
    name: str
    label: str                                  # for run labels and reports ("N2 (MRPN)")
    modalities: tuple[str, ...]                 # in the order of their features in Concatenate (eq. 3)
    variant: str | None = None                  # "n0" / "n1" / "n2" of FusionNet (models/fusion.py)
    side_heads: bool = False                    # uni-modal heads s_m (eqs. 8-9): usable with one modality

    @property
    def fusion(self) -> bool:
        return self.variant is not None


@dataclass(frozen=True)
class AggregatorSpec:
    """A_m: `cls` is a class or a class name in `mrpn.models.aggregators`; `options` maps its extra
    constructor arguments to ModelConfig fields."""
    name: str
    cls: str | Callable[..., Any]
    options: dict[str, str] = field(default_factory=dict)


MODALITIES: dict[str, ModalitySpec] = {}
KINDS: dict[str, ModelKind] = {}
AGGREGATORS: dict[str, AggregatorSpec] = {}


def register_modality(spec: ModalitySpec) -> ModalitySpec:
    MODALITIES[spec.name] = spec
    return spec


def register_kind(kind: ModelKind) -> ModelKind:
    unknown = [m for m in kind.modalities if m not in MODALITIES]
    if unknown:
        raise ValueError(f"model kind {kind.name!r}: unknown modalities {unknown}; register them first")
    KINDS[kind.name] = kind
    return kind


def register_aggregator(spec: AggregatorSpec) -> AggregatorSpec:
    AGGREGATORS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a modality, kind or aggregator registered under `name` (tests register toy ones)."""
    for table in (KINDS, AGGREGATORS, MODALITIES):
        table.pop(name, None)


def kind(name: str) -> ModelKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}; choose one of {', '.join(KINDS)}") from None


def modality(name: str) -> ModalitySpec:
    try:
        return MODALITIES[name]
    except KeyError:
        raise ValueError(f"unknown modality {name!r}; registered: {', '.join(MODALITIES)}") from None


def modalities_of(kind_name: str) -> tuple[str, ...]:
    return kind(kind_name).modalities


def modality_list(text: str) -> list[str]:
    """Modality names from a comma-separated setting such as `train.freeze_extractors` ("a", "v,a")."""
    return [m for m in text.replace(" ", "").split(",") if m]


def unimodal_kind(m: str) -> ModelKind:
    """The uni-modal baseline over modality m (late fusion trains it first, then freezes it)."""
    for k in KINDS.values():
        if not k.fusion and k.modalities == (m,):
            return k
    raise ValueError(f"no uni-modal model kind is registered for modality {m!r}")


def display_name(m: str) -> str:
    """How tables and figures name modality m (its `display` word, else its title)."""
    spec = MODALITIES.get(m)
    return (spec.display or spec.title) if spec else m


def modality_sets(kind_name: str) -> list[tuple[str, ...]]:
    """The modality sets a model can score: all of them, plus each one alone when it has side heads."""
    k = kind(kind_name)
    sets = [k.modalities]
    if k.side_heads and len(k.modalities) > 1:
        sets += [(m,) for m in k.modalities]
    return sets


# ---------------------------------------------------------------------------------------------
# The built-in modalities, kinds and aggregators
# ---------------------------------------------------------------------------------------------

V, A = "v", "a"
DEFAULT_KIND = "n2"   # ModelConfig.kind's default: the paper's MRPN

register_modality(ModalitySpec(
    name=V, title="video", axis="frames", duration=_video.duration, present=_video.present,
    usable=_video.usable, select=_video.select, inputs=_video.inputs, element_shape=_video.element_shape,
    extractor="video", select_windows=_video.select_windows, setting=_video.setting, setting_order=1,
    missing="detected face", absent_note="no face found in any frame", display="image"))
register_modality(ModalitySpec(
    name=A, title="audio", axis="segments", duration=_audio.duration, present=_audio.present,
    usable=_audio.usable, select=_audio.select, inputs=_audio.inputs, element_shape=_audio.element_shape,
    extractor="audio", setting=_audio.setting, setting_order=0, missing="audio"))

register_kind(ModelKind("vm", "VM", (V,)))
register_kind(ModelKind("am", "AM", (A,)))
register_kind(ModelKind("n0", "N0", (V, A), variant="n0"))
register_kind(ModelKind("n1", "N1", (V, A), variant="n1", side_heads=True))
register_kind(ModelKind("n2", "N2 (MRPN)", (V, A), variant="n2", side_heads=True))

register_aggregator(AggregatorSpec("lstm", "LSTMAggregator"))
register_aggregator(AggregatorSpec("bilstm", "BiLSTMAggregator"))
register_aggregator(AggregatorSpec("transformer", "TransformerAggregator",
                                   {"heads": "agg_heads", "pos": "agg_pos", "max_len": "agg_max_len"}))
