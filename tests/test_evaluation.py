"""Tests for mrpn.evaluation: metrics, confusion/t-SNE figures, the report and `mrpn report`."""
from __future__ import annotations

import csv
import json
import math
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from mrpn.evaluation.metrics import compute_metrics, mean_std, metrics_from_confusion
from mrpn.evaluation.plots import plot_confusion
from mrpn.evaluation.report import ReportWarning, build_tables, load_runs, render_report
from mrpn.evaluation.tsne import plot_tsne

CLASSES = ["neutral", "calm", "happy", "sad"]
FOLDS = ["A1,2", "A3,4", "A5,6", "A7,8", "A9,10", "A11,12", "A13,14", "A15,16", "A17,18", "A19,20",
         "A21,22", "A23,24"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------ helpers

def png_size(path: Path) -> tuple[int, int]:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def make_run(root: Path, name: str, label: str, accs: dict[int, float], setting: str = "T",
             modalities: bool = False, features_folds: tuple[int, ...] = (), n_per_class: int = 10,
             seed: int = 0, dataset: str = "ravdess", classes: list[str] = CLASSES) -> Path:
    """A run dir whose fold k has a confusion matrix giving accuracy close to accs[k]; returns it."""
    rng = np.random.default_rng(seed)
    run = root / name
    run.mkdir(parents=True)
    cfg = {"run_label": label, "model": label.split()[0].lower(), "strategy": "end-to-end",
           "dataset": dataset, "protocol": "actor-pairs", "setting": setting}
    (run / "config.json").write_text(json.dumps(cfg))
    c = len(classes)
    for k, acc in accs.items():
        y = np.repeat(np.arange(c), n_per_class)
        wrong = rng.random(y.size) > acc
        pred = np.where(wrong, (y + 1 + rng.integers(0, c - 1, y.size)) % c, y)
        m = compute_metrics(y, pred, classes)
        m.update({"run_label": label, "model": cfg["model"], "strategy": "end-to-end", "dataset": dataset,
                  "protocol": "actor-pairs", "fold": FOLDS[k - 1], "fold_index": k, "class_names": classes,
                  "n_val": int(y.size), "epochs": 10, "best_epoch": 7, "wall_time_s": 12.5})
        if modalities:
            m["modalities"] = {"v": {"accuracy": m["accuracy"] - 0.05, "uar": m["uar"] - 0.05},
                               "a": {"accuracy": m["accuracy"] - 0.2 if k != 2 else min(1.0, m["accuracy"] + 0.01),
                                     "uar": m["uar"] - 0.2}}
        d = run / f"fold_{k:02d}"
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps(m))
        if k in features_folds:
            centers = rng.normal(0, 4, (c, 8))
            np.savez(d / "features.npz", labels=y,
                     v=centers[y] + rng.normal(0, 1, (y.size, 8)),
                     a=rng.normal(0, 1, (y.size, 6)),
                     fused=np.concatenate([centers[y], centers[y]], 1) + rng.normal(0, 1, (y.size, 16)))
    return run


def table_rows(md: str, header_first_cell: str = "Model") -> tuple[list[str], list[list[str]]]:
    """Header and body cells of the first markdown table after '### Accuracy (WAR) per validation fold'."""
    sec = md.split("### Accuracy (WAR) per validation fold", 1)[1]
    lines = [ln for ln in sec.strip().splitlines()]
    tbl = []
    for ln in lines:
        if ln.startswith("|"):
            tbl.append(ln)
        elif tbl:
            break
    def split(ln):
        return [c.strip().replace("**", "") for c in re.split(r"(?<!\\)\|", ln.strip())[1:-1]]

    header = split(tbl[0])
    assert header[0] == header_first_cell
    return header, [split(ln) for ln in tbl[2:]]


# ------------------------------------------------------------------------------------------ metrics

def test_metrics_hand_computed_with_absent_class():
    # classes 0..3; class 3 never occurs in y_true but is predicted once; class 2 never predicted
    y_true = [0, 0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 0, 1, 1, 3, 2, 0, 1]
    m = compute_metrics(y_true, y_pred, CLASSES)
    assert m["confusion"] == [[2, 1, 0, 0], [0, 1, 0, 1], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert m["accuracy"] == pytest.approx(4 / 8)                      # WAR
    # recall: c0 2/3, c1 1/2, c2 1/3, c3 absent -> left out of UAR
    assert m["uar"] == pytest.approx((2 / 3 + 1 / 2 + 1 / 3) / 3)
    assert m["per_class_recall"] == pytest.approx({"neutral": 2 / 3, "calm": 1 / 2, "happy": 1 / 3, "sad": None})
    # F1 = 2tp/(support+predicted): c0 4/6, c1 2/5, c2 2/4, c3 0/1 (predicted, never true -> 0)
    assert m["macro_f1"] == pytest.approx((4 / 6 + 2 / 5 + 2 / 4 + 0.0) / 4)
    assert m["support"] == {"neutral": 3, "calm": 2, "happy": 3, "sad": 0}
    assert m["n"] == 8
    json.dumps(m)  # JSON-serialisable (None, not NaN)


def test_metrics_class_neither_true_nor_predicted_and_sklearn_agreement():
    from sklearn.metrics import balanced_accuracy_score, f1_score

    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 3, 200)          # class 3 never appears at all
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 3, 200))
    m = compute_metrics(y_true, y_pred, CLASSES)
    assert m["accuracy"] == pytest.approx(float(np.mean(y_true == y_pred)))
    assert m["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["per_class_recall"]["sad"] is None and m["per_class_f1"]["sad"] is None


def test_metrics_scores_input_perfect_and_empty():
    logits = np.array([[3.0, 0, 0], [0, 2.0, 1], [0, 0, 5.0]])
    m = compute_metrics([0, 1, 2], logits, ["a", "b", "c"])
    assert m["accuracy"] == m["uar"] == m["macro_f1"] == 1.0
    e = compute_metrics([], [], ["a", "b"])
    assert math.isnan(e["accuracy"]) and math.isnan(e["uar"]) and e["confusion"] == [[0, 0], [0, 0]]
    with pytest.raises(ValueError):
        compute_metrics([0, 5], [0, 1], ["a", "b"])
    with pytest.raises(ValueError):
        compute_metrics([0, 1], [0], ["a", "b"])
    # from a confusion directly: same numbers
    again = metrics_from_confusion(compute_metrics([0, 0, 1], [0, 1, 1], ["a", "b"])["confusion"], ["a", "b"])
    assert again["accuracy"] == pytest.approx(2 / 3)


def test_mean_std():
    m, s = mean_std([0.9, 0.8, 1.0])
    assert m == pytest.approx(0.9) and s == pytest.approx(0.1)         # sample std (ddof=1)
    assert mean_std([0.5]) == (0.5, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))
    assert mean_std([0.2, None, float("nan"), 0.4])[0] == pytest.approx(0.3)
    assert mean_std([0.9, 0.8, 1.0], ddof=0)[1] == pytest.approx(np.std([0.9, 0.8, 1.0]))


# ------------------------------------------------------------------------------------------ figures

def test_plot_confusion_png(tmp_path):
    cm = [[8, 2, 0, 0], [1, 9, 0, 0], [0, 0, 10, 0], [0, 0, 0, 0]]   # last class has no samples
    p = plot_confusion(cm, CLASSES, tmp_path / "cm.png", "test")
    w, h = png_size(p)
    assert 300 < w < 3000 and 300 < h < 3000
    p2 = plot_confusion(cm, CLASSES, tmp_path / "cm_counts.png", None, normalize=False)
    assert png_size(p2)[0] > 300
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]   # no temp files left
    with pytest.raises(ValueError):
        plot_confusion([[1, 2]], CLASSES, tmp_path / "bad.png", "x")


def test_plot_tsne_three_panels(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 15)
    feats = {"fused": rng.normal(0, 1, (45, 12)) + 3 * y[:, None], "v": rng.normal(0, 1, (45, 5)),
             "a": rng.normal(0, 1, (45, 7)), "bad": rng.normal(0, 1, (44, 3))}
    with pytest.warns(UserWarning, match="bad"):
        p = plot_tsne(feats, y, ["neutral", "happy", "sad"], tmp_path / "t.png", title="demo", seed=0)
    w, h = png_size(p)
    assert w > 2 * h > 300          # three panels side by side
    # deterministic with the seed
    p2 = plot_tsne({"v": feats["v"]}, y, ["neutral", "happy", "sad"], tmp_path / "t1.png", seed=3)
    p3 = plot_tsne({"v": feats["v"]}, y, ["neutral", "happy", "sad"], tmp_path / "t2.png", seed=3)
    assert p2.read_bytes() == p3.read_bytes()
    # tiny sets: perplexity is clipped, subsampling keeps at most max_points
    plot_tsne({"v": feats["v"][:5]}, y[:5], ["neutral", "happy", "sad"], tmp_path / "t3.png")
    plot_tsne({"v": feats["v"]}, y, ["neutral", "happy", "sad"], tmp_path / "t4.png", max_points=20)


# ------------------------------------------------------------------------------------------- report

@pytest.fixture()
def runs_dir(tmp_path):
    root = tmp_path / "runs"
    a = {k: 0.6 + 0.03 * k for k in range(1, 13)}
    make_run(root, "n0_late", "N0 (late fusion)", a, seed=1)
    # N2 has only 10 of 12 folds finished, per-modality metrics and features for fold 2
    b = {k: 0.75 + 0.02 * k for k in range(1, 13) if k not in (5, 9)}
    r2 = make_run(root, "n2_e2e", "N2 (end-to-end)", b, modalities=True, features_folds=(2,), seed=2)
    (r2 / "fold_05").mkdir()            # started, not finished
    (r2 / "config.json").write_text(json.dumps({**json.loads((r2 / "config.json").read_text()), "n_folds": 12}))
    return root


def test_report_tables_and_files(runs_dir, tmp_path):
    order = [runs_dir / "n2_e2e", runs_dir / "n0_late"]           # rows in the order given
    with pytest.warns(ReportWarning, match=r"fold_05[/\\]metrics.json"):
        runs = load_runs(order)
    assert [r.label for r in runs] == ["N2 (end-to-end)", "N0 (late fusion)"]
    out = tmp_path / "rep"
    written = render_report(runs, out, title="Test report", tsne_max_points=200)

    for key in ("report.md", "tables.csv", "tables.json"):
        assert written[key].is_file()
    slug2 = "n2_end_to_end_t"
    assert written[f"confusion_{slug2}"].name == f"confusion_{slug2}.png"
    assert written["confusion_n0_late_fusion_t"].is_file()
    for key in (f"confusion_{slug2}", f"tsne_{slug2}", "confusion_n0_late_fusion_t"):
        w, h = png_size(written[key])
        assert 300 < w < 5000 and 200 < h < 5000
    assert "tsne_n0_late_fusion_t" not in written                 # no features.npz there

    md = written["report.md"].read_text()
    assert md.startswith("# Test report")
    header, rows = table_rows(md)
    assert header == ["Model"] + FOLDS + ["mean ± std", "folds"]   # union of folds, in fold order
    assert [r[0] for r in rows] == ["N2 (end-to-end), T", "N0 (late fusion), T"]
    assert rows[0][-1] == "10/12" and rows[1][-1] == "12/12"
    assert rows[0][1 + FOLDS.index("A9,10")] == "" and rows[0][1 + FOLDS.index("A17,18")] == ""

    # mean ± std computed independently from the metrics.json files
    for row, name in zip(rows, ["n2_e2e", "n0_late"]):
        accs = {json.loads(p.read_text())["fold"]: json.loads(p.read_text())["accuracy"]
                for p in sorted((runs_dir / name).glob("fold_*/metrics.json"))}
        for f, a in accs.items():
            assert row[1 + FOLDS.index(f)] == f"{100 * a:.1f}%"
        vals = np.array(list(accs.values()))
        assert row[-2] == f"{100 * vals.mean():.1f} ± {100 * vals.std(ddof=1):.1f}%"

    assert "### Summary" in md and "UAR" in md and "macro-F1" in md
    assert "### Per-modality accuracy" in md and "audio (a)" in md
    assert "beats fusion in 1 of 10 folds: A3,4" in md            # fold 2: audio > fused
    assert f"(confusion_{slug2}.png)" in md and f"(tsne_{slug2}.png)" in md
    assert "fold_05" in md                                        # problems listed

    tj = json.loads(written["tables.json"].read_text())
    (g,) = tj["groups"]
    assert g["folds"] == FOLDS
    r0 = g["rows"][0]
    assert r0["n_folds_done"] == 10 and r0["n_folds_expected"] == 12
    assert r0["mean"]["accuracy"] == pytest.approx(np.mean([r0["per_fold"][f]["accuracy"] for f in r0["per_fold"]]))
    assert np.asarray(r0["confusion_sum"]).sum() == 10 * 40

    with open(written["tables.csv"], newline="") as f:
        recs = list(csv.DictReader(f))
    folds_rows = [r for r in recs if r["kind"] == "fold" and r["head"] == "fused"]
    assert len(folds_rows) == 22
    means = {r["row_label"]: float(r["accuracy"]) for r in recs if r["kind"] == "mean" and r["head"] == "fused"}
    assert means["N2 (end-to-end), T"] == pytest.approx(r0["mean"]["accuracy"])
    assert {r["head"] for r in recs} == {"fused", "v", "a"}


def test_report_corrupt_and_missing_metrics(tmp_path):
    root = tmp_path / "runs"
    run = make_run(root, "r", "N1 (end-to-end)", {1: 0.8, 2: 0.7, 3: 0.9})
    (run / "fold_02" / "metrics.json").write_text("{not json")
    (run / "fold_03" / "metrics.json").write_text(json.dumps({"fold": "A5,6", "accuracy": 97.5}))  # percent, not fraction
    bad = make_run(root, "bad", "N0 (end-to-end)", {1: 0.5})
    (bad / "fold_01" / "metrics.json").write_text("[]")
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = load_runs([run, bad, tmp_path / "nope"], problems)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ReportWarning)]
    assert any(str(run / "fold_02" / "metrics.json") in m and "corrupt" in m for m in msgs)
    assert any(str(run / "fold_03" / "metrics.json") in m for m in msgs)
    assert any(str(bad / "fold_01" / "metrics.json") in m for m in msgs)
    assert any("nope" in m for m in msgs)
    assert len(problems) == len(msgs)
    assert [r.path for r in runs] == [run] and [f.name for f in runs[0].folds] == ["A1,2"]
    tables = build_tables(runs)
    assert tables["groups"][0]["rows"][0]["n_folds_done"] == 1
    written = render_report(runs, tmp_path / "out", tsne=False, notes=problems)
    md = written["report.md"].read_text()
    assert "Problems met while loading" in md and "fold_02" in md


def test_report_metrics_from_confusion_only_and_folder_expansion(tmp_path):
    root = tmp_path / "runs"
    run = root / "minimal"
    (run / "fold_01").mkdir(parents=True)
    (run / "fold_01" / "metrics.json").write_text(json.dumps(
        {"fold": "S1", "fold_index": 1, "class_names": ["x", "y"], "confusion": [[3, 1], [0, 4]]}))
    runs = load_runs([root])                       # a folder of runs expands to them
    assert len(runs) == 1
    f = runs[0].folds[0]
    assert f.metrics["accuracy"] == pytest.approx(7 / 8) and f.metrics["uar"] == pytest.approx((0.75 + 1) / 2)
    assert runs[0].row_label == "minimal"          # no config: falls back to the folder name


def test_cli_report(runs_dir, capsys):
    from mrpn.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["report", str(runs_dir / "n0_late"), str(runs_dir / "n2_e2e"), "--no-tsne", "--title", "CLI"])
    assert rc == 0
    out = capsys.readouterr()
    assert "A1,2" in out.out and "mean ± std" in out.out and "10/12" in out.out
    rep = runs_dir / "report"                      # default: first run's parent / report
    assert (rep / "report.md").is_file() and f"wrote {rep / 'report.md'}" in out.out
    assert not list(rep.glob("tsne_*.png"))
    assert "warning:" in out.err and "fold_05" in out.err
    header, rows = table_rows((rep / "report.md").read_text())
    assert [r[0] for r in rows] == ["N0 (late fusion), T", "N2 (end-to-end), T"]
    assert main(["report", str(runs_dir / "does-not-exist")]) == 1


def test_report_union_of_folds_and_dataset_groups(tmp_path):
    root = tmp_path / "runs"
    x = make_run(root, "x", "N0 (end-to-end)", {1: 0.7, 2: 0.8})
    y = make_run(root, "y", "N1 (end-to-end)", {2: 0.9, 3: 0.6}, seed=3)
    c = make_run(root, "c", "N2 (end-to-end)", {1: 0.75}, dataset="cremad", seed=4)
    runs = load_runs([x, y, c])
    tables = build_tables(runs)
    g_rav, g_cre = tables["groups"]
    assert g_rav["folds"] == ["A1,2", "A3,4", "A5,6"] and g_cre["folds"] == ["A1,2"]
    assert [r["n_folds_expected"] for r in g_rav["rows"]] == [3, 3]
    written = render_report(runs, tmp_path / "out", tsne=False)
    md = written["report.md"].read_text()
    assert "## RAVDESS" in md and "## CREMA-D" in md
    header, rows = table_rows(md)
    assert header[1:4] == ["A1,2", "A3,4", "A5,6"]
    assert rows[0][3] == "" and rows[1][1] == "" and rows[0][-1] == "2/3"
    # several datasets: figure names carry the dataset so they cannot collide
    assert {k for k in written if k.startswith("confusion_")} == {
        "confusion_ravdess_n0_end_to_end_t", "confusion_ravdess_n1_end_to_end_t", "confusion_cremad_n2_end_to_end_t"}


def test_report_tsne_fold_choice(runs_dir, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = load_runs([runs_dir / "n2_e2e"])
    w = render_report(runs, tmp_path / "a", tsne_fold="A3,4")           # by name
    assert "tsne_n2_end_to_end_t" in w
    with pytest.warns(ReportWarning, match="features.npz"):
        w = render_report(runs, tmp_path / "b", tsne_fold=1)            # fold 1 has no features.npz
    assert "tsne_n2_end_to_end_t" not in w
    with pytest.warns(ReportWarning, match="no finished fold"):
        render_report(runs, tmp_path / "c", tsne_fold=5)                # unfinished fold
