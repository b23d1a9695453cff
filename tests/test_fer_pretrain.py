"""FER2013 pretraining recipe: the cache, the usage split, the batch augmentations, mixing, selection."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from mrpn.config import ConfigError
from mrpn.data.fer_cache import PRIVATE, PUBLIC, TEST, TRAIN, load_fer, usage_of
from mrpn.training.fer import (FerRecipe, augment, mix, random_erase, soft_targets, summarise, train_fer)

CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def _fer_folder(root, n_train=3, names_test=("PublicTest_1", "PrivateTest_2", "other_3")):
    rng = np.random.default_rng(0)
    for k, c in enumerate(CLASSES):
        for split, names in (("train", [f"Training_{k}{i}" for i in range(n_train)]),
                             ("test", [f"{n}{k}" for n in names_test])):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for n in names:
                cv2.imwrite(str(d / f"{n}.jpg"), rng.integers(0, 255, (48, 48), dtype=np.uint8))
    return root


def test_usage_comes_from_the_file_name():
    assert usage_of("/x/test/happy/PrivateTest_10131363.jpg", "test") == PRIVATE
    assert usage_of("PublicTest_1.jpg", "test") == PUBLIC
    assert usage_of("Training_5.jpg", "train") == TRAIN
    assert usage_of("img_5.jpg", "test") == TEST and usage_of("img_5.jpg", "train") == TRAIN
    assert usage_of("PrivateTest", "test") == PRIVATE  # the Kaggle CSV's Usage column value


def test_cache_round_trips_and_split_is_by_name(tmp_path):
    root = _fer_folder(tmp_path / "fer")
    cache = tmp_path / "cache"
    a = load_fer(root, cache)
    assert a.images.dtype == np.uint8 and a.images.shape == (7 * 6, 48, 48)
    assert sorted(np.bincount(a.usage).tolist()) == [7, 7, 7, 21]
    assert (np.bincount(a.labels[a.usage == PUBLIC], minlength=7) == 1).all()
    files = list(cache.glob("fer2013_*.npz"))
    assert len(files) == 1
    b = load_fer(root, cache)  # now from the cache file
    for x, y in ((a.images, b.images), (a.labels, b.labels), (a.usage, b.usage)):
        np.testing.assert_array_equal(x, y)
    img = cv2.imread(str(next((root / "test" / "happy").glob("PrivateTest_*.jpg"))), cv2.IMREAD_GRAYSCALE)
    i = np.flatnonzero((b.usage == PRIVATE) & (b.labels == CLASSES.index("happy")))[0]
    np.testing.assert_array_equal(b.images[i], img)
    # another image changes the file list, hence the key: a second cache file, no stale read
    cv2.imwrite(str(root / "train" / "sad" / "Training_new.jpg"), np.zeros((48, 48), np.uint8))
    c = load_fer(root, cache)
    assert len(c.images) == len(a.images) + 1 and len(list(cache.glob("fer2013_*.npz"))) == 2


def test_damaged_cache_is_rebuilt_and_cache_inside_data_is_refused(tmp_path):
    root = _fer_folder(tmp_path / "fer")
    a = load_fer(root, tmp_path / "c")
    f = next((tmp_path / "c").glob("*.npz"))
    f.write_bytes(b"not a zip")
    b = load_fer(root, tmp_path / "c")
    np.testing.assert_array_equal(a.images, b.images)
    with pytest.raises(ConfigError, match="inside the FER2013 data folder"):
        load_fer(root, root / "cache")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _still(**kw):
    base = dict(scale=(1.0, 1.0), rotate=0.0, shift=0.0, jitter=0.0, erase=0.0)
    return FerRecipe(**{**base, **kw})


def test_flip_only_mirrors_some_images_and_keeps_others():
    x = torch.rand(64, 1, 48, 48)
    y = augment(x.clone(), _gen(), _still())
    same = (y - x).abs().amax(dim=(1, 2, 3)) < 1e-5
    mirrored = (y - x.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert (same | mirrored).all() and same.any() and mirrored.any()


def test_zoom_out_shrinks_and_shift_moves_a_face():
    x = torch.zeros(8, 1, 48, 48)
    x[..., 12:36, 12:36] = 1.0  # a bright "face" filling the middle half
    out = augment(x.clone(), _gen(), _still(scale=(0.5, 0.5)))
    # zoomed out by 2: the square covers a quarter of its former area, still centred
    assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)) / 4, atol=0.01)
    assert out[:, 0, 24, 24].min() > 0.99 and out[:, 0, 14, 14].max() < 0.01
    moved = augment(x.clone(), _gen(), _still(shift=0.2))
    cols = torch.arange(48.0)
    cx = (moved[:, 0].sum(1) * cols).sum(1) / moved[:, 0].sum(dim=(1, 2))
    assert (cx - 23.5).abs().max() > 1.0 and (cx - 23.5).abs().max() <= 0.2 * 48 + 0.5


def test_photometric_jitter_and_erase_change_the_image_within_bounds():
    x = torch.full((32, 1, 48, 48), 0.5)
    x[..., :24] = 0.3
    y = augment(x.clone(), _gen(), _still(jitter=0.2))
    assert not torch.allclose(y, x) and y.min() >= 0 and y.max() <= 1
    assert ((y.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))).abs() <= 0.2 + 1e-5).all()
    x0 = torch.rand(16, 1, 48, 48)
    z = random_erase(x0, _gen(), 1.0)
    per_img = ((z == x0.mean(dim=(1, 2, 3), keepdim=True)) & (z != x0)).sum(dim=(1, 2, 3))
    assert per_img.min() >= 4 * 4  # every image lost at least a 10 %-of-side rectangle


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_mixed_targets_sum_to_one_and_match_the_images(mode):
    x, y = torch.rand(16, 1, 48, 48), torch.randint(0, 7, (16,))
    t = soft_targets(y, 7, 0.1)
    assert torch.allclose(t.sum(1), torch.ones(16))
    r = FerRecipe(mixup=0.4 if mode == "mixup" else 0.0, cutmix=1.0 if mode == "cutmix" else 0.0)
    xm, tm = mix(x, t, _gen(), np.random.default_rng(1), r)
    assert torch.allclose(tm.sum(1), torch.ones(16), atol=1e-6)
    assert not torch.allclose(xm, x)
    assert (tm >= 0).all()


def test_epoch_and_tta_are_chosen_on_public_only(tmp_path):
    def row(e, pub, pubf, priv):
        return {"epoch": e, "public_acc_plain": pub, "public_acc_flip": pubf, "private_acc_plain": priv,
                "private_acc_flip": priv + 0.01, "private_recall_plain": [priv] * 7,
                "private_recall_flip": [priv] * 7, "train_seconds": 1.0, "eval_seconds": 0.1}
    hist = [row(1, 0.60, 0.61, 0.90), row(2, 0.65, 0.64, 0.50), row(3, 0.62, 0.63, 0.95)]
    res = summarise(hist, {"task": "fer2013"}, CLASSES, "public", tmp_path)
    assert res["epoch"] == 2 and res["tta"] == "plain" and res["private_accuracy"] == 0.50
    assert json.loads((tmp_path / "metrics.json").read_text())["epoch"] == 2


def test_tiny_training_writes_history_weights_and_resumes(tmp_path):
    from mrpn.data.fer_cache import FerArrays

    rng = np.random.default_rng(0)
    n = 96
    usage = np.array([TRAIN] * 64 + [PUBLIC] * 16 + [PRIVATE] * 16, np.uint8)
    data = FerArrays(rng.integers(0, 255, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n), usage, CLASSES)
    r = FerRecipe(width=4, epochs=2, batch_size=32, mixup=0.2)
    logs = []
    res = train_fer(data, r, tmp_path / "run", log=logs.append)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2] and res["selected_on"] == "public"
    assert {"public_acc_flip", "private_acc_plain", "private_recall_flip"} <= set(hist[0])
    assert (tmp_path / "run" / "extractor.safetensors").is_file()
    logs.clear()
    again = train_fer(data, r, tmp_path / "run", log=logs.append)  # resumes after the last epoch: no work
    assert any("resuming after epoch 2" in m for m in logs) and again["epoch"] == res["epoch"]
    # a second cycle starts from the first run's chosen weights
    from safetensors.torch import load_file

    r2 = FerRecipe(width=4, epochs=1, batch_size=32, lr=0.0, init=str(tmp_path / "run" / "classifier.safetensors"))
    train_fer(data, r2, tmp_path / "run2", log=logs.append)
    first, second = load_file(tmp_path / "run" / "classifier.safetensors"), load_file(
        tmp_path / "run2" / "classifier.safetensors")
    torch.testing.assert_close(first["head.weight"], second["head.weight"])  # lr 0: nothing moved
    with pytest.raises(Exception, match="do not fit"):
        train_fer(data, FerRecipe(width=8, epochs=1, batch_size=32, init=r2.init), tmp_path / "run3")


def test_precision_and_device_are_recorded_and_not_part_of_the_recipe(tmp_path):
    """bf16 autocast (the GPU setting) trains too; a run resumes under another precision or device,
    because neither is in the recipe that last.pt is checked against."""
    from mrpn.data.fer_cache import FerArrays

    rng = np.random.default_rng(1)
    usage = np.array([TRAIN] * 64 + [PUBLIC] * 16 + [PRIVATE] * 16, np.uint8)
    data = FerArrays(rng.integers(0, 255, (96, 48, 48), dtype=np.uint8), rng.integers(0, 7, 96), usage, CLASSES)
    r = FerRecipe(extractor="resnet18", width=4, epochs=2, batch_size=32)
    res = train_fer(data, r, tmp_path / "run", device="cpu", precision="bf16")
    hist = json.loads((tmp_path / "run" / "history.json").read_text())["history"]
    assert [h["precision"] for h in hist] == ["bf16", "bf16"] and hist[0]["device"].startswith("cpu")
    assert res["device"].startswith("cpu") and np.isfinite(hist[-1]["train_loss"])
    logs = []
    again = train_fer(data, r, tmp_path / "run", log=logs.append, device="cpu", precision="fp32")
    assert any("resuming after epoch 2" in m for m in logs) and again["epoch"] == res["epoch"]


def test_facecnn_is_a_visual_extractor_option_and_checks_pretrained_shapes(tmp_path):
    from dataclasses import replace

    from safetensors.torch import save_file

    from mrpn import registry
    from mrpn.config import load_config
    from mrpn.models.build import build_model
    from mrpn.models.facecnn import FaceCNN
    from mrpn.training.fer import check_pretrained_v
    from mrpn.training.setup import load_pretrained_extractors

    ext = FaceCNN(1, 8)
    ext.train()
    assert ext(torch.rand(1, 1, 48, 48)).shape == (1, 256)  # one frame in train mode works
    p = tmp_path / "ext.safetensors"
    save_file({k: v.contiguous() for k, v in ext.state_dict().items()}, str(p),
              metadata={"task": "fer2013", "extractor": "facecnn", "width": "8", "in_channels": "1", "face_size": "48"})
    cfg = load_config("cpu", overrides=["model.kind=vm", "model.video_extractor=facecnn", "model.video_width=8",
                                        f"train.pretrained_v={p}"])
    model = build_model(cfg.model)
    assert load_pretrained_extractors(model, cfg)
    (m,) = registry.modalities_of("vm")
    torch.testing.assert_close(model.branches[m].extractor.state_dict(), ext.state_dict())
    model.eval()
    out = model({m: torch.rand(2, 3, 1, 48, 48), m + "_len": torch.tensor([3, 2])})
    assert out["scores"].shape == (2, cfg.model.n_classes)
    with pytest.raises(ConfigError, match="data.face_size=112"):
        check_pretrained_v(p, cfg.model, replace(cfg.data, face_size=112))
    with pytest.raises(ConfigError, match="model.video_width=16"):
        check_pretrained_v(p, replace(cfg.model, video_width=16), cfg.data)


def test_face_margin_follows_the_training_faces(corpus):
    """Training records the margin its faces were cut with; predict cuts faces with the model's margin."""
    from mrpn.config import Config
    from mrpn.data.face_geometry import FER_MARGIN, training_face_margin
    from mrpn.data.loader import CacheSource

    root, _ = corpus
    cfg = Config()
    cfg.data.dataset, cfg.data.face_margin = "custom", 0.4
    src = CacheSource(str(root / "cache"))
    assert training_face_margin(cfg, src) == (0.25, None)  # the cache's prepare.json wins over the config
    cfg.train.pretrained_v = "fer.safetensors"
    margin, note = training_face_margin(cfg, src)
    assert margin == 0.25 and "--margin 0" in note
    cfg.data.dataset = "paired"  # FER2013 faces: FER2013's own (tight) geometry
    assert training_face_margin(cfg, src) == (FER_MARGIN, None)


def test_predictor_crops_with_the_models_margin():
    from mrpn.inference.predictor import Predictor

    from mrpn.data.face_geometry import FER_MARGIN
    from mrpn.inference.model_io import default_model_path

    # the shipped model was trained on the paired benchmark's FER2013 faces: it crops as tightly as they are
    p = Predictor()
    assert p.face_config().margin == p.cfg.data.face_margin == FER_MARGIN
    # a model file older than data.face_margin (the demo's starting weights) keeps prepare's old default
    old = Predictor(str(default_model_path().parent / "demo-init.safetensors"))
    assert old.face_config().margin == old.cfg.data.face_margin == 0.25
    old.cfg.data.face_margin = 0.1
    assert old.face_config().margin == 0.1
