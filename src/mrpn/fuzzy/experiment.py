"""One cell of the controlled-fuzziness experiment: corpus at a fuzzy level -> cache -> six models.

Paper section 3 claims that missing or fuzzy within-modal information hurts naive fusion (N0)
most, the multi-term loss (N1) less and MRPN (N2) least. A synthetic corpus makes the fuzzy
fraction a controlled variable: at level p, a fraction p of the clips (half of them in the face,
half in the voice, never both) shows neutral (missing) or another emotion (fuzzy) in that
modality, while the label stays the true class. The clips of level p are those of level 0 with
only the fuzzy ones rendered again, so "test clean" (level 0's held-out clips) and "test fuzzy"
(level p's) score the same model on the same actors.

Everything here runs the project's own stages: `mrpn.synth` -> `mrpn.data.prepare` ->
`mrpn.training.cv.run_cv` (one fold at a time, resumable) -> `mrpn.training.loop.evaluate`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from mrpn import registry
from mrpn.training.setup import EXTRACTOR_KEYS


def _models() -> list[tuple[str, str, str]]:
    """(run name, model.kind, train.strategy) from the registry: the uni-modal baselines first (late
    fusion freezes their branches), then each fusion network end-to-end, and late too when it has no
    side heads (N0: the paper's late-fusion baseline of section 3.3)."""

    out = [(f"{k.name}_e2e", k.name, "end-to-end") for k in registry.KINDS.values() if not k.fusion]
    for k in registry.KINDS.values():
        if k.fusion and not k.side_heads:
            out.append((f"{k.name}_late", k.name, "late"))
    out += [(f"{k.name}_e2e", k.name, "end-to-end") for k in registry.KINDS.values() if k.fusion]
    return out


def _labels() -> dict[str, str]:
    lab = {}
    for name, kind, strategy in MODELS:
        k = registry.kind(kind)
        lab[name] = k.label + ((" late" if strategy == "late" else " e2e") if k.fusion and not k.side_heads else "")
    return lab


MODELS = _models()          # VM, AM, N0 late, N0 end-to-end, N1, N2 (eqs. 7-9)
LABELS = _labels()
UNIMODAL = tuple(n for n, k, _ in MODELS if not registry.kind(k).fusion)
FUSION = tuple(n for n, k, _ in MODELS if registry.kind(k).fusion)
MRPN = next(n for n, k, _ in reversed(MODELS) if registry.kind(k).side_heads)   # N2, the last registered


@dataclass(frozen=True)
class Setup:
    """Corpus size, input sizes and training schedule of one experiment (all of it is recorded)."""
    actors: int = 12                    # many actors, few clips each: generalising to new faces and
    clips_per_class: int = 2            # voices needs identities more than repetitions
    size: int = 64                      # rendered frame side; prepare crops 48 x 48 gray faces
    fps: int = 12
    duration: tuple[float, float] = (1.5, 2.5)
    noise_kind: str = "mixed"           # what a fuzzy modality shows: missing, fuzzy or mixed
    n_folds: int = 4                    # actor-disjoint folds of the corpus (3 actors each for 12)
    epochs: int = 12
    lr: float = 2e-3
    dropout: float = 0.1
    batch_size: int = 8
    max_frames: int = 4                 # faces per clip fed to the model (4 fps)
    pretrained: bool = True             # extractors start from INIT_ASSET's (the default model shipped when the experiment was frozen)

    def overrides(self) -> list[str]:
        """Config overrides on the `cpu` preset shared by all six models: the experiment's own
        settings, the extractors of INIT_ASSET whose weights the models start from, and the
        rest of the training recipe pinned, so that a later change of the `cpu` preset cannot change
        a frozen experiment (generator version 2 and these settings gave docs/RESULTS.md section 4)."""
        return [*init_branch_overrides(), *PINNED, f"train.epochs={self.epochs}", f"train.lr={self.lr}", f"train.batch_size={self.batch_size}",
                "train.early_stop=0", "data.face_size=48", "data.gray=true", f"data.max_frames={self.max_frames}",
                "data.video_fps=4", "data.spatial_aug=clip", "data.workers=0", "model.agg_hidden=64",
                "model.fusion_hidden=64", f"model.dropout={self.dropout}", "data.dataset=synth",
                # the epoch is chosen on two training actors, never on the held-out ones it is scored on
                "train.inner_val=true"]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration"] = list(self.duration)
        return d


# The cpu preset's training settings when the experiment was frozen (the demo and the sweep).
PINNED = ("train.schedule=plateau", "train.lr_patience=5", "train.lr_factor=0.5", "train.weight_decay=0.01",
          "train.label_smoothing=0", "train.mixup=0", "data.specaug_freq=0", "data.specaug_time=0",
          "train.precision=fp32", "train.channels_last=false", "data.segment_hop_s=0.5")
# The weights the experiment's models start from: the extractors of the default model shipped when the
# experiment was frozen (N2 with two width-16 ResNet-18s, docs/RESULTS.md section 4), kept as an asset of
# their own so that retraining `mrpn-default` (issue 9) does not move the demo or the sweep.
INIT_ASSET = "demo-init.safetensors"
# What an extractor is and what it reads (training.setup.EXTRACTOR_KEYS): must match INIT_ASSET's model for
# its weights to fit; the face size, grey faces and sample rate are the experiment's own (overrides below).
_OWN = ("data.face_size", "data.gray", "data.sample_rate")
BRANCH_KEYS = tuple(k for keys in EXTRACTOR_KEYS.values() for k in keys if k not in _OWN)


@lru_cache(maxsize=1)
def init_branch_overrides() -> tuple[str, ...]:
    """`key=value` of BRANCH_KEYS as INIT_ASSET's model was trained (its file's metadata)."""
    from importlib import resources

    from mrpn.checkpoint import read_header
    from mrpn.config import config_from_dict

    with resources.as_file(resources.files("mrpn") / "assets" / INIT_ASSET) as path:
        cfg = config_from_dict(json.loads(read_header(Path(path))[1]["config"]))
    out = []
    for key in BRANCH_KEYS:
        sec, name = key.split(".")
        v = getattr(getattr(cfg, sec), name)
        out.append(f"{key}={'x'.join(map(str, v)) if isinstance(v, (tuple, list)) else v}")
    return tuple(out)


def level_tag(level: float) -> str:
    return f"p{round(100 * level):02d}"


def make_corpus(root: Path, setup: Setup, seed: int, level: float, workers: int = 2,
                progress: bool = False) -> Path:
    """Corpus and prepared cache of (seed, level) under `root`; returns the cache folder.

    Level 0 is made first (the fuzzy levels link its unchanged clips); both steps resume."""
    from mrpn.data.datasets import scan
    from mrpn.data.prepare import PrepareConfig, run_prepare
    from mrpn.synth import generate_corpus

    clean = root / f"seed{seed}" / "corpus_p00"
    if level > 0 and not (clean / "synth.json").is_file():
        make_corpus(root, setup, seed, 0.0, workers, progress)
    corpus = root / f"seed{seed}" / f"corpus_{level_tag(level)}"
    cache = root / f"seed{seed}" / f"cache_{level_tag(level)}"
    manifest = generate_corpus(corpus, n_actors=setup.actors, clips_per_class=setup.clips_per_class,
                               size=setup.size, fps=setup.fps, face_noise=level / 2, voice_noise=level / 2,
                               seed=seed, workers=workers, progress=progress, noise_kind=setup.noise_kind,
                               duration=setup.duration, reuse=clean if level > 0 else None)
    sc = scan("custom", manifest)
    # margin 0: OpenCV's box around a synthetic face is already ~1.4 x the head; the default 0.25
    # margin would leave the face half the crop, its expression a few pixels of the 48 x 48 input
    run_prepare(sc, cache, PrepareConfig(face_size=48, gray=True, detect_every=3, margin=0.0),
                workers=workers, progress=progress, log=lambda *a: None)
    # counted in the cache, not in this call's result: a resumed sweep finds its clips already prepared
    from mrpn.data.cache import Cache

    c = Cache(cache)
    ok = sum(1 for clip in sc.clips if (c.read_record(clip.id) or {}).get("status") == "ok")
    if ok != len(sc.clips):
        raise RuntimeError(f"prepare kept {ok} of {len(sc.clips)} clips of {corpus} (faces not found?)")
    return cache


def write_folds(root: Path, setup: Setup, seed: int) -> Path:
    """Actor-disjoint folds of the seed's actors (balanced by gender), as a protocol JSON file."""
    from mrpn.data.folds import make_actor_folds
    from mrpn.io import atomic_write_json
    from mrpn.synth import make_actors

    actors = make_actors(setup.actors, seed)
    proto = make_actor_folds([a.id for a in actors], setup.n_folds, genders={a.id: a.gender for a in actors},
                             seed=seed, name=f"synth_seed{seed}")
    path = root / f"seed{seed}" / "folds.json"
    atomic_write_json(path, proto.to_dict())
    return path


def pretrained_extractors(root: Path) -> dict[str, Path]:
    """INIT_ASSET's extractors (FER2013-pretrained faces, RAVDESS-trained audio) as
    `train.pretrained_v/a` files: the six models start from the same features and train from there."""
    from importlib import resources

    import torch
    from safetensors.torch import load_file, save_file

    out = {m: root / f"pretrained_{m}.safetensors" for m in registry.MODALITIES}
    if all(p.is_file() for p in out.values()):
        return out
    src = resources.files("mrpn") / "assets" / INIT_ASSET
    with resources.as_file(src) as path:
        sd = load_file(str(path))
    from mrpn.io import atomic_path

    for m, p in out.items():
        prefix = f"branches.{m}.extractor."
        ext = {k[len(prefix):]: v.to(torch.float32).contiguous() for k, v in sd.items() if k.startswith(prefix)}
        p.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(p, suffix=".safetensors") as tmp:
            save_file(ext, str(tmp))
    return out


def model_config(name: str, cache: Path, runs: Path, folds: Path, setup: Setup, seed: int,
                 pretrained: dict[str, Path] | None):
    from mrpn.config import load_config

    kind, strategy = next((k, s) for n, k, s in MODELS if n == name)
    ov = setup.overrides() + [f"model.kind={kind}", f"train.strategy={strategy}", f"data.cache={cache}",
                              f"data.protocol={folds}", f"train.seed={seed}", f"out={runs}", f"name={name}"]
    mods = registry.modalities_of(kind)
    if strategy == "late":
        ov.append("train.unimodal_runs=" + ",".join(f"{m}={runs / (registry.unimodal_kind(m).name + '_e2e')}"
                                                    for m in mods))
    if pretrained:
        ov += [f"train.pretrained_{m}={pretrained[m]}" for m in mods]
    return load_config("cpu", overrides=ov)


def train_models(cache: Path, runs: Path, folds: Path, fold_ids: list[int], setup: Setup, seed: int,
                 pretrained: dict[str, Path] | None, on_done: Callable[[str, int], None] | None = None,
                 models: list[str] | None = None) -> None:
    """The six models (VM and AM first: late fusion freezes their branches) on `fold_ids`; resumable."""
    from mrpn.training.cv import run_cv

    for name, _, _ in MODELS:
        if models is not None and name not in models:
            continue
        cfg = model_config(name, cache, runs, folds, setup, seed, pretrained)
        for k in fold_ids:
            run_cv(cfg, str(k), progress=False, log=lambda *a, **kw: None)
            if on_done is not None:
                on_done(name, k)


def score_on(fold_dir: Path, cache: Path, fold_index: int) -> tuple[dict[str, Any], list, list[str]]:
    """Run the best checkpoint of `fold_dir` on the held-out clips of fold `fold_index` in `cache`
    (same actors, another level): (evaluate()'s output, the cache's clips, its classes)."""
    import torch

    from mrpn.checkpoint import load_checkpoint, load_model_weights
    from mrpn.config import config_from_dict
    from mrpn.data.loader import EmotionDataset
    from mrpn.training.loop import evaluate
    from mrpn.training.setup import build, fold_indices, make_loader, make_source, resolve_protocol

    ck = load_checkpoint(fold_dir / "best.pt")
    cfg = config_from_dict(ck["config"])
    cfg.data.cache = str(cache)
    source = make_source(cfg, set())
    clips = source.clips()
    protocol = resolve_protocol(cfg, [c.actor for c in clips], {c.actor: c.gender for c in clips})
    _, va = fold_indices(clips, protocol.folds[fold_index - 1])
    model = build(cfg, len(source.classes))
    load_model_weights(model, ck["model"], fold_dir / "best.pt")
    ds = EmotionDataset(source, va, cfg.data, registry.modalities_of(cfg.model.kind), train=False,
                        seed=cfg.train.seed)
    ev = evaluate(model, make_loader(ds, cfg, False), torch.device("cpu"), cfg.train.precision,
                  cfg.train.channels_last, progress=False)
    return ev, clips, list(source.classes)


def evaluate_on(fold_dir: Path, cache: Path, fold_index: int) -> dict[str, Any]:
    """Score the best checkpoint of `fold_dir` on the held-out clips of another cache (same actors,
    same fold): "test clean" for a model trained at a fuzzy level. Written to eval_<cache>.json."""
    from mrpn.evaluation.metrics import compute_metrics
    from mrpn.io import atomic_write_json

    out = fold_dir / f"eval_{cache.name}.json"
    if out.is_file():
        return json.loads(out.read_text())
    ev, _, classes = score_on(fold_dir, cache, fold_index)
    m = compute_metrics(ev["y_true"], ev["y_pred"], classes)
    m.update({"cache": str(cache), "n_val": len(ev["y_true"]), "fold_index": fold_index})
    atomic_write_json(out, m)
    return m
