"""The fuzziness experiment's bookkeeping: paired differences, confidence intervals, report files."""
from __future__ import annotations

import numpy as np

from mrpn.fuzzy.experiment import MODELS
from mrpn.fuzzy.report import markdown_tables, plot_levels_bars, plot_sweep
from mrpn.fuzzy.results import mean_ci, summarise


def _rows() -> list[dict]:
    """Two seeds x three folds; N2 is exactly 5 points above N1 in every unit at level 0.2."""
    rng = np.random.default_rng(0)
    rows = []
    for s in (1, 2):
        for k in (1, 2, 3):
            for lv in (0.0, 0.2):
                base = 0.7 - 0.3 * lv + rng.normal(0, 0.05)
                for i, (name, _, _) in enumerate(MODELS):
                    acc = base + 0.01 * i + (0.05 if name == "n2_e2e" and lv else 0.0)
                    rows.append({"seed": s, "level": lv, "fold": k, "model": name, "clean": acc + 0.02, "fuzzy": acc})
    return rows


def test_paired_differences_and_confidence_intervals() -> None:
    s = summarise(_rows(), [0.0, 0.2])
    d = s["paired"]["p20"]["n2_e2e-n1_e2e:fuzzy"]
    assert d["n"] == 6 and abs(d["mean"] - 0.06) < 1e-9 and d["sd"] < 1e-9   # the unit noise cancels
    d0 = s["paired"]["p00"]["n2_e2e-n0_e2e:clean"]
    assert abs(d0["mean"] - 0.02) < 1e-9
    a = s["accuracy"]["p20"]["vm_e2e"]["clean"]
    assert a["n"] == 6 and a["ci95"] > 0
    m, sd, ci = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert m == 2.0 and abs(sd - 1.0) < 1e-12 and abs(ci - 4.303 / np.sqrt(3)) < 1e-9   # t(2) = 4.303


def test_report_figures_and_tables(tmp_path) -> None:
    s = summarise(_rows(), [0.0, 0.2])
    for f in (plot_sweep(s, tmp_path / "sweep.png"), plot_levels_bars(s, tmp_path / "bars.png")):
        assert f.stat().st_size > 10_000
    md = markdown_tables(s)
    assert "| N2 (MRPN) − N1 | fuzzy |" in md and "+6.0" not in md and "6.0 ± 0.0" in md


def test_sweep_report_from_finished_runs(tmp_path, capsys) -> None:
    """`mrpn fuzzy --report-only` collects per-fold metrics (and the clean re-scoring of fuzzy-trained
    models) into the plot, the tables and results.json."""
    import json

    from mrpn.cli import main

    acc = {"vm_e2e": 0.6, "am_e2e": 0.5, "n0_late": 0.7, "n0_e2e": 0.8, "n1_e2e": 0.75, "n2_e2e": 0.85}
    for seed in (1, 2):
        for tag, drop in (("p00", 0.0), ("p30", 0.1)):
            for name, a in acc.items():
                d = tmp_path / f"seed{seed}" / f"runs_{tag}" / name / "fold_01"
                d.mkdir(parents=True)
                (d / "metrics.json").write_text(json.dumps({"accuracy": a - drop}))
                if tag == "p30":   # the clean re-scoring, as evaluate_on caches it
                    (d / "eval_cache_p00.json").write_text(json.dumps({"accuracy": a - drop / 2}))
    rc = main(["fuzzy", "--out", str(tmp_path), "--seeds", "1,2", "--levels", "0.3", "--folds", "1",
               "--report-only"])
    assert rc == 0 and "report:" in capsys.readouterr().out
    res = json.loads((tmp_path / "results.json").read_text())
    assert len(res["rows"]) == 2 * 2 * 6 and res["levels"] == [0.0, 0.3]
    cell = res["summary"]["accuracy"]["p30"]["n2_e2e"]
    assert abs(cell["clean"]["mean"] - 0.80) < 1e-9 and abs(cell["fuzzy"]["mean"] - 0.75) < 1e-9
    d = res["summary"]["paired"]["p30"]["n2_e2e-n1_e2e:clean"]
    assert d["n"] == 2 and abs(d["mean"] - 0.10) < 1e-9
    md = (tmp_path / "report.md").read_text()
    assert "| N2 (MRPN) | 85.0 ± 0.0 | 80.0 ± 0.0 |" in md
    assert (tmp_path / "accuracy_vs_fuzzy.png").stat().st_size > 10_000


def test_a_finished_corpus_is_reused_not_refused(tmp_path) -> None:
    """`mrpn fuzzy` run again on its own folder (to resume, or to rewrite the report) finds every clip
    prepared: the second call returns the same cache instead of counting 0 new clips as 0 kept."""
    from mrpn.data.cache import Cache
    from mrpn.fuzzy.experiment import Setup, make_corpus

    setup = Setup(actors=4, clips_per_class=1, n_folds=2, duration=(1.0, 1.2))
    first = make_corpus(tmp_path, setup, seed=3, level=0.5, workers=1)
    before = {p.name: p.stat().st_mtime_ns for p in first.glob("*/*.npz")}
    assert len(before) == 4 * 6
    assert make_corpus(tmp_path, setup, seed=3, level=0.5, workers=1) == first
    assert {p.name: p.stat().st_mtime_ns for p in first.glob("*/*.npz")} == before      # nothing redone
    assert len(Cache(first).records()) == 4 * 6


def test_breakdown_groups_clips_by_what_the_corpus_made_fuzzy(tmp_path) -> None:
    """Per-clip outcomes are grouped by synth.json's record of each clip (untouched, face/voice,
    missing/fuzzy) and pooled over seeds and folds."""
    import json

    from mrpn.fuzzy.breakdown import breakdown, markdown_breakdown

    corpus = tmp_path / "seed1" / "corpus_p30"
    corpus.mkdir(parents=True)
    clips = [{"id": "a", "noise": []}, {"id": "b", "noise": [{"modality": "face", "kind": "missing"}]},
             {"id": "c", "noise": [{"modality": "voice", "kind": "fuzzy"}]}, {"id": "d", "noise": []}]
    (corpus / "synth.json").write_text(json.dumps({"clips": clips}))
    for name, _, _ in MODELS:
        d = tmp_path / "seed1" / "runs_p30" / name / "fold_01"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
        right = {"a": True, "b": name != "vm_e2e", "c": name != "am_e2e", "d": False}
        (d / "clips_cache_p30.json").write_text(json.dumps(right))    # as clip_outcomes caches them
    bd = breakdown(tmp_path, [1], [0.0, 0.3], [1])
    assert list(bd) == ["p30"]
    vm, am = bd["p30"]["vm_e2e"], bd["p30"]["am_e2e"]
    assert vm["untouched"] == {"n": 2, "correct": 1, "accuracy": 0.5}
    assert vm["face missing"]["accuracy"] == 0.0 and vm["voice fuzzy"]["accuracy"] == 1.0
    assert am["face missing"]["accuracy"] == 1.0 and am["voice fuzzy"]["accuracy"] == 0.0
    md = markdown_breakdown(bd)
    assert "| VM | 50.0 | 0.0 | 100.0 |" in md and "face missing (n=1)" in md and "face fuzzy" not in md
