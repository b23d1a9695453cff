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
    assert "5/5 predict" in text and "whole file:" in text and "Clean training: the best model is" in text
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
