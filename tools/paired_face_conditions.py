"""How a fusion model answers when the face does not show the emotion (the paper's section 3.1, measured on
the paired-by-class benchmark): one actor group's clips scored with their faces as paired, with every
face neutral ("missing"), with every face of another emotion ("fuzzy"), and with no face at all (the
audio side head). A model that only follows the face drops to the face's answer under "neutral";
one that fuses falls back on the voice. "video": one face of the label's emotion held over the whole clip,
as a real video shows one person, instead of four different people.

    python3 tools/paired_face_conditions.py MODEL [MODEL ...] --cache cache/ravdess_audio \
        --fer ../shared/data/fer2013 --fold 1 --actors inner --out docs/results/shipped/face_conditions.json

MODEL: a checkpoint (best.pt) or .safetensors of a paired-benchmark N0/N1/N2 (default: the shipped model).
`--actors inner` scores the fold's inner-validation pair (training actors held out to choose with),
`test` its test pair.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CONDITIONS = {"label": "faces as paired (the label's emotion)", "neutral": "every face neutral (missing)",
              "other": "every face another emotion (fuzzy)", "video": "one face held over the clip (as a video)"}


def _row(y_true, y_pred, classes: list[str]) -> dict:
    from mrpn.evaluation.metrics import compute_metrics

    m = compute_metrics(y_true, y_pred, classes)
    top, count = Counter(int(p) for p in y_pred).most_common(1)[0]
    return {"accuracy": round(m["accuracy"], 4), "uar": round(m["uar"], 4), "n": int(m["n"]),
            "most_answered": classes[top], "most_answered_share": round(count / max(1, len(y_pred)), 4)}


def face_conditions(model_path: str | None, cache: str, fer: str, fold: int, actors: str) -> dict:
    """{condition: {"fused": row, "face_head": row}, "no_face": {"audio_head": row}} for one model."""
    import torch

    from mrpn.data.folds import inner_val_actors
    from mrpn.data.loader import EmotionDataset
    from mrpn.inference.model_io import load_for_inference
    from mrpn.training.loop import evaluate
    from mrpn.training.setup import fold_indices, make_loader, make_source, protocol_val_actors, resolve_protocol

    model, cfg, classes = load_for_inference(model_path, "cpu")
    if cfg.data.dataset != "paired":
        raise SystemExit(f"{model_path}: trained on {cfg.data.dataset!r}, not on the paired benchmark")
    cfg = replace(cfg, data=replace(cfg.data, cache=cache, fer=fer, workers=0, paired_fuzzy=0.0,
                                           paired_video=0.0))
    source = make_source(cfg, set(protocol_val_actors(cfg, fold)))
    clips = source.clips()
    protocol = resolve_protocol(cfg, [c.actor for c in clips], {c.actor: c.gender for c in clips})
    tr, va = fold_indices(clips, protocol.folds[fold - 1])
    inner = set(inner_val_actors(protocol, fold, [clips[i].actor for i in tr], cfg.train.inner_actors))
    idx = va if actors == "test" else [i for i in tr if clips[i].actor in inner]
    out: dict = {"model": model_path or "shipped (mrpn-default)", "fold": fold, "actors": actors,
                 "actor_ids": sorted({clips[i].actor for i in idx}), "classes": classes}
    for cond in CONDITIONS:
        source.face_condition, source.face_layout = ("label", "video") if cond == "video" else (cond, "paired")
        ds = EmotionDataset(source, idx, cfg.data, ("v", "a"), train=False, seed=cfg.train.seed)
        res = evaluate(model, make_loader(ds, cfg, False), torch.device("cpu"), precision="fp32",
                       channels_last=False, side_heads=True, progress=False)
        out[cond] = {"fused": _row(res["y_true"], res["y_pred"], classes)}
        if "side_pred" in res:
            out[cond]["face_head"] = _row(res["y_true"], res["side_pred"]["v"], classes)
            out["no_face"] = {"audio_head": _row(res["y_true"], res["side_pred"]["a"], classes)}
    return out


def print_table(results: list[dict]) -> None:
    print("| model | " + " | ".join(f"fused: {v}" for v in CONDITIONS.values()) + " | no face: audio head |")
    print("| --- | " + " | ".join("---:" for _ in CONDITIONS) + " | ---: |")
    for r in results:
        cells = [f"{100 * r[c]['fused']['accuracy']:.1f} % ({r[c]['fused']['most_answered']} "
                 f"{100 * r[c]['fused']['most_answered_share']:.0f} %)" for c in CONDITIONS]
        a = r.get("no_face", {}).get("audio_head")
        cells.append(f"{100 * a['accuracy']:.1f} %" if a else "-")
        print(f"| {r['model']} | " + " | ".join(cells) + " |")
    print("(accuracy; in brackets the most answered class and its share of the answers)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=[None], help="checkpoints or .safetensors (default: shipped)")
    ap.add_argument("--cache", default="cache/ravdess_audio")
    ap.add_argument("--fer", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    ap.add_argument("--fold", type=int, default=1)
    ap.add_argument("--actors", choices=("inner", "test"), default="inner")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, help="also write the results as JSON here")
    a = ap.parse_args(argv)
    import torch

    from mrpn.config import ConfigError
    from mrpn.io import atomic_write_json
    from mrpn.training.checkpoint import CheckpointError

    torch.set_num_threads(a.threads)
    try:
        results = [face_conditions(m, a.cache, a.fer, a.fold, a.actors) for m in a.models]
    except (ConfigError, CheckpointError) as e:
        print(f"paired_face_conditions: {e}", file=sys.stderr)
        return 1
    print_table(results)
    if a.out:
        atomic_write_json(a.out, {"command": " ".join(["python3", "tools/paired_face_conditions.py", *sys.argv[1:]]),
                                  "conditions": CONDITIONS, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
