import numpy as np
import torch

from mrpn.data.loader import collate, faces_to_tensor, select_frames, spatial_augment, time_slice
from mrpn.features.spectrogram import spectrogram_segments


def test_spectrogram_matches_paper_shape_and_hops():
    wave = torch.randn(16000 * 3)
    ao = spectrogram_segments(wave)                      # 0.2 s hop: (48000-16000)/3200 + 1 = 11
    wo = spectrogram_segments(wave, hop_s=1.0)            # no overlap: 3 segments
    assert ao.shape == (11, 1, 256, 250) and wo.shape == (3, 1, 256, 250)
    assert torch.allclose(ao[0], wo[0]) and torch.allclose(ao[5], wo[1])   # 5 hops of 0.2 s = 1 s
    short = spectrogram_segments(torch.randn(4000))      # shorter than 1 s: one zero-padded segment
    assert short.shape == (1, 1, 256, 250)
    small = spectrogram_segments(wave, spec_size=(64, 64))
    assert small.shape == (11, 1, 64, 64)


def test_time_slice_at_least_min_len_and_inside():
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = rng.uniform(0.3, 5)
        a, b = time_slice(d, 1.0, rng)
        assert 0 <= a < b <= d + 1e-9 and b - a >= min(1.0, d) - 1e-9


def test_select_frames_fps_cap_and_missing_faces():
    found = np.ones(90, bool)
    found[10:20] = False
    idx = select_frames(90, 30.0, 0.0, 3.0, 6.0, 0, found)
    assert found[idx].all()
    assert 15 <= len(idx) <= 18                       # ~6 fps over 3 s
    assert len(select_frames(90, 30.0, 0.0, 3.0, 0, 8, None)) == 8
    assert len(select_frames(90, 30.0, 1.0, 1.5, 0, 0, None)) == 15


def test_spatial_aug_clip_mode_uses_one_transform_for_all_frames():
    rng = np.random.default_rng(1)
    frame = torch.rand(1, 1, 32, 32)
    x = frame.expand(5, 1, 32, 32).clone()
    same = spatial_augment(x, "clip", rng)
    assert torch.allclose(same[0], same[4])
    diff = spatial_augment(x, "frame", np.random.default_rng(2))
    assert not torch.allclose(diff[0], diff[4])
    assert torch.equal(spatial_augment(x, "none", rng), x)


def test_faces_to_tensor_gray_resize_and_collate_padding():
    faces = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    t = faces_to_tensor(faces, 48, gray=True)
    assert t.shape == (4, 1, 48, 48) and 0 <= float(t.min()) and float(t.max()) <= 1
    items = [{"v": torch.ones(3, 1, 8, 8), "a": torch.ones(2, 1, 4, 4), "label": 1, "index": 0},
             {"v": torch.ones(5, 1, 8, 8), "a": torch.ones(4, 1, 4, 4), "label": 2, "index": 1}]
    b = collate(items)
    assert b["v"].shape == (2, 5, 1, 8, 8) and b["v_len"].tolist() == [3, 5]
    assert b["a"].shape == (2, 4, 1, 4, 4) and float(b["v"][0, 3:].abs().sum()) == 0
