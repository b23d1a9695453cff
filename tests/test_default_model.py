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


def test_shipped_face_head_reads_a_held_face_as_a_face_seen_once():
    """The shipped model's A_v is Transformer(avg) because an LSTM read one face held still (a video of
    one person) unlike the same face seen once (docs/MODEL_CARD.md): on these 64 smooth random 48x48
    images the LSTM model of commit 8f07ee7 is 0.50 apart (mean total variation), the shipped one 0.03."""
    import torch

    model, _, _ = load_for_inference(None, "cpu")
    g = torch.Generator().manual_seed(0)
    faces = torch.nn.functional.interpolate(torch.rand(64, 1, 6, 6, generator=g), size=(48, 48), mode="bilinear")
    with torch.no_grad():
        once = model.forward_modality({"v": faces[:, None], "v_len": torch.ones(64, dtype=torch.long)}, "v")
        held = model.forward_modality({"v": faces[:, None].repeat(1, 16, 1, 1, 1),
                                       "v_len": torch.full((64,), 16)}, "v")
    tv = 0.5 * (once.softmax(-1) - held.softmax(-1)).abs().sum(1)
    assert tv.mean() < 0.15, f"held and once differ by {tv.mean():.2f} (total variation)"
