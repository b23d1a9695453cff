"""The one-call API: `mrpn.predict(path)` returns what `mrpn predict --json` writes, with helpers."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from media_factory import face_like_frame, write_text, write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("api") / "face.mp4", n_frames=45, fps=15, size=(192, 144),
                       frame_fn=face_like_frame)


def test_import_mrpn_is_fast_and_lazy():
    code = "import sys, mrpn; assert 'torch' not in sys.modules; assert callable(mrpn.predict); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_predict_matches_cli_json(clip, tmp_path):
    import mrpn
    from mrpn.cli import main

    r = mrpn.predict(clip)
    assert r.label in r.classes and abs(sum(r.probabilities.values()) - 1) < 1e-3
    assert r.modalities == ["v", "a"] and r.timeline and r.file == str(clip)
    assert main(["predict", str(clip), "--json", str(tmp_path / "cli.json")]) == 0
    cli = json.loads((tmp_path / "cli.json").read_text())
    ours = json.loads(r.to_json())
    for k in ("label", "probabilities", "timeline", "modalities_used", "per_modality", "classes", "notes"):
        assert ours[k] == cli[k], k
    r.to_json(tmp_path / "api.json")
    assert json.loads((tmp_path / "api.json").read_text())["label"] == cli["label"]
    png = r.plot(tmp_path / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Result('face.mp4'" in repr(r)


def test_load_model_is_cached_and_reused(clip):
    import mrpn
    from mrpn.inference.model_io import default_model_path

    a = mrpn.load_model("default")
    assert mrpn.load_model() is a and mrpn.load_model("default", hop_s=0.5) is not a
    by_path = mrpn.load_model(default_model_path())
    r = mrpn.predict(clip, model=by_path)
    assert r.label == mrpn.predict(clip).label


def test_to_dataframe_has_a_row_per_window(clip):
    pd = pytest.importorskip("pandas", reason="pandas is optional; to_dataframe needs it")
    import mrpn

    r = mrpn.predict(clip)
    df = r.to_dataframe()
    assert isinstance(df, pd.DataFrame) and len(df) == len(r.timeline)
    assert list(df.columns[:4]) == ["start", "end", "label", "modalities"] and list(df.columns[4:]) == r.classes
    assert (df[r.classes].sum(axis=1) - 1).abs().max() < 1e-2


def test_bad_input_raises_a_one_line_reason(tmp_path):
    import mrpn
    from mrpn.data.media import MediaError

    bad = write_text(tmp_path / "notes.mp4")
    with pytest.raises((MediaError, ValueError)) as e:
        mrpn.predict(bad)
    assert "notes.mp4" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(AttributeError):
        mrpn.no_such_thing  # noqa: B018


@pytest.mark.realdata
def test_docs_example_runs(shared_data, tmp_path, monkeypatch):
    """The `mrpn.predict` example in docs/INFERENCE.md, run as written (first 8 lines) on the shared clip."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "INFERENCE.md").read_text()
    block = re.search(r"## One call.*?```python\n(.*?)```", doc, re.S).group(1)
    # outputs into tmp_path first: the data path itself may lie under /tmp (a CI clone)
    code = "\n".join(block.splitlines()[:10]).replace("/tmp/", str(tmp_path) + "/")
    code = code.replace("../shared/data", str(shared_data))
    pytest.importorskip("pandas")
    ns: dict = {}
    exec(compile(code, "INFERENCE.md", "exec"), ns)  # noqa: S102
    assert ns["r"].label in ns["r"].classes and (tmp_path / "clip.png").is_file() and len(ns["df"]) > 0
