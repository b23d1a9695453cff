"""Train-step time per 48x48 grey face of the F_v candidates (FaceCNN vs ResNet-18 stems), 1 thread.

    python3 bench/fer_extractors.py --out docs/results/fer2013/extractor_speed.json

Interleaved repeats, the minimum kept; on a shared machine only the ratios mean much (load average saved).
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from mrpn.io import atomic_write_json
from mrpn.models.facecnn import FaceCNN
from mrpn.models.resnet import ResNet18


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = torch.randn(a.batch, 1, 48, 48), torch.randint(0, 7, (a.batch,))
    nets = {"facecnn_w16": FaceCNN(1, 16), "facecnn_w24": FaceCNN(1, 24),
            "resnet18_w16_small_stem": ResNet18(1, 16, "small"), "resnet18_w16_imagenet_stem": ResNet18(1, 16)}
    times: dict[str, list[float]] = {k: [] for k in nets}
    load = [os.getloadavg()[0]]
    for _ in range(a.repeats):
        for k, ext in nets.items():
            net = torch.nn.Sequential(ext, torch.nn.Linear(ext.out_dim, 7))
            opt = torch.optim.AdamW(net.parameters())
            t = time.perf_counter()
            for _ in range(2):
                loss = torch.nn.functional.cross_entropy(net(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            times[k].append((time.perf_counter() - t) / 2 / a.batch * 1000)
    load.append(os.getloadavg()[0])
    out = {k: {"params_M": round(sum(p.numel() for p in nets[k].parameters()) / 1e6, 3),
               "ms_per_image_min": round(min(v), 2)} for k, v in times.items()}
    out["load_avg_1m_before_after"] = load
    out["threads"] = 1
    atomic_write_json(a.out, out)
    print(out)


if __name__ == "__main__":
    main()
