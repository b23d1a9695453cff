"""Training and serving read a clip the same way: the `Predictor` on a raw file gives the scores that
evaluation gives for the same clip from a cache written by `mrpn prepare` (one preprocessing path)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mrpn import registry

pytestmark = pytest.mark.realdata


def _eval_scores(model, cfg, cache_dir):
    """Evaluation's path: CacheSource -> EmotionDataset(train=False) -> collate -> model."""
    from mrpn.data.loader import CacheSource, EmotionDataset, collate

    src = CacheSource(str(cache_dir))
    ds = EmotionDataset(src, [0], cfg.data, registry.modalities_of(cfg.model.kind), train=False)
    batch = collate([ds[0]])
    with torch.no_grad():
        whole = torch.softmax(model(batch)["scores"], 1)[0].numpy()
        side = {m: torch.softmax(model.forward_modality(batch, m), 1)[0].numpy()
                for m in registry.modalities_of(cfg.model.kind)}
    return whole, side


@pytest.mark.parametrize("name", ["01-01-01-01-01-01-01.mp4", "01-01-08-02-02-02-01.mp4"])
def test_predictor_on_a_raw_file_matches_evaluation_from_the_cache(shared_data, tmp_path, name):
    from mrpn.data.clip import Clip
    from mrpn.data.prepare import PrepareConfig, run_prepare
    from mrpn.inference.predictor import Predictor

    video = shared_data / "ravdess" / "video" / "Actor_01" / name
    p = Predictor()  # the shipped N2: 48x48 gray faces, audio spectrogram segments
    d = p.cfg.data
    clip = Clip(id=video.stem, dataset="ravdess", label=0, label_name="neutral", actor="01", video=str(video))
    scan = SimpleNamespace(dataset="ravdess", classes=list(p.classes), clips=[clip], problems=[])
    res = run_prepare(scan, tmp_path / "cache", PrepareConfig(face_size=d.face_size, gray=d.gray, margin=d.face_margin), workers=1,
                      progress=False)
    assert res.ok == 1

    whole, side = _eval_scores(p.model, p.cfg, tmp_path / "cache")
    pred = p.predict_file(str(video))
    assert pred.modalities_used == list(registry.modalities_of(p.kind))
    got = np.array([pred.probabilities[c] for c in p.classes])
    np.testing.assert_allclose(got, whole, atol=1e-4)  # Prediction rounds to 4 decimals
    for m, probs in side.items():
        np.testing.assert_allclose([pred.per_modality[m][c] for c in p.classes], probs, atol=1e-4)


def test_a_small_face_image_is_read_like_fer2013_in_training(shared_data):
    """A 48x48 FER2013 image is a face crop already: `predict_file` must use it whole (the paired
    benchmark's training path), not run a face detector on it (which mostly finds no face)."""
    import cv2

    from mrpn.inference.predictor import Predictor

    p = Predictor()
    for f in sorted((shared_data / "fer2013" / "test" / "happy").glob("*.jpg"))[:3]:
        served = p.predict_file(str(f))
        img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        trained = p.predict_arrays(img[None, :, :, None], None, 1.0, None)
        assert served.modalities_used == [registry.V] and any("face crop" in n for n in served.notes)
        np.testing.assert_allclose([served.probabilities[c] for c in p.classes],
                                   [trained.probabilities[c] for c in p.classes], atol=1e-4)
