"""`mrpn pretrain`: extractor initialisation (paper 5.2).

* `visual`: F_v trained to classify FER2013 faces (7 classes) by `mrpn.training.fer`: the images are
  decoded once into a uint8 array (`mrpn.data.fer_cache`), augmented as batch tensors, the epoch
  (and test-time flip averaging) chosen on PublicTest, PrivateTest reported. The extractor is the
  paper's ResNet-18 or the faster VGG-style FaceCNN (`--extractor`, docs/CONFIG.md).
* `audio`: ResNet-18 F_a trained for speaker identification on 1 s spectrogram segments from a
  folder per speaker (VoxCeleb layout `id/video/utt.wav` or any `speaker/*.wav|flac`).

Both write `extractor.safetensors` (the extractor's weights only, loadable without executing code)
plus `metrics.json` and `config.json`; `mrpn train --set train.pretrained_v=...` starts from them.
Training resumes from `last.pt` when re-run.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from mrpn.config import ConfigError
from mrpn.io import atomic_write_json, atomic_write_with
from mrpn.training.checkpoint import CheckpointError, save_checkpoint
from mrpn.training.fer import Classifier, resume_pretraining
from mrpn.training.loop import autocast, pick_device


def _fit(model: Classifier, train_dl, test_dl, epochs: int, lr: float, device, precision: str, out: Path,
         meta: dict, augment=None, log=print) -> dict:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = max(1, epochs * len(train_dl))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    last = out / "last.pt"
    start, history = resume_pretraining(last, meta, model, opt, sched, log, map_location=device)
    g = torch.Generator().manual_seed(meta["seed"])
    shuffle_g = getattr(train_dl, "generator", None)
    from mrpn.progress import progress

    for epoch in range(start + 1, epochs + 1):
        g.manual_seed(meta["seed"] * 1000 + epoch)
        if shuffle_g is not None:  # the epoch's order depends only on (seed, epoch): exact resume
            shuffle_g.manual_seed(meta["seed"] * 100003 + epoch)
        torch.manual_seed(meta["seed"] * 7919 + epoch)
        model.train()
        t0, n, tot = time.perf_counter(), 0, 0.0
        bar = progress(train_dl, desc=f"pretrain epoch {epoch}/{epochs}", leave=False)
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            if augment is not None:
                x = augment(x, g)
            with autocast(device, precision):
                loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            n += len(y)
            tot += float(loss.detach()) * len(y)
            bar.set_postfix(loss=f"{tot / n:.3f}")
        acc = evaluate_classifier(model, test_dl, device, precision)
        n = max(n, 1)
        history.append({"epoch": epoch, "train_loss": tot / n, "test_accuracy": acc,
                        "seconds": time.perf_counter() - t0, "images_per_s": n / (time.perf_counter() - t0)})
        log(f"epoch {epoch}: train loss {tot / n:.3f}  test accuracy {acc:.4f}  "
            f"({history[-1]['images_per_s']:.0f} samples/s)")
        save_checkpoint(last, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "epoch": epoch, "history": history, "config": meta})
    from safetensors.torch import save_file

    sd = {k: v.detach().contiguous().cpu() for k, v in model.extractor.state_dict().items()}
    atomic_write_with(out / "extractor.safetensors", lambda p: save_file(sd, str(p), metadata={
        k: str(v) for k, v in meta.items()}))
    result = {**meta, "test_accuracy": history[-1]["test_accuracy"] if history else None, "history": history}
    atomic_write_json(out / "metrics.json", result)
    return result


@torch.no_grad()
def evaluate_classifier(model: nn.Module, dl, device, precision: str) -> float:
    model.eval()
    correct = n = 0
    for x, y in dl:
        x = x.to(device)
        with autocast(device, precision):
            p = model(x).argmax(1).cpu()
        correct += int((p == y).sum())
        n += len(y)
    return correct / max(n, 1)


def pretrain_visual(fer_root: str, out: str, recipe=None, cache: str | None = None, log=print,
                    device: str = "cpu", precision: str = "fp32") -> dict:
    """FER2013 -> F_v (see `mrpn.training.fer`): decoded once, batch-augmented, epoch chosen on PublicTest."""
    from mrpn.data.fer_cache import load_fer
    from mrpn.training.fer import FerRecipe, train_fer

    recipe = recipe or FerRecipe()
    Path(out).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(out) / "config.json", recipe.to_dict())
    t0 = time.perf_counter()
    data = load_fer(fer_root, cache, log=log)
    log(f"FER2013 loaded in {time.perf_counter() - t0:.1f}s ({len(data.images)} images)")
    return train_fer(data, recipe, out, log=log, device=device, precision=precision)


class SpeakerSegments(Dataset):
    """1 s spectrogram segments (paper 4.4) of every file, labelled with its speaker folder."""

    def __init__(self, items: list[tuple[np.ndarray, int]], spec_size, hop_s: float):
        from mrpn.features.spectrogram import spectrogram_segments

        xs, ys = [], []
        for wave, spk in items:
            s = spectrogram_segments(torch.from_numpy(wave), hop_s=hop_s, spec_size=tuple(spec_size))
            xs.append(s)
            ys.append(torch.full((len(s),), spk, dtype=torch.long))
        self.x, self.y = torch.cat(xs), torch.cat(ys)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def find_speaker_files(root: str) -> dict[str, list[Path]]:
    """{speaker: files}: the first folder level under root names the speaker (VoxCeleb: id/video/utt.wav)."""
    root_p = Path(root)
    if not root_p.is_dir():
        raise ConfigError(f"speaker corpus not found: {root}")
    out: dict[str, list[Path]] = {}
    for spk in sorted(p for p in root_p.iterdir() if p.is_dir()):
        files = sorted(f for f in spk.rglob("*") if f.suffix.lower() in (".wav", ".flac", ".m4a", ".mp4"))
        if files:
            out[spk.name] = files
    if len(out) < 2:
        raise ConfigError(f"{root}: need at least two speaker folders with audio files (speaker/*.wav)")
    return out


def pretrain_audio(root: str, out: str, width: int = 16, stem: str = "imagenet", spec_size=(64, 64),
                   epochs: int = 10, batch_size: int = 64, lr: float = 3e-3, limit: int = 0, seed: int = 0,
                   device: str = "auto", precision: str = "auto", log=print) -> dict:
    from mrpn.data.audio import load_audio
    from mrpn.models.resnet import ResNet18

    out_p = Path(out)
    out_p.mkdir(parents=True, exist_ok=True)
    speakers = find_speaker_files(root)
    meta = {"task": "speaker-id", "root": str(Path(root).resolve()), "width": width, "stem": stem,
            "spec_size": list(spec_size), "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "limit": limit, "seed": seed, "n_speakers": len(speakers)}
    atomic_write_json(out_p / "config.json", meta)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k, (spk, files) in enumerate(speakers.items()):
        files = list(files)
        rng.shuffle(files)
        if limit:
            files = files[:limit]
        n_test = max(1, len(files) // 10) if len(files) > 1 else 0
        for j, f in enumerate(files):
            try:
                wave = load_audio(str(f))
            except Exception as e:  # one bad file must not stop the run
                log(f"skipping {f}: {e}")
                continue
            (test if j < n_test else train).append((wave, k))
    log(f"speaker-id: {len(speakers)} speakers, {len(train)} train / {len(test)} held-out utterances")
    if not train or not test:
        raise ConfigError(f"{root}: need at least 2 readable files per speaker (one is held out for testing)")
    tr, te = SpeakerSegments(train, spec_size, 0.5), SpeakerSegments(test, spec_size, 1.0)
    g = torch.Generator().manual_seed(seed)
    train_dl = DataLoader(tr, batch_size=batch_size, shuffle=True, generator=g, drop_last=len(tr) > batch_size)
    test_dl = DataLoader(te, batch_size=256)
    dev = pick_device(device)
    model = Classifier(ResNet18(in_channels=1, width=width, stem=stem), len(speakers)).to(dev)
    return _fit(model, train_dl, test_dl, epochs, lr, dev, precision, out_p, meta, log=log)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["visual", "audio"], help="visual: FER2013; audio: speaker identification")
    p.add_argument("root", help="FER2013 root (train/ test/ or fer2013.csv) or a folder per speaker")
    p.add_argument("--out", required=True, help="output folder (extractor.safetensors, metrics.json)")
    p.add_argument("--width", type=int, default=None,
                   help="extractor base width (ResNet-18: 64 = the paper's, default 16; facecnn: default 24)")
    p.add_argument("--extractor", choices=["facecnn", "resnet18"], default="facecnn",
                   help="visual: facecnn (VGG-style, fast on a CPU; default) or resnet18 (the paper's)")
    p.add_argument("--cache", default=None, help="visual: folder for the decoded FER2013 array "
                   "(default $MRPN_CACHE or ~/.cache/mrpn)")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="visual: label smoothing of the targets")
    p.add_argument("--mixup", type=float, default=0.0, help="visual: mixup Beta(a, a) (0 = off)")
    p.add_argument("--cutmix", type=float, default=0.0, help="visual: cutmix Beta(a, a) (0 = off)")
    p.add_argument("--erase", type=float, default=0.0, help="visual: random-erasing probability")
    p.add_argument("--warmup", type=float, default=1.0, help="visual: warm-up epochs before the cosine decay")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--init", default="", help="visual: start from an earlier run's classifier.safetensors, or "
                                             "its extractor.safetensors (with a fresh head)")
    p.add_argument("--camera", type=float, default=0.0, help="visual: probability of each camera condition per "
                                                             "image: blur, distance, exposure, noise (features/camera.py)")
    p.add_argument("--stem", choices=["imagenet", "small"], help="imagenet (default; stride-4 stem) or small (stride-1, for 48x48 inputs at a ~7x cost)")
    p.add_argument("--size", type=int, default=48, help="visual: face side in pixels")
    p.add_argument("--rgb", action="store_true", help="visual: 3-channel input (for RGB face crops)")
    p.add_argument("--spec-size", default="64x64", help="audio: spectrogram segment size FxW")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--limit", type=int, default=0, help="use at most N training images / files per speaker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, cuda:1")
    p.add_argument("--precision", default="fp32", choices=["auto", "bf16", "fp32"])


def main(args: argparse.Namespace) -> int:
    from mrpn.training.fer import FerRecipe

    if args.threads:
        torch.set_num_threads(args.threads)
    log = _plain_log
    try:
        if args.what == "visual":
            width = args.width or (24 if args.extractor == "facecnn" else 16)
            recipe = FerRecipe(extractor=args.extractor, width=width, stem=args.stem or "imagenet",
                               epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                               weight_decay=args.weight_decay, warmup_epochs=args.warmup,
                               label_smoothing=args.label_smoothing, mixup=args.mixup, cutmix=args.cutmix,
                               erase=args.erase, seed=args.seed, limit=args.limit, init=args.init, face_size=args.size,
                               in_channels=3 if args.rgb else 1, cam_blur=args.camera, cam_lowres=args.camera,
                               cam_exposure=args.camera, cam_noise=args.camera)
            if not 0 <= args.camera <= 1:
                raise ConfigError(f"--camera is a probability in [0, 1], got {args.camera}")
            if args.size != 48 or args.rgb:
                raise ConfigError("visual pretraining uses FER2013's 48x48 grey faces (--size 48, no --rgb)")
            r = pretrain_visual(args.root, args.out, recipe, args.cache, log=log, device=args.device,
                                precision=args.precision)
            print(f"FER2013 PrivateTest accuracy {r.get('private_accuracy', float('nan')):.4f} at epoch "
                  f"{r['epoch']} (chosen on {r['selected_on']}, tta {r['tta']}) -> "
                  f"{Path(args.out) / 'extractor.safetensors'}")
        else:
            spec = tuple(int(v) for v in args.spec_size.lower().split("x"))
            r = pretrain_audio(args.root, args.out, args.width or 16, args.stem or "imagenet", spec, args.epochs,
                               args.batch_size, args.lr, args.limit, args.seed, args.device, args.precision)
            print(f"speaker-id held-out accuracy {r['test_accuracy']:.4f} -> "
                  f"{Path(args.out) / 'extractor.safetensors'}")
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"mrpn pretrain: error: {e}", file=sys.stderr)
        return 2
    return 0


def _plain_log(msg: str) -> None:
    """Progress as plain lines with a timestamp (a log file when run with nohup, or a terminal)."""
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)
