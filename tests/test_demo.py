"""The README's first command, reduced: `mrpn demo --quick` runs every stage on a generated corpus."""
import json

import pytest

from mrpn.cli import main

# slow: > 10 s on this project's 2-core machine (`pytest -m "not slow"` skips them while working)
pytestmark = pytest.mark.slow


def test_demo_quick_runs_every_stage(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "5/5 predict" in text and "whole file:" in text
    for name in ("vm", "am", "n0_late", "n0_e2e", "n1_e2e", "n2_e2e"):
        m = json.loads((out / "runs" / name / "fold_01" / "metrics.json").read_text())
        assert 0.0 <= m["accuracy"] <= 1.0 and m["n_val"] > 0
    md = (out / "report" / "report.md").read_text()
    assert "N2" in md and "N0" in md and "VM" in md and "AM" in md
    assert (out / "preview.png").stat().st_size > 1000
    assert len(list((out / "report").glob("confusion_*.png"))) == 6
