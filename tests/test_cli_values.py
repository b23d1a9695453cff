"""Smaller faults of issue 10 (item 6): CLI values checked at parse time with one line, a failed
start leaves no run folder, a cache of another dataset is refused, --audio must exist, an
audio-only .mp4 is predicted from audio, a face image suggests --detector none."""
from __future__ import annotations

import pytest
from media_factory import _encode_audio, blob_frame, tone, write_image, write_video

from mrpn.cli import main


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.parametrize("argv, needle", [
    (["cv", "--folds", "abc"], "--folds"),
    (["cv", "--folds", "5-3"], "a <= b"),
    (["cv", "--folds", "0"], "count from 1"),
    (["cv", "--lr", "-1"], "--lr"),
    (["train", "--lr", "nan"], "finite"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--fold", "-2"], "--fold"),
    (["prepare", "custom", "x.csv", "--out", "o", "--face-size", "4"], "--face-size"),
    (["predict", "v.mp4", "--hop", "0"], "--hop"),
])
def test_wrong_values_are_one_line_at_parse_time(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    _one_line_error(capsys, needle)
    assert not any(tmp_path.iterdir())          # nothing was created


def test_bad_config_value_leaves_no_run_folder(tmp_path, capsys):
    argv = ["train", "--out", str(tmp_path / "runs"), "--name", "r", "--cache", str(tmp_path / "nope")]
    assert main(argv + ["--set", "data.face_size=-1"]) == 2
    _one_line_error(capsys, "data.face_size=-1")
    assert not (tmp_path / "runs").exists()
    # a start that fails after the run folder was made (no cache) removes what it made ...
    assert main(argv) == 2
    _one_line_error(capsys, "cache folder not found")
    assert not (tmp_path / "runs").exists()
    # ... so the same --name still works with other settings
    assert main(argv + ["--set", "data.face_size=64"]) == 2
    assert "other settings" not in capsys.readouterr().err


def test_dataset_that_does_not_match_the_cache_is_refused(tmp_path, capsys):
    from mrpn.data.datasets import scan
    from mrpn.data.prepare import PrepareConfig, run_prepare

    for i in range(2):
        write_video(tmp_path / f"v{i}.mp4", n_frames=5, fps=10, size=(48, 48))
    (tmp_path / "m.csv").write_text("id,video,audio,label,speaker\nc0,v0.mp4,,happy,s0\nc1,v1.mp4,,sad,s1\n")
    run_prepare(scan("custom", tmp_path / "m.csv"), tmp_path / "c", PrepareConfig(detector="none", face_size=16),
                progress=False, log=lambda *a: None)
    assert main(["cv", "--dataset", "ravdess", "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "runs"),
                 "--name", "x"]) == 2
    _one_line_error(capsys, "holds 'custom' clips", "--dataset custom")
    assert not (tmp_path / "runs" / "x").exists()


def test_missing_audio_file_is_an_error(tmp_path, capsys):
    v = write_video(tmp_path / "v.mp4", n_frames=5, fps=10, size=(48, 48))
    assert main(["predict", str(v), "--audio", str(tmp_path / "missing.wav")]) == 2
    _one_line_error(capsys, "missing.wav", "file not found")


def _audio_only_mp4(path):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=48000, layout="mono")
        _encode_audio(c, s, tone(1.5, 48000, 1), 48000, 1)
    return path


def test_audio_only_mp4_gets_an_audio_only_prediction(tmp_path, capsys):
    import json

    p = _audio_only_mp4(tmp_path / "voice.mp4")
    assert main(["predict", str(p), "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["modalities_used"] == ["a"] and any("no video stream" in n for n in r["notes"])
    capsys.readouterr()


def test_face_image_without_a_found_face_suggests_detector_none(tmp_path, capsys):
    # a small image (48x48, FER2013) is taken as a face crop; a larger one where the detector finds
    # no face gets the hint that it may be a crop already
    small = write_image(tmp_path / "face48.png", size=48, frame_fn=blob_frame)
    assert main(["predict", str(small)]) == 0
    capsys.readouterr()
    img = write_image(tmp_path / "face.png", size=200, frame_fn=blob_frame)
    assert main(["predict", str(img)]) == 1
    err = capsys.readouterr().err
    assert "--detector none" in err and "Traceback" not in err
    assert main(["predict", str(img), "--detector", "none"]) == 0
    assert "whole file:" in capsys.readouterr().out
