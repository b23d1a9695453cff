"""Configuration: dataclasses, presets (`paper`, `cpu`), YAML files and `key=value` overrides.

The resolved config is written into every run directory and every checkpoint (nanoGPT style), so
a result can always be traced to the exact settings that produced it. Unknown or mistyped keys are
an error with a suggestion, never silently ignored.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mrpn import registry


class ConfigError(ValueError):
    """A config file or override that cannot be applied; the message says which key and why."""


@dataclass
class DataConfig:
    dataset: str = "ravdess"          # dataset name of the cache (ravdess, cremad, custom, synth, paired)
    cache: str = ""                   # folder written by `mrpn prepare` (audio+video or audio-only)
    fer: str = ""                     # FER2013 root, only for the paired-by-class benchmark (dataset=paired)
    paired_faces: int = 4             # FER2013 faces per clip in the paired benchmark (a short "video")
    paired_fuzzy: float = 0.0         # paired: share of training clips whose faces show neutral/another emotion
    paired_video: float = 0.0         # paired: share of training clips whose faces are one face held as a video
    protocol: str = ""                # fold protocol name or JSON path; "" = the dataset's default
    # video input (paper 4.4 item 1-2)
    face_size: int = 112              # side of the square face crop fed to F_v
    gray: bool = False                # 1-channel faces (FER2013-pretrained extractors expect gray)
    face_margin: float = 0.25         # margin of the face crops (mrpn.data.face_geometry); set by training, used by predict
    video_fps: float = 0.0            # frames per second fed to the model; 0 = every cached frame
    max_frames: int = 0               # cap on frames per clip (0 = no cap), evenly sampled
    spatial_aug: str = "clip"         # "clip": same random params for all frames (Fig. 8 middle); "frame"; "none"
    # audio input (paper 4.4 items 3-4)
    sample_rate: int = 16000
    n_fft: int = 512                  # Hann window of 512 samples
    hop_length: int = 64              # STFT hop of 64 samples -> 256 x 250 per 1 s segment
    segment_s: float = 1.0            # spectrogram segments of one second
    segment_hop_s: float = 0.2        # 0.2 s = audio over-sampling (AO); 1.0 = non-overlapping (WO)
    spec_size: tuple[int, int] = (256, 250)  # (freq, time) per segment; smaller = average-pooled
    audio_frontend: str = "linear"    # "linear" (paper: log-magnitude STFT) or "logmel" (spec_size = mels x frames)
    specaug_freq: int = 0             # SpecAugment (training only): max rows per frequency mask (0 = off)
    specaug_time: int = 0             # max columns per time mask (0 = off)
    specaug_masks: int = 2            # masks of each kind per segment
    # recording conditions on the training wave (beyond the paper; features/acoustics.py): probabilities
    wave_noise: float = 0.0           # noise of a random colour at an SNR ~ U[wave_snr_min, wave_snr_max] dB
    wave_snr_min: float = 0.0
    wave_snr_max: float = 30.0
    wave_reverb: float = 0.0          # a synthetic room (RT60 0.1-1 s)
    wave_lowpass: float = 0.0         # a narrow channel (cut-off 3-7.5 kHz)
    # time augmentation (paper 4.4 items 2 and 4; Table 1 T vs NT)
    time_aug: bool = True
    min_slice_s: float = 1.0          # random slices last at least this long unless the clip is shorter
    include_flagged: bool = False     # train also on clips flagged no_face (off by default)
    workers: int = 2                  # DataLoader worker processes


@dataclass
class TrainConfig:
    strategy: str = "end-to-end"      # "end-to-end" or "late" (uni-modal branches frozen, fusion trained)
    epochs: int = 100
    batch_size: int = 8
    lr: float = 5e-5                  # AdamW, paper 5.2
    weight_decay: float = 1e-2
    schedule: str = "plateau"         # "plateau" (paper 5.2: halve on plateau), "onecycle", "cosine" (per step)
    warmup_epochs: float = 0.0        # cosine: linear warm-up length; onecycle: rise length (0 = 30 % of the run)
    label_smoothing: float = 0.0      # cross-entropy label smoothing (paper: 0)
    mixup: float = 0.0                # mixup Beta(alpha, alpha) on inputs and targets (0 = off)
    inner_val: bool = False           # select the epoch on a pair of training actors, not on the test fold
    inner_actors: str = ""            # with inner_val: these training actors ("23,24") instead of the next fold's pair
    threads: int = 0                  # torch intra-op threads (0 = torch's default); recorded in the run
    lr_patience: int = 10             # halve the lr when val loss has not dropped for this many epochs (5.2)
    lr_factor: float = 0.5
    early_stop: int = 25              # stop when val loss has not dropped for this many epochs (0 = never)
    select: str = "accuracy"          # best checkpoint by validation "accuracy" or "loss", or "last" (no choice)
    seed: int = 0
    precision: str = "auto"           # "auto": bf16 autocast on CPU/CUDA where supported; "fp32"
    channels_last: bool = True
    grad_clip: float = 5.0
    device: str = "auto"              # "auto", "cpu", "cuda", "cuda:1"
    pretrained_v: str = ""            # extractor weights (safetensors) from `mrpn pretrain visual`
    pretrained_a: str = ""            # extractor weights from `mrpn pretrain audio`; "resemblyzer": GE2E's
    freeze_extractors: str = ""       # modalities whose F_m stays fixed ("a", "v", "v,a"): a probe
    feature_views: int = 0            # fixed F_m: run it once per augmented view, not per epoch (0 = off)
    feature_cache: str = ""           # folder keeping those views between runs ("" = in memory only)
    extractor_lr_scale: float = 1.0   # every F_m trains at lr x this (0.1: fine-tune a pretrained F_m gently)
    unimodal_runs: dict = field(default_factory=dict)  # late fusion: {"v": RUN_DIR, "a": RUN_DIR}
    save_features: bool = True        # write validation features.npz for t-SNE


@dataclass
class ModelConfig:
    kind: str = registry.DEFAULT_KIND  # a model kind of mrpn.registry: VM/AM (Table 1), N0/N1/N2 (eqs. 7-9)
    n_classes: int = 8               # RAVDESS 8, CREMA-D 6; number of targets for regression
    task: str = "classification"     # or "regression"
    aggregator: str = "lstm"         # an aggregator of mrpn.registry: lstm, bilstm, transformer (5.6)
    agg_hidden: int = 256
    agg_layers: int = 1
    agg_heads: int = 4               # transformer only
    agg_dropout: float = 0.0         # between LSTM layers / inside transformer layers
    agg_pos: str = "learned"         # transformer positional encoding: "learned" or "sinusoidal"
    agg_max_len: int = 512           # transformer: longest sequence
    fusion_hidden: int = 256         # hidden DenseUnit of Scoring (eq. 2)
    fusion_input_norm: bool = True   # FeatureNorm after Concatenate (eq. 3) or not (eq. 4)
    dropout: float = 0.3             # Scoring dropout
    video_extractor: str = "resnet18"  # "resnet18" (paper 5.2), "cnn" (models/cnn.py) or "facecnn" (models/facecnn.py)
    video_width: int = 64
    video_in_channels: int = 3
    video_stem: str = "imagenet"
    audio_extractor: str = "resnet18"
    audio_width: int = 64
    audio_in_channels: int = 1
    audio_stem: str = "imagenet"
    extractor_dropout: float = 0.0   # Dropout2d inside the "cnn" extractor
    zero_init_residual: bool = False


@dataclass
class Config:
    name: str = ""                    # run name (folder under out)
    out: str = "runs"
    preset: str = "paper"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# Every difference of `cpu` from `paper` is listed here, with its reason, and in docs/CONFIG.md.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "cpu": {
        # 48x48 gray faces: the FER2013 format the visual extractor is pretrained on; 12x fewer pixels.
        "data.face_size": 48, "data.gray": True,
        # 6 fps and at most 16 frames: neighbouring 30 fps frames are near-duplicates; 5x less compute.
        "data.video_fps": 6.0, "data.max_frames": 16,
        # Audio: the recipe of issue 9 (configs/am_recipe.yaml, docs/RESULTS.md section 0). 1 s segments
        # as 64 log-mel bands x 50 frames instead of a 256x250 linear spectrogram: mel bands keep the
        # formant and pitch detail that average pooling a linear spectrogram to 64 rows threw away.
        "data.audio_frontend": "logmel", "data.spec_size": (64, 50),
        # SpecAugment: the from-scratch audio extractor over-fits 1,200 training clips without it.
        "data.specaug_freq": 8, "data.specaug_time": 6,
        # 0.5 s segment hop instead of 0.2 s: still over-sampled (AO), 2.5x fewer segments per clip.
        "data.segment_hop_s": 0.5,
        # Faces: ResNet-18 at a quarter of the width (16 -> 128 channels): ~16x fewer FLOPs. Audio: the
        # 4-block CNN (32-256 channels) of models/cnn.py, which measured 20+ points above a width-16
        # ResNet-18 on the same folds with no pretraining.
        "model.video_width": 16, "model.audio_extractor": "cnn", "model.audio_width": 32,
        # imagenet stem (stride 4) on 48x48: the stride-1 "small" stem measured ~7x slower per image.
        "model.video_in_channels": 1, "model.video_stem": "imagenet",
        "model.agg_hidden": 128, "model.fusion_hidden": 128,
        # Trained from scratch or briefly pretrained, the small nets need a larger step than 5e-5; the
        # measured problem of the old plateau schedule was under-fitting, so a fixed one-cycle run
        # (rise for 30 %, cosine down) of 40 epochs with no early stop, and label smoothing 0.1.
        "train.lr": 2e-3, "train.epochs": 40, "train.batch_size": 32, "train.schedule": "onecycle",
        "train.lr_patience": 5, "train.early_stop": 0, "train.label_smoothing": 0.1,
        # fp32: what every reported result used. bf16 autocast + channels_last measured only 1.07x
        # faster for this preset's step on an idle 2-core AVX512-BF16 CPU (docs/PERFORMANCE.md).
        "train.precision": "fp32", "train.channels_last": False,
    },
}


def _dc_fields(obj) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in fields(obj)}


def _coerce(value: Any, current: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the type of the current value; reject what does not fit."""
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if isinstance(current, int) and not isinstance(current, bool):
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if isinstance(current, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if isinstance(current, tuple):
        if isinstance(value, str):
            value = [v for v in value.replace("x", ",").split(",") if v.strip()]
        try:
            out = tuple(type(c)(v) for c, v in zip(current, value, strict=True))
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {len(current)} values like {current}, got {value!r}") from None
        return out
    if isinstance(current, dict):
        if isinstance(value, str):
            # "v=runs/vm,a=runs/am"
            try:
                value = dict(kv.split("=", 1) for kv in value.split(",") if kv)
            except ValueError:
                raise ConfigError(f"{key}: expected k=v[,k=v], got {value!r}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if isinstance(current, str):
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def set_key(cfg: Config, key: str, value: Any) -> None:
    """Set a dotted key ("train.lr") with type checking and a did-you-mean for typos."""
    if key in RETIRED_KEYS:
        raise ConfigError(f"config key {key!r} was removed: {RETIRED_KEYS[key]}")
    parts = key.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        names = _dc_fields(obj)
        if part not in names:
            where = ".".join(parts[:i]) or "config"
            hint = difflib.get_close_matches(part, names, n=1)
            msg = f"unknown config key {key!r}: {where} has no field {part!r}"
            if hint:
                msg += f" (did you mean {'.'.join(parts[:i] + [hint[0]])!r}?)"
            raise ConfigError(msg)
        if i == len(parts) - 1:
            current = getattr(obj, part)
            if dataclasses.is_dataclass(current):
                if not isinstance(value, dict):
                    raise ConfigError(f"{key}: expected a section (mapping), got {value!r}")
                for k, v in value.items():
                    set_key(cfg, f"{key}.{k}", v)
            else:
                setattr(obj, part, _coerce(value, current, key))
        else:
            obj = getattr(obj, part)
            if not dataclasses.is_dataclass(obj):
                raise ConfigError(f"unknown config key {key!r}: {'.'.join(parts[:i + 1])} is not a section")


def apply_mapping(cfg: Config, mapping: dict[str, Any], prefix: str = "") -> None:
    for k, v in mapping.items():
        key = f"{prefix}{k}"
        target = cfg
        try:
            for p in key.split("."):
                target = getattr(target, p)
        except AttributeError:
            target = None
        if isinstance(v, dict) and dataclasses.is_dataclass(target):
            apply_mapping(cfg, v, prefix=key + ".")
        else:
            set_key(cfg, key, v)


def load_config(preset: str = "paper", file: str | None = None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> Config:
    """Resolve a config: defaults <- preset <- base (a saved config dict) <- YAML file <- overrides."""
    cfg = Config()
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    cfg.preset = preset
    for k, v in PRESETS[preset].items():
        set_key(cfg, k, v)
    if base:
        apply_mapping(cfg, base)
    if file:
        import yaml

        p = Path(file)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level")
        if "preset" in data and data["preset"] != preset:
            return load_config(data.pop("preset"), None, overrides, {**(base or {}), **data})
        apply_mapping(cfg, data)
    for ov in overrides or []:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r} is not of the form key=value (e.g. train.lr=1e-4)")
        k, v = ov.split("=", 1)
        set_key(cfg, k.strip(), _parse_scalar(v.strip()))
    from mrpn.config_checks import validate  # the checks live beside, to keep this module small

    validate(cfg)
    return cfg


# Keys that older versions wrote into run folders and checkpoints and that no longer exist (a file
# or override that sets one is still an error; a saved config that carries one still loads).
RETIRED_KEYS = {
    "train.log_every": "progress is printed as plain lines every 30 s when output is not a terminal",
}


# Keys added after configs were first saved, with the value that reproduces the older behaviour: a
# checkpoint or run folder written before a key existed is rebuilt with this value, not with what
# today's preset says (which may have moved on).
LEGACY_DEFAULTS: dict[str, Any] = {
    "data.audio_frontend": "linear", "data.specaug_freq": 0, "data.specaug_time": 0,
    "model.audio_extractor": "resnet18", "model.video_extractor": "resnet18", "model.extractor_dropout": 0.0,
    "data.face_margin": 0.25,
    "train.schedule": "plateau", "train.warmup_epochs": 0.0, "train.label_smoothing": 0.0,
    "train.mixup": 0.0, "train.inner_val": False, "train.threads": 0, "train.freeze_extractors": "",
    "train.feature_views": 0, "train.feature_cache": "", "train.extractor_lr_scale": 1.0,
    "data.paired_fuzzy": 0.0, "data.paired_video": 0.0, "train.inner_actors": "",
    "data.wave_noise": 0.0, "data.wave_snr_min": 0.0, "data.wave_snr_max": 30.0, "data.wave_reverb": 0.0,
    "data.wave_lowpass": 0.0,
}


def config_from_dict(d: dict[str, Any]) -> Config:
    """Rebuild a Config saved in a checkpoint or run folder (unknown keys are an error)."""
    # derived values stored beside the config in run folders and checkpoints
    d = {k: v for k, v in d.items() if k not in ("run_label", "n_folds", "protocol")}
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    for key, value in LEGACY_DEFAULTS.items():
        section, name = key.split(".")
        if isinstance(d.get(section), dict) and name not in d[section]:
            d[section][name] = value
    for key in RETIRED_KEYS:
        section, name = key.split(".")
        if isinstance(d.get(section), dict):
            d[section].pop(name, None)
    preset = d.pop("preset", "paper")
    return load_config(preset, base=d)


def _parse_scalar(v: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(v)
    except yaml.YAMLError:
        return v
