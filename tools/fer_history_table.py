"""Markdown table of a `mrpn pretrain visual` run: per-epoch history and the PublicTest-chosen result.

    python3 tools/fer_history_table.py docs/results/fer2013/history.json docs/results/fer2013/metrics.json [--plot out.png]

--plot also draws the accuracies by epoch (both test usages, plain and flip-averaged) with the chosen epoch.
"""
from __future__ import annotations

import json
import sys


def main(history_path: str, metrics_path: str) -> None:
    hist = json.load(open(history_path))["history"]
    res = json.load(open(metrics_path))
    print("| epoch | train loss | PublicTest | PublicTest flip-avg | PrivateTest | PrivateTest flip-avg | train s | load |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for h in hist:
        mark = " **←**" if h["epoch"] == res["epoch"] else ""
        print(f"| {h['epoch']}{mark} | {h['train_loss']:.3f} | {100 * h['public_acc_plain']:.1f} % | "
              f"{100 * h['public_acc_flip']:.1f} % | {100 * h['private_acc_plain']:.1f} % | "
              f"{100 * h['private_acc_flip']:.1f} % | {h['train_seconds']:.0f} | {h['load_avg_1m']:.1f} |")
    print(f"\nchosen on {res['selected_on']}: epoch {res['epoch']}, tta {res['tta']}; "
          f"PrivateTest {100 * res['private_accuracy']:.2f} %")
    print("\n| class | " + " | ".join(res["private_recall"]) + " |")
    print("| --- | " + " | ".join("---:" for _ in res["private_recall"]) + " |")
    print("| PrivateTest recall | " + " | ".join(f"{100 * v:.1f} %" for v in res["private_recall"].values()) + " |")


def plot(history_path: str, metrics_path: str, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = json.load(open(history_path))["history"]
    res = json.load(open(metrics_path))
    ep = [h["epoch"] for h in hist]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for key, name, colour in (("public", "PublicTest (selection)", "tab:blue"), ("private", "PrivateTest (reported)", "tab:red")):
        ax.plot(ep, [100 * h[f"{key}_acc_plain"] for h in hist], color=colour, ls="--", lw=1, label=f"{name}, plain")
        ax.plot(ep, [100 * h[f"{key}_acc_flip"] for h in hist], color=colour, lw=2, label=f"{name}, flip-averaged")
    ax.axvline(res["epoch"], color="grey", lw=1, ls=":")
    ax.annotate(f"chosen on PublicTest: epoch {res['epoch']} ({res['tta']})\nPrivateTest {100 * res['private_accuracy']:.1f} %",
                (res["epoch"], 100 * res["private_accuracy"]), xytext=(0.55, 0.3), textcoords="axes fraction", ha="center",
                arrowprops={"arrowstyle": "->", "color": "grey"})
    r = res["recipe"]
    ax.set(xlabel="epoch", ylabel="accuracy (%)",
           title=f"FER2013: {r['extractor']} width {r['width']}, {r['epochs']} epochs, seed {r['seed']}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
    if "--plot" in sys.argv:
        plot(sys.argv[1], sys.argv[2], sys.argv[sys.argv.index("--plot") + 1])
