"""`mrpn` command line: a thin dispatcher.

Each subcommand lives in the module of its stage and exposes `add_arguments(parser)` and
`main(args) -> int`. Modules are imported only when their command runs, so `mrpn --help` is fast
and a missing optional dependency only affects the command that needs it.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("mrpn.data.prepare", "decode media, find and crop faces, resample audio into a cache"),
    "folds": ("mrpn.data.folds", "list or check the evaluation folds shipped with mrpn"),
    "pretrain": ("mrpn.training.pretrain", "pretrain a feature extractor (visual on FER2013, audio on speakers)"),
    "train": ("mrpn.training.run", "train and evaluate one model on one fold"),
    "cv": ("mrpn.training.cv", "cross-validate a model over the actor-disjoint folds (resumable)"),
    "report": ("mrpn.evaluation.report", "tables, confusion matrices and t-SNE for finished runs"),
    "predict": ("mrpn.inference.predict", "emotion over time for any video file"),
    "export": ("mrpn.inference.export", "export a trained model to ONNX"),
    "live": ("mrpn.inference.live", "rolling emotion from a camera, a stream URL or a file at real-time speed"),
    "serve": ("mrpn.serve", "local web page + JSON API: upload or record a video, see the emotion timeline"),
    "synth": ("mrpn.synth.cli", "generate a synthetic audio-video emotion corpus"),
    "demo": ("mrpn.demo", "the fuzziness experiment in minutes: synth -> prepare -> six models -> report"),
    "fuzzy": ("mrpn.fuzzy.cli", "sweep the fuzzy fraction of the synthetic corpus: VM, AM, N0, N1, N2 (paper 3)"),
}


class _Parser(argparse.ArgumentParser):
    """A wrong value is one line (not the whole usage) naming the option and the cause."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """All commands are listed, but only the one being run is imported (torch takes seconds to load)."""
    from mrpn import __version__

    parser = _Parser(prog="mrpn", description="Multi-modal Residual Perceptron Network toolkit")
    parser.add_argument("--version", action="version", version=f"mrpn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (mod, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=mod)
        if name == chosen:
            importlib.import_module(mod).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    module = importlib.import_module(args._module)
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished work is kept and a re-run resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
