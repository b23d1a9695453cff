"""Training throughput, memory, loader speed and the cost of growth, each against a baseline run in
the same process.

    python bench/train.py                       # cpu preset, paper preset (small batch), loader, growth
    python bench/train.py --quick               # fewer steps
    python bench/train.py | tee docs/results/perf/train_idle.txt   # the committed record of PERFORMANCE.md

Prints clips/s of one N2 end-to-end training step for: the naive path (fp32, eager, NCHW) and the
project's default path for that preset (cpu: fp32 NCHW; paper: bf16 autocast + channels_last), their
ratio, the FLOPs per clip (torch.utils.flop_counter) against this machine's measured matmul peak,
the peak RSS growth per step, the loader's clips/s from a real cache against what the model
consumes, and step time against clip length and batch size (linear growth check).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mrpn.config import load_config  # noqa: E402
from mrpn.models.build import build_model  # noqa: E402
from mrpn.models.loss import mrpn_loss  # noqa: E402


def batch_for(cfg, b: int, seconds: float) -> dict:
    d = cfg.data
    t = min(d.max_frames or 10**6, int(seconds * (d.video_fps or 30)))
    s = int((seconds - d.segment_s) / d.segment_hop_s) + 1
    c = 1 if d.gray else 3
    return {"v": torch.randn(b, t, c, d.face_size, d.face_size), "v_len": torch.full((b,), t),
            "a": torch.randn(b, s, 1, *d.spec_size), "a_len": torch.full((b,), s),
            "label": torch.randint(0, 8, (b,))}


def step_time(cfg, batch, precision: str, channels_last: bool, steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = build_model(cfg.model).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        for branch in model.branches.values():
            branch.channels_last = True
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times, saved, counting = [], {}, [True]

    def pack(t: torch.Tensor) -> torch.Tensor:
        # every tensor autograd keeps for backward, counted once: the step's activation memory
        if counting[0]:
            saved[(t.data_ptr(), t.dtype, tuple(t.shape))] = t.numel() * t.element_size()
        return t

    for i in range(steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"), \
                torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(batch)
            loss, _ = mrpn_loss(out, batch["label"])
        counting[0] = False  # the first step's forward is counted
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], sum(saved.values()) / 2**20


def flops_per_clip(cfg, batch) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(cfg.model).train()
    with FlopCounterMode(display=False) as fc:
        out = model(batch)
        loss, _ = mrpn_loss(out, batch["label"])
        loss.backward()
    return fc.get_total_flops() / batch["label"].shape[0]


def matmul_peak() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    t0 = time.perf_counter()
    n = 10
    for _ in range(n):
        a @ b
    return 2 * 2048 ** 3 * n / (time.perf_counter() - t0)


def bench_preset(name: str, b: int, seconds: float, steps: int, rounds: int = 2) -> float:
    """fp32 eager NCHW (the naive path) against bf16 autocast + channels_last, run in alternating
    rounds (best round kept) so that a load change on the machine hits both alike."""
    cfg = load_config(name, overrides=["model.kind=n2"])
    batch = batch_for(cfg, b, seconds)
    variants = {"fp32 eager NCHW (naive)": ("fp32", False), "bf16 autocast + channels_last": ("bf16", True)}
    best = {k: (float("inf"), 0.0) for k in variants}
    for _ in range(rounds):
        for k, (prec, cl) in variants.items():
            t, mem = step_time(cfg, batch, prec, cl, steps)
            best[k] = (min(best[k][0], t), mem)
    default = "bf16 autocast + channels_last" if cfg.train.precision in ("auto", "bf16") else "fp32 eager NCHW (naive)"
    fl = flops_per_clip(cfg, batch)
    naive_t = best["fp32 eager NCHW (naive)"][0]
    print(f"\n[{name} preset] N2 end-to-end training step, batch {b}, {seconds:g} s clips "
          f"(video {tuple(batch['v'].shape[1:])}, audio {tuple(batch['a'].shape[1:])}); best of {rounds} rounds")
    for k, (t, mem) in best.items():
        mark = "  <- preset default" if k == default else ""
        print(f"  {k:32s}: {b / t:8.2f} clips/s  {t * 1000:8.0f} ms/step  saved activations {mem:6.0f} MiB  "
              f"speed vs naive {naive_t / t:.2f}x{mark}")
    t_def = best[default][0]
    print(f"  FLOPs per clip (fwd+bwd): {fl / 1e9:.2f} GFLOP -> {fl * b / t_def / 1e9:.1f} GFLOP/s achieved "
          f"by the default path")
    return b / t_def


def bench_loader(cache: str, cfg_name: str, model_rate: float, n: int) -> None:
    from torch.utils.data import DataLoader

    from mrpn.data.loader import CacheSource, EmotionDataset, collate

    cfg = load_config(cfg_name)
    src = CacheSource(cache)
    mods = ("a",) if src.load(0).faces is None else ("v", "a")
    ds = EmotionDataset(src, list(range(min(n, len(src.clips())))), cfg.data, mods, train=True)
    print(f"\n[loader] {cache}: {len(ds)} clips, modalities {mods}, train transforms")
    for workers in (0, 1, 2):
        dl = DataLoader(ds, batch_size=16, num_workers=workers, collate_fn=collate)
        t0 = time.perf_counter()
        k = sum(b["label"].shape[0] for b in dl)
        rate = k / (time.perf_counter() - t0)
        print(f"  workers={workers}: {rate:8.1f} clips/s  ({rate / model_rate:.1f}x what the cpu-preset "
              f"N2 step consumes, {model_rate:.1f} clips/s)")


def bench_epoch_growth(cache: str, sizes=(100, 200, 400, 800)) -> None:
    """A real epoch (cache -> loader with 1 worker -> AM model, cpu preset) on growing subsets."""
    from mrpn.data.loader import CacheSource, EmotionDataset
    from mrpn.training.loop import train_one_epoch
    from mrpn.training.run import make_loader

    cfg = load_config("cpu", overrides=["model.kind=am", "data.workers=1", "model.n_classes=8"])
    src = CacheSource(cache)
    print(f"\n[growth] one training epoch of AM (cpu preset, 1 loader worker) on {cache} against the number of clips")
    base = None
    for n in sizes:
        n = min(n, len(src.clips()))
        torch.manual_seed(0)
        model = build_model(cfg.model)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        ds = EmotionDataset(src, list(range(n)), cfg.data, ("a",), train=True)
        t0 = time.perf_counter()
        train_one_epoch(model, make_loader(ds, cfg, True, 1), opt, torch.device("cpu"), "fp32", False, progress=False)
        t = time.perf_counter() - t0
        base = base or t / n
        print(f"  {n:5d} clips: {t:7.1f} s/epoch  {t / n * 1000:6.1f} ms per clip ({t / n / base:.2f}x the first)")


def bench_growth(steps: int) -> None:
    cfg = load_config("cpu", overrides=["model.kind=n2", "data.max_frames=0"])
    print("\n[growth] cpu preset N2 step time against clip length (batch 8) and batch size (2 s clips)")
    base = None
    for sec in (1.5, 3.0, 6.0, 12.0):
        t, _ = step_time(cfg, batch_for(cfg, 8, sec), "fp32", False, steps)
        base = base or t / sec
        print(f"  clip {sec:5.1f} s: {t * 1000:8.1f} ms/step   per second of clip {t / sec * 1000:6.1f} ms "
              f"({t / sec / base:.2f}x the 1.5 s rate)")
    base = None
    for b in (4, 8, 16, 32):
        t, _ = step_time(cfg, batch_for(cfg, b, 2.0), "fp32", False, steps)
        base = base or t / b
        print(f"  batch {b:3d}: {t * 1000:8.1f} ms/step   per clip {t / b * 1000:6.1f} ms ({t / b / base:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cache", default="cache/ravdess_audio", help="a prepared cache for the loader benchmark")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="cpu,paper,loader,epochs,growth",
                    help="comma-separated sections: cpu, paper, loader, epochs, growth")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps = 2 if args.quick else 4
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; matmul peak {matmul_peak() / 1e9:.1f} GFLOP/s (fp32 2048^2)")
    only = set(args.only.split(","))
    rate = 10.0
    if "cpu" in only:
        rate = bench_preset("cpu", 16, 3.5, steps)
    if "paper" in only:
        bench_preset("paper", 2, 2.0, 1 if args.quick else 2, rounds=1 if args.quick else 2)
    if only & {"loader", "epochs"} and not Path(args.cache).is_dir():
        print(f"\n[loader] skipped: no cache at {args.cache} (run mrpn prepare first)")
    elif only & {"loader", "epochs"}:
        if "loader" in only:
            bench_loader(args.cache, "cpu", rate, 64 if args.quick else 200)
        if "epochs" in only:
            bench_epoch_growth(args.cache, (50, 100) if args.quick else (100, 200, 400, 800))
    if "growth" in only:
        bench_growth(steps)
    # a figure taken under load is a record, not a result: the load at both ends says which this was
    print(f"\nload average at the end {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min)")


if __name__ == "__main__":
    main()
