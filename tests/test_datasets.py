"""Dataset adapters on generated layouts in tmp_path, plus real-data checks on ../shared/data."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mrpn.data.datasets import (
    CLASSES, DatasetError, load_fer2013_arrays, parse_ravdess_name, scan, scan_cremad, scan_fer2013,
    scan_manifest, scan_ravdess,
)


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _ravdess_name(mod=1, vc=1, emo=1, inten=1, stmt=1, rep=1, actor=1, ext="mp4") -> str:
    return f"{mod:02d}-{vc:02d}-{emo:02d}-{inten:02d}-{stmt:02d}-{rep:02d}-{actor:02d}.{ext}"


# ----------------------------------------------------------------------------- RAVDESS

def test_parse_ravdess_name():
    f = parse_ravdess_name("03-01-05-02-01-02-13.wav")
    assert f == {"modality": 3, "vocal_channel": 1, "emotion": 5, "intensity": 2, "statement": 1,
                 "repetition": 2, "actor": 13}
    for bad in ("03-01-05-02-01-02.wav", "03-01-09-01-01-01-01.wav", "03-01-01-02-01-01-01.wav", "x.wav"):
        with pytest.raises(ValueError):
            parse_ravdess_name(bad)


def test_ravdess_audio_nested_layout(tmp_path):
    root = tmp_path / "downloads" / "ravdess"
    for actor in (1, 2):
        for emo in (1, 3, 8):
            _touch(root / "deep" / "er" / f"Actor_{actor:02d}" / _ravdess_name(3, emo=emo, actor=actor, ext="wav"))
    _touch(root / "deep" / "Actor_01" / _ravdess_name(3, vc=2, emo=3, ext="wav"))      # song: left out
    _touch(root / "notes.txt")                                                         # ignored
    s = scan("ravdess", root, modality="audio")
    assert s.classes == CLASSES["ravdess"] and s.problems == []
    assert [c.id for c in s.clips] == sorted(c.id for c in s.clips) and len(s.clips) == 6
    c = s.clips[0]
    assert c.id == "01-01-01-01-01-01" and c.label == 0 and c.label_name == "neutral"
    assert c.actor == "01" and c.gender == "male" and c.video is None and c.audio.endswith(".wav")
    assert c.extra == {"intensity": 1, "statement": 1, "repetition": 1, "vocal_channel": 1, "modality": 3}
    assert {c.gender for c in s.clips if c.actor == "02"} == {"female"}
    assert s.clips[-1].label == 7 and s.clips[-1].label_name == "surprised"
    song = scan_ravdess(root, modality="audio", include_song=True)
    assert len(song.clips) == 7 and "02-03-01-01-01-01" in {c.id for c in song.clips}


def test_ravdess_audio_flat_layout_dedupes_formats(tmp_path):
    _touch(tmp_path / _ravdess_name(3, emo=2, actor=4, ext="wav"))
    _touch(tmp_path / "b16k" / _ravdess_name(3, emo=2, actor=4, ext="flac"))
    _touch(tmp_path / _ravdess_name(3, emo=4, actor=4, ext="FLAC"))
    s = scan_ravdess(tmp_path, modality="audio")
    assert [c.id for c in s.clips] == ["01-02-01-01-01-04", "01-04-01-01-01-04"]
    # the same take as wav and flac: one clip, the first by sorted path ("03-…" < "b16k/…")
    assert s.clips[0].audio == str(tmp_path / _ravdess_name(3, emo=2, actor=4, ext="wav"))


def test_ravdess_av_pairs_video_only_with_audio(tmp_path):
    v = tmp_path / "video" / "Actor_01"
    a16, a48 = tmp_path / "audio16k" / "Actor_01", tmp_path / "audio48k" / "Actor_01"
    _touch(v / _ravdess_name(1, emo=1))                     # audio-video: used alone
    _touch(v / _ravdess_name(2, emo=1))                     # same take, video-only: not duplicated
    _touch(v / _ravdess_name(2, emo=2))                     # video-only + 03 wav and flac: wav wins
    _touch(a16 / _ravdess_name(3, emo=2, ext="flac"))
    _touch(a48 / _ravdess_name(3, emo=2, ext="wav"))
    _touch(v / _ravdess_name(2, emo=3))                     # video-only + flac only
    _touch(a16 / _ravdess_name(3, emo=3, ext="flac"))
    _touch(v / _ravdess_name(2, emo=4))                     # video-only, no audio: a Problem
    _touch(a16 / _ravdess_name(3, emo=5, ext="flac"))        # audio without video: not an av clip
    s = scan_ravdess(tmp_path)
    by_id = {c.id: c for c in s.clips}
    assert sorted(by_id) == ["01-01-01-01-01-01", "01-02-01-01-01-01", "01-03-01-01-01-01"]
    assert by_id["01-01-01-01-01-01"].video.endswith("01-01-01-01-01-01-01.mp4")
    assert by_id["01-01-01-01-01-01"].audio is None
    assert by_id["01-02-01-01-01-01"].video.endswith("02-01-02-01-01-01-01.mp4")
    assert by_id["01-02-01-01-01-01"].audio == str(a48 / _ravdess_name(3, emo=2, ext="wav"))
    assert by_id["01-03-01-01-01-01"].audio.endswith(".flac")
    assert len(s.problems) == 1 and "no matching audio 03-01-04-01-01-01-01" in s.problems[0].reason
    assert s.problems[0].path.endswith("02-01-04-01-01-01-01.mp4")


def test_ravdess_bad_files_become_problems(tmp_path):
    d = tmp_path / "Actor_01"
    _touch(d / _ravdess_name(3, ext="wav"))
    _touch(d / "03-01-01-01-01-01.wav")                     # six fields
    _touch(d / "03-01-09-01-01-01-01.wav")                  # emotion 09
    _touch(d / _ravdess_name(3, emo=2, ext="mp4"))          # audio-only code on a video file
    _touch(d / _ravdess_name(3, emo=3, ext="wav"), b"")     # zero bytes
    _touch(d / "._03-01-01-01-01-01-01.wav")                # macOS resource fork: hidden, ignored
    s = scan_ravdess(tmp_path, modality="audio")
    assert len(s.clips) == 1
    reasons = {Path(p.path).name: p.reason for p in s.problems}
    assert len(reasons) == 4
    assert "does not follow RAVDESS MM-VV-EE-II-SS-RR-AA" in reasons["03-01-01-01-01-01.wav"]
    assert "emotion" in reasons["03-01-09-01-01-01-01.wav"]
    assert "audio-only" in reasons[_ravdess_name(3, emo=2, ext="mp4")]
    assert reasons[_ravdess_name(3, emo=3, ext="wav")] == "zero-byte file"


def test_ravdess_missing_and_empty_roots(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=str(missing)):
        scan_ravdess(missing)
    with pytest.raises(DatasetError, match=r"no RAVDESS files found under .*Actor_NN/MM-VV-EE-II-SS-RR-AA"):
        scan("ravdess", tmp_path)
    _touch(tmp_path / "Actor_01" / _ravdess_name(3, ext="wav"))
    with pytest.raises(DatasetError, match="no usable RAVDESS videos"):
        scan_ravdess(tmp_path, modality="av")
    with pytest.raises(DatasetError):
        scan_ravdess(tmp_path, modality="video")
    with pytest.raises(DatasetError, match="unknown dataset"):
        scan("iemocap", tmp_path)
    assert issubclass(DatasetError, ValueError)


# ----------------------------------------------------------------------------- CREMA-D

def _cremad_tree(root: Path, names: list[str], video: bool = True, demographics: bool = True) -> None:
    for n in names:
        _touch(root / "AudioWAV" / f"{n}.wav")
        if video:
            _touch(root / "VideoFlash" / f"{n}.flv")
    if demographics:
        (root / "VideoDemographics.csv").write_text(
            '"ActorID","Age","Sex","Race","Ethnicity"\n1001,51,"Male","Caucasian","Not Hispanic"\n'
            '1002,21,"Female","Caucasian","Not Hispanic"\n')


def test_cremad_av_and_audio(tmp_path):
    names = ["1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1002_TIE_NEU_XX", "1091_MTI_SAD_LO", "1002_ITS_FEA_MD",
             "1002_WSI_DIS_XX"]
    _cremad_tree(tmp_path, names)
    _touch(tmp_path / "AudioWAV" / "1003_DFA_ANG_XX.wav")             # no video
    _touch(tmp_path / "VideoFlash" / "1003_DFA_XYZ_XX.flv")          # unknown emotion
    _touch(tmp_path / "VideoFlash" / "1003_DFA_ANG_HI.flv", b"")     # zero bytes
    s = scan("crema-d", tmp_path)
    assert s.dataset == "cremad" and s.classes == CLASSES["cremad"]
    assert [c.id for c in s.clips] == sorted(names)
    c = s.clips[0]
    assert (c.id, c.label, c.label_name, c.actor, c.gender) == ("1001_DFA_ANG_XX", 3, "angry", "1001", "male")
    assert c.video.endswith("VideoFlash/1001_DFA_ANG_XX.flv") and c.audio.endswith("AudioWAV/1001_DFA_ANG_XX.wav")
    assert c.extra == {"sentence": "DFA", "level": "XX"}
    assert {c.label_name for c in s.clips} == set(CLASSES["cremad"])
    assert next(c for c in s.clips if c.actor == "1002").gender == "female"
    assert next(c for c in s.clips if c.actor == "1091").gender is None     # not in the CSV
    reasons = sorted(p.reason for p in s.problems)
    assert len(reasons) == 3 and "zero-byte file" in reasons
    assert any("no matching VideoFlash/1003_DFA_ANG_XX.flv" in r for r in reasons)
    assert any("emotion code XYZ" in r for r in reasons)
    a = scan_cremad(tmp_path, modality="audio")
    assert len(a.clips) == 7 and all(c.video is None and c.audio for c in a.clips)


def test_cremad_audio_only_download_and_errors(tmp_path):
    root = tmp_path / "CREMA-D"
    _cremad_tree(root / "inner", ["1001_DFA_ANG_XX"], video=False, demographics=False)
    s = scan_cremad(root, modality="audio")
    assert len(s.clips) == 1 and s.clips[0].gender is None
    with pytest.raises(DatasetError, match="modality='audio'"):
        scan_cremad(root)
    with pytest.raises(DatasetError, match="no CREMA-D files found"):
        scan_cremad(_touch(tmp_path / "empty" / "readme.txt").parent)
    with pytest.raises(DatasetError, match="does not exist"):
        scan_cremad(tmp_path / "missing")


# ----------------------------------------------------------------------------- FER2013

def _fer_images(n_per_class: int = 2) -> list[tuple[int, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(k, rng.integers(0, 256, (48, 48), dtype=np.uint8)) for k in range(7) for _ in range(n_per_class)]


def test_fer2013_image_folders(tmp_path):
    import cv2

    for split in ("train", "test"):
        for i, (k, img) in enumerate(_fer_images()):
            d = tmp_path / split / CLASSES["fer2013"][k]
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{split}_{i}.png"), img)                 # png: lossless, comparable
    cv2.imwrite(str(tmp_path / "train" / "happy" / "big.png"), np.zeros((96, 96), np.uint8))
    _touch(tmp_path / "train" / "happy" / "broken.jpg", b"not a jpeg")
    _touch(tmp_path / "train" / "sad" / "empty.jpg", b"")
    _touch(tmp_path / "train" / "contempt" / "x.jpg")
    s = scan("fer2013", tmp_path, split="train")
    assert len(s.clips) == 14 + 2 and s.clips[0].actor == "unknown"
    assert len(s.problems) == 2                                         # empty file, unknown class folder
    assert len(scan_fer2013(tmp_path, split="all").clips) == 30
    problems = []
    x, y = load_fer2013_arrays(tmp_path, "train", problems=problems)
    assert x.shape == (15, 48, 48) and x.dtype == np.uint8 and y.dtype == np.int64
    assert any("unreadable" in p.reason for p in problems)
    xt, yt = load_fer2013_arrays(tmp_path, "test")
    assert xt.shape == (14, 48, 48) and sorted(yt.tolist()) == sorted(k for k, _ in _fer_images())
    clips = scan_fer2013(tmp_path, split="test").clips
    first = cv2.imread(clips[0].video, cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(xt[0], first) and yt[0] == clips[0].label


def test_fer2013_kaggle_csv(tmp_path):
    rows = _fer_images(1)
    usages = ["Training", "Training", "PublicTest", "PrivateTest", "Training", "Training", "PrivateTest"]
    path = tmp_path / "fer2013.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for (k, img), u in zip(rows, usages):
            w.writerow([k, " ".join(map(str, img.ravel())), u])
        w.writerow([3, "1 2 3", "Training"])                            # too few pixels
        w.writerow([9, " ".join(["0"] * 2304), "Training"])              # bad label
    s = scan_fer2013(tmp_path, split="train")
    assert [c.id for c in s.clips] == ["fer2013-00000", "fer2013-00001", "fer2013-00004", "fer2013-00005"]
    assert s.clips[2].video == f"{path}#4" and s.clips[2].extra["usage"] == "Training"
    assert len(s.problems) == 2
    assert len(scan_fer2013(path, split="test").clips) == 3
    x, y = load_fer2013_arrays(path, "test")
    # Kaggle codes 2 (Fear), 3 (Happy), 6 (Neutral) -> alphabetical class indices fear=2, happy=3, neutral=4
    assert x.shape == (3, 48, 48) and y.tolist() == [2, 3, 4]
    assert [CLASSES["fer2013"][k] for k in y] == ["fear", "happy", "neutral"]
    assert np.array_equal(x[0], rows[2][1])
    xa, ya = load_fer2013_arrays(tmp_path, "all")
    assert len(xa) == 7 and np.array_equal(xa[6], rows[6][1])
    with pytest.raises(DatasetError, match="split"):
        scan_fer2013(tmp_path, split="val")
    with pytest.raises(DatasetError, match="no FER2013 files found"):
        scan_fer2013(_touch(tmp_path / "elsewhere" / "readme.txt").parent)


# ----------------------------------------------------------------------------- custom manifest

def test_manifest(tmp_path):
    media = tmp_path / "media"
    for n in ("a.mp4", "b.mp4", "b.wav", "c.wav"):
        _touch(media / n)
    _touch(tmp_path / "other" / "a.mp4")
    (tmp_path / "list.csv").write_text(
        "video,audio,label,speaker\n"
        "media/a.mp4,,joy,s1\n"
        "media/b.mp4,media/b.wav,anger,s2\n"
        f",{media / 'c.wav'},joy,s2\n"
        "other/a.mp4,,anger,s3\n"
        "media/missing.mp4,,joy,s1\n"
        ",,joy,s1\n")
    s = scan("custom", tmp_path / "list.csv")
    assert s.classes == ["anger", "joy"] and len(s.clips) == 4
    assert {c.actor for c in s.clips} == {"s1", "s2", "s3"}
    b = next(c for c in s.clips if c.id == "b")
    assert b.video == str(media / "b.mp4") and b.audio == str(media / "b.wav") and b.label == 0
    assert sum(c.id.startswith("a-") for c in s.clips) == 2                   # stems collide -> hashed
    assert len({c.id for c in s.clips}) == 4
    assert len(s.problems) == 2 and any("does not exist" in p.reason for p in s.problems)
    fixed = scan_manifest(tmp_path / "list.csv", classes=["joy"])
    assert fixed.classes == ["joy"] and len(fixed.clips) == 2 and len(fixed.problems) == 4
    (tmp_path / "bad.csv").write_text("file,emotion\nx,y\n")
    with pytest.raises(DatasetError, match="video,audio,label,speaker"):
        scan_manifest(tmp_path / "bad.csv")
    with pytest.raises(DatasetError, match="does not exist"):
        scan_manifest(tmp_path / "nope.csv")


# ----------------------------------------------------------------------------- real data

@pytest.mark.realdata
def test_real_ravdess_audio(shared_data):
    s = scan_ravdess(shared_data / "ravdess", modality="audio")
    assert len(s.clips) == 1440 and s.problems == []
    assert len(s.actors) == 24 and {c.label for c in s.clips} == set(range(8))
    counts = {a: sum(c.actor == a for c in s.clips) for a in s.actors}
    assert set(counts.values()) == {60}
    assert len({c.id for c in s.clips}) == 1440


@pytest.mark.realdata
def test_real_ravdess_av(shared_data):
    s = scan_ravdess(shared_data / "ravdess", modality="av")
    # 3 takes from 01-…mp4 and 3 different takes from 02-…mp4, each paired with its audio48k 03-…wav
    assert len(s.clips) == 6 and s.problems == []
    from_01 = [c for c in s.clips if c.audio is None]
    from_02 = [c for c in s.clips if c.audio is not None]
    assert len(from_01) == 3 and all(Path(c.video).name.startswith("01-") for c in from_01)
    assert len(from_02) == 3 and all(Path(c.video).name.startswith("02-") for c in from_02)
    assert all(Path(c.audio).parent.parent.name == "audio48k" and c.audio.endswith(".wav") for c in from_02)
    assert all(Path(c.audio).name[3:] == Path(c.video).name[3:-4] + ".wav" for c in from_02)
    assert {c.actor for c in s.clips} == {"01"}


@pytest.mark.realdata
def test_real_fer2013(shared_data):
    train = scan_fer2013(shared_data / "fer2013", split="train")
    test = scan_fer2013(shared_data / "fer2013", split="test")
    assert (len(train.clips), len(test.clips)) == (28709, 7178)
    assert train.problems == [] and test.problems == []
    x, y = load_fer2013_arrays(shared_data / "fer2013", "test")
    assert x.shape == (7178, 48, 48) and x.dtype == np.uint8
    assert np.bincount(y, minlength=7).tolist() == [958, 111, 1024, 1774, 1233, 1247, 831]
