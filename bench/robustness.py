"""What the robustness benchmarks share (bench/audio_robustness.py, bench/face_robustness.py): per-condition
figures, the side-by-side table, the figure, baselines and the refusal to write over an input.

A result is a dict with "model", "classes", "conditions" ({condition: summary(...)}), the count of items
under `unit` ("clips" or "images"), and "mean_degraded_accuracy" over every condition but "clean".
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def summary(pred: list[str], true: list[str], clean: list[str] | None, classes: list[str]) -> dict:
    """Accuracy, UAR, recall, the share of each answer, and how often the answer is the clean item's
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


def with_mean(res: dict) -> dict:
    """Adds the mean accuracy over the degraded conditions (all but "clean"), where there are any."""
    degraded = [r["accuracy"] for c, r in res["conditions"].items() if c != "clean"]
    if degraded:
        res["mean_degraded_accuracy"] = round(float(np.mean(degraded)), 4)
    return res


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


def brief(results: list[dict], names: list[str] | None = None) -> str:
    """A markdown table, one row per saved result: clean accuracy, the mean over the degraded conditions,
    and the largest share one class takes under any condition (with that condition)."""
    lines = ["| result | clean | mean over the degraded conditions | largest share of one class |",
             "| --- | ---: | ---: | --- |"]
    for name, r in zip(names or [r["model"] for r in results], results):
        clean = r["conditions"].get("clean")
        worst = max(r["conditions"], key=lambda c: r["conditions"][c]["most_answered_share"])
        w = r["conditions"][worst]
        mean = r.get("mean_degraded_accuracy")
        pct = lambda v: "-" if v is None else f"{100 * v:.1f} %"   # noqa: E731
        lines.append(f"| {name} | {pct(clean and clean['accuracy'])} | {pct(mean)} | "
                     f"{100 * w['most_answered_share']:.0f} % {w['most_answered']} ({worst}) |")
    return "\n".join(lines)


def plot(res: dict, path: str, title: str, unit: str, base: dict | None = None) -> None:
    """Accuracy/UAR and the most answered class's share per condition; with `base` (an earlier result of
    the same benchmark on the same items), that model's figures as black ticks beside each bar."""
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
    ax[0].set_xlabel(f"% of the {res[unit]} {unit}")
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
    if base is not None:
        title += f"\nblack: the baseline, {base['model']}"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    from mrpn.evaluation.plots import save_figure

    save_figure(fig, path, dpi=110)
    plt.close(fig)


def load_baseline(path: str, same: dict, script: str) -> dict:
    """An earlier result of `script`, refused (one line) unless its fields in `same` are equal."""
    try:
        base = json.loads(Path(path).read_text())
        missing = [k for k in (*same, "model", "conditions") if k not in base]
        if missing:
            raise KeyError(", ".join(missing))
        differs = any(base[k] != v for k, v in same.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        sys.exit(f"{path}: not a result of {script} (no {e})" if isinstance(e, KeyError) else
                 f"{path}: not a result of {script} ({e})")
    if differs:
        sys.exit(f"{path}: " + " ".join(f"{k} {base[k]}" for k in same) + ", not "
                 + " ".join(f"{k} {v}" for k, v in same.items()))
    return base


def refuse_overwrite(outputs: list[str | None], inputs: list[str | None]) -> None:
    """Exit in one line when an output names one of the run's inputs (no output replaces an input)."""
    given = {Path(f).resolve() for f in inputs if f}
    for out in outputs:
        if out and Path(out).resolve() in given:
            sys.exit(f"{out}: is also an input of this run; write the result elsewhere (no output replaces an input)")


def report(res: dict, base: dict | None) -> None:
    """Print each condition's figures, and the differences to the baseline."""
    w = max([16, *map(len, res["conditions"])])
    for c, r in res["conditions"].items():
        same = "-" if r["same_as_clean"] is None else f"{r['same_as_clean']:.3f}"
        print(f"{c:>{w}}: accuracy {r['accuracy']:.3f}  UAR {r['uar']:.3f}  same as clean {same}  "
              f"most answered {r['most_answered']} {r['most_answered_share']:.2f}")
    for c, r in res["conditions"].items():
        if base is not None and c in base["conditions"]:
            print(f"{c:>{w}}: {r['accuracy'] - base['conditions'][c]['accuracy']:+.3f} against the baseline")
    if "mean_degraded_accuracy" in res:
        n = sum(c != "clean" for c in res["conditions"])
        print(f"mean over the {n} degraded conditions: {res['mean_degraded_accuracy']:.3f}")


# -- the command line both benchmarks share --------------------------------------------------------

def add_arguments(ap, conditions: list[str], items: str) -> None:
    """Options common to the robustness benchmarks; `items` names what is degraded ("clips", "images")."""
    ap.add_argument("--model", default=None, help="model file (default: the shipped mrpn-default)")
    ap.add_argument("--name", help="the model's name in the results and the figure (default: its path); with "
                                   "--table, the columns' names, comma separated")
    ap.add_argument("--conditions", default=",".join(conditions), help="a part of the conditions (comma separated)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the results here (JSON)")
    ap.add_argument("--png", help="write the figure here")
    ap.add_argument("--baseline", help=f"an earlier --out of this script on the same {items}: drawn beside, "
                                       "and the differences printed")
    ap.add_argument("--replot", metavar="RESULT.json", help="only draw --png from an earlier --out (and the "
                                                                "baseline it names), without predicting again")
    ap.add_argument("--table", nargs="+", metavar="RESULT.json", help="only print saved results side by side "
                                                                      "as a markdown table")
    ap.add_argument("--brief", nargs="+", metavar="RESULT.json", help="only print saved results one row each: "
                                                                      "clean, degraded mean, largest share")


def saved_only(args, plot) -> bool:
    """--table, --brief or --replot: done from saved results (True). Refuses first, in one line, an output
    that names an input, two of these modes at once, and --out with any of them (they write no result)."""
    refuse_overwrite([args.out, args.png], [args.baseline, args.replot, *(args.table or []), *(args.brief or [])])
    modes = [m for m in ("table", "brief", "replot") if getattr(args, m)]
    if len(modes) > 1:
        sys.exit(f"--{modes[0]} and --{modes[1]} are two ways to show saved results: give one")
    if modes and args.out:
        sys.exit(f"--{modes[0]} shows saved results and writes no result: --out is not used with it")
    for files, show, what in ((args.table, table, "column"), (args.brief, brief, "row")):
        if files:
            names = args.name.split(",") if args.name else None
            if names and len(names) != len(files):
                sys.exit(f"--name gives {len(names)} {what} names for {len(files)} results")
            print(show([json.loads(Path(f).read_text()) for f in files], names))
            return True
    if args.replot:
        if not args.png:
            sys.exit("--replot draws a figure: give --png")
        res = json.loads(Path(args.replot).read_text())
        base = res.get("baseline")
        plot(res, args.png, json.loads(Path(base["file"]).read_text()) if base else None)
        return True
    return False


def chosen(args, conditions: list[str]) -> list[str]:
    """The conditions of --conditions, refused in one line where one is unknown."""
    conds = [c for c in args.conditions.split(",") if c]
    unknown = [c for c in conds if c not in conditions]
    if unknown:
        sys.exit(f"unknown condition(s) {unknown}; known: {conditions}")
    return conds


def finish(args, res: dict, base: dict | None, plot) -> None:
    """Name the baseline in the result, print, write --out (atomically) and --png."""
    if base is not None:
        res["baseline"] = {"file": args.baseline, "model": base["model"],
                           "accuracy": {c: r["accuracy"] for c, r in base["conditions"].items()}}
    report(res, base)
    if args.out:
        from mrpn.io import atomic_write_json

        atomic_write_json(args.out, res)
    if args.png:
        plot(res, args.png, base)
