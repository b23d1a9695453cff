"""Checks of a resolved Config (`validate`, run by `load_config`): choices, ranges and the settings that go
together. Kept apart from config.py, which defines the settings; every message names the key to change."""
from __future__ import annotations

from mrpn import registry
from mrpn.config import Config, ConfigError


def validate(cfg: Config) -> None:
    choices = {
        "model.kind": (cfg.model.kind, tuple(registry.KINDS)),
        "model.aggregator": (cfg.model.aggregator, tuple(registry.AGGREGATORS)),
        "train.strategy": (cfg.train.strategy, ("end-to-end", "late")),
        "data.spatial_aug": (cfg.data.spatial_aug, ("clip", "frame", "none")),
        "train.precision": (cfg.train.precision, ("auto", "bf16", "fp32")),
        "train.schedule": (cfg.train.schedule, ("plateau", "onecycle", "cosine")),
        "data.audio_frontend": (cfg.data.audio_frontend, ("linear", "logmel", "ge2e")),
        "model.audio_extractor": (cfg.model.audio_extractor, ("resnet18", "cnn", "ge2e")),
        "model.video_extractor": (cfg.model.video_extractor, ("resnet18", "cnn", "facecnn")),
        "train.select": (cfg.train.select, ("accuracy", "loss", "last")),
    }
    for key, (val, ok) in choices.items():
        if val not in ok:
            raise ConfigError(f"{key}={val!r}: choose one of {', '.join(ok)}")
    if cfg.train.strategy == "late" and not registry.kind(cfg.model.kind).fusion:
        fusion = [k.name for k in registry.KINDS.values() if k.fusion]
        raise ConfigError(f"train.strategy=late needs a fusion model ({', '.join(fusion)})")
    _validate_ge2e(cfg)
    frozen = registry.modality_list(cfg.train.freeze_extractors)
    unknown = [m for m in frozen if m not in registry.modalities_of(cfg.model.kind)]
    if unknown:
        raise ConfigError(f"train.freeze_extractors={cfg.train.freeze_extractors!r}: {cfg.model.kind} has the "
                          f"modalities {', '.join(registry.modalities_of(cfg.model.kind))}")
    _validate_feature_views(cfg, frozen)
    if cfg.train.inner_actors.strip() and not cfg.train.inner_val:
        raise ConfigError(f"train.inner_actors={cfg.train.inner_actors!r} names the inner-validation actors: "
                          f"it needs train.inner_val=true")
    for key in ("paired_fuzzy", "paired_video"):
        if getattr(cfg.data, key) and cfg.data.dataset != "paired":
            raise ConfigError(f"data.{key}={getattr(cfg.data, key)} pairs faces of the paired benchmark: it needs "
                              f"data.dataset=paired (got {cfg.data.dataset})")
    if cfg.data.wave_snr_min > cfg.data.wave_snr_max:
        raise ConfigError(f"data.wave_snr_min={cfg.data.wave_snr_min:g} is above data.wave_snr_max="
                          f"{cfg.data.wave_snr_max:g}")
    if cfg.data.segment_hop_s <= 0 or cfg.data.segment_s <= 0:
        raise ConfigError("data.segment_s and data.segment_hop_s must be > 0")
    if cfg.train.batch_size < 1 or cfg.train.epochs < 1:
        raise ConfigError("train.batch_size and train.epochs must be >= 1")
    for key, low, high in RANGES:
        sec, name = key.split(".")
        v = getattr(getattr(cfg, sec), name)
        for x in (v if isinstance(v, tuple) else (v,)):
            if not (low <= x <= high) or x != x:     # x != x: NaN
                raise ConfigError(f"{key}={v!r}: must be in {low:g}..{high:g}")


def _validate_feature_views(cfg: Config, frozen: list[str]) -> None:
    """Cached extractor features (training/feature_cache.py) need every F_m fixed and unmixed inputs."""
    if not cfg.train.feature_views:
        return
    mods = registry.modalities_of(cfg.model.kind)
    if cfg.train.strategy != "late" and sorted(frozen) != sorted(mods):
        raise ConfigError(f"train.feature_views needs every extractor fixed: add "
                          f"train.freeze_extractors={','.join(mods)} (or train.strategy=late)")
    if cfg.train.mixup:
        raise ConfigError("train.feature_views and train.mixup exclude each other: mixup mixes the inputs "
                          "of F_m, which the cached features skip")


def _validate_ge2e(cfg: Config) -> None:
    """The GE2E extractor and its front end go together: 40 power mel bands, 100 frames per 1 s, 16 kHz."""
    ext, front = cfg.model.audio_extractor == "ge2e", cfg.data.audio_frontend == "ge2e"
    if ext != front:
        raise ConfigError("model.audio_extractor=ge2e and data.audio_frontend=ge2e go together "
                          f"(got {cfg.model.audio_extractor} on {cfg.data.audio_frontend})")
    if front and (tuple(cfg.data.spec_size) != (40, 100) or cfg.data.segment_s != 1.0 or cfg.data.sample_rate != 16000):
        raise ConfigError("data.audio_frontend=ge2e needs data.spec_size=40x100, data.segment_s=1 and "
                          f"data.sample_rate=16000 (got {cfg.data.spec_size}, {cfg.data.segment_s}, {cfg.data.sample_rate})")
    if cfg.train.pretrained_a == "resemblyzer" and not ext:
        raise ConfigError("train.pretrained_a=resemblyzer is the GE2E encoder: set model.audio_extractor=ge2e")


# Sizes and rates a run can be given: checked once at load time, so a wrong value is a one-line
# error before any folder is created, not a traceback deep inside a model or the loader.
RANGES: tuple[tuple[str, float, float], ...] = (
    ("data.face_size", 8, 1024), ("data.spec_size", 8, 4096), ("data.n_fft", 16, 65536),
    ("data.hop_length", 1, 65536), ("data.sample_rate", 1000, 192000), ("data.video_fps", 0, 1000),
    ("data.max_frames", 0, 1 << 20), ("data.min_slice_s", 0, 3600), ("data.workers", 0, 256),
    ("data.paired_faces", 1, 1024), ("data.paired_fuzzy", 0, 1), ("data.paired_video", 0, 1),
    ("data.segment_s", 0.01, 60), ("data.segment_hop_s", 0.01, 60), ("data.wave_noise", 0, 1),
    ("data.wave_reverb", 0, 1), ("data.wave_lowpass", 0, 1), ("data.wave_snr_min", -20, 80),
    ("data.wave_snr_max", -20, 80),
    ("train.lr", 1e-12, 10), ("train.weight_decay", 0, 10), ("train.lr_patience", 0, 1 << 20),
    ("train.lr_factor", 1e-6, 1), ("train.early_stop", 0, 1 << 20), ("train.grad_clip", 0, 1e9),
    ("train.feature_views", 0, 10_000), ("train.extractor_lr_scale", 1e-6, 100),
    ("model.n_classes", 1, 100_000), ("model.agg_hidden", 1, 1 << 16), ("model.agg_layers", 1, 64),
    ("model.agg_heads", 1, 1024), ("model.agg_max_len", 1, 1 << 20), ("model.fusion_hidden", 1, 1 << 16),
    ("model.dropout", 0, 0.999), ("model.agg_dropout", 0, 0.999), ("model.video_width", 1, 4096),
    ("model.audio_width", 1, 4096), ("model.video_in_channels", 1, 4), ("model.audio_in_channels", 1, 4),
)
