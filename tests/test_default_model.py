"""The default model shipped inside the package: loads without executing code, predicts, exports."""
from __future__ import annotations

import json

import pytest

from mrpn.inference.model_io import default_model_path, load_for_inference


def test_shipped_model_is_present_small_and_documented():
    p = default_model_path()
    assert p.is_file(), f"the default model must ship with the package at {p}"
    assert p.stat().st_size < 5_000_000
    card = p.parent / "MODEL_CARD.md"
    text = card.read_text()
    assert "non-commercial" in text.lower() and "paired" in text.lower()


def test_shipped_model_loads_and_has_side_heads():
    model, cfg, classes = load_for_inference(None)
    assert cfg.model.kind == "n2" and len(classes) == 7
    assert hasattr(model, "forward_modality")


@pytest.mark.slow  # builds the generated corpus (~14 s)
def test_predict_without_model_argument_uses_the_shipped_model(corpus, capsys, tmp_path):
    from mrpn.cli import main

    _, sc = corpus
    assert main(["predict", sc.clips[0].video, "--json", str(tmp_path / "p.json")]) == 0
    r = json.loads((tmp_path / "p.json").read_text())
    assert r["modalities_used"] == ["v", "a"] and len(r["probabilities"]) == 7


@pytest.mark.realdata
def test_shipped_model_on_real_ravdess_videos(shared_data):
    from mrpn.inference.predictor import Predictor

    p = Predictor()
    for v in sorted((shared_data / "ravdess" / "video" / "Actor_01").glob("0*.mp4")):
        r = p.predict_file(str(v)).to_dict()
        # 02-... files are video-only: their audio track is silent, so the face head predicts alone
        assert r["modalities_used"] == (["v"] if v.name.startswith("02-") else ["v", "a"]), (v.name, r["notes"])
        assert r["label"] in r["classes"]


def test_shipped_model_exports_to_onnx_and_matches_pytorch(tmp_path):
    """`mrpn export` with no --model: every modality set of the shipped model, checked by onnxruntime
    against PyTorch on shapes unlike the export's (its FaceCNN F_v once failed to export)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from mrpn.inference.export import export_onnx

    meta = export_onnx(None, str(tmp_path), log=lambda *_: None)
    assert set(meta["graphs"]) == {"va", "v", "a"}
    for g in meta["graphs"].values():
        assert (tmp_path / g["file"]).is_file() and g["max_abs_diff_probabilities"] < 1e-4
