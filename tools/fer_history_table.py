"""Markdown table of a `mrpn pretrain visual` run: per-epoch history and the PublicTest-chosen result.

    python3 tools/fer_history_table.py docs/results/fer2013/history.json docs/results/fer2013/metrics.json
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


if __name__ == "__main__":
    main(*sys.argv[1:3])
