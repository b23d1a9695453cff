"""Portrait and rotated video (issue 10, fault 5): frames are turned upright by the container's
display matrix, crops repeat the frame's edge instead of black bars, and a portrait or sideways-
stored clip is tracked with the same boxes as the same face in landscape."""
from __future__ import annotations

import numpy as np
import pytest
from media_factory import write_video

from mrpn.data.media import VideoReader, probe


def _drawn_face(cx: float, cy: float, ax: int = 44, ay: int = 58):
    """A cartoon face of a fixed size (pixels) centred at (cx, cy) x the frame size, so the same
    face can be filmed in a landscape and a portrait frame."""
    import cv2

    def fn(t: int, width: int, height: int) -> np.ndarray:
        img = np.full((height, width, 3), (90, 120, 160), np.uint8)
        c = (int(cx * width) + round(3 * np.sin(2 * np.pi * t / 40)), int(cy * height))
        cv2.ellipse(img, c, (ax, ay), 0, 0, 360, (224, 180, 150), -1)
        e = max(2, ax // 6)
        for sx in (-1, 1):
            eye = (c[0] + sx * ax // 2, c[1] - ay // 4)
            cv2.circle(img, eye, e, (20, 20, 20), -1)
            cv2.line(img, (eye[0] - 2 * e, eye[1] - 2 * e), (eye[0] + 2 * e, eye[1] - 2 * e), (60, 40, 30), e // 2)
        cv2.ellipse(img, (c[0], c[1] + ay // 3), (ax // 2, ay // 8), 0, 0, 180, (120, 30, 30), e // 2)
        return img
    return fn


def _stored(fn, turns: int):
    """The pixels a camera stores: the upright picture turned `turns` quarter turns clockwise."""
    def stored(t: int, width: int, height: int) -> np.ndarray:
        w, h = (height, width) if turns % 2 else (width, height)
        return np.ascontiguousarray(np.rot90(fn(t, w, h), -turns))
    return stored


def _marker(t: int, width: int, height: int) -> np.ndarray:
    img = np.zeros((height, width, 3), np.uint8)
    img[:12, :24] = 255                        # top-left corner of the upright picture
    return img


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_display_matrix_turns_frames_upright(tmp_path, turns):
    p = write_video(tmp_path / "r.mp4", n_frames=3, fps=10, size=(64, 48) if turns % 2 else (48, 64),
                    audio=None, frame_fn=_stored(_marker, turns), rotation=90 * turns)
    for fmt in ("rgb24", "yuv"):
        with VideoReader(p, format=fmt) as r:
            f = next(iter(r))
            img = f if fmt == "rgb24" else f.to_rgb()
            assert r.rotation == 90 * turns and (r.height, r.width) == img.shape[:2] == (64, 48)
            if fmt == "yuv":
                assert f.y.shape == (64, 48) and f.u.shape == (32, 24)
        ys, xs = np.nonzero(img[:, :, 0] > 128)
        assert ys.max() < 16 and xs.max() < 28           # the marker is back at the top left
    info = probe(p)                                      # the header reader says the same as the decoder
    assert (info.height, info.width, info.rotation) == (64, 48, 90 * turns)


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    from mrpn.inference.predictor import Predictor

    d = tmp_path_factory.mktemp("rot")
    face = _drawn_face(0.5, 0.5)
    clips = {
        "landscape": write_video(d / "land.mp4", n_frames=30, fps=15, size=(400, 224), frame_fn=face),
        # the margin square (1.5 x the face) is wider than this frame: it used to get black bars
        "portrait": write_video(d / "port.mp4", n_frames=30, fps=15, size=(126, 224), frame_fn=face),
        # portrait content stored sideways, as phones do, with the turn in the display matrix
        "sideways": write_video(d / "side.mp4", n_frames=30, fps=15, size=(224, 126),
                                frame_fn=_stored(face, 1), rotation=90),
    }
    p = Predictor()
    return {k: (p.predict_file(str(v)).to_dict(), p.read_file(str(v))) for k, v in clips.items()}


@pytest.mark.parametrize("kind", ["portrait", "sideways"])
def test_portrait_and_rotated_video_track_the_face_as_landscape(predictions, kind):
    """The same face filmed upright in landscape, in a frame narrower than its box, and stored
    sideways is boxed at the same size and place in every frame (to the Haar detector's jitter,
    ~5 %). Before edge padding, the first detection in the narrow frame was clipped to the frame
    (124 px against 141), and the crops of the first frames were zoomed in. The labels are not
    compared: on this cartoon the shipped model's two top classes are within a few points, so a
    5 % change of crop moves its answer, which says nothing about rotation."""
    ref, ref_read = predictions["landscape"]
    r, read = predictions[kind]
    assert read["found"].mean() > 0.9, "the face must be found in the upright frames"
    assert r["modalities_used"] == ["v", "a"] and sorted(r["probabilities"]) == sorted(ref["classes"])
    b, rb = read["boxes"].astype(float), ref_read["boxes"].astype(float)
    assert b.shape == rb.shape
    size = np.maximum(b[:, 2], b[:, 3])
    assert np.all(np.abs(size / np.maximum(rb[:, 2], rb[:, 3]) - 1) < 0.10), (kind, size, rb[:, 2])
    # the face is drawn at the frame's centre in all three clips
    for bb, frame_w in ((b, 126), (rb, 400)):
        cx = bb[:, 0] + bb[:, 2] / 2 - frame_w / 2
        assert np.all(np.abs(cx) < 0.06 * size), (kind, cx)


def test_whole_frame_search_boxes_a_face_wider_than_the_frame(tmp_path):
    """A face whose box is wider than a narrow frame is boxed at its own size by the first
    (whole-frame) detection only with the frame's edges repeated (`FaceConfig.edge_pad`); a face
    well inside the frame is never searched again, so its box is exactly what it was without."""
    from mrpn.data.faces import FaceConfig, make_detector, track_faces

    face = _drawn_face(0.5, 0.5)
    wide = write_video(tmp_path / "w.mp4", n_frames=1, fps=10, size=(400, 224), audio=None, frame_fn=face)
    narrow = write_video(tmp_path / "n.mp4", n_frames=1, fps=10, size=(126, 224), audio=None, frame_fn=face)
    sizes = {}
    for pad in (0.0, 0.15):
        cfg = FaceConfig(detector="opencv", face_size=48, margin=0.0, edge_pad=pad)
        for name, path in (("wide", wide), ("narrow", narrow)):
            with VideoReader(path) as rd:
                t = track_faces(list(rd), make_detector("opencv"), cfg)
            assert t.found.all()
            sizes[name, pad] = float(t.boxes[0, 2])
    assert sizes["narrow", 0.0] <= 126 < sizes["wide", 0.0]             # clipped to the frame
    assert sizes["wide", 0.0] == sizes["wide", 0.15]    # a face inside the frame: its box as before
    assert abs(sizes["narrow", 0.15] / sizes["wide", 0.15] - 1) < 0.10    # its own size


def test_crops_have_no_black_bars(predictions):
    faces = predictions["portrait"][1]["faces"]
    # the background is a mid grey-blue; black bars would put columns of ~0 at the crop's sides
    assert faces[:, :, :2].mean() > 60 and faces[:, :, -2:].mean() > 60
