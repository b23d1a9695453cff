"""The paired-by-class benchmark on the real data: RAVDESS audio + FER2013 faces of the same emotion."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def audio_cache(shared_data, tmp_path_factory):
    from mrpn.data.datasets import scan
    from mrpn.data.prepare import PrepareConfig, run_prepare

    sc = scan("ravdess", shared_data / "ravdess", modality="audio")
    sc = replace(sc, clips=[c for c in sc.clips if c.actor in ("01", "02", "03", "04")])
    out = tmp_path_factory.mktemp("paired") / "cache"
    res = run_prepare(sc, out, PrepareConfig(), workers=1, progress=False)
    assert res.ok == 240
    return out


def test_paired_source_pairs_by_class_and_split(audio_cache, shared_data, tmp_path, monkeypatch):
    from mrpn.data.datasets import load_fer2013_arrays
    from mrpn.data.paired import PAIRED_CLASSES, RAVDESS_TO_FER, PairedSource

    monkeypatch.setenv("MRPN_CACHE", str(tmp_path / "c"))
    src = PairedSource(str(audio_cache), str(shared_data / "fer2013"), val_actors={"01", "02"}, n_faces=4)
    clips = src.clips()
    assert len(clips) == 240 - 4 * 8          # calm has no FER2013 counterpart
    assert src.classes == PAIRED_CLASSES
    _, te_lab = load_fer2013_arrays(shared_data / "fer2013", "test")
    fer = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    for i in (0, 50, 150):
        split, ids = src.face_ids(i)
        assert split == ("test" if clips[i].actor in ("01", "02") else "train")
        ex = src.load(i)
        assert ex.faces.shape == (4, 48, 48, 1) and ex.audio is not None
        if split == "test":
            assert all(fer[te_lab[j]] == RAVDESS_TO_FER[clips[i].label_name] for j in ids)


def test_fuzzy_faces_change_only_training_clips_and_keep_their_share(audio_cache, shared_data, tmp_path,
                                                                    monkeypatch):
    """data.paired_fuzzy: a share of the training actors' clips shows neutral or another emotion (half
    each), the test actors' faces never; face_condition replaces every clip's faces for an evaluation."""
    from mrpn.data.datasets import load_fer2013_arrays
    from mrpn.data.paired import RAVDESS_TO_FER, PairedSource

    monkeypatch.setenv("MRPN_CACHE", str(tmp_path / "c"))
    fer_root = str(shared_data / "fer2013")
    clean = PairedSource(str(audio_cache), fer_root, val_actors={"01", "02"})
    fuzzy = PairedSource(str(audio_cache), fer_root, val_actors={"01", "02"}, fuzzy=0.4)
    clips = fuzzy.clips()
    train = [i for i, c in enumerate(clips) if c.actor not in ("01", "02")]
    test = [i for i, c in enumerate(clips) if c.actor in ("01", "02")]
    changed = [i for i in train if fuzzy.face_class(i) != clips[i].label_name]
    assert 0.28 < len(changed) / len(train) < 0.52                     # 0.4 of 104 clips, binomial spread
    neutral = sum(fuzzy.face_class(i) == "neutral" for i in changed)
    assert 0.25 < neutral / len(changed) < 0.75                         # missing and fuzzy about half each
    assert all(fuzzy.face_class(i) == clips[i].label_name for i in test)
    assert all(clean.face_class(i) == clips[i].label_name for i in train + test)
    for i in test + train[:5]:                                          # unchanged clips: the same faces
        if fuzzy.face_class(i) == clips[i].label_name:
            assert (fuzzy.face_ids(i)[1] == clean.face_ids(i)[1]).all()
    assert all(fuzzy.load(i).clip.label == clips[i].label for i in changed[:8])  # the label stays the voice's
    _, tr_lab = load_fer2013_arrays(shared_data / "fer2013", "train")
    fer = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    i = changed[0]
    assert all(fer[tr_lab[j]] == RAVDESS_TO_FER[fuzzy.face_class(i)] for j in fuzzy.face_ids(i)[1])
    fuzzy.keep_clean({"03"})  # the inner-validation pair chooses on faces as paired
    assert all(fuzzy.face_class(i) == clips[i].label_name for i in train if clips[i].actor == "03")
    assert any(fuzzy.face_class(i) != clips[i].label_name for i in train if clips[i].actor == "04")
    clean.face_condition = "neutral"
    assert all(clean.face_class(i) == "neutral" for i in train + test)
    clean.face_condition = "other"
    assert all(clean.face_class(i) != clips[i].label_name for i in train + test)
    with pytest.raises(ValueError, match="share"):
        PairedSource(str(audio_cache), fer_root, val_actors={"01"}, fuzzy=1.5)


def test_held_faces_are_one_face_over_the_clip_for_a_share_of_training_clips(audio_cache, shared_data, tmp_path,
                                                                            monkeypatch):
    """data.paired_video: a share of the training actors' clips shows one face held at 25 fps for the clip's
    length (what a real video of one person gives the face branch), the test and inner actors' never; the
    loader then samples it at data.video_fps and data.max_frames like a real video's frames."""
    import numpy as np

    from mrpn.config import load_config
    from mrpn.data.loader import EmotionDataset
    from mrpn.data.paired import PairedSource

    monkeypatch.setenv("MRPN_CACHE", str(tmp_path / "c"))
    fer_root = str(shared_data / "fer2013")
    clean = PairedSource(str(audio_cache), fer_root, val_actors={"01", "02"})
    held = PairedSource(str(audio_cache), fer_root, val_actors={"01", "02"}, video=0.5)
    held.keep_clean({"03"})
    clips = held.clips()
    train = [i for i, c in enumerate(clips) if c.actor == "04"]
    kept = [i for i, c in enumerate(clips) if c.actor in ("01", "02", "03")]
    video = [i for i in train if held.layout(i) == "video"]
    assert 0.3 < len(video) / len(train) < 0.7                 # 0.5 of 52 clips, binomial spread
    assert all(held.layout(i) == "paired" for i in kept)
    assert all(clean.layout(i) == "paired" for i in train)
    i = video[0]
    ex, ref = held.load(i), clean.load(i)
    seconds = len(ex.audio) / 16000
    assert abs(len(ex.faces) - seconds * 25) <= 1 and abs(len(ex.faces) / ex.fps - seconds) < 1e-6
    assert (ex.faces == ref.faces[:1]).all()                   # the clip's first face, repeated
    assert ex.clip.label == ref.clip.label and (ex.audio == ref.audio).all()
    p = held.load(train[[held.layout(j) for j in train].index("paired")])
    assert p.faces.shape == (4, 48, 48, 1)
    cfg = load_config("cpu").data
    x = EmotionDataset(held, [i], cfg, ("v",), train=False)[0]["v"]
    assert x.shape[0] == min(cfg.max_frames, int(np.ceil(seconds * cfg.video_fps)))   # sampled as a video
    clean.face_layout = "video"                                # evaluation: every clip held
    assert all(clean.layout(j) == "video" for j in kept + train)
    clean.face_layout = "sideways"
    with pytest.raises(ValueError, match="face_layout"):
        clean.layout(0)
    with pytest.raises(ValueError, match="share"):
        PairedSource(str(audio_cache), fer_root, val_actors={"01"}, video=-0.1)


def test_paired_n2_trains_one_fold(audio_cache, shared_data, tmp_path, monkeypatch):
    from mrpn.config import load_config
    from mrpn.training.run import run_fold

    monkeypatch.setenv("MRPN_CACHE", str(tmp_path / "c"))
    cfg = load_config("cpu", overrides=[
        "model.kind=n2", "data.dataset=paired", f"data.cache={audio_cache}", f"data.fer={shared_data / 'fer2013'}",
        "data.spec_size=32x32", "model.video_width=4", "model.audio_width=4", "model.agg_hidden=8",
        "model.fusion_hidden=8", "train.epochs=1", "data.workers=0", f"out={tmp_path}"])
    m = run_fold(cfg, 1, tmp_path / "fold_01", progress=False, log=lambda *a: None)
    assert m["n_val"] == 2 * 52 and m["dataset"] == "paired" and m["protocol"] == "ravdess_paper12"
    assert set(m["modalities"]) == {"v", "a"}
    assert json.loads((tmp_path / "fold_01" / "metrics.json").read_text())["fold"] == "A1,2"
    # tools/paired_face_conditions.py scores the same clips as the run with faces as paired, then changes them
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("pfc", Path(__file__).parents[1] / "tools" / "paired_face_conditions.py")
    pfc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pfc)
    r = pfc.face_conditions(str(tmp_path / "fold_01" / "best.pt"), str(audio_cache), str(shared_data / "fer2013"),
                            1, "test")
    assert r["actor_ids"] == ["01", "02"] and r["label"]["fused"]["n"] == m["n_val"]
    assert r["label"]["fused"]["accuracy"] == pytest.approx(m["accuracy"], abs=1e-4)
    assert r["label"]["face_head"]["accuracy"] == pytest.approx(m["modalities"]["v"]["accuracy"], abs=1e-4)
    assert r["no_face"]["audio_head"]["accuracy"] == pytest.approx(m["modalities"]["a"]["accuracy"], abs=1e-4)
    assert r["neutral"]["fused"]["n"] == r["other"]["fused"]["n"] == m["n_val"]
