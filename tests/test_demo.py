"""The README's first command at its `--quick` size: every stage runs and the models clearly learn."""
import json

import pytest

from mrpn.cli import main

# slow: > 10 s on this project's 2-core machine (`pytest -m "not slow"` skips them while working)
pytestmark = pytest.mark.slow


def test_demo_quick_learns_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "5/5 predict" in text and "whole file:" in text and "Clean training: the best fusion model is" in text
    res = json.loads((out / "report" / "results.json").read_text())
    acc = res["summary"]["accuracy"]
    clean = {m: acc["p00"][m]["clean"]["mean"] for m in acc["p00"]}
    assert set(clean) == {"vm_e2e", "am_e2e", "n0_late", "n0_e2e", "n1_e2e", "n2_e2e"}
    # 6 classes (chance 1/6), 2 held-out actors x 12 clips; the epoch is chosen on 2 of the 6 training
    # actors, so 4 actors train: still well above chance for every model
    assert min(clean.values()) >= 0.35, clean
    assert max(clean[m] for m in ("n0_late", "n0_e2e", "n1_e2e", "n2_e2e")) >= 0.5, clean
    fuzzy = {m: acc["p30"][m]["fuzzy"]["mean"] for m in acc["p30"]}
    assert all(0.0 <= v <= 1.0 for v in fuzzy.values()) and acc["p30"]["n2_e2e"]["clean"]["n"] == 1
    md = (out / "report" / "report.md").read_text()
    assert "N2 (MRPN)" in md and "N0 late" in md and "VM" in md and "AM" in md
    assert (out / "report" / "accuracy.png").stat().st_size > 10_000
    assert len(list((out / "report" / "p00").glob("confusion_*.png"))) == 6
    ex = json.loads((out / "report" / "example.json").read_text())
    assert ex["prediction"]["label"] in ex["prediction"]["classes"] and "label" in ex["clip"]


def _summary(clean: dict, fuzzy: dict) -> dict:
    return {"accuracy": {lv: {n: {"clean": {"mean": v}} for n, v in accs.items()}
                         for lv, accs in (("p00", clean), ("p30", fuzzy))}}


def test_demo_summary_says_what_the_numbers_say():
    """The summary's verdicts follow the measured accuracies, in either direction."""
    from mrpn.demo import _summary_text
    from mrpn.fuzzy.experiment import FUSION, MODELS, MRPN

    names = [n for n, _, _ in MODELS]
    good = dict(zip(names, [0.5, 0.4, 0.6, 0.62, 0.63, 0.7]))
    text = " ".join(_summary_text(_summary(good, {n: v - (0.01 if n == MRPN else 0.1) for n, v in good.items()}), 0.3))
    assert "together beat either alone" in text and "this run agrees" in text
    bad = {n: (0.3 if n in FUSION else 0.8) for n in names}
    worse = {n: v - (0.01 if n == FUSION[0] else 0.2) for n, v in bad.items()}
    text = " ".join(_summary_text(_summary(bad, worse), 0.3))
    assert "did not beat the best single modality" in text and "together beat" not in text
    assert "this run agrees" not in text and "N0 late did" in text
