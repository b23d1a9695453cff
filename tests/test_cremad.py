"""CREMA-D end to end on files generated in its exact layout (the real media is not available here):
VideoFlash/AAAA_SSS_EEE_LL.flv + AudioWAV/AAAA_SSS_EEE_LL.wav + VideoDemographics.csv."""
from __future__ import annotations

import json

from media_factory import face_like_frame, write_audio, write_video

from mrpn.data.datasets import CLASSES, scan
from mrpn.data.folds import load_protocol
from mrpn.data.prepare import PrepareConfig, run_prepare


def test_cremad_layout_scans_prepares_and_splits(tmp_path):
    root = tmp_path / "CREMA-D"
    (root / "VideoFlash").mkdir(parents=True)
    (root / "AudioWAV").mkdir()
    names = ["1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1002_TIE_SAD_LO", "1091_MTI_NEU_XX"]
    for n in names:
        write_video(root / "VideoFlash" / f"{n}.flv", n_frames=30, fps=30, size=(160, 120), audio=None,
                    frame_fn=face_like_frame)
        write_audio(root / "AudioWAV" / f"{n}.wav", seconds=1.2, rate=16000, channels=1)
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
        "1002,21,Female,Caucasian,Not Hispanic\n1091,29,Female,Asian,Not Hispanic\n")
    sc = scan("cremad", root)
    assert [c.label_name for c in sc.clips] == ["angry", "happy", "sad", "neutral"]
    assert sc.classes == CLASSES["cremad"] and {c.gender for c in sc.clips} == {"male", "female"}
    res = run_prepare(sc, tmp_path / "cache", PrepareConfig(face_size=32), workers=1, progress=False)
    assert res.ok == 4
    summary = json.loads((tmp_path / "cache" / "summary.json").read_text())
    assert summary["counts"]["ok"] == 4 and summary["counts"]["no_face"] == 0 and summary["counts"]["no_audio"] == 0
    proto = load_protocol("cremad_paper")
    in_val = [f.name for f in proto.folds if "1001" in f.val_actors]
    assert len(in_val) == 1                          # every actor is validated exactly once
