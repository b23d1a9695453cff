"""`mrpn predict` on the real RAVDESS videos in ../shared and the model card's table of what it said.

    python3 tools/real_video_table.py ../shared/data/ravdess --out docs/predictions

For every `Actor_NN/0[12]-*.mp4` under VIDEO_ROOT/video it runs the real CLI (`mrpn predict`, JSON and
timeline PNG into --out); a video-only `02-...` file (silent audio track) runs a second time with the
take's `03-...wav` from audio48k/ (`--audio`, as `NAME+audio`). The table (markdown, also written as
`table.json`) gives the true label from the file name, the fused answer with its probability, the
modalities used and each side head's answer. Clips whose emotion the model has no class for (calm) are
listed and not counted.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
                    "07": "disgust", "08": "surprised"}


def runs(root: Path) -> list[tuple[Path, Path | None, str]]:
    """(video, extra audio or None, output stem) for each prediction to make."""
    out = []
    for v in sorted((root / "video").glob("Actor_*/0[12]-*.mp4")):
        out.append((v, None, v.stem))
        wav = root / "audio48k" / v.parent.name / ("03" + v.stem[2:] + ".wav")
        if v.name.startswith("02-") and wav.is_file():
            out.append((v, wav, v.stem + "+audio"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", help="the RAVDESS folder holding video/ and audio48k/")
    ap.add_argument("--out", required=True, help="folder for the JSON and PNG of each prediction and table.json")
    ap.add_argument("--model", default=None, help="model file (default: the shipped mrpn-default)")
    args = ap.parse_args()
    from mrpn.cli import main as mrpn

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for video, wav, stem in runs(Path(args.root)):
        cmd = ["predict", str(video), "--json", str(out / f"{stem}.json"), "--plot", str(out / f"{stem}.png")]
        cmd += ["--audio", str(wav)] if wav else []
        cmd += ["--model", args.model] if args.model else []
        if mrpn(cmd) != 0:
            print(f"{video}: mrpn predict failed", file=sys.stderr)
            continue
        r = json.loads((out / f"{stem}.json").read_text())
        heads = {m: max(p, key=p.get) for m, p in (r.get("per_modality") or {}).items()}
        rows.append({"clip": stem, "true": RAVDESS_EMOTIONS[video.name.split("-")[2]], "predicted": r["label"],
                     "p": r["probabilities"][r["label"]], "modalities": r["modalities_used"],
                     "face_head": heads.get("v"), "audio_head": heads.get("a"),
                     "known_class": RAVDESS_EMOTIONS[video.name.split("-")[2]] in r["probabilities"]})
    known = [r for r in rows if r["known_class"]]
    summary = {"predictions": len(rows), "with_a_known_class": len(known),
               "fused_right": sum(r["predicted"] == r["true"] for r in known),
               "face_head_right": sum(r["face_head"] == r["true"] for r in known if r["face_head"]),
               "audio_head_right": sum(r["audio_head"] == r["true"] for r in known if r["audio_head"]),
               "command": "python3 tools/real_video_table.py " + " ".join(sys.argv[1:])}
    from mrpn.io import atomic_write_json

    atomic_write_json(out / "table.json", {"rows": rows, "summary": summary})
    print("| clip | true | predicted (p) | modalities | face head | audio head |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| `{r['clip']}` | {r['true']}{'' if r['known_class'] else ' (not a class)'} | **{r['predicted']}** ({r['p']:.2f}) | "
              f"{'+'.join(r['modalities'])} | {r['face_head'] or '-'} | {r['audio_head'] or '-'} |")
    print(f"\n{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
