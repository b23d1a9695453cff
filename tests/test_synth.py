"""`mrpn synth`: real mp4 files, manifest, Haar-detectable faces, emotion cues, noise, determinism."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from mrpn import synth
from mrpn.synth import EMOTION_EXPRESSIONS, random_face_params, render_face
from mrpn.synth import random_voice_params, synth_voice

# slow: > 10 s on this project's 2-core machine (`pytest -m "not slow"` skips them while working)
pytestmark = pytest.mark.slow

CLASSES = ["neutral", "happy", "sad", "angry"]
FACE_NOISE = 0.25


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    manifest = synth.generate_corpus(out, n_actors=2, clips_per_class=1, classes=CLASSES, size=128, fps=25,
                                     face_noise=FACE_NOISE, voice_noise=0.0, seed=7, workers=1, progress=False)
    assert manifest == out / "manifest.csv"
    return out


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def _decode(path: Path) -> tuple[list[np.ndarray], np.ndarray, int, dict]:
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        meta = {"vcodec": v.codec_context.name, "acodec": a.codec_context.name, "w": v.codec_context.width,
                "h": v.codec_context.height, "fps": float(v.average_rate), "duration": c.duration / 1e6}
        frames, audio = [], []
        for fr in c.decode(v, a):
            if isinstance(fr, av.VideoFrame):
                frames.append(fr.to_ndarray(format="rgb24"))
            else:
                audio.append(fr.to_ndarray().reshape(-1))
        return frames, np.concatenate(audio), a.codec_context.sample_rate, meta


def test_manifest_and_info(corpus: Path) -> None:
    text = (corpus / "manifest.csv").read_text()
    assert text.splitlines()[0] == "video,audio,label,speaker"
    rows = _rows(corpus)
    assert len(rows) == 2 * len(CLASSES)
    info = json.loads((corpus / "synth.json").read_text())
    assert info["complete"] and info["classes"] == CLASSES and info["config"]["seed"] == 7
    by_video = {c["video"]: c for c in info["clips"]}
    for r in rows:
        assert r["audio"] == "" and (corpus / r["video"]).is_file()
        actor, label = Path(r["video"]).parent.name, Path(r["video"]).stem.split("-")[1]
        assert r["label"] == label and r["speaker"] == actor and r["label"] in CLASSES
        c = by_video[r["video"]]
        assert c["label"] == r["label"] and c["speaker"] == r["speaker"]
        assert c["voice_emotion"] == r["label"]                     # voice_noise = 0
    genders = {a["id"]: a["gender"] for a in info["actors"]}
    assert genders == {"01": "male", "02": "female"}
    n_face = sum(c["face_emotion"] != c["label"] for c in info["clips"])
    assert n_face == round(FACE_NOISE * len(rows))


def test_files_are_real_mp4_with_both_streams(corpus: Path) -> None:
    info = {c["video"]: c for c in json.loads((corpus / "synth.json").read_text())["clips"]}
    for r in _rows(corpus)[:3]:
        frames, audio, sr, meta = _decode(corpus / r["video"])
        c = info[r["video"]]
        assert meta["vcodec"] in ("h264", "mpeg4") and meta["acodec"] == "aac"
        assert (meta["w"], meta["h"]) == (128, 128) and abs(meta["fps"] - 25) < 1e-6
        assert 2.0 - 1e-6 <= c["duration_s"] <= 3.5 + 1e-6
        assert len(frames) == c["n_frames"] and frames[0].shape == (128, 128, 3)
        assert sr == synth.DEFAULT_SAMPLE_RATE
        assert abs(len(audio) / sr - c["duration_s"]) < 0.15          # AAC priming adds a few ms
        assert np.sqrt(np.mean(audio ** 2)) > 1e-3                    # not silent
        assert abs(meta["duration"] - c["duration_s"]) < 0.15


def test_haar_detects_rendered_faces(corpus: Path) -> None:
    casc = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found = total = 0
    for r in _rows(corpus):
        frames, _, _, _ = _decode(corpus / r["video"])
        for fr in frames[::3]:
            g = cv2.cvtColor(fr, cv2.COLOR_RGB2GRAY)
            # the settings of mrpn prepare's default detector (scale 1.15, 5 neighbours, face >= 0.2 x side)
            faces = casc.detectMultiScale(g, scaleFactor=1.15, minNeighbors=5, minSize=(26, 26))
            found += len(faces) > 0
            total += 1
    assert found / total >= 0.95, f"Haar found a face in {found}/{total} frames"


def test_resume_skips_finished_clips_and_rejects_other_settings(corpus: Path) -> None:
    rows = _rows(corpus)
    keep, redo = corpus / rows[0]["video"], corpus / rows[1]["video"]
    mtime = keep.stat().st_mtime_ns
    redo.unlink()
    synth.generate_corpus(corpus, n_actors=2, clips_per_class=1, classes=CLASSES, face_noise=FACE_NOISE, seed=7,
                          progress=False)
    assert keep.stat().st_mtime_ns == mtime and redo.is_file()
    assert not list(corpus.rglob("*.tmp"))
    with pytest.raises(ValueError, match="other settings"):
        synth.generate_corpus(corpus, n_actors=2, clips_per_class=1, classes=CLASSES, seed=8, progress=False)


def test_noise_fractions_exact_and_plausible() -> None:
    classes = ["happy", "sad", "angry", "fearful"]            # neutral not a class: still a "missing" option
    _, plans = synth.plan_corpus(n_actors=4, clips_per_class=5, classes=classes, face_noise=0.3, voice_noise=0.1,
                                 seed=3)
    n = len(plans)
    face_bad = [p for p in plans if p.face_emotion != p.label]
    voice_bad = [p for p in plans if p.voice_emotion != p.label]
    assert len(face_bad) == round(0.3 * n) and len(voice_bad) == round(0.1 * n)
    for p in face_bad + voice_bad:
        assert p.face_emotion in classes + ["neutral"] and p.voice_emotion in classes + ["neutral"]
    assert any(p.face_emotion == "neutral" for p in face_bad)  # missing information occurs
    assert not any(p.face_emotion != p.label and p.voice_emotion != p.label for p in plans)  # disjoint
    _, heavy = synth.plan_corpus(n_actors=2, clips_per_class=5, classes=classes, face_noise=0.7, voice_noise=0.6,
                                 seed=3)
    both = [p for p in heavy if p.face_emotion != p.label and p.voice_emotion != p.label]
    assert len(both) == round(0.7 * len(heavy)) + round(0.6 * len(heavy)) - len(heavy)
    _, clean = synth.plan_corpus(n_actors=4, clips_per_class=5, classes=classes, seed=3)
    assert all(p.face_emotion == p.voice_emotion == p.label for p in clean)


def test_same_seed_same_plan_different_seed_differs() -> None:
    def sig(seed: int) -> list:
        actors, plans = synth.plan_corpus(3, 2, None, face_noise=0.2, voice_noise=0.2, seed=seed)
        return [a.to_dict() for a in actors] + [(p.id, p.face_emotion, p.voice_emotion, p.duration, p.seed)
                                                for p in plans]
    assert sig(5) == sig(5)
    assert sig(5) != sig(6)
    # a class subset keeps the parameters of the clips it shares with the full set
    _, full = synth.plan_corpus(2, 1, synth.RAVDESS_CLASSES, seed=5)
    _, sub = synth.plan_corpus(2, 1, ["sad", "angry"], seed=5)
    full_by_id = {p.id: (p.duration, p.seed) for p in full}
    assert all(full_by_id[p.id] == (p.duration, p.seed) for p in sub)


def test_same_seed_same_manifest_and_render(tmp_path: Path) -> None:
    from mrpn.cli import main as cli_main

    kw = dict(n_actors=1, clips_per_class=1, classes=["angry", "sad"], size=96, fps=20, seed=11)
    a = synth.generate_corpus(tmp_path / "a", progress=False, **kw)
    rc = cli_main(["synth", str(tmp_path / "b"), "--actors", "1", "--clips-per-class", "1", "--classes", "angry,sad",
                   "--size", "96", "--fps", "20", "--seed", "11", "--workers", "2", "--quiet"])
    assert rc == 0
    b = tmp_path / "b" / "manifest.csv"
    assert a.read_bytes() == b.read_bytes()
    ja, jb = (json.loads((p.parent / "synth.json").read_text()) for p in (a, b))
    assert ja["clips"] == jb["clips"] and ja["actors"] == jb["actors"]
    for c in ja["clips"]:   # bit for bit, whether rendered here or in worker processes
        assert (a.parent / c["video"]).read_bytes() == (b.parent / c["video"]).read_bytes(), c["video"]
    fa, aa, _, ma = _decode(a.parent / "videos/01/01-angry-01.mp4")
    assert (ma["w"], ma["h"]) == (96, 96) and abs(ma["fps"] - 20) < 1e-6
    _, plans = synth.plan_corpus(**{k: v for k, v in kw.items()})
    f1, a1, _ = synth.render_clip(plans[0])
    f2, a2, _ = synth.render_clip(plans[0])
    assert np.array_equal(f1, f2) and np.array_equal(a1, a2)


def test_render_face_shape_and_expression_geometry() -> None:
    fp = random_face_params(np.random.default_rng(0), "female")
    lms = {}
    imgs = {}
    for emo in EMOTION_EXPRESSIONS:
        lm: dict = {}
        img = render_face(fp, emo, 0.5, size=128, landmarks=lm)
        assert img.dtype == np.uint8 and img.shape == (128, 128, 3)
        lms[emo], imgs[emo] = lm, img
    assert render_face(fp, "neutral", 0.0, size=160).shape == (160, 160, 3)

    def corner_lift(lm: dict) -> float:   # > 0 when the mouth corners are above the lip centre (smile)
        return lm["mouth_upper"][1] - np.mean([p[1] for p in lm["mouth_corners"]])

    def brow_height(lm: dict) -> float:   # brow above the eye centre, pixels
        return float(np.mean([e[1] - b[1] for e, b in zip(lm["eye_centre"], lm["brow_mid"])]))

    def inner_tilt(lm: dict) -> float:    # > 0 when the inner brow ends are higher than the outer ends
        return float(np.mean([o[1] - i[1] for i, o in zip(lm["brow_inner"], lm["brow_outer"])]))

    mouth_gap = {e: lm["mouth_lower"][1] - lm["mouth_upper"][1] for e, lm in lms.items()}
    assert corner_lift(lms["happy"]) > corner_lift(lms["neutral"]) + 2 > corner_lift(lms["sad"]) + 4
    assert brow_height(lms["surprised"]) > brow_height(lms["neutral"]) + 2 > brow_height(lms["angry"]) + 3
    assert inner_tilt(lms["sad"]) > inner_tilt(lms["neutral"]) + 1 > inner_tilt(lms["angry"]) + 2
    assert np.mean(lms["surprised"]["eye_opening"]) > 1.3 * np.mean(lms["neutral"]["eye_opening"])
    assert mouth_gap["surprised"] > mouth_gap["neutral"] + 5
    # and the pixels differ where the geometry does
    diff = np.abs(imgs["happy"].astype(int) - imgs["sad"].astype(int)).mean(axis=2)
    assert diff[70:100, 40:90].mean() > 3 * diff[:20].mean() + 1


def _f0(y: np.ndarray, sr: int) -> float:
    """Median autocorrelation pitch of the voiced 40 ms frames."""
    fl, hop, out = int(0.04 * sr), int(0.02 * sr), []
    thr = 0.3 * np.sqrt(np.mean(y ** 2))
    for i in range(0, len(y) - fl, hop):
        x = y[i:i + fl] - y[i:i + fl].mean()
        if np.sqrt(np.mean(x ** 2)) < thr:
            continue
        ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * fl)) ** 2)[:fl]
        lo, hi = sr // 400, sr // 60
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.4 * ac[0]:
            out.append(sr / k)
    return float(np.median(out))


def test_voice_emotions_differ_in_the_right_direction() -> None:
    sr = 16000
    for gender, lo, hi in (("male", 90, 170), ("female", 160, 330)):
        vp = random_voice_params(np.random.default_rng(4), gender)
        feats = {}
        for emo in ("neutral", "angry", "sad"):
            f0s, rms = [], []
            for k in range(3):
                y = synth_voice(vp, emo, 2.5, sr, np.random.default_rng(100 + k))
                assert y.dtype == np.float32 and len(y) == int(2.5 * sr) and np.abs(y).max() <= 1.0
                f0s.append(_f0(y, sr))
                rms.append(np.sqrt(np.mean(y ** 2)))
            feats[emo] = (np.mean(f0s), np.mean(rms))
        assert lo < feats["neutral"][0] < hi
        assert feats["angry"][0] > feats["neutral"][0] > feats["sad"][0], feats
        assert feats["angry"][1] > 1.5 * feats["neutral"][1], feats
        assert feats["neutral"][1] > 1.3 * feats["sad"][1], feats


@pytest.mark.parametrize("kind", ["missing", "fuzzy", "mixed"])
def test_fuzzy_clips_are_what_the_record_says(kind: str) -> None:
    """Paper 3.1: a fraction of clips shows neutral (missing) or another emotion (fuzzy) in one
    modality; the label stays the true class; the plan records modality, kind and what is shown."""
    n_actors, per_class = 6, 3
    _, plans = synth.plan_corpus(n_actors, per_class, None, face_noise=0.15, voice_noise=0.15, seed=21,
                                 noise_kind=kind)
    _, clean = synth.plan_corpus(n_actors, per_class, None, seed=21)
    n = len(plans)
    assert [p.label for p in plans] == [p.label for p in clean]            # labels untouched
    for modality in ("face", "voice"):
        noisy = [p for p in plans if any(x["modality"] == modality for x in p.noise)]
        assert len(noisy) == round(0.15 * n)
        per_actor = [sum(p.actor.id == a for p in noisy) for a in sorted({p.actor.id for p in plans})]
        assert max(per_actor) - min(per_actor) <= 1                        # spread over the actors
    kinds = set()
    for p, c in zip(plans, clean):
        assert len(p.noise) <= 1                                           # never both modalities
        shown = {"face": p.face_emotion, "voice": p.voice_emotion}
        for m in ("face", "voice"):
            rec = [x for x in p.noise if x["modality"] == m]
            if not rec:
                assert shown[m] == p.label
                continue
            (x,) = rec
            kinds.add(x["kind"])
            assert shown[m] == x["shows"] != p.label and x["shows"] in synth.DEFAULT_CLASSES
            assert x["kind"] == ("missing" if x["shows"] == "neutral" else "fuzzy")
        assert p.seed == c.seed and p.n_frames == c.n_frames                # same clip, other content
    assert kinds == ({"missing", "fuzzy"} if kind == "mixed" else {kind})
    if kind == "missing":
        assert not any(p.noise for p in plans if p.label == "neutral")     # neutral cannot lose its emotion


def test_corpus_records_noise_and_version(corpus: Path) -> None:
    info = json.loads((corpus / "synth.json").read_text())
    assert info["version"] == info["config"]["version"] == synth.SYNTH_VERSION
    for c in info["clips"]:
        assert c["synth_version"] == synth.SYNTH_VERSION
        face = [x for x in c["noise"] if x["modality"] == "face"]
        assert (c["face_emotion"] != c["label"]) == bool(face)
        if face:
            assert face[0]["shows"] == c["face_emotion"]
    assert synth.modality_truth(corpus)[info["clips"][0]["video"]]["noise"] == info["clips"][0]["noise"]


def test_noisy_corpus_reuses_the_clean_clips(tmp_path: Path) -> None:
    kw = dict(n_actors=2, clips_per_class=1, classes=["neutral", "happy", "sad"], size=48, fps=8, seed=4,
              duration=(1.0, 1.2), progress=False)
    synth.generate_corpus(tmp_path / "clean", **kw)
    synth.generate_corpus(tmp_path / "noisy", face_noise=0.5, noise_kind="fuzzy", reuse=tmp_path / "clean", **kw)
    info = json.loads((tmp_path / "noisy" / "synth.json").read_text())
    assert sum(bool(c["noise"]) for c in info["clips"]) == 3
    for c in info["clips"]:
        same = (tmp_path / "clean" / c["video"]).read_bytes() == (tmp_path / "noisy" / c["video"]).read_bytes()
        assert same == (not c["noise"]), c


def _loo_actor_accuracy(x: np.ndarray, y: np.ndarray, actor: np.ndarray) -> float:
    """Leave-one-actor-out nearest class centroid on standardised features."""
    hits = 0
    for a in np.unique(actor):
        tr, te = actor != a, actor == a
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-9
        z = (x - mu) / sd
        cent = np.stack([z[tr & (y == k)].mean(0) for k in np.unique(y)])
        pred = np.unique(y)[np.argmin(((z[te][:, None] - cent[None]) ** 2).sum(-1), 1)]
        hits += int((pred == y[te]).sum())
    return hits / len(y)


def test_no_shortcut_cue_in_mean_colour_or_energy() -> None:
    """The emotion must be read from the face or the voice, not from one number of the clip."""
    _, plans = synth.plan_corpus(6, 2, None, size=48, fps=5, seed=31, duration=(1.0, 1.4))
    colour, energy, y, actor = [], [], [], []
    for p in plans:
        frames, audio, _ = synth.render_clip(p)
        colour.append(frames.reshape(-1, 3).mean(0))
        energy.append([np.log(np.mean(audio.astype(np.float64) ** 2))])
        y.append(synth.DEFAULT_CLASSES.index(p.label))
        actor.append(p.actor.id)
    y_, a_ = np.array(y), np.array(actor)
    chance = 1 / 6
    acc_colour = _loo_actor_accuracy(np.array(colour), y_, a_)
    acc_energy = _loo_actor_accuracy(np.array(energy), y_, a_)
    # 72 clips: the binomial sd at chance is 4.4 points; 0.30 is 3 sd above chance
    assert acc_colour < 0.30 and acc_energy < 0.30, (acc_colour, acc_energy, chance)
