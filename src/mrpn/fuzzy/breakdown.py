"""Accuracy on the fuzzy held-out clips, broken down by what was made fuzzy (issue 11, item 2).

`synth.json` records per clip which modality was changed (face or voice) and how (paper 3.1:
"missing", the modality shows neutral; "fuzzy", it shows another emotion), the label staying the
clip's true class. Each model trained at a fuzzy level is scored clip by clip on its own held-out
clips at that level (the "fuzzy test"), and the clips are grouped by that record. The paper's claim is
about these clips: a fusion that leans on the clean modality when the other one misleads keeps them
right, while a uni-modal model cannot (a VM is blind on a face-fuzzy clip whatever it learned).
Per-clip outcomes are cached beside each fold (`clips_<cache>.json`), so the breakdown resumes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .experiment import LABELS, MODELS, level_tag, score_on
from .results import runs_dir

GROUPS = ("untouched", "face missing", "face fuzzy", "voice missing", "voice fuzzy")


def clip_groups(corpus: Path) -> dict[str, str]:
    """Clip id -> its group in GROUPS, from the corpus's synth.json."""
    out = {}
    for c in json.loads((corpus / "synth.json").read_text())["clips"]:
        noise = c.get("noise") or []
        out[c["id"]] = f"{noise[0]['modality']} {noise[0]['kind']}" if noise else "untouched"
    return out


def clip_outcomes(fold_dir: Path, cache: Path, fold_index: int) -> dict[str, bool]:
    """Clip id -> whether the fold's best checkpoint classifies it right, on `cache`'s held-out clips."""
    from mrpn.io import atomic_write_json

    path = fold_dir / f"clips_{cache.name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    ev, clips, _ = score_on(fold_dir, cache, fold_index)
    out = {clips[int(i)].id: bool(p == t) for i, p, t in zip(ev["index"], ev["y_pred"], ev["y_true"])}
    atomic_write_json(path, out)
    return out


def breakdown(root: Path, seeds: list[int], levels: list[float], folds: list[int]) -> dict[str, Any]:
    """{level tag: {model: {group: {"n", "correct", "accuracy"}}}} over the fuzzy levels, pooled over
    seeds and folds (finished folds only)."""
    res: dict[str, Any] = {}
    for lv in (x for x in levels if x > 0):
        tag = level_tag(lv)
        cell: dict[str, dict[str, dict[str, float]]] = {}
        for s in seeds:
            corpus = root / f"seed{s}" / f"corpus_{tag}"
            if not (corpus / "synth.json").is_file():      # runs without their corpus: nothing to group by
                continue
            groups = clip_groups(corpus)
            for name, _, _ in MODELS:
                for k in folds:
                    fold_dir = runs_dir(root, s, lv) / name / f"fold_{k:02d}"
                    if not (fold_dir / "metrics.json").is_file():
                        continue
                    for cid, ok in clip_outcomes(fold_dir, root / f"seed{s}" / f"cache_{tag}", k).items():
                        g = cell.setdefault(name, {}).setdefault(groups[cid], {"n": 0, "correct": 0})
                        g["n"] += 1
                        g["correct"] += int(ok)
        for per_model in cell.values():
            for g in per_model.values():
                g["accuracy"] = g["correct"] / g["n"]
        res[tag] = cell
    return res


def markdown_breakdown(bd: dict[str, Any]) -> str:
    """One table per fuzzy level: accuracy (%) and clip count per group, one row per model."""
    lines = ["**Accuracy (%) on the fuzzy held-out clips by what was made fuzzy** (clips pooled over seeds × "
             "folds; n = clips in the group)", ""]
    for tag, cell in bd.items():
        if not cell:
            continue
        present = [g for g in GROUPS if any(g in per for per in cell.values())]
        ns = {g: max(per.get(g, {}).get("n", 0) for per in cell.values()) for g in present}
        lines += [f"Level {int(tag[1:])} %:", "", "| model | " + " | ".join(f"{g} (n={ns[g]})" for g in present) + " |",
                  "| --- |" + " ---: |" * len(present)]
        for name, _, _ in MODELS:
            per = cell.get(name, {})
            vals = [f"{100 * per[g]['accuracy']:.1f}" if g in per else "–" for g in present]
            lines.append(f"| {LABELS[name]} | " + " | ".join(vals) + " |")
        lines.append("")
    return "\n".join(lines)
