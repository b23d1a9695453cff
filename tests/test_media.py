"""Decoding (PyAV), audio (soxr, standardisation) and faces (detectors, tracker, crops).

All media are generated in tmp folders by tests/media_factory.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import media_factory as mf  # noqa: E402

from mrpn.data import audio as A  # noqa: E402
from mrpn.data.faces import (  # noqa: E402
    DetectorUnavailable, FaceConfig, FaceTracker, crop_square, make_detector, square_region, track_faces,
)
from mrpn.data.media import MediaError, VideoReader, YUVFrame, decode_audio, is_image, probe, read_image  # noqa: E402


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("media")
    for ext in (".mp4", ".flv", ".avi", ".mkv", ".webm"):
        mf.write_video(d / f"clip{ext}", n_frames=20, fps=25)
    mf.write_video(d / "noaudio.mp4", n_frames=10, fps=25, audio=None)
    mf.write_video(d / "silent.mp4", n_frames=10, fps=25, audio="silent")
    mf.write_audio(d / "tone48k.wav", seconds=1.5, rate=48000, channels=2)
    mf.write_audio(d / "tone16k.flac", seconds=1.0, rate=16000, channels=1)
    mf.write_audio(d / "silent.wav", seconds=1.0, rate=16000, channels=1, kind="silent")
    mf.write_zero_bytes(d / "empty.mp4")
    mf.write_text(d / "text.mp4")
    mf.truncate(d / "clip.mp4", d / "truncated.mp4", 0.5)
    mf.faststart(d / "clip.mp4", d / "faststart.mp4")
    mf.truncate(d / "faststart.mp4", d / "truncated_faststart.mp4", 0.55)
    mf.write_image(d / "face.png", size=48)
    mf.write_text(d / "broken.jpg", "not a jpeg")
    return d


# ------------------------------------------------------------------------------------------ decode

@pytest.mark.parametrize("ext", [".mp4", ".flv", ".avi", ".mkv", ".webm"])
def test_decode_containers(media, ext):
    p = media / f"clip{ext}"
    info = probe(p)
    assert info.has_video and info.has_audio and info.width == 160 and info.height == 120
    assert info.fps == pytest.approx(25, abs=0.01)
    with VideoReader(p) as r:
        frames = list(r)
    assert len(frames) == 20 and frames[0].shape == (120, 160, 3) and frames[0].dtype == np.uint8
    assert r.error is None
    # the blob of frame 0 is where the factory drew it (lossy codecs: approximately)
    x, y, w, h = mf.blob_box(0, 160, 120)
    assert frames[0][y + h // 2, x + w // 2].mean() > 150 and frames[0][5, 5].mean() < 70
    res = A.prepare_audio(p)
    assert res is not None and not res.silent
    assert abs(len(res.samples) / 16000 - 0.8) < 0.1       # codec padding allowed


def test_yuv_frames_match_rgb(media):
    with VideoReader(media / "clip.mp4", format="yuv") as r:
        yuv = list(r)
    with VideoReader(media / "clip.mp4") as r:
        rgb = list(r)
    assert isinstance(yuv[0], YUVFrame) and yuv[0].shape == rgb[0].shape
    box = (40.0, 30.0, 50.0, 50.0)
    a = crop_square(yuv[3], box, 32, 0.25).astype(int)
    b = crop_square(rgb[3], box, 32, 0.25).astype(int)
    assert a.shape == b.shape == (32, 32, 3)
    assert np.abs(a - b).mean() < 6      # same region; colour conversion differs slightly
    g = crop_square(yuv[3], box, 32, 0.25, gray=True)
    assert g.shape == (32, 32, 1) and g.dtype == np.uint8


def test_bad_files_raise_clear_errors(media):
    with pytest.raises(MediaError, match=r"empty\.mp4: empty file \(0 bytes\)"):
        VideoReader(media / "empty.mp4")
    with pytest.raises(MediaError, match=r"text\.mp4: cannot open"):
        VideoReader(media / "text.mp4")
    with pytest.raises(MediaError, match=r"truncated\.mp4: cannot open.*truncated"):
        VideoReader(media / "truncated.mp4")
    with pytest.raises(MediaError, match="file not found"):
        VideoReader(media / "missing.mp4")
    with pytest.raises(MediaError, match=r"broken\.jpg: not a readable image"):
        read_image(media / "broken.jpg")
    with pytest.raises(MediaError, match="empty file"):
        A.prepare_audio(media / "empty.mp4")


def test_truncated_with_index_keeps_decoded_frames(media):
    with VideoReader(media / "truncated_faststart.mp4") as r:
        frames = list(r)
    assert 0 < len(frames) < 20
    assert r.error and "truncated" in r.error


def test_image_and_csv_row(media, tmp_path):
    img = read_image(media / "face.png")
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    csv = tmp_path / "fer.csv"
    csv.write_text("emotion,pixels,Usage\n3," + " ".join(["9"] * 2304) + ",Training\n")
    assert is_image(f"{csv}#0") and read_image(f"{csv}#0")[0, 0, 0] == 9
    with pytest.raises(MediaError, match="#5"):
        read_image(f"{csv}#5")


# ------------------------------------------------------------------------------------------ audio

def test_audio_resampled_mono_standardised(media):
    res = A.prepare_audio(media / "tone48k.wav")
    assert res.source_rate == 48000 and res.source_channels == 2
    assert res.samples.dtype == np.float32 and res.samples.ndim == 1
    assert len(res.samples) == 24000                      # 1.5 s at 16 kHz
    assert abs(res.samples.mean()) < 1e-4 and res.samples.std() == pytest.approx(1.0, abs=1e-3)
    res = A.prepare_audio(media / "tone16k.flac")
    assert res.source_rate == 16000 and len(res.samples) == 16000 and not res.silent


def test_silent_audio_is_flagged_not_divided(media):
    for p in (media / "silent.wav", media / "silent.mp4"):
        res = A.prepare_audio(p)
        assert res.silent and np.all(res.samples == 0) and np.all(np.isfinite(res.samples))
    y, silent, _, _ = A.standardise(np.zeros(0, np.float32))
    assert silent and y.size == 0


def test_no_audio_stream(media):
    assert decode_audio(media / "noaudio.mp4") is None
    assert A.prepare_audio(media / "noaudio.mp4") is None
    with pytest.raises(MediaError, match="no audio stream"):
        A.load_audio(media / "noaudio.mp4")
    assert A.load_audio(media / "tone16k.flac").shape == (16000,)


def test_resample_length_and_tone():
    x = mf.tone(2.0, 44100, 1)[0]
    y = A.resample(x, 44100, 16000)
    assert len(y) == 32000
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec[1:]) + 1 - 440 * 2) <= 2    # 440 Hz stays 440 Hz (bin = 0.5 Hz)


# ------------------------------------------------------------------------------------------ faces

def test_make_detector_names():
    assert make_detector("opencv").name == "opencv"
    whole = make_detector("none")
    assert whole.detect(np.zeros((48, 40), np.uint8)) == [(0.0, 0.0, 40.0, 48.0, 1.0)]
    with pytest.raises(ValueError, match="unknown face detector"):
        make_detector("yolo")


@pytest.mark.parametrize("name", ["dlib-hog", "dlib-cnn"])
def test_dlib_missing_gives_install_hint(name):
    try:
        import dlib  # noqa: F401
    except ImportError:
        with pytest.raises(DetectorUnavailable, match=r"pip install 'mrpn\[dlib\]'"):
            make_detector(name)
    else:                                   # the extra is installed: the detector works
        try:
            det = make_detector(name)
        except DetectorUnavailable as e:    # dlib without face_recognition_models
            pytest.skip(str(e))
        assert det.detect(np.zeros((120, 160), np.uint8)) == []
        assert len(det.detect(mf.face_like_frame(0, 320, 240)[:, :, ::-1].copy())) <= 1


def test_opencv_detector_on_drawings():
    det = make_detector("opencv")
    for w, h in ((160, 120), (640, 360)):
        found = det.detect(mf.face_like_frame(0, w, h)[:, :, ::-1].copy())     # BGR in
        assert len(found) == 1
        x, y, bw, bh = mf.face_like_box(0, w, h)
        assert abs((found[0][0] + found[0][2] / 2) - (x + bw / 2)) < 0.1 * w   # on the drawn head
        assert det.detect(mf.blob_frame(0, w, h)) == [] and det.detect(mf.noise_frame(0, w, h)) == []
        assert det.detect(np.zeros((h, w), np.uint8)) == []


def test_opencv_tracks_drawn_face_in_video(media, tmp_path):
    p = mf.write_video(tmp_path / "face.mp4", n_frames=30, fps=25, size=(320, 240), audio=None,
                       frame_fn=mf.face_like_frame)
    with VideoReader(p, format="yuv") as r:
        tr = track_faces(r, make_detector("opencv"), FaceConfig(face_size=48))
    assert tr.found.all() and tr.faces.shape == (30, 48, 48, 3)
    truth = np.array([mf.face_like_box(t, 320, 240) for t in range(30)], float)
    centre = tr.boxes[:, 0] + tr.boxes[:, 2] / 2
    assert np.abs(centre - (truth[:, 0] + truth[:, 2] / 2)).max() < 12


def test_square_region_and_padding():
    assert square_region((10, 20, 40, 20), 0.25) == (0, 0, 60)   # 40 * 1.5 = 60, centred on (30, 30)
    frame = np.full((50, 50, 3), 200, np.uint8)
    frame[:, -1] = 100                                        # the right edge column
    crop = crop_square(frame, (30, 30, 40, 40), 20, 0.0)      # half outside: the edge repeats there
    assert crop.shape == (20, 20, 3)
    assert crop[2, 2].mean() > 190 and abs(crop[5, -2].mean() - 100) < 10 and crop[-2, 2].mean() > 190


def _frames(n, w=160, h=120, missing=()):
    blank = np.full((h, w, 3), 30, np.uint8)
    return [blank if t in missing else mf.blob_frame(t, w, h) for t in range(n)]


def _cfg(**kw):
    base = dict(detector="blob", face_size=32, detect_every=5, detect_width=0, margin=0.0, max_gap=15, smooth=1)
    base.update(kw)
    return FaceConfig(**base)


def test_tracker_follows_blob_with_interpolation():
    frames = _frames(37)
    det = mf.BlobDetector()
    tr = track_faces(frames, det, _cfg(roi=0))
    assert tr.faces.shape == (37, 32, 32, 3) and tr.found.all()
    assert tr.detect_calls == 9           # frames 0, 5, ..., 35 and the last one (36)
    truth = np.array([mf.blob_box(t, 160, 120) for t in range(37)], float)
    assert np.abs(tr.boxes - truth).max() <= 1.01          # linear motion: interpolation is exact
    assert tr.faces[:, 16, 16].mean() > 150                 # the crop is centred on the blob


def test_tracker_roi_and_downscaled_detection_agree():
    frames = _frames(30)
    a = track_faces(frames, mf.BlobDetector(), _cfg(roi=2.0, detect_width=80))
    b = track_faces(frames, mf.BlobDetector(), _cfg(roi=0, detect_width=0))
    assert a.found.all() and np.abs(a.boxes - b.boxes).max() < 4


def test_tracker_roi_rejects_a_face_cut_by_the_window():
    def fast(t, w, h):                    # 6 px a frame: the square leaves the 2x window
        img = np.full((h, w, 3), 30, np.uint8)
        img[40:80, 10 + 6 * t:50 + 6 * t] = 220
        return img

    frames = [fast(t, 200, 120) for t in range(21)]
    tr = track_faces(frames, mf.BlobDetector(), _cfg(roi=2.0))
    assert tr.found.all()
    assert np.abs(tr.boxes[:, 0] - (10 + 6 * np.arange(21))).max() <= 1.01
    assert np.abs(tr.boxes[:, 2] - 40).max() <= 1.01


def test_tracker_short_miss_interpolates_long_miss_does_not():
    # keyframe 10 missed: 5 -> 15 is within max_gap, interpolated and found
    tr = track_faces(_frames(31, missing={10}), mf.BlobDetector(), _cfg(roi=0))
    assert tr.found.all()
    # keyframes 10, 15, 20 missed: 5 -> 25 is 20 frames > max_gap 15: held box, not found
    tr = track_faces(_frames(31, missing={10, 15, 20}), mf.BlobDetector(), _cfg(roi=0))
    assert tr.found[:6].all() and not tr.found[6:25].any() and tr.found[25:].all()
    assert np.allclose(tr.boxes[6:25], tr.boxes[5])        # the last box is held


def test_tracker_no_face_and_late_first_face():
    tr = track_faces(_frames(12, missing=set(range(12))), mf.BlobDetector(), _cfg())
    assert not tr.found.any() and tr.face_fraction == 0.0
    assert np.allclose(tr.boxes[0], [20, 0, 120, 120])      # centre square of the frame
    tr = track_faces(_frames(21, missing={0}), mf.BlobDetector(), _cfg(roi=0))
    assert not tr.found[:5].any() and tr.found[5:].all()
    assert np.allclose(tr.boxes[0], tr.boxes[5])            # back-filled from the first face


def test_tracker_streaming_is_bounded_and_matches_any_chunking():
    frames = _frames(60, missing={20})
    cfg = _cfg(smooth=7)
    t = FaceTracker(mf.BlobDetector(), cfg)
    out, max_buffer = [], 0
    for f in frames:
        out += t.push(f)
        max_buffer = max(max_buffer, len(t._buf))
    out += t.finish()
    assert max_buffer <= t.lookahead + 1
    ref = track_faces(frames, mf.BlobDetector(), cfg)
    assert np.array_equal(np.stack([o[1] for o in out]), ref.boxes)
    assert np.array_equal(np.stack([o[0] for o in out]), ref.faces)


def test_whole_frame_detector_on_images():
    img = read_image(mf.write_image(Path(__import__("tempfile").mkdtemp()) / "f.png", size=48))
    tr = track_faces([img], make_detector("none"), FaceConfig(detector="none", face_size=64, gray=True))
    assert tr.faces.shape == (1, 64, 64, 1) and tr.found.all()
    assert np.allclose(tr.boxes[0], [0, 0, 48, 48])
