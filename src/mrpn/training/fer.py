"""Fast FER2013 pretraining of the visual extractor F_v (paper 5.2: F_v starts from FER2013).

The whole training set lives in memory as one uint8 tensor [N, 48, 48] (decoded once, see
`mrpn.data.fer_cache`); each batch is indexed out of it and augmented as a batch tensor (flip, a
random affine with the detector's crop jitter, camera conditions when the recipe asks for them
(`features/camera.py`), brightness/contrast), so an epoch costs only the network's forward and backward
passes. Settings and the epoch are chosen on PublicTest only;
PrivateTest is reported, never looked at for a choice (the FER2013 challenge's protocol).

Per epoch: `history.json` (accuracies on both test usages, plain and with horizontal-flip averaging,
PrivateTest per-class recall), `last.pt` (exact resume), and, when PublicTest improves,
`extractor.safetensors` (F_v alone, for `train.pretrained_v`) and `classifier.safetensors` (F_v + head).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mrpn.data.fer_cache import PRIVATE, PUBLIC, TEST, TRAIN, FerArrays
from mrpn.io import atomic_write_json, atomic_write_with
from mrpn.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mrpn.training.loop import autocast, pick_device


@dataclass
class FerRecipe:
    extractor: str = "facecnn"       # "facecnn" (VGG-style) or "resnet18"
    width: int = 24                  # first-stage channels
    stem: str = "imagenet"           # resnet18 only
    epochs: int = 12
    batch_size: int = 128
    lr: float = 3e-3                 # peak AdamW step
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0       # linear warm-up, then cosine to zero (per step)
    label_smoothing: float = 0.1
    mixup: float = 0.0               # Beta(a, a) mixup of whole images; 0 = off
    cutmix: float = 0.0              # Beta(a, a) cutmix; 0 = off (when both are on, each batch picks one)
    scale: tuple[float, float] = (0.85, 1.15)  # zoom (<1 = zoom out): the spread of detector boxes
    rotate: float = 10.0             # degrees
    shift: float = 0.08              # fraction of the side
    jitter: float = 0.2              # brightness and contrast, +-
    erase: float = 0.0               # probability of erasing one random rectangle (cutout)
    seed: int = 0
    face_size: int = 48
    in_channels: int = 1
    limit: int = 0                   # train on a random subset of this many images (0 = all; smoke runs)
    init: str = ""                   # start from these weights (an earlier run's classifier or extractor)
    # camera conditions (features/camera.py), each the probability of its draw per image; 0 = off
    cam_blur: float = 0.0            # defocus or motion blur
    cam_lowres: float = 0.0          # a face 12-32 px across, scaled back up
    cam_exposure: float = 0.0        # a gain of 0.25-1.8
    cam_noise: float = 0.0           # sensor noise, sigma 1-10 %
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scale"] = list(self.scale)
        return d


# recipe keys added after runs were made, with the value those runs had
_ADDED_LATER = {"cam_blur": 0.0, "cam_lowres": 0.0, "cam_exposure": 0.0, "cam_noise": 0.0}


def build_extractor(r: FerRecipe) -> nn.Module:
    if r.extractor == "facecnn":
        from mrpn.models.facecnn import FaceCNN

        return FaceCNN(in_channels=r.in_channels, width=r.width)
    if r.extractor == "resnet18":
        from mrpn.models.resnet import ResNet18

        return ResNet18(in_channels=r.in_channels, width=r.width, stem=r.stem)
    raise ValueError(f"extractor must be 'facecnn' or 'resnet18', got {r.extractor!r}")


# ---------------------------------------------------------------------------------------------
# batch augmentation (all on tensors, one random draw per image)

def augment(x: torch.Tensor, g: torch.Generator, r: FerRecipe) -> torch.Tensor:
    """x float [B, C, H, W] in [0, 1] -> augmented copy: flip, affine (zoom/rotate/shift), camera conditions
    (when any cam_* > 0), photometric, erase."""
    b = x.shape[0]
    # draws come from the CPU generator and then move: the same images on a CPU and on a GPU
    u = lambda *s: torch.rand(*s, generator=g).to(x.device)  # noqa: E731
    flip = u(b) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    zoom = r.scale[0] + (r.scale[1] - r.scale[0]) * u(b)
    ang = (2 * u(b) - 1) * np.deg2rad(r.rotate)
    t = (2 * u(b, 2) - 1) * 2 * r.shift       # affine_grid's coordinates span 2 per side
    cos, sin = torch.cos(ang) / zoom, torch.sin(ang) / zoom
    theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # zoom-out shows what lies beyond a tight crop; the edge pixels repeated are the nearest guess
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if r.cam_blur or r.cam_lowres or r.cam_exposure or r.cam_noise:   # no draws when off: older recipes reproduce
        from mrpn.features.camera import augment as camera

        x = camera(x, g, r.cam_blur, r.cam_lowres, r.cam_exposure, r.cam_noise)
    if r.jitter > 0:
        bright = (2 * u(b, 1, 1, 1) - 1) * r.jitter
        contrast = 1 + (2 * u(b, 1, 1, 1) - 1) * r.jitter
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean + bright
    if r.erase > 0:
        x = random_erase(x, g, r.erase)
    return x.clamp_(0, 1)


def random_erase(x: torch.Tensor, g: torch.Generator, p: float) -> torch.Tensor:
    """Set one random rectangle (10-30 % of the side each way) per chosen image to the image mean."""
    b, _, h, w = x.shape
    u = torch.rand(b, 5, generator=g).to(x.device)
    eh, ew = (h * (0.1 + 0.2 * u[:, 0])).long(), (w * (0.1 + 0.2 * u[:, 1])).long()
    y0, x0 = (u[:, 2] * (h - eh)).long(), (u[:, 3] * (w - ew)).long()
    ys, xs = torch.arange(h, device=x.device)[None, :, None], torch.arange(w, device=x.device)[None, None, :]
    box = ((ys >= y0[:, None, None]) & (ys < (y0 + eh)[:, None, None])
           & (xs >= x0[:, None, None]) & (xs < (x0 + ew)[:, None, None]) & (u[:, 4] < p)[:, None, None])
    return torch.where(box[:, None], x.mean(dim=(1, 2, 3), keepdim=True), x)


def soft_targets(y: torch.Tensor, n_classes: int, smoothing: float) -> torch.Tensor:
    return F.one_hot(y, n_classes).float() * (1 - smoothing) + smoothing / n_classes


def mix(x: torch.Tensor, t: torch.Tensor, g: torch.Generator, rng: np.random.Generator, r: FerRecipe
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or cutmix of a batch with a permutation of itself; targets mixed in the same proportion."""
    modes = [m for m, a in (("mixup", r.mixup), ("cutmix", r.cutmix)) if a > 0]
    if not modes:
        return x, t
    mode = modes[int(rng.integers(len(modes)))]
    lam = float(rng.beta(r.mixup, r.mixup) if mode == "mixup" else rng.beta(r.cutmix, r.cutmix))
    perm = torch.randperm(x.shape[0], generator=g).to(x.device)
    if mode == "mixup":
        return lam * x + (1 - lam) * x[perm], lam * t + (1 - lam) * t[perm]
    h, w = x.shape[-2:]
    ch, cw = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1, x0, x1 = max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)        # the area actually pasted
    return x, lam * t + (1 - lam) * t[perm]


def normalise(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W] -> float [B, 1, H, W] in [0, 1]."""
    return x_uint8.unsqueeze(1).float().div_(255.0)


# ---------------------------------------------------------------------------------------------
# evaluation

@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch: int = 512, precision: str = "fp32"
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, logits of the mirrored image) for uint8 [N, H, W] images; the model sees (x-0.5)/0.5.
    The images go to the model's device one batch at a time; the logits come back as CPU float32."""
    model.eval()
    dev = next(model.parameters()).device
    plain, flipped = [], []
    for i in range(0, len(images), batch):
        x = (normalise(images[i:i + batch].to(dev)) - 0.5) / 0.5
        with autocast(dev, precision):
            plain.append(model(x).float().cpu())
            flipped.append(model(x.flip(-1)).float().cpu())
    return torch.cat(plain), torch.cat(flipped)


def recall_per_class(pred: torch.Tensor, y: torch.Tensor, n: int) -> list[float]:
    return [float((pred[y == k] == k).float().mean()) if (y == k).any() else float("nan") for k in range(n)]


def evaluate(model: nn.Module, sets: dict[str, tuple[torch.Tensor, torch.Tensor]], n_classes: int,
             precision: str = "fp32") -> dict:
    out = {}
    for name, (x, y) in sets.items():
        lp, lf = predict_logits(model, x, precision=precision)
        for mode, logits in (("plain", lp), ("flip", lp.softmax(1) + lf.softmax(1))):
            pred = logits.argmax(1)
            out[f"{name}_acc_{mode}"] = float((pred == y).float().mean())
            out[f"{name}_recall_{mode}"] = recall_per_class(pred, y, n_classes)
    return out


# ---------------------------------------------------------------------------------------------
# training

class Classifier(nn.Module):
    """Extractor + linear head; only the extractor is kept after pretraining (FER2013 faces, speakers)."""

    def __init__(self, extractor: nn.Module, n_classes: int):
        super().__init__()
        self.extractor = extractor
        self.head = nn.Linear(extractor.out_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.extractor(x))


def resume_pretraining(last: Path, meta: dict, model: nn.Module, opt, sched, log,
                       map_location="cpu") -> tuple[int, list]:
    """(epochs done, history) from a pretraining run's last.pt, after restoring model, optimiser and
    schedule; (0, []) when there is none. A last.pt made with other settings is refused, not mixed in."""
    if not last.is_file():
        return 0, []
    ck = load_checkpoint(last, map_location=map_location)
    # a run from before a setting existed ran with its default
    if {**{k: v for k, v in _ADDED_LATER.items() if k in meta}, **ck["config"]} != meta:
        raise CheckpointError(f"{last} was made with other pretraining settings; use another --out")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    log(f"resuming after epoch {ck['epoch']}")
    return ck["epoch"], ck["history"]


def _schedule(opt, r: FerRecipe, steps_per_epoch: int):
    total, warm = r.epochs * steps_per_epoch, max(1, int(r.warmup_epochs * steps_per_epoch))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        # a Python float: numpy scalars in the scheduler state would make last.pt unreadable with weights_only
        return float(0.5 * (1 + np.cos(np.pi * min(1.0, (step - warm) / max(1, total - warm)))))
    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def _load_init(model: Classifier, path: str) -> None:
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise CheckpointError(f"--init weights not found: {path}")
    sd = load_file(path)
    # an extractor.safetensors (what runs keep for `train.pretrained_v`): the extractor, a fresh head
    target = model if any(k.startswith("head.") for k in sd) else model.extractor
    try:
        target.load_state_dict(sd)
    except RuntimeError as e:
        raise CheckpointError(f"--init weights {path} do not fit this extractor (use the classifier.safetensors "
                              f"or extractor.safetensors of a run with the same extractor and width): {str(e).splitlines()[0][:200]}") from None


def _save_weights(model: Classifier, out: Path, meta: dict) -> None:
    from safetensors.torch import save_file

    md = {k: str(v) for k, v in meta.items()}
    ext = {k: v.detach().contiguous().cpu() for k, v in model.extractor.state_dict().items()}
    full = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_with(out / "extractor.safetensors", lambda p: save_file(ext, str(p), metadata=md))
    atomic_write_with(out / "classifier.safetensors", lambda p: save_file(full, str(p), metadata=md))


def _sets(data: FerArrays) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    sets = {}
    for name, code in (("public", PUBLIC), ("private", PRIVATE), ("test", TEST)):
        x, y = data.subset(code)
        if len(x):
            sets[name] = (torch.from_numpy(x), torch.from_numpy(y))
    return sets


def train_fer(data: FerArrays, r: FerRecipe, out: str | os.PathLike, log=print, device: str = "cpu",
              precision: str = "fp32") -> dict:
    """Train F_v + a linear head on FER2013 Training; choose the epoch on PublicTest (see module doc).

    `device` and `precision` are not part of the recipe (a run may resume on another device): every
    random draw comes from CPU generators, so a GPU sees the same batches and augmentations."""
    dev = pick_device(device)
    out_p = Path(out)
    out_p.mkdir(parents=True, exist_ok=True)
    meta = {"task": "fer2013", **r.to_dict()}
    torch.manual_seed(r.seed)
    tr_x, tr_y = (torch.from_numpy(a) for a in data.subset(TRAIN))
    if r.limit:
        keep = torch.randperm(len(tr_x), generator=torch.Generator().manual_seed(r.seed))[:r.limit]
        tr_x, tr_y = tr_x[keep], tr_y[keep]
    sets = _sets(data)
    sel = "public" if "public" in sets else "test"   # no PublicTest names: plain test accuracy, said so
    model = Classifier(build_extractor(r), len(data.classes)).to(dev)
    tr_x, tr_y = tr_x.to(dev), tr_y.to(dev)   # uint8: the whole training set is 66 MB
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    spe = len(tr_x) // r.batch_size
    if spe < 1:
        raise ValueError(f"{len(tr_x)} training images are fewer than one batch of {r.batch_size}")
    sched = _schedule(opt, r, spe)
    if r.init:  # a second cycle from an earlier run's weights (warm restart); last.pt below takes precedence
        _load_init(model, r.init)
    last = out_p / "last.pt"
    start, history = resume_pretraining(last, meta, model, opt, sched, log, map_location=dev)
    log(f"FER2013: {len(tr_x)} train, " + ", ".join(f"{len(v[0])} {k}" for k, v in sets.items())
        + f"; {sum(p.numel() for p in model.extractor.parameters()) / 1e6:.2f}M extractor parameters, "
        f"{_device_name(dev)}")
    every = max(1, spe // 10)
    for epoch in range(start + 1, r.epochs + 1):
        g = torch.Generator().manual_seed(r.seed * 100003 + epoch)  # the epoch depends only on (seed, epoch)
        rng = np.random.default_rng([r.seed, epoch])
        torch.manual_seed(r.seed * 7919 + epoch)                    # dropout
        perm = torch.randperm(len(tr_x), generator=g)
        model.train()
        t0, tot, n = time.perf_counter(), 0.0, 0
        for b in range(spe):
            idx = perm[b * r.batch_size:(b + 1) * r.batch_size].to(dev)
            x = augment(normalise(tr_x[idx]), g, r)
            t = soft_targets(tr_y[idx], len(data.classes), r.label_smoothing)
            x, t = mix(x, t, g, rng, r)
            with autocast(dev, precision):
                logits = model((x - 0.5) / 0.5)
            loss = torch.sum(-t * F.log_softmax(logits.float(), 1), 1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot, n = tot + loss.item() * len(idx), n + len(idx)
            if (b + 1) % every == 0 and b + 1 < spe:
                log(f"epoch {epoch} batch {b + 1}/{spe} loss {tot / n:.3f} "
                    f"({n / (time.perf_counter() - t0):.0f} images/s)")
        train_s = time.perf_counter() - t0
        ev = evaluate(model, sets, len(data.classes), precision)
        row = {"epoch": epoch, "device": _device_name(dev), "precision": precision, "train_loss": tot / n, "lr_end": float(sched.get_last_lr()[0]), "train_seconds": train_s,
               "eval_seconds": time.perf_counter() - t0 - train_s, "images_per_s": n / train_s,
               "load_avg_1m": os.getloadavg()[0], **ev}
        history.append(row)
        best = max(history, key=lambda h: max(h[f"{sel}_acc_plain"], h[f"{sel}_acc_flip"]))
        if best is row:
            _save_weights(model, out_p, {**meta, "epoch": epoch})
        save_checkpoint(last, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "epoch": epoch, "history": history, "config": meta})
        atomic_write_json(out_p / "history.json", {"recipe": meta, "history": history})
        acc = "  ".join(f"{k} {ev[f'{k}_acc_plain']:.4f}/{ev[f'{k}_acc_flip']:.4f}" for k in sets)
        log(f"epoch {epoch}: train loss {tot / n:.3f}  {acc} (plain/flip)  {train_s:.0f}s train")
    return summarise(history, meta, data.classes, sel, out_p)


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu, {torch.get_num_threads()} threads"


def summarise(history: list[dict], meta: dict, classes: list[str], sel: str, out: Path) -> dict:
    """Choose (epoch, flip averaging or not) on `sel` (PublicTest); report PrivateTest at that choice."""
    if not history:
        raise ValueError("no epoch trained")
    best = max(history, key=lambda h: max(h[f"{sel}_acc_plain"], h[f"{sel}_acc_flip"]))
    mode = "flip" if best[f"{sel}_acc_flip"] > best[f"{sel}_acc_plain"] else "plain"
    res = {"recipe": meta, "selected_on": sel, "epoch": best["epoch"], "tta": mode,
           f"{sel}_accuracy": best[f"{sel}_acc_{mode}"], "classes": classes,
           "total_train_seconds": sum(h["train_seconds"] + h["eval_seconds"] for h in history)}
    for name in ("private", "test"):
        if f"{name}_acc_{mode}" in best and name != sel:
            res[f"{name}_accuracy"] = best[f"{name}_acc_{mode}"]
            res[f"{name}_recall"] = dict(zip(classes, best[f"{name}_recall_{mode}"]))
    res["command"] = " ".join(sys.argv)
    res["torch"] = torch.__version__
    res["threads"] = torch.get_num_threads()
    res["device"] = history[-1].get("device", f"cpu, {res['threads']} threads")
    atomic_write_json(out / "metrics.json", res)
    return res


def check_pretrained_v(path: str | os.PathLike, model_cfg, data_cfg) -> None:
    """Refuse FER2013 weights whose extractor, width, channels or face size differ from the run's.

    The safetensors metadata written by `train_fer` says what the weights were trained on; a face
    branch fed 112-pixel RGB crops would otherwise load 48-pixel grey weights silently (all shapes but
    the first conv's agree for a global-pool ResNet). Files without that metadata are not checked."""
    from mrpn.checkpoint import read_header
    from mrpn.config import ConfigError

    _, md = read_header(Path(path))  # the header only, checked: a damaged file is a one-line error
    md = md or {}
    if md.get("task") != "fer2013":
        return
    want = {"extractor": model_cfg.video_extractor, "width": str(model_cfg.video_width),
            "in_channels": str(model_cfg.video_in_channels), "face_size": str(data_cfg.face_size)}
    if want["extractor"] == "resnet18":
        want["stem"] = model_cfg.video_stem
    keys = {"extractor": "model.video_extractor", "width": "model.video_width", "stem": "model.video_stem",
            "in_channels": "model.video_in_channels", "face_size": "data.face_size"}
    diffs = [f"{keys[k]}={v} but the weights were trained with {md[k]}" for k, v in want.items()
             if k in md and md[k] != v]
    if data_cfg.gray != (md.get("in_channels") == "1"):
        diffs.append(f"data.gray={data_cfg.gray} but the weights expect {md.get('in_channels')} channel(s)")
    if diffs:
        raise ConfigError(f"pretrained F_v {path} does not fit this run: " + "; ".join(diffs))
