"""Camera conditions on training faces (features/camera.py): each does what it says on the images it picks,
nothing is drawn when it is off, and older FER2013 runs resume and reproduce."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mrpn.features.camera import K, augment, blur_kernels
from mrpn.training.fer import FerRecipe, augment as fer_augment


def faces(b: int = 64, seed: int = 0) -> torch.Tensor:
    """b gray 48x48 'faces' in [0, 1]: a bright disk with fine random texture on a mid background."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    disk = (((xx - 23.5) ** 2 + (yy - 23.5) ** 2) <= 12 ** 2).float()
    return (0.3 + 0.3 * disk + 0.2 * torch.rand(b, 1, 48, 48, generator=g)).clamp(0, 1)


def fine_detail(x: torch.Tensor) -> torch.Tensor:
    """Per image, the mean absolute difference of horizontal neighbours."""
    return (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))


def test_off_draws_nothing_and_returns_the_batch():
    x = faces()
    g = torch.Generator().manual_seed(3)
    state = g.get_state().clone()
    assert augment(x, g) is x
    assert torch.equal(g.get_state(), state)


def test_kernels_are_normalised_gaussians_or_lines_of_the_named_sizes():
    n = 400
    k = blur_kernels(n, torch.Generator().manual_seed(0))
    assert k.shape == (n, K, K) and torch.allclose(k.sum(dim=(1, 2)), torch.ones(n))
    is_line = torch.rand(n, 4, generator=torch.Generator().manual_seed(0))[:, 0] < 0.5   # the same first draw
    assert 150 < int(is_line.sum()) < 250
    r = torch.arange(K, dtype=torch.float32) - K // 2
    yy, xx = r[:, None].expand(K, K), r[None, :].expand(K, K)
    mx, my = (k * xx).sum(dim=(1, 2)), (k * yy).sum(dim=(1, 2))
    cxx = (k * xx ** 2).sum(dim=(1, 2)) - mx ** 2
    cyy = (k * yy ** 2).sum(dim=(1, 2)) - my ** 2
    cxy = (k * xx * yy).sum(dim=(1, 2)) - mx * my
    cov = torch.stack([torch.stack([cxx, cxy], -1), torch.stack([cxy, cyy], -1)], -2)
    small, large = torch.linalg.eigvalsh(cov).unbind(-1)
    # a Gaussian is round, sigma 0.5-2 px (cut at the 9-px kernel: at most 1.85 px)
    g = ~is_line
    assert torch.allclose(small[g], large[g], rtol=0.02, atol=1e-3)
    assert small[g].sqrt().min() >= 0.45 and large[g].sqrt().max() <= 1.9
    assert small[g].sqrt().min() < 0.6 and large[g].sqrt().max() > 1.7
    # a line of length L has variance (L^2 - 1) / 12 along it (3 px: 0.67, 9 px: 6.7) and little across
    length = (12 * large[is_line] + 1).sqrt()
    assert length.min() >= 2.7 and length.max() <= 9.3 and length.min() < 3.5 and length.max() > 8.5
    assert small[is_line].max() < 0.35


def test_each_condition_changes_the_images_it_picks_as_named():
    x = faces(128)
    y = augment(x, torch.Generator().manual_seed(1), blur=1.0)
    assert (fine_detail(y) < 0.8 * fine_detail(x)).all()
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=0.01)   # blur keeps the light
    y = augment(x, torch.Generator().manual_seed(1), lowres=1.0)
    assert (fine_detail(y) < 0.8 * fine_detail(x)).all()
    dim = x * 0.5
    y = augment(dim, torch.Generator().manual_seed(1), exposure=1.0)
    gain = y.mean(dim=(1, 2, 3)) / dim.mean(dim=(1, 2, 3))
    assert gain.min() >= 0.25 - 1e-4 and gain.max() <= 1.8 + 0.05 and gain.min() < 0.5 and gain.max() > 1.4
    flat = torch.full((128, 1, 48, 48), 0.5)
    y = augment(flat, torch.Generator().manual_seed(1), noise=1.0)
    sd = y.std(dim=(1, 2, 3))
    assert sd.min() > 0.008 and sd.max() < 0.11
    assert y.min() >= 0 and y.max() <= 1


def test_a_probability_picks_about_that_share_of_the_batch():
    x = faces(400)
    for cond in ("blur", "lowres", "exposure", "noise"):
        y = augment(x, torch.Generator().manual_seed(2), **{cond: 0.3})
        changed = int(((y - x).abs().amax(dim=(1, 2, 3)) > 1e-6).sum())
        assert 80 < changed < 160, (cond, changed)


def test_fer_recipe_without_camera_keys_augments_as_before_they_existed():
    """Values of training.fer.augment at commit abdcc06 (before features/camera.py), three batches from one
    generator with random erasing on: the camera step draws nothing when it is off."""
    g = torch.Generator().manual_seed(5)
    x = torch.cat([fer_augment(faces(32), g, FerRecipe(erase=0.5)) for _ in range(3)])
    assert float(x.double().sum()) == pytest.approx(95500.57128, abs=1e-3)
    assert [float(x[0, 0, 10, 10]), float(x[40, 0, 30, 20]), float(x[95, 0, 5, 40])] == pytest.approx(
        [0.3898086, 0.8511677, 0.5479599], abs=1e-6)
    assert torch.rand(1, generator=g).item() == pytest.approx(0.7860129, abs=1e-6)   # the generator's state
    c = fer_augment(faces(32), torch.Generator().manual_seed(5), FerRecipe(cam_blur=1.0, cam_noise=1.0))
    a = fer_augment(faces(32), torch.Generator().manual_seed(5), FerRecipe())
    assert not torch.equal(a, c) and c.min() >= 0 and c.max() <= 1


def test_an_older_run_resumes_and_init_takes_an_extractor(tmp_path):
    """A last.pt written before the camera keys existed resumes; --init takes an extractor.safetensors."""
    from safetensors.torch import load_file

    from mrpn.data.fer_cache import PRIVATE, PUBLIC, TRAIN, FerArrays
    from mrpn.training.checkpoint import load_checkpoint, save_checkpoint
    from mrpn.training.fer import train_fer

    rng = np.random.default_rng(0)
    usage = np.array([TRAIN] * 64 + [PUBLIC] * 16 + [PRIVATE] * 16, np.uint8)
    data = FerArrays(rng.integers(0, 255, (96, 48, 48), dtype=np.uint8), rng.integers(0, 7, 96), usage,
                     ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"])
    r = FerRecipe(width=4, epochs=1, batch_size=32)
    train_fer(data, r, tmp_path / "run", log=lambda m: None)
    last = tmp_path / "run" / "last.pt"
    ck = load_checkpoint(last)
    for k in ("cam_blur", "cam_lowres", "cam_exposure", "cam_noise"):
        del ck["config"][k]                       # as a run of an older version wrote it
    save_checkpoint(last, ck)
    logs = []
    train_fer(data, r, tmp_path / "run", log=logs.append)
    assert any("resuming after epoch 1" in m for m in logs)
    with pytest.raises(Exception, match="other pretraining settings"):
        train_fer(data, FerRecipe(width=4, epochs=1, batch_size=32, cam_noise=0.5), tmp_path / "run")
    ext = tmp_path / "run" / "extractor.safetensors"
    train_fer(data, FerRecipe(width=4, epochs=1, batch_size=32, lr=0.0, init=str(ext)), tmp_path / "run2",
              log=lambda m: None)
    a, b = load_file(ext), load_file(tmp_path / "run2" / "extractor.safetensors")
    learned = [k for k in a if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in learned)   # lr 0: the extractor as given
    hist = json.loads((tmp_path / "run2" / "history.json").read_text())
    assert hist["recipe"]["init"] == str(ext) and hist["recipe"]["cam_noise"] == 0.0
