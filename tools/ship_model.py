"""Package a trained checkpoint as the default model shipped inside mrpn (fp16 safetensors).

    python tools/ship_model.py RUN/fold_01/best.pt --metrics RUN/fold_01/metrics.json

Writes src/mrpn/assets/mrpn-default.safetensors. The model card (docs/MODEL_CARD.md, copied to
src/mrpn/assets/MODEL_CARD.md) is written by hand from the measured metrics.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--out", default=str(ROOT / "src" / "mrpn" / "assets" / "mrpn-default.safetensors"))
    args = ap.parse_args()
    from mrpn.inference.model_io import save_for_inference
    from mrpn.training.checkpoint import load_checkpoint
    from mrpn.models.build import build_model
    from mrpn.config import config_from_dict

    ck = load_checkpoint(args.checkpoint)
    cfg = config_from_dict(ck["config"])
    model = build_model(cfg.model)
    model.load_state_dict(ck["model"])
    m = json.loads(Path(args.metrics).read_text())
    extra = {"trained_on": m.get("dataset"), "fold": m.get("fold"), "accuracy": m.get("accuracy"),
             "uar": m.get("uar"), "modalities": m.get("modalities"), "licence": "CC BY-NC-SA 4.0 (derived from RAVDESS; FER2013 terms apply)"}
    save_for_inference(model, ck["config"], ck["classes"], args.out, half=True, extra=extra)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
