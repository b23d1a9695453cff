"""The measured tables of docs/MODEL_CARD.md, from the committed sources (nothing typed by hand).

    python3 tools/model_card_tables.py docs/results/shipped/metrics.json docs/results/fer_serving_private.json \
        docs/predictions/table.json

1. per head (fused, face alone, audio alone): accuracy, UAR, macro-F1 on the fold's test actors and on the
   inner actors, and each head's confusion matrix on the test actors;
2. single FER2013 images through `mrpn predict` and through the evaluation path (bench/fer_serving.py):
   per-class recall and how often each class is answered;
3. the real RAVDESS videos (tools/real_video_table.py).
"""
from __future__ import annotations

import json
import sys

HEADS = (("fused", "fused (both modalities)"), ("v", "face head alone"), ("a", "audio head alone"))


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def heads(m: dict) -> None:
    inner = m.get("inner") or {}
    print(f"| head | test actors {', '.join(m['val_actors'])}: accuracy | UAR | macro-F1 | "
          f"inner actors {', '.join(m.get('inner_val_actors') or [])}: accuracy | UAR |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for key, name in HEADS:
        t = m if key == "fused" else m["modalities"][key]
        i = inner if key == "fused" else (inner.get("modalities") or {}).get(key, {})
        print(f"| {name} | {pct(t['accuracy'])} | {pct(t['uar'])} | {pct(t['macro_f1'])} | "
              f"{pct(i.get('accuracy'))} | {pct(i.get('uar'))} |")
    classes = m["class_names"]
    for key, name in HEADS:
        conf = m["confusion"] if key == "fused" else m["modalities"][key]["confusion"]
        print(f"\nConfusion, {name}, test actors (rows: true, columns: predicted):\n")
        print("| true \\ predicted | " + " | ".join(classes) + " |")
        print("| --- | " + " | ".join("---:" for _ in classes) + " |")
        for c, row in zip(classes, conf):
            print(f"| {c} | " + " | ".join(str(v) for v in row) + " |")


def fer(r: dict) -> None:
    paths = r["paths"]
    classes = list(next(iter(paths.values()))["predicted_share"])
    print(f"| {r['images']} FER2013 {r['usage']} images | accuracy | " + " | ".join(classes) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in classes) + " |")
    for name, p in paths.items():
        print(f"| {name}: recall | {pct(p['accuracy'])} | " + " | ".join(pct(p["recall"].get(c)) for c in classes) + " |")
        print(f"| {name}: share of answers | | " + " | ".join(pct(p["predicted_share"][c]) for c in classes) + " |")
    print(f"\nSame label on both paths: {pct(r['same_label_share'])} of the images.")


def videos(t: dict) -> None:
    print("| clip | true | predicted (p) | modalities | face head | audio head |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in t["rows"]:
        true = r["true"] + ("" if r["known_class"] else " (not a class)")
        print(f"| `{r['clip']}` | {true} | **{r['predicted']}** ({r['p']:.2f}) | {'+'.join(r['modalities'])} | "
              f"{r['face_head'] or '-'} | {r['audio_head'] or '-'} |")
    s = t["summary"]
    print(f"\nOf the {s['with_a_known_class']} predictions whose emotion is a class of the model: fused right "
          f"{s['fused_right']}, face head right {s['face_head_right']}, audio head right {s['audio_head_right']}.")


def main(metrics: str, fer_serving: str, video_table: str) -> None:
    heads(json.load(open(metrics)))
    print()
    fer(json.load(open(fer_serving)))
    print()
    videos(json.load(open(video_table)))


if __name__ == "__main__":
    main(*sys.argv[1:4])
