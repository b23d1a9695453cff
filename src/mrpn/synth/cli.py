"""`mrpn synth` command line."""
from __future__ import annotations

import argparse
import sys

from .corpus import generate_corpus, read_synth_info
from .plan import DEFAULT_CLASSES, DEFAULT_SAMPLE_RATE, DURATION_RANGE, NOISE_KINDS, RAVDESS_CLASSES


def _fraction(s: str) -> float:
    v = float(s)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1], got {s}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output folder (videos/, manifest.csv, synth.json)")
    parser.add_argument("--actors", type=int, default=8, help="number of synthetic actors (default 8)")
    parser.add_argument("--clips-per-class", type=int, default=4, help="clips per actor and emotion (default 4)")
    parser.add_argument("--classes", nargs="+", default=None, metavar="EMOTION",
                        help=f"emotion classes (space or comma separated) from {', '.join(RAVDESS_CLASSES)}; "
                             f"default: {' '.join(DEFAULT_CLASSES)}")
    parser.add_argument("--size", type=int, default=128, help="frame width = height in pixels (default 128)")
    parser.add_argument("--fps", type=int, default=25, help="frames per second (default 25)")
    parser.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE,
                        help=f"audio sample rate in Hz (default {DEFAULT_SAMPLE_RATE})")
    parser.add_argument("--face-noise", type=_fraction, default=0.0,
                        help="fraction of clips whose face shows another emotion or neutral (default 0)")
    parser.add_argument("--voice-noise", type=_fraction, default=0.0,
                        help="fraction of clips whose voice shows another emotion or neutral (default 0)")
    parser.add_argument("--noise-kind", choices=NOISE_KINDS, default="mixed",
                        help="what a noisy modality shows (paper 3.1): missing = neutral, fuzzy = another "
                             "emotion, mixed = either (default)")
    parser.add_argument("--duration", type=float, nargs=2, default=list(DURATION_RANGE), metavar=("MIN", "MAX"),
                        help=f"clip length range in seconds (default {DURATION_RANGE[0]:g} {DURATION_RANGE[1]:g})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--overwrite", action="store_true",
                        help="render every clip again even if OUT holds a corpus made with other settings")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    classes = None
    if args.classes:
        classes = [c for item in args.classes for c in item.replace(",", " ").split() if c]
    try:
        manifest = generate_corpus(args.out, n_actors=args.actors, clips_per_class=args.clips_per_class,
                                   classes=classes, size=args.size, fps=args.fps, face_noise=args.face_noise,
                                   voice_noise=args.voice_noise, seed=args.seed, workers=args.workers,
                                   progress=not args.quiet, sample_rate=args.sample_rate,
                                   noise_kind=args.noise_kind, duration=tuple(args.duration),
                                   overwrite=args.overwrite)
    except ValueError as e:
        print(f"mrpn synth: {e}", file=sys.stderr)
        return 2
    info = read_synth_info(args.out)
    n = len(info["clips"])
    nf = sum(c["face_emotion"] != c["label"] for c in info["clips"])
    nv = sum(c["voice_emotion"] != c["label"] for c in info["clips"])
    print(f"{n} clips ({args.actors} actors x {len(info['classes'])} classes x {args.clips_per_class}) in {args.out}; "
          f"face shows another emotion in {nf}, voice in {nv}")
    print(f"manifest: {manifest}")
    return 0
