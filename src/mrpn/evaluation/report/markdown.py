"""report.md and tables.csv from the tables."""
from __future__ import annotations

import csv
import io
from typing import Any


from mrpn.evaluation.metrics import (
    METRIC_NAMES, format_pct,
)
from mrpn.evaluation.report.runs import modality_name
from mrpn.evaluation.report.tables import (_folds_cell, accuracy_table, modality_table, per_class_table,
                                           summary_table)


def _markdown(tables: dict[str, Any], title: str, figures: dict[str, dict[str, str]], notes: list[str]) -> str:
    out = [f"# {title}", ""]
    out.append("accuracy = WAR (weighted average recall = correct / all); UAR = mean recall over the classes "
               "present in the fold; macro-F1 over the classes present or predicted. Per-fold values are "
               "for each run's validation fold; mean ± std are over the run's finished folds (unweighted, "
               "sample std); blank = fold not (yet) run. *pooled* = over all validation samples of the "
               "finished folds (summed confusion matrix).")
    out.append("")
    for g in tables["groups"]:
        out += [f"## {g['title']}", ""]
        out += ["### Accuracy (WAR) per validation fold", "", accuracy_table(g), ""]
        out += ["### Summary", "", summary_table(g), ""]
        t = per_class_table(g)
        if t:
            out += ["### Per-class recall (summed confusion over finished folds)", "", t, ""]
        t = modality_table(g)
        if t:
            out += ["### Per-modality accuracy (uni-modal side heads vs. fusion)", "", t, ""]
            for r in g["rows"]:
                if not r["modalities"]:
                    continue
                inf = r["inferior_folds"]
                if inf:
                    desc = ", ".join(f"{d['fold']} ({modality_name(d['modality'])} "
                                     f"{format_pct(d['uni_accuracy'])} > {format_pct(d['fused_accuracy'])})"
                                     for d in inf)
                    out.append(f"- {r['row_label']}: a uni-modal head beats fusion in {len(inf)} of "
                               f"{r['n_folds_done']} folds: {desc}")
                else:
                    out.append(f"- {r['row_label']}: fusion is at least as good as every uni-modal head in all "
                               f"{r['n_folds_done']} finished folds")
            out.append("")
        figs = [(r, figures.get(r["slug"], {})) for r in g["rows"]]
        if any(f for _, f in figs):
            out += ["### Figures", ""]
            for r, f in figs:
                if f.get("confusion"):
                    out += [f"**{r['row_label']}** — confusion matrix summed over {r['confusion_folds']}/"
                            f"{r['n_folds_expected']} folds, row-normalised", "", f"![confusion {r['row_label']}]({f['confusion']})", ""]
                if f.get("tsne"):
                    out += [f"**{r['row_label']}** — t-SNE of validation features, fold {f.get('tsne_fold', '')}",
                            "", f"![t-SNE {r['row_label']}]({f['tsne']})", ""]
    out += ["## Runs", ""]
    for g in tables["groups"]:
        for r in g["rows"]:
            out.append(f"- {r['row_label']}: `{r['run_dir']}` ({_folds_cell(r)} folds)")
    out.append("")
    if notes:
        out += ["## Problems met while loading", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def _csv(tables: dict[str, Any]) -> str:
    cols = ["dataset", "protocol", "row_label", "run_label", "setting", "model", "strategy", "run_dir",
            "kind", "fold", "fold_index", "head", "accuracy", "uar", "macro_f1", "n_val", "epochs",
            "best_epoch", "wall_time_s", "n_folds_done", "n_folds_expected"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for g in tables["groups"]:
        for r in g["rows"]:
            base = {"dataset": g["dataset"], "protocol": g["protocol"], "row_label": r["row_label"],
                    "run_label": r["run_label"], "setting": r["setting"], "model": r["model"],
                    "strategy": r["strategy"], "run_dir": r["run_dir"], "n_folds_done": r["n_folds_done"],
                    "n_folds_expected": r["n_folds_expected"]}
            for fname, pf in r["per_fold"].items():
                w.writerow({**base, "kind": "fold", "fold": fname, "fold_index": pf["fold_index"], "head": "fused",
                            **{k: _csv_num(pf[k]) for k in METRIC_NAMES}, "n_val": pf["n_val"],
                            "epochs": pf["epochs"], "best_epoch": pf["best_epoch"],
                            "wall_time_s": _csv_num(pf["wall_time_s"])})
                for mk, md in r["modalities"].items():
                    mv = md["per_fold"].get(fname)
                    if mv:
                        w.writerow({**base, "kind": "fold", "fold": fname, "fold_index": pf["fold_index"],
                                    "head": mk, **{k: _csv_num(mv.get(k)) for k in METRIC_NAMES}})
            heads = [("fused", r["mean"], r["std"])] + [(mk, md["mean"], md["std"]) for mk, md in r["modalities"].items()]
            for head, mean, std in heads:
                w.writerow({**base, "kind": "mean", "head": head, **{k: _csv_num(mean.get(k)) for k in METRIC_NAMES}})
                w.writerow({**base, "kind": "std", "head": head, **{k: _csv_num(std.get(k)) for k in METRIC_NAMES}})
            if r["pooled"]:
                w.writerow({**base, "kind": "pooled", "head": "fused",
                            **{k: _csv_num(r["pooled"][k]) for k in METRIC_NAMES}})
    return buf.getvalue()


def _csv_num(v: Any) -> str:
    return "" if v is None else repr(float(v))
