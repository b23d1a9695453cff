"""How the audio head of a trained model reads degraded recordings of voices it never heard (issue 9).

    python3 bench/audio_robustness.py --out docs/results/audio_robustness/shipped_test.json --png FIGURE.png
    python3 bench/audio_robustness.py --actors 3,4 --model OTHER --baseline EARLIER.json --out ...   # side by side
    python3 bench/audio_robustness.py --replot RESULT.json --png FIGURE.png    # draw a saved result again
    python3 bench/audio_robustness.py --table A.json B.json ...                # saved results side by side

The shipped model's audio was all RAVDESS: studio microphones, no noise, no room. Real videos have noise,
rooms, phone bandwidth, lossy codecs and clipping. This takes the test actors' RAVDESS speech (actors 1
and 2 by default: the shipped model never trained on them and made no choice on them; *calm* is left out,
it is not a class of the model), degrades every clip in each way below and feeds the degraded file
through `mrpn predict`'s own path (`Predictor.predict_file`: decode, resample, standardise, model; no
face, so the answer is the audio head's). Per condition: accuracy, UAR, the share of each predicted class
(a model that answers one class for everything shows there) and how often the label stays the clean one.
Every degradation is seeded (`--seed`; tests/test_audio_robustness.py checks what each one does). Nothing here
is chosen: the conditions are fixed in CONDITIONS, before any result.

Babble is the sum of 6 utterances of other RAVDESS actors (5-22, never the test actors) at the given
SNR; reverb is a synthetic room (a direct path, then exponentially decaying noise with the given RT60 and as
much energy as the direct path);
"telephone" is a round trip through 8 kHz; the codecs are PyAV encoders at low bit rates; "clipped" is a
gain that drives the clip's peak 12 dB past full scale, then hard clipping (about 3 % of the samples).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

SR = 16000
CONDITIONS = ["clean", "white 20 dB", "white 10 dB", "white 0 dB", "babble 20 dB", "babble 10 dB", "babble 0 dB",
              "reverb 0.3 s", "reverb 0.8 s", "telephone 8 kHz", "aac 32 kbit/s", "opus 12 kbit/s", "clipped 12 dB"]
def mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """x + noise (repeated or cut to x's length) scaled so that power(x) / power(noise) is snr_db dB."""
    noise = np.resize(noise, x.shape)
    px, pn = float(np.mean(x ** 2)), float(np.mean(noise ** 2))
    scale = np.sqrt(px / (pn * 10 ** (snr_db / 10))) if pn > 0 else 0.0
    return (x + noise * scale).astype(np.float32)


def codec_round_trip(x: np.ndarray, codec: str, bit_rate: int, fmt: str, delay: int = 0) -> np.ndarray:
    """Encode x (16 kHz mono float) with a PyAV encoder and decode it back, as a lossy upload would; the
    encoder's `delay` priming samples (which a container's edit list would hide) are cut off again."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        st = out.add_stream(codec, rate=SR, layout="mono")
        st.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(x[None].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = SR
        for p in st.encode(frame):
            out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    buf.seek(0)
    with av.open(buf) as inp:
        res = av.AudioResampler(format="flt", layout="mono", rate=SR)
        y = np.concatenate([r.to_ndarray().reshape(-1) for f in inp.decode(audio=0) for r in res.resample(f)])
    return y[delay: delay + x.size].astype(np.float32)


def degrade(x: np.ndarray, cond: str, rng, babble: np.ndarray) -> np.ndarray:
    """The clip x (16 kHz mono float) under `cond`, one of CONDITIONS."""
    import soxr

    kind, _, arg = cond.partition(" ")
    if kind == "clean":
        return x
    if kind in ("white", "babble"):
        noise = rng.standard_normal(x.size).astype(np.float32) if kind == "white" else \
            np.roll(babble, int(rng.integers(babble.size)))
        return mix_at_snr(x, noise, float(arg.split()[0]))
    if kind == "reverb":
        from mrpn.features.acoustics import room   # the training augmentation's room, at 0 dB direct-to-reverberant

        return np.convolve(x, room(float(arg.split()[0]), rng, SR, drr_db=0.0))[: x.size].astype(np.float32)
    if kind == "telephone":
        return soxr.resample(soxr.resample(x, SR, 8000), 8000, SR).astype(np.float32)
    if kind == "aac":
        return codec_round_trip(x, "aac", 32000, "adts", delay=1024)
    if kind == "opus":
        return codec_round_trip(x, "libopus", 12000, "ogg")
    if kind == "clipped":   # the peak driven 12 dB past full scale (a few % of the samples clipped)
        return np.clip(x * (4.0 / max(float(np.abs(x).max()), 1e-8)), -1.0, 1.0).astype(np.float32)
    raise ValueError(f"unknown condition {cond!r}")


def clips(root: Path, actors: list[int]) -> list[tuple[Path, str]]:
    """(file, label) of the speech clips of `actors` whose emotion is a class of the model (no calm),
    named by the project's RAVDESS adapter."""
    from mrpn.data.datasets.common import CLASSES
    from mrpn.data.datasets.ravdess import parse_ravdess_name

    out = []
    for a in actors:
        for f in sorted((root / f"Actor_{a:02d}").glob("03-01-*.flac")):
            emo = CLASSES["ravdess"][parse_ravdess_name(f.name)["emotion"] - 1]
            if emo != "calm":
                out.append((f, emo))
    if not out:
        sys.exit(f"no RAVDESS speech clips of actors {actors} under {root}")
    return out


def babble_track(root: Path, rng, n: int = 6, exclude: list[int] = ()) -> np.ndarray:
    """n utterances of actors 5-22 (less `exclude`, the actors scored) summed into one track (the noise of
    a room full of talk)."""
    import soundfile as sf

    files = sorted(f for a in range(5, 23) if a not in exclude for f in (root / f"Actor_{a:02d}").glob("03-01-*.flac"))
    picks = rng.choice(len(files), n, replace=False)
    parts = [sf.read(files[i], dtype="float32")[0] for i in picks]
    out = np.zeros(max(p.size for p in parts), np.float32)
    for p in parts:
        out[: p.size] += p / (np.std(p) + 1e-8)
    return out


def summary(pred: list[str], true: list[str], clean: list[str] | None, classes: list[str]) -> dict:
    """Accuracy, UAR, recall, the share of each answer, and how often the answer is the clean clip's
    (None without a clean run). Accuracy, UAR and recall are the project's (`evaluation.metrics`)."""
    from mrpn.evaluation.metrics import compute_metrics

    index = {c: i for i, c in enumerate(classes)}
    m = compute_metrics([index[x] for x in true], [index[x] for x in pred], classes)
    p = np.array(pred)
    share = {k: round(float(np.mean(p == k)), 4) for k in classes}
    return {"accuracy": round(m["accuracy"], 4), "uar": round(m["uar"], 4),
            "recall": {k: round(v, 4) for k, v in m["per_class_recall"].items() if v is not None},
            "predicted_share": share,
            "most_answered": max(share, key=share.get), "most_answered_share": max(share.values()),
            "same_as_clean": None if clean is None else round(float(np.mean(p == np.array(clean))), 4)}


def table(results: list[dict], names: list[str] | None = None) -> str:
    """A markdown table of saved results side by side: accuracy per condition (the most answered class and
    its share in brackets, bold where one class takes more than half of the answers)."""
    conds = list(dict.fromkeys(c for r in results for c in r["conditions"]))
    lines = ["| condition | " + " | ".join(names or [r["model"] for r in results]) + " |",
             "| --- | " + " | ".join("---:" for _ in results) + " |"]

    def cell(r: dict, c: str) -> str:
        x = r["conditions"].get(c)
        if x is None:
            return "-"
        tail = f"{x['most_answered']} {100 * x['most_answered_share']:.0f} %"
        return f"{100 * x['accuracy']:.1f} % (" + (f"**{tail}**" if x["most_answered_share"] > 0.5 else tail) + ")"

    lines += [f"| {c} | " + " | ".join(cell(r, c) for r in results) + " |" for c in conds]
    lines.append("| mean over the degraded conditions | " + " | ".join(
        f"**{100 * r['mean_degraded_accuracy']:.1f} %**" if "mean_degraded_accuracy" in r else "-" for r in results) + " |")
    return "\n".join(lines)


def plot(res: dict, path: str, base: dict | None = None) -> None:
    """Accuracy/UAR and the most answered class's share per condition; with `base` (an earlier result of
    this script on the same clips), that model's figures as black ticks beside each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = list(res["conditions"])
    rows = [res["conditions"][c] for c in conds]
    y = np.arange(len(conds))[::-1]
    b = [base["conditions"].get(c) if base else None for c in conds]
    fig, ax = plt.subplots(1, 2, figsize=(10, 0.38 * len(conds) + 2.0), sharey=True)
    ax[0].barh(y + 0.2, [r["accuracy"] * 100 for r in rows], 0.4, label="accuracy", color="#3070b0")
    ax[0].barh(y - 0.2, [r["uar"] * 100 for r in rows], 0.4, label="UAR", color="#90b8e0")
    ax[0].axvline(100 / len(res["classes"]), color="grey", ls=":", lw=1, label="chance")
    for yi, r in zip(y, b):
        if r is not None:
            ax[0].plot([r["accuracy"] * 100] * 2, [yi + 0.02, yi + 0.38], color="black", lw=2)
            ax[1].plot([r["most_answered_share"] * 100] * 2, [yi - 0.3, yi + 0.3], color="black", lw=2)
    if base is not None:
        ax[0].plot([], [], color="black", lw=2, label="the baseline (black; its class in grey)")
    ax[0].set_xlim(0, 100)
    ax[0].set_xlabel(f"% of the {res['clips']} clips")
    fig.legend(*ax[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8, frameon=False)
    ax[1].barh(y, [r["most_answered_share"] * 100 for r in rows], 0.6, color="#c06040")
    for yi, r, rb in zip(y, rows, b):
        ax[1].text(r["most_answered_share"] * 100 + 1.5, yi, r["most_answered"], va="center", fontsize=8)
        if rb and rb["most_answered_share"] - r["most_answered_share"] > 0.15:   # room for the baseline's class
            x, left = rb["most_answered_share"] * 100, rb["most_answered_share"] > 0.85   # no room on the right
            ax[1].text(x - 1.5 if left else x + 1.5, yi, rb["most_answered"], va="center", fontsize=7,
                       color="0.35", style="italic", ha="right" if left else "left")
    ax[1].axvline(100 / len(res["classes"]), color="grey", ls=":", lw=1)
    ax[1].set_xlim(0, 100)
    ax[1].set_xlabel("share of the most answered class (%)")
    ax[0].set_yticks(y, conds)
    title = (f"Audio head of {res['model']} on degraded speech of actor(s) "
             f"{', '.join(map(str, res['actors']))} ({res['clips']} clips, {len(res['classes'])} classes)")
    if base is not None:
        title += f"\nblack: the baseline, {base['model']}"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    from mrpn.evaluation.plots import save_figure

    save_figure(fig, path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("MRPN_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--actors", default="1,2", help="the actors whose speech is degraded (never trained on)")
    ap.add_argument("--model", default=None, help="model file (default: the shipped mrpn-default)")
    ap.add_argument("--name", help="the model's name in the results and the figure (default: its path); with "
                                   "--table, the columns' names, comma separated")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help="a part of the conditions (comma separated)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the results here (JSON)")
    ap.add_argument("--png", help="write the figure here")
    ap.add_argument("--baseline", help="an earlier --out of this script on the same actors: drawn beside, "
                                       "and the differences printed")
    ap.add_argument("--replot", metavar="RESULT.json", help="only draw --png from an earlier --out (and the "
                                                                "baseline it names), without predicting again")
    ap.add_argument("--table", nargs="+", metavar="RESULT.json", help="only print saved results side by side "
                                                                      "as a markdown table")
    args = ap.parse_args()
    inputs = {Path(f).resolve() for f in [args.baseline, args.replot, *(args.table or [])] if f}
    for out in (args.out, args.png):
        if out and Path(out).resolve() in inputs:
            sys.exit(f"{out}: is also an input of this run; write the result elsewhere (no output replaces an input)")
    if args.table:
        names = args.name.split(",") if args.name else None
        if names and len(names) != len(args.table):
            sys.exit(f"--name gives {len(names)} column names for {len(args.table)} results")
        print(table([json.loads(Path(f).read_text()) for f in args.table], names))
        return
    if args.replot:
        if not args.png:
            sys.exit("--replot draws a figure: give --png")
        res = json.loads(Path(args.replot).read_text())
        base = res.get("baseline")
        plot(res, args.png, json.loads(Path(base["file"]).read_text()) if base else None)
        return
    conds = [c for c in args.conditions.split(",") if c]
    unknown = [c for c in conds if c not in CONDITIONS]
    if unknown:
        sys.exit(f"unknown condition(s) {unknown}; known: {CONDITIONS}")
    actors = [int(a) for a in args.actors.split(",")]
    base = load_baseline(args.baseline, actors, args.seed) if args.baseline else None   # before the long part
    res = run(args, conds, actors)
    if base is not None:
        res["baseline"] = {"file": args.baseline, "model": base["model"],
                           "accuracy": {c: r["accuracy"] for c, r in base["conditions"].items()}}
    report(res, base)
    if args.out:
        from mrpn.io import atomic_write_json

        atomic_write_json(args.out, res)
    if args.png:
        plot(res, args.png, base)


def load_baseline(path: str, actors: list[int], seed: int) -> dict:
    """An earlier result of this script, refused (one line) unless it scored the same actors with the same seed."""
    try:
        base = json.loads(Path(path).read_text())
        same = base["actors"] == actors and base["seed"] == seed
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"{path}: not a result of bench/audio_robustness.py ({e})")
    if not same:
        sys.exit(f"{path}: actors {base['actors']} seed {base['seed']}, not {actors} seed {seed}")
    return base


def run(args, conds: list[str], actors: list[int]) -> dict:
    """Predict every clip of `actors` under every condition of `conds`; the results record."""
    import soundfile as sf
    import torch

    torch.set_num_threads(1)
    from mrpn.inference.model_io import default_model_path
    from mrpn.inference.predictor import Predictor
    from mrpn.io import sha256_file

    root = Path(args.data) / "ravdess" / "audio16k"
    items = clips(root, actors)
    babble = babble_track(root, np.random.default_rng([args.seed, 1]), exclude=actors)
    p = Predictor(args.model)
    labels: dict[str, list[str]] = {c: [] for c in conds}
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "clip.wav")
        for i, (f, _) in enumerate(items):
            x, sr = sf.read(f, dtype="float32")
            if sr != SR:
                sys.exit(f"{f}: {sr} Hz, expected the 16 kHz FLAC of ../shared/data/ravdess/audio16k")
            for c in conds:   # seeded by the condition's place in CONDITIONS: a subset draws the same noise
                sf.write(wav, degrade(x, c, np.random.default_rng([args.seed, i, CONDITIONS.index(c)]), babble),
                         SR, subtype="FLOAT")
                labels[c].append(p.predict_file(wav).label)
            if (i + 1) % 20 == 0:
                print(f"{i + 1}/{len(items)} clips", file=sys.stderr, flush=True)
    true = [t for _, t in items]
    clean = labels.get("clean")
    model_file = args.model or str(default_model_path())
    res = {"model": args.name or args.model or "mrpn-default (shipped)", "model_file_sha256": sha256_file(model_file),
           "actors": actors, "clips": len(items), "classes": p.classes, "seed": args.seed,
           "conditions": {c: summary(labels[c], true, clean, p.classes) for c in conds},
           "command": "python3 bench/audio_robustness.py " + " ".join(sys.argv[1:])}
    degraded = [r["accuracy"] for c, r in res["conditions"].items() if c != "clean"]
    if degraded:
        res["mean_degraded_accuracy"] = round(float(np.mean(degraded)), 4)
    return res


def report(res: dict, base: dict | None) -> None:
    """Print each condition's figures, and the differences to the baseline."""
    for c, r in res["conditions"].items():
        same = "-" if r["same_as_clean"] is None else f"{r['same_as_clean']:.3f}"
        print(f"{c:>16}: accuracy {r['accuracy']:.3f}  UAR {r['uar']:.3f}  same as clean {same}  "
              f"most answered {r['most_answered']} {r['most_answered_share']:.2f}")
    for c, r in res["conditions"].items():
        if base is not None and c in base["conditions"]:
            print(f"{c:>16}: {r['accuracy'] - base['conditions'][c]['accuracy']:+.3f} against the baseline")
    if "mean_degraded_accuracy" in res:
        n = sum(c != "clean" for c in res["conditions"])
        print(f"mean over the {n} degraded conditions: {res['mean_degraded_accuracy']:.3f}")


if __name__ == "__main__":
    main()
