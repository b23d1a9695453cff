"""What `train.feature_views` saves: one N2 training step with both extractors fixed, on raw inputs (F_m run
in every step) against the same step on F_m's cached outputs, in the same process; plus the one-off cost of a
view (F_m alone over a batch). Model and inputs as in configs/paired_v2.yaml (the paired benchmark).

    python bench/feature_views.py --out docs/results/bench_feature_views.json

Speeds are medians over steps after one warm-up step; the load average is recorded beside them, since a
figure taken while other work runs is a record, not a result.
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
from mrpn.io import atomic_write_json  # noqa: E402
from mrpn.models.build import build_model  # noqa: E402
from mrpn.models.fusion import freeze_extractors  # noqa: E402
from mrpn.models.loss import mrpn_loss  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def inputs(cfg, b: int) -> dict[str, torch.Tensor]:
    d = cfg.data
    seg = 7   # a 4 s RAVDESS sentence: (4 - 1) / 0.5 + 1 segments of 1 s
    return {"v": torch.randn(b, d.paired_faces, 1, d.face_size, d.face_size), "v_len": torch.full((b,), d.paired_faces),
            "a": torch.randn(b, seg, 1, *d.spec_size), "a_len": torch.full((b,), seg),
            "label": torch.randint(0, cfg.model.n_classes, (b,))}


def median_step(model, batch, opt, steps: int) -> float:
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss, _ = mrpn_loss(model(batch), batch["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    cfg = load_config("cpu", file=str(REPO / "configs" / "paired_v2.yaml"), overrides=["model.kind=n2", "train.freeze_extractors=v,a"])
    b = cfg.train.batch_size
    torch.manual_seed(0)
    model = freeze_extractors(build_model(cfg.model), ["v", "a"]).train()
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
    raw = inputs(cfg, b)
    with torch.no_grad():
        t0 = time.perf_counter()
        feats = {m: model.branches[m].extractor(raw[m].flatten(0, 1)).view(b, raw[m].shape[1], -1) for m in ("v", "a")}
        view_s = time.perf_counter() - t0
    cached = {"v_feat": feats["v"], "v_len": raw["v_len"], "a_feat": feats["a"], "a_len": raw["a_len"],
              "label": raw["label"]}
    t_raw = median_step(model, raw, opt, a.steps)
    t_cached = median_step(model, cached, opt, a.steps)
    res = {"batch": b, "threads": a.threads, "steps": a.steps, "load_average": list(os.getloadavg()),
           "step_s_raw_inputs": round(t_raw, 5), "step_s_cached_features": round(t_cached, 5),
           "speedup": round(t_raw / t_cached, 2), "view_s_per_batch": round(view_s, 5),
           "note": "one N2 step, both extractors fixed; a view costs F_m's forward once per clip"}
    for k, v in res.items():
        print(f"{k:24s} {v}")
    if a.out:
        atomic_write_json(a.out, res)


if __name__ == "__main__":
    main()
