"""Model files are untrusted data (issue 10, fault 4): metadata schema, size limits before any
allocation, names and shapes against the declared architecture, pickles refused with the safe way."""
from __future__ import annotations

import io
import json
import time

import pytest
import torch
from media_factory import write_video
from safetensors.torch import save_file

from mrpn.cli import main
from mrpn.inference.model_check import (
    ModelFileError,
    load_safetensors_checked,
    read_header,
)
from mrpn.inference.model_io import default_model_path, load_for_inference
from mrpn.training.checkpoint import CheckpointError


@pytest.fixture(scope="module")
def shipped():
    from safetensors import safe_open

    with safe_open(str(default_model_path()), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())  # noqa: SIM118


def _variant(tmp_path, shipped, name="m.safetensors", config=None, classes=None, drop=(), meta=None):
    sd, m = shipped
    m = dict(m)
    cfg = json.loads(m["config"])
    for k, v in (config or {}).items():
        sec, key = k.split(".")
        cfg[sec][key] = v
    m["config"] = json.dumps(cfg)
    if classes is not None:
        m["classes"] = json.dumps(classes)
    m.update(meta or {})
    for k in drop:
        m.pop(k)
    p = tmp_path / name
    save_file(sd, str(p), metadata=m)
    return p


def _refused(p, match):
    with pytest.raises(ModelFileError, match=match) as e:
        load_for_inference(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and "weights_only" not in msg
    return msg


def test_declared_size_is_checked_before_anything_is_built(tmp_path, shipped):
    t0 = time.perf_counter()
    _refused(_variant(tmp_path, shipped, config={"model.video_width": 4096}), r"video_width=4096.* outside")
    # within the limits but not what the tensors hold: found on the meta device, nothing allocated
    _refused(_variant(tmp_path, shipped, config={"model.video_width": 200}), "does not fit the declared model")
    _refused(_variant(tmp_path, shipped, config={"model.agg_hidden": -3}), "agg_hidden")
    assert time.perf_counter() - t0 < 10


def test_missing_or_malformed_metadata_is_one_line(tmp_path, shipped):
    _refused(_variant(tmp_path, shipped, drop=("config",)), "no 'config' entry")
    _refused(_variant(tmp_path, shipped, meta={"config": "{not json"}), "not valid JSON")
    _refused(_variant(tmp_path, shipped, meta={"config": "[1, 2]"}), "not a mapping")
    _refused(_variant(tmp_path, shipped, meta={"config": json.dumps({"model": {"kind": "n2", "bogus": 1}})}),
             "unknown config key")
    _refused(_variant(tmp_path, shipped, meta={"format": "something-else"}), "not an mrpn model")


def test_class_list_is_checked(tmp_path, shipped):
    _refused(_variant(tmp_path, shipped, classes=["a", "b", "c"]), "config says 7 classes, the class list has 3")
    evil = ["\x1b[31mred\x1b[0m", "b", "c", "d", "e", "f", "g"]
    msg = _refused(_variant(tmp_path, shipped, classes=evil), "printable")
    assert "\x1b" not in msg
    _refused(_variant(tmp_path, shipped, classes=["a"] * 7), "repeat")
    _refused(_variant(tmp_path, shipped, classes=[1, 2, 3, 4, 5, 6, 7]), "printable")


def test_truncated_and_inconsistent_files(tmp_path, shipped):
    good = default_model_path().read_bytes()
    for n in (0, 5, 100, len(good) // 2):
        p = tmp_path / f"t{n}.safetensors"
        p.write_bytes(good[:n])
        with pytest.raises(CheckpointError) as e:
            load_for_inference(p)
        assert "\n" not in str(e.value)
    # a header whose offsets point past the end of the file
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}).encode()
    p = tmp_path / "big.safetensors"
    p.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 16)
    with pytest.raises(ModelFileError, match="outside the file"):
        read_header(p)


def test_pickles_are_refused_with_the_safe_way_out(tmp_path):
    import argparse

    buf = io.BytesIO()   # any object beyond tensors and containers: here an argparse.Namespace
    torch.save({"model": {"w": torch.zeros(1)}, "config": {}, "x": argparse.Namespace(a=1)}, buf)
    p = tmp_path / "evil.pt"
    p.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError) as e:
        load_for_inference(p)
    msg = str(e.value)
    assert "refused" in msg and "safetensors" in msg and "weights_only" not in msg and "\n" not in msg


def test_pickle_as_pretrained_extractor_is_a_clean_error(tmp_path):
    from mrpn.config import load_config
    from mrpn.models.build import build_model
    from mrpn.training.run import load_pretrained_extractors

    p = tmp_path / "extractor.safetensors"
    buf = io.BytesIO()
    torch.save({"conv1.weight": torch.zeros(1)}, buf)
    p.write_bytes(buf.getvalue())                       # a pickle under a safetensors name
    cfg = load_config("cpu", overrides=["model.kind=vm", "model.video_width=4", f"train.pretrained_v={p}"])
    with pytest.raises(ModelFileError, match="not a safetensors file") as e:
        load_pretrained_extractors(build_model(cfg.model), cfg)
    assert "\n" not in str(e.value)


def test_extractor_names_and_shapes_are_checked_before_reading(tmp_path):
    p = tmp_path / "e.safetensors"
    save_file({"conv1.weight": torch.zeros(4, 1, 7, 7), "junk": torch.zeros(2)}, str(p))
    with pytest.raises(ModelFileError, match="unexpected 'junk'"):
        load_safetensors_checked(p, {"conv1.weight": (4, 1, 7, 7)})
    with pytest.raises(ModelFileError, match=r"shape \[4, 1, 7, 7\], needs \[8, 1, 7, 7\]"):
        load_safetensors_checked(p, {"conv1.weight": (8, 1, 7, 7), "junk": (2,)})


def test_cli_predict_with_a_bad_model_is_one_line(tmp_path, shipped, capsys):
    v = write_video(tmp_path / "v.mp4", n_frames=5, fps=10, size=(64, 48))
    p = _variant(tmp_path, shipped, classes=["only", "two"])
    assert main(["predict", str(v), "--model", str(p)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and str(p) in err
