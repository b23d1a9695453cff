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
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import robustness  # noqa: E402  (bench/robustness.py: what the robustness benchmarks share)
from robustness import summary, table  # noqa: E402,F401  (this script's names before bench/robustness.py)

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


def plot(res: dict, path: str, base: dict | None = None) -> None:
    title = (f"Audio head of {res['model']} on degraded speech of actor(s) "
             f"{', '.join(map(str, res['actors']))} ({res['clips']} clips, {len(res['classes'])} classes)")
    robustness.plot(res, path, title, "clips", base)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("MRPN_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--actors", default="1,2", help="the actors whose speech is degraded (never trained on)")
    robustness.add_arguments(ap, CONDITIONS, "actors")
    args = ap.parse_args()
    if robustness.saved_only(args, plot):
        return
    conds = robustness.chosen(args, CONDITIONS)
    actors = [int(a) for a in args.actors.split(",")]
    base = load_baseline(args.baseline, actors, args.seed) if args.baseline else None   # before the long part
    robustness.finish(args, run(args, conds, actors), base, plot)


def load_baseline(path: str, actors: list[int], seed: int) -> dict:
    """An earlier result of this script, refused (one line) unless it scored the same actors with the same seed."""
    return robustness.load_baseline(path, {"actors": actors, "seed": seed}, "bench/audio_robustness.py")


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
    return robustness.with_mean(res)


if __name__ == "__main__":
    main()
