"""One fold: train (or resume) a model on the fold's training actors, choose the epoch, evaluate it
on the validation actors and write the fold folder (see `training/run.py` for its layout).

`run_fold` reads as the steps it takes; the state they share is a `FoldRun`. The config given is
never changed: the fold works on its own copy (with the number of classes of the data).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mrpn import registry
from mrpn.config import Config, ConfigError, config_from_dict
from mrpn.data.face_geometry import training_face_margin
from mrpn.io import atomic_write_json
from mrpn.provenance import machine_record
from mrpn.training import distributed as D
from mrpn.training.checkpoint import (CheckpointError, check_compatible, load_checkpoint, load_model_weights,
                                      save_checkpoint)
from mrpn.training.loop import evaluate, pick_device, train_one_epoch
from mrpn.training.setup import (build, fold_indices, load_pretrained_extractors, make_loader, make_scheduler,
                                 make_source, optimizer_groups, protocol_val_actors, resolve_protocol, run_label,
                                 seed_everything, selection_summary, split_inner)


@dataclass
class FoldData:
    """The clips of one fold: where they come from and which go to training, validation, selection."""
    source: Any
    classes: list[str]
    protocol: Any
    fold: Any
    train: list[int]
    val: list[int]
    select: list[int]        # inner-validation clips (train.inner_val), else empty
    inner: list[str]         # their actors


@dataclass
class FoldRun:
    """What the steps of `run_fold` share."""
    cfg: Config
    cfg_dict: dict[str, Any]
    data: FoldData
    fold_dir: Path
    device: torch.device
    info: Any
    model: torch.nn.Module   # what trains (DDP-wrapped when distributed)
    core: torch.nn.Module    # the model itself (state dicts, evaluation)
    log: Callable[..., None]
    progress: bool
    datasets: dict[str, Any] = field(default_factory=dict)
    opt: Any = None
    sched: Any = None        # per-epoch scheduler (plateau) ...
    step_sched: Any = None   # ... or per-step (onecycle, cosine)
    scaler: Any = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def last_path(self) -> Path:
        return self.fold_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.fold_dir / "best.pt"


def fold_data(cfg: Config, fold_index: int) -> FoldData:
    """The fold's clips split by actor (and the inner-validation actors when train.inner_val)."""
    probe = make_source(cfg, set())
    clips = probe.clips()
    if not clips:
        raise ConfigError(f"no usable clips in {cfg.data.cache}")
    genders = {c.actor: c.gender for c in clips}
    protocol = resolve_protocol(cfg, [c.actor for c in clips], genders)
    if not 1 <= fold_index <= len(protocol.folds):
        raise ConfigError(f"fold {fold_index} out of range: protocol {protocol.name} has {len(protocol.folds)} folds")
    fold = protocol.folds[fold_index - 1]
    source = make_source(cfg, set(fold.val_actors)) if cfg.data.dataset == "paired" else probe
    clips = source.clips()
    tr_idx, va_idx = fold_indices(clips, fold)
    if not tr_idx or not va_idx:
        raise ConfigError(f"fold {fold.name}: {len(tr_idx)} training and {len(va_idx)} validation clips; "
                          f"the cache holds actors {sorted(set(c.actor for c in clips))}")
    tr_idx, sel_idx, inner = split_inner(cfg, protocol, fold_index, clips, tr_idx)
    if cfg.data.dataset == "paired":  # the epoch is chosen on faces as paired, as the test actors see them
        source.keep_clean(inner)
    return FoldData(source, list(source.classes), protocol, fold, tr_idx, va_idx, sel_idx, inner)


def run_fold(cfg: Config, fold_index: int, fold_dir: Path, progress: bool = True, test_only: bool = False,
             log=print) -> dict[str, Any]:
    """Train (or resume) cfg's model on fold `fold_index` (1-based) and write metrics.json."""
    fold_dir = Path(fold_dir)
    fold_dir.mkdir(parents=True, exist_ok=True)
    data = fold_data(cfg, fold_index)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    info, ddp_device = D.setup(cfg.train.device)
    device = ddp_device or pick_device(cfg.train.device)
    if not info.main:
        log = lambda *a, **k: None  # noqa: E731  (rank 0 speaks for all)
        progress = False
    seed_everything(cfg.train.seed)
    # the caller's config stays as it was; this fold's copy records the number of classes
    cfg = replace(cfg, model=replace(cfg.model, n_classes=len(data.classes)))
    # the model remembers its face crops' margin, so predict cuts faces the same way (data/face_geometry.py)
    margin, note = training_face_margin(cfg, data.source)
    cfg = replace(cfg, data=replace(cfg.data, face_margin=margin))
    if note and cfg.train.pretrained_v:
        log(f"  note: {note}")
    model = build(cfg, len(data.classes)).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
        for branch in model.branches.values():
            branch.channels_last = True
    cfg_dict = cfg.to_dict()
    cfg_dict["run_label"] = run_label(cfg)
    if cfg.train.strategy == "late" and not test_only:
        _prepare_late(cfg, model, fold_index, fold_dir, progress, log)
    else:
        for line in load_pretrained_extractors(model, cfg, fold_index, list(data.fold.val_actors)):
            log(f"  pretrained extractor {line}")
    frozen = registry.modality_list(cfg.train.freeze_extractors)
    if frozen:
        from mrpn.models.fusion import freeze_extractors

        freeze_extractors(model, frozen)
        log(f"  extractors kept fixed: {', '.join(frozen)}")
    core = model
    if info.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    run = FoldRun(cfg, cfg_dict, data, fold_dir, device, info, model, core, log, progress)
    _make_training(run)
    _resume(run, test_only)
    if info.main:
        atomic_write_json(fold_dir / "config.json", cfg_dict)
    t_start = time.perf_counter() - run.state["wall_time_s"]
    while not test_only and run.state["epoch"] < cfg.train.epochs and not _stopped_early(run):
        _train_epoch(run, run.state["epoch"] + 1, t_start)
        if _stopped_early(run):
            log(f"  early stop: val loss has not dropped for {cfg.train.early_stop} epochs")
    return _final_metrics(run, fold_index)


def _make_training(run: FoldRun) -> None:
    """Datasets, optimiser (AdamW, paper 5.2), schedule and (fp16 on CUDA only) the grad scaler."""
    from mrpn.data.loader import EmotionDataset

    cfg, d, info = run.cfg, run.data, run.info
    modalities = registry.modalities_of(cfg.model.kind)

    def dataset(idx: list[int], train: bool):
        return EmotionDataset(d.source, idx, cfg.data, modalities, train=train, seed=cfg.train.seed)

    run.datasets = {"train": dataset(d.train, True), "val": dataset(D.shard(d.val, info), False),
                    "select": dataset(D.shard(d.select, info), False) if d.select else None}
    if cfg.train.feature_views:  # every F_m fixed: run it once per view, not once per epoch
        from mrpn.training.feature_cache import cached_datasets

        run.datasets = cached_datasets(run.datasets, run.core, cfg, run.log)
    run.opt = torch.optim.AdamW(optimizer_groups(run.core, cfg), lr=cfg.train.lr,
                                weight_decay=cfg.train.weight_decay)
    run.sched, run.step_sched = make_scheduler(cfg, run.opt, len(make_loader(run.datasets["train"], cfg, True, 1,
                                                                              info)))
    if run.device.type == "cuda" and cfg.train.precision != "fp32" and not torch.cuda.is_bf16_supported():
        run.scaler = torch.amp.GradScaler("cuda")


def _resume(run: FoldRun, test_only: bool) -> None:
    """A fresh state, or the state of `last.pt` (same settings and split, else an error)."""
    fold = run.data.fold
    run.state = {"epoch": 0, "best": None, "best_epoch": 0, "since_best_loss": 0, "best_loss": float("inf"),
                 "history": [], "wall_time_s": 0.0, "val_actors": list(fold.val_actors),
                 "protocol": run.data.protocol.name}
    last = run.last_path
    if last.is_file() and not test_only:
        ck = load_checkpoint(last, map_location=run.device)
        check_compatible(ck, run.cfg_dict, last)
        _check_schedule_length(run, ck, last)
        _check_lr_groups(run, ck, last)
        saved_val = ck["state"].get("val_actors")
        if saved_val is not None and sorted(saved_val) != sorted(fold.val_actors):
            raise CheckpointError(f"{last} was trained on another split (validation actors {saved_val}, "
                                  f"this fold validates on {list(fold.val_actors)}); choose another --name")
        load_model_weights(run.core, ck["model"], last)
        run.opt.load_state_dict(ck["optimizer"])
        (run.sched or run.step_sched).load_state_dict(ck["scheduler"])
        run.state.update(ck["state"])
        run.log(f"  resuming {run.fold_dir} after epoch {run.state['epoch']}")
    elif test_only and last.is_file():  # keep the training record in the re-written metrics
        run.state.update(load_checkpoint(last)["state"])


def _check_schedule_length(run: FoldRun, ck: dict, last: Path) -> None:
    """A per-step schedule (onecycle, cosine) is laid out over the whole run's steps: resumed with
    another number of epochs or another batch size, it would follow another curve (or step past its
    end). The plateau schedule does not depend on the length, so its epochs may grow on a resume."""
    if run.step_sched is None:
        return
    old, new = ck.get("config", {}).get("train", {}), run.cfg.train
    for key in ("epochs", "batch_size"):
        if key in old and old[key] != getattr(new, key):
            raise ConfigError(f"{last}: train.schedule={new.schedule} spans the whole run, which was trained with "
                              f"train.{key}={old[key]}; it cannot resume with {getattr(new, key)}. Keep "
                              f"train.{key}={old[key]} or choose another --name")


def _check_lr_groups(run: FoldRun, ck: dict, last: Path) -> None:
    """The optimiser state holds one rate per group (train.extractor_lr_scale): resumed with another
    scale it would either not load (another number of groups) or keep the old rates without a word."""
    old = ck.get("config", {}).get("train", {}).get("extractor_lr_scale", 1.0)
    if old != run.cfg.train.extractor_lr_scale:
        raise ConfigError(f"{last} was trained with train.extractor_lr_scale={old}; it cannot resume with "
                          f"{run.cfg.train.extractor_lr_scale}. Keep {old} or choose another --name")


def _stopped_early(run: FoldRun) -> bool:
    return bool(run.cfg.train.early_stop) and run.state["since_best_loss"] >= run.cfg.train.early_stop


def _evaluate(run: FoldRun, which: str, **kw) -> dict[str, Any]:
    t = run.cfg.train
    return D.gather_eval(evaluate(run.core, make_loader(run.datasets[which], run.cfg, False), run.device,
                                  t.precision, t.channels_last, run.cfg.model.task, progress=run.progress, **kw),
                         run.info)


def _train_epoch(run: FoldRun, epoch: int, t_start: float) -> None:
    """One epoch: train, evaluate, choose (on the inner actors when there are some, else on the test
    fold, the paper's way), save best.pt / last.pt / history.json, log a line."""
    cfg, state, t = run.cfg, run.state, run.cfg.train
    torch.manual_seed(t.seed * 7919 + epoch)  # dropout etc.: same per epoch after a resume
    run.datasets["train"].set_epoch(epoch)
    tr = train_one_epoch(run.model, make_loader(run.datasets["train"], cfg, True, epoch, run.info), run.opt,
                         run.device, t.precision, t.channels_last, t.grad_clip, cfg.model.task,
                         desc=f"{run.data.fold.name} epoch {epoch}/{t.epochs}", progress=run.progress,
                         scaler=run.scaler, step_scheduler=run.step_sched, label_smoothing=t.label_smoothing,
                         mixup=t.mixup, seed=t.seed * 7919 + epoch)
    D.sync_buffers(run.core, run.info)  # BatchNorm running stats moved apart on each rank's own batches
    ev = _evaluate(run, "val")
    sel = ev if run.datasets["select"] is None else _evaluate(run, "select", desc="inner")
    if run.sched is not None:
        run.sched.step(sel["loss"])
    score = _selection_score(t.select, sel, epoch)
    improved = state["best"] is None or score > state["best"]
    if improved:
        state["best"], state["best_epoch"] = score, epoch
        if run.info.main:
            save_checkpoint(run.best_path, {"model": run.core.state_dict(), "config": run.cfg_dict, "epoch": epoch,
                                            "classes": run.data.classes})
    if sel["loss"] < state["best_loss"] - 1e-4:
        state["best_loss"], state["since_best_loss"] = sel["loss"], 0
    else:
        state["since_best_loss"] += 1
    state["epoch"] = epoch
    state["wall_time_s"] = time.perf_counter() - t_start
    row = {"epoch": epoch, "lr": run.opt.param_groups[0]["lr"], "train_loss": tr["loss"],
           "train_accuracy": tr["accuracy"], "val_loss": ev["loss"], "val_accuracy": ev.get("accuracy"),
           "clips_per_s": tr["clips_per_s"], "seconds": tr["seconds"]}
    if run.datasets["select"] is not None:
        row.update(inner_loss=sel["loss"], inner_accuracy=sel.get("accuracy"))
    state["history"].append(row)
    if run.info.main:
        save_checkpoint(run.last_path, {"model": run.core.state_dict(), "optimizer": run.opt.state_dict(),
                                        "scheduler": (run.sched or run.step_sched).state_dict(), "state": state,
                                        "config": run.cfg_dict})
        atomic_write_json(run.fold_dir / "history.json", state["history"])
    run.log(f"  {run.data.fold.name} epoch {epoch:3d}  loss {tr['loss']:.3f}  train acc {tr['accuracy']:.3f}  "
            f"val loss {ev['loss']:.3f}  val acc {ev.get('accuracy', float('nan')):.3f}  "
            + (f"inner acc {sel.get('accuracy', float('nan')):.3f}  " if run.datasets["select"] is not None else "")
            + f"lr {row['lr']:.1e}  {tr['clips_per_s']:.1f} clips/s{'  *' if improved else ''}")


def _final_metrics(run: FoldRun, fold_index: int) -> dict[str, Any]:
    """Evaluate the best checkpoint on the validation actors; write metrics.json and features.npz."""
    from mrpn.evaluation.metrics import compute_metrics

    cfg, d, state = run.cfg, run.data, run.state
    D.barrier(run.info)  # rank 0 has written best.pt
    if not run.best_path.is_file():
        raise CheckpointError(f"no best checkpoint in {run.fold_dir}: nothing was trained yet")
    ck = load_checkpoint(run.best_path, map_location=run.device)
    check_compatible(ck, run.cfg_dict, run.best_path)
    load_model_weights(run.core, ck["model"], run.best_path)
    ev = _evaluate(run, "val", collect_features=cfg.train.save_features,
                   side_heads=registry.kind(cfg.model.kind).side_heads)
    metrics = compute_metrics(ev["y_true"], ev["y_pred"], d.classes)
    metrics.update({
        "run_label": run.cfg_dict["run_label"], "model": cfg.model.kind, "strategy": cfg.train.strategy,
        "dataset": cfg.data.dataset, "protocol": d.protocol.name, "fold": d.fold.name, "fold_index": fold_index,
        "val_actors": list(d.fold.val_actors), "class_names": d.classes, "n_train": len(d.train),
        "n_val": len(d.val), "world_size": run.info.world,
        "epochs": state["epoch"], "best_epoch": ck.get("epoch", state["best_epoch"]),
        "wall_time_s": round(state["wall_time_s"], 2), "val_loss": ev["loss"],
        "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": machine_record(),
    })
    metrics.update(selection_summary(state["history"], d.inner, metrics["best_epoch"]))
    if "side_pred" in ev:
        metrics["modalities"] = _head_metrics(ev, d.classes)
    if run.datasets["select"] is not None:
        # the same figures on the inner actors (no test actor): what a choice between models may look at
        sel = _evaluate(run, "select", desc="inner", side_heads=registry.kind(cfg.model.kind).side_heads)
        metrics["inner"] = {k: v for k, v in compute_metrics(sel["y_true"], sel["y_pred"], d.classes).items()
                            if k in HEAD_KEYS}
        if "side_pred" in sel:
            metrics["inner"]["modalities"] = _head_metrics(sel, d.classes)
    if not run.info.main:
        return metrics
    if cfg.train.save_features and "features" in ev:
        from mrpn.io import atomic_write_with

        def write(p: Path) -> None:
            with open(p, "wb") as f:
                np.savez(f, labels=ev["y_true"], **ev["features"])

        atomic_write_with(run.fold_dir / "features.npz", write)
    atomic_write_json(run.fold_dir / "metrics.json", metrics)
    return metrics


def _selection_score(select: str, sel: dict[str, Any], epoch: int) -> float:
    """Higher is better: inner (or validation) accuracy, minus its loss, or the epoch itself for "last"
    (a fixed-length schedule whose final weights are kept, so no epoch is chosen on any actors)."""
    if select == "last":
        return float(epoch)
    return sel.get("accuracy", -sel["loss"]) if select == "accuracy" else -sel["loss"]


HEAD_KEYS = ("accuracy", "uar", "macro_f1", "confusion", "per_class_recall")


def _head_metrics(ev: dict[str, Any], classes: list[str]) -> dict[str, dict[str, Any]]:
    """Per side head (one modality alone): accuracy, UAR, macro-F1, confusion, recall."""
    from mrpn.evaluation.metrics import compute_metrics

    return {m: {k: v for k, v in compute_metrics(ev["y_true"], p, classes).items() if k in HEAD_KEYS}
            for m, p in ev["side_pred"].items()}


def _prepare_late(cfg: Config, model, fold_index: int, fold_dir: Path, progress: bool, log) -> None:
    """Late fusion (paper 1.3, 3.3): uni-modal VM/AM trained first, then frozen under the fusion."""
    from mrpn.models.fusion import freeze_branches, load_branch_weights

    modalities = registry.modalities_of(cfg.model.kind)
    for m in modalities:
        kind = registry.unimodal_kind(m).name
        src = cfg.train.unimodal_runs.get(m)
        if src:
            uni_dir = Path(src) / f"fold_{fold_index:02d}"
        else:
            uni_dir = fold_dir / f"unimodal_{m}"
            if not (uni_dir / "metrics.json").is_file():
                log(f"  late fusion: training the uni-modal {kind.upper()} first ({uni_dir})")
                ucfg = config_from_dict(cfg.to_dict())
                ucfg.model.kind, ucfg.train.strategy = kind, "end-to-end"
                run_fold(ucfg, fold_index, uni_dir, progress=progress, log=log)
        best = uni_dir / "best.pt"
        ck = load_checkpoint(best)
        mpath = uni_dir / "metrics.json"
        fold_val = protocol_val_actors(cfg, fold_index)
        if mpath.is_file():
            uval = json.loads(mpath.read_text()).get("val_actors")
            if uval is not None and sorted(uval) != sorted(fold_val):
                raise CheckpointError(f"late fusion: {uni_dir} validated on actors {uval}, but this fold "
                                      f"validates on {fold_val}: its frozen branch would have seen them")
        uni = build(config_from_dict(ck["config"]), cfg.model.n_classes)
        load_model_weights(uni, ck["model"], best)
        try:
            load_branch_weights(model, uni, m)
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(f"late fusion: the {kind.upper()} branch in {best} does not fit this model "
                                  f"(aggregator, width or stem differ?): {str(e).splitlines()[0][:200]}") from None
    freeze_branches(model, modalities)
