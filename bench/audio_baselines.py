"""RAVDESS audio-only baselines on the paper's 12 actor-disjoint folds (issue 9), side by side:

    mfcc_svm        MFCC statistics (120 numbers per clip) + an RBF SVM
    speaker_probe   a frozen GE2E speaker encoder (resemblyzer's weights; extra `speaker`) + logistic regression
    cnn             a ~220 k-parameter log-mel CNN over the whole clip, trained from scratch

    python bench/audio_baselines.py --cache cache/ravdess_audio --out docs/results/audio_baselines.json
    python bench/audio_baselines.py --only mfcc_svm,speaker_probe --folds 1-3 --out /tmp/b.json

Hyperparameters: the SVM's C and gamma and the probe's C are chosen per fold on an inner
validation pair of training actors (`mrpn.data.folds.inner_val_actors`: never a test actor), then
the model is refit on all training actors; the CNN's settings are fixed a priori (clipcnn.CNNConfig)
and its last epoch is evaluated. Nothing is chosen on the test actors.

The output JSON is written atomically after every (baseline, fold) and re-read under a lock, so a
run resumes where it stopped and several runs on disjoint folds may share one output file.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mrpn.baselines import ge2e  # noqa: E402
from mrpn.baselines.clipcnn import CNNConfig, clip_logmel, train_and_eval  # noqa: E402
from mrpn.baselines.mfcc import mfcc_stats  # noqa: E402
from mrpn.data.folds import inner_val_actors, load_protocol  # noqa: E402
from mrpn.evaluation.metrics import mean_std  # noqa: E402
from mrpn.io import atomic_write_json  # noqa: E402

BASELINES = ("mfcc_svm", "speaker_probe", "cnn")
SVM_GRID = [{"C": c, "gamma_scale": g} for c in (1.0, 3.0, 10.0, 30.0, 100.0) for g in (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0)]
PROBE_GRID = [{"C": c} for c in (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 1.0)]
DESCRIPTIONS = {
    "mfcc_svm": "mean+std of 20 MFCCs, deltas, delta-deltas (25 ms / 10 ms, 40 HTK mel bands); StandardScaler + "
                "RBF SVM; C and gamma (x 1/n_features) chosen on the inner validation actors, refit on all training actors",
    "speaker_probe": "resemblyzer GE2E encoder (VoxCeleb+LibriSpeech, frozen, loaded with weights_only=True), 256-d "
                     "clip embedding; StandardScaler + logistic regression; C chosen on the inner validation actors",
    "cnn": "log-mel (40 bands) CNN, mrpn.models.cnn.ConvNet width 24 + linear, from scratch; settings fixed a priori, "
           "last epoch evaluated",
}


def log(msg: str) -> None:
    print(msg, flush=True)


def parse_folds(spec: str, n: int) -> list[int]:
    """'1-3,7' -> [1, 2, 3, 7] (1-based fold numbers)."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if not 1 <= a <= b <= n:
            raise ValueError(f"--folds {spec!r}: {part!r} is outside 1-{n}")
        out += [i for i in range(a, b + 1) if i not in out]
    return out


def load_clips(cache: Path) -> tuple[list, list[np.ndarray], list[str]]:
    """Clips and waves of a prepared cache; a clip that cannot be read is reported and left out."""
    from mrpn.data.loader import CacheSource

    src = CacheSource(str(cache))
    clips, waves = [], []
    for i, clip in enumerate(src.clips()):
        try:
            audio = src.load(i).audio
            if audio is None or len(audio) < 1600:
                raise ValueError("no audio (or under 0.1 s)")
        except Exception as e:  # one bad clip must not stop the benchmark
            log(f"skip {clip.audio or clip.id}: {e}")
            continue
        clips.append(clip)
        waves.append(np.asarray(audio, np.float32))
    return clips, waves, src.classes


# ----------------------------------------------------------------------------- features

def features(name: str, waves: list[np.ndarray]):
    t0 = time.perf_counter()
    if name == "mfcc_svm":
        out = np.stack([mfcc_stats(w) for w in waves])
    elif name == "speaker_probe":
        enc = ge2e.load_encoder()
        out = np.stack([ge2e.embed_clip(enc, w) for w in waves])
    else:
        out = [clip_logmel(w, CNNConfig.n_mels) for w in waves]
    log(f"{name}: features of {len(waves)} clips in {time.perf_counter() - t0:.0f} s")
    return out


def make_classifier(name: str, params: dict, n_features: int, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if name == "mfcc_svm":
        clf = SVC(C=params["C"], gamma=params["gamma_scale"] / n_features, kernel="rbf", random_state=seed)
    else:
        clf = LogisticRegression(C=params["C"], max_iter=5000, random_state=seed)
    return make_pipeline(StandardScaler(), clf)


def run_classical(name: str, X: np.ndarray, y: np.ndarray, actors: np.ndarray, train_actors, inner,
                  test_actors, seed: int) -> dict:
    """Choose hyperparameters on the inner validation actors, refit on all training actors, test."""
    grid = SVM_GRID if name == "mfcc_svm" else PROBE_GRID
    tr = np.isin(actors, list(train_actors))
    te = np.isin(actors, list(test_actors))
    inner_val = np.isin(actors, list(inner))
    inner_tr = tr & ~inner_val
    scores = []
    for params in grid:
        clf = make_classifier(name, params, X.shape[1], seed).fit(X[inner_tr], y[inner_tr])
        scores.append(float((clf.predict(X[inner_val]) == y[inner_val]).mean()))
    best = grid[int(np.argmax(scores))]               # first of the ties: the smaller C
    clf = make_classifier(name, best, X.shape[1], seed).fit(X[tr], y[tr])
    acc = float((clf.predict(X[te]) == y[te]).mean())
    return {"accuracy": acc, "chosen": best, "inner_val_accuracy": max(scores),
            "inner_grid": [dict(p, inner_val_accuracy=round(s, 4)) for p, s in zip(grid, scores)],
            "n_train": int(tr.sum()), "n_test": int(te.sum())}


def run_cnn(feats: list, y: np.ndarray, actors: np.ndarray, train_actors, test_actors, seed: int,
            cfg: CNNConfig, n_classes: int) -> dict:
    tr = np.flatnonzero(np.isin(actors, list(train_actors)))
    te = np.flatnonzero(np.isin(actors, list(test_actors)))
    res = train_and_eval([feats[i] for i in tr], y[tr], [feats[i] for i in te], y[te], n_classes, cfg,
                         seed=seed, log=log)
    return dict(res, n_train=len(tr), n_test=len(te))


# ----------------------------------------------------------------------------- results file

def update_results(out: Path, header: dict, baseline: str, fold: str | None, entry: dict | None,
                   skipped: str | None = None) -> dict:
    """Merge one result into `out` under an exclusive lock (concurrent runs on other folds keep theirs)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(out.parent, os.O_RDONLY)       # lock the folder: no lock file left beside the results
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_results(out)
        run = header.pop("run")
        for k, v in header.items():
            data.setdefault(k, v)
        runs = data.setdefault("runs", [])
        if run["started"] not in [r.get("started") for r in runs]:
            runs.append(run)
        header["run"] = run
        b = data.setdefault("baselines", {}).setdefault(baseline, {"description": DESCRIPTIONS[baseline],
                                                                   "folds": {}})
        if skipped:
            b["skipped"] = skipped
        if fold is not None and entry is not None:
            b.pop("skipped", None)
            b["folds"][fold] = entry
        accs = [f["accuracy"] for f in b["folds"].values()]
        m, s = mean_std(accs) if accs else (None, None)
        b.update(mean=m, std=s, n_folds=len(accs), fold_names=list(b["folds"]))
        data["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
        atomic_write_json(out, data)
    finally:
        os.close(lock)
    return data


def read_results(out: Path) -> dict:
    if not out.is_file():
        return {}
    try:
        return json.loads(out.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"error: {out}: cannot read the results to resume from ({e}); move it away or "
                         f"pick another --out")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# ----------------------------------------------------------------------------- main

def markdown_table(data: dict) -> str:
    """The results as a markdown table: one row per baseline, one column per fold, mean +- std."""
    try:
        names = [f.name for f in load_protocol(data.get("protocol", "ravdess_paper12")).folds]
    except ValueError:
        names = []
    for b in data.get("baselines", {}).values():
        names += [n for n in b["folds"] if n not in names]
    lines = ["| Baseline | " + " | ".join(names) + " | mean ± std | folds |",
             "|:---|" + "---:|" * (len(names) + 2)]
    for name, b in data.get("baselines", {}).items():
        if b.get("skipped"):
            lines.append(f"| {name} | " + " | ".join("" for _ in names) + " | skipped | 0 |")
            continue
        cells = [f"{100 * b['folds'][n]['accuracy']:.1f}" if n in b["folds"] else "–" for n in names]
        ms = f"{100 * b['mean']:.1f} ± {100 * b['std']:.1f}%" if b["mean"] is not None else "–"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ms} | {b['n_folds']}/{len(names)} |")
    done = [b for b in data.get("baselines", {}).values() if b["folds"]]
    common = [n for n in names if done and all(n in b["folds"] for b in done)]
    if done and 0 < len(common) < max(b["n_folds"] for b in done):
        means = ", ".join(f"{k} {100 * np.mean([b['folds'][n]['accuracy'] for n in common]):.1f}%"
                          for k, b in data["baselines"].items() if b["folds"])
        lines.append(f"\nOn the folds every baseline has ({', '.join(common)}): {means}.")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cache", default="cache/ravdess_audio",
                   help="RAVDESS audio cache (mrpn prepare ravdess DIR --modality audio --out ...)")
    p.add_argument("--protocol", default="ravdess_paper12", help="fold protocol (shipped name or JSON file)")
    p.add_argument("--folds", default=None, help="1-based fold numbers, e.g. 1-6,9 (default: all)")
    p.add_argument("--only", default=",".join(BASELINES), help=f"comma list of {', '.join(BASELINES)}")
    p.add_argument("--out", required=True, help="results JSON (resumed when it exists)")
    p.add_argument("--seed", type=int, default=0, help="base seed (the CNN uses seed + fold number)")
    p.add_argument("--cnn-epochs", type=int, default=CNNConfig.epochs)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    p.add_argument("--table", action="store_true", help="print --out as a markdown table and exit")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.table:
        print(markdown_table(read_results(Path(args.out))))
        return 0
    torch.set_num_threads(args.threads)
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    bad = [b for b in only if b not in BASELINES]
    if bad:
        log(f"error: --only: unknown baseline(s) {bad}; choose from {', '.join(BASELINES)}")
        return 2
    try:
        protocol = load_protocol(args.protocol)
        fold_nums = parse_folds(args.folds or f"1-{len(protocol.folds)}", len(protocol.folds))
    except ValueError as e:
        log(f"error: {e}")
        return 2
    cache, out = Path(args.cache), Path(args.out)
    if not (cache / "manifest.json").is_file():
        log(f"error: {cache}: not a prepared cache (run: mrpn prepare ravdess DATA/ravdess --modality audio "
            f"--out {cache})")
        return 2
    done = read_results(out).get("baselines", {})
    cfg = CNNConfig(epochs=args.cnn_epochs)
    header = {"benchmark": "audio_baselines", "protocol": protocol.name,
              "fold_file": Path(protocol.path).name if protocol.path else protocol.name,
              "cache": str(cache), "seed": args.seed, "cnn_seed": "seed + fold number",
              "threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
              "run": {"command": "python bench/audio_baselines.py " + " ".join(sys.argv[1:] if argv is None else argv),
                      "started": time.strftime("%Y-%m-%d %H:%M:%S"), "uptime_at_start": uptime()}}
    clips = waves = None
    for name in only:
        todo = [n for n in fold_nums if protocol.folds[n - 1].name not in done.get(name, {}).get("folds", {})]
        if not todo:
            log(f"{name}: all requested folds already in {out}")
            continue
        if name == "speaker_probe" and ge2e.weights_path() is None:
            reason = "resemblyzer is not installed (pip install 'mrpn[speaker]'); speaker_probe skipped"
            log(f"{name}: skipped: {reason}")
            update_results(out, header, name, None, None, skipped=reason)
            continue
        if clips is None:
            clips, waves, classes = load_clips(cache)
            header.update(n_clips=len(clips), classes=classes)
            y = np.array([c.label for c in clips])
            actors = np.array([c.actor for c in clips])
        feats = features(name, waves)
        for n in todo:
            fold = protocol.folds[n - 1]
            if fold.name in read_results(out).get("baselines", {}).get(name, {}).get("folds", {}):
                log(f"{name}: fold {fold.name} done meanwhile by another run; next")
                continue
            inner = inner_val_actors(protocol, n, fold.train_actors)
            seed = args.seed + n if name == "cnn" else args.seed
            log(f"{name}: fold {n} {fold.name} (test actors {','.join(fold.val_actors)}"
                + (f", inner validation {','.join(inner)})" if name != "cnn" else ")"))
            t0 = time.perf_counter()
            if name == "cnn":
                entry = run_cnn(feats, y, actors, fold.train_actors, fold.val_actors, seed, cfg, len(classes))
            else:
                entry = run_classical(name, feats, y, actors, fold.train_actors, inner, fold.val_actors, seed)
                entry["inner_val_actors"] = inner
            entry.update(test_actors=list(fold.val_actors), seed=seed, wall_s=round(time.perf_counter() - t0, 1),
                         loadavg=[round(x, 2) for x in os.getloadavg()])
            data = update_results(out, header, name, fold.name, entry)
            b = data["baselines"][name]
            log(f"{name}: fold {fold.name} accuracy {entry['accuracy']:.3f} ({entry['wall_s']:.0f} s); "
                f"mean {b['mean']:.3f} +- {b['std']:.3f} over {b['n_folds']} folds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
