"""bench/face_robustness.py: each degradation does what its name says, measured independently of the code
that makes it (spread of a point, noise level, brightness, contrast, angle, offset, scale, covered rows),
and a baseline of other images is refused."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bench_modules import load


@pytest.fixture(scope="module")
def fr():
    return load("face_robustness")


def rng():
    return np.random.default_rng(0)


def flat(v: int) -> np.ndarray:
    return np.full((48, 48), v, np.uint8)


def point() -> np.ndarray:
    x = np.zeros((48, 48), np.uint8)
    x[24, 24] = 255
    return x


def disk(cx: float = 23.5, cy: float = 23.5, r: float = 8.0) -> np.ndarray:
    yy, xx = np.mgrid[:48, :48]
    return np.where((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r, 220, 30).astype(np.uint8)


def centroid(x: np.ndarray) -> np.ndarray:
    w = x.astype(np.float64) - x.min()
    yy, xx = np.mgrid[: x.shape[0], : x.shape[1]]
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()


def test_every_condition_keeps_the_picture_a_gray_uint8_face_of_the_same_size(fr):
    x = disk()
    for c in fr.CONDITIONS:
        y = fr.degrade(x, c, rng())
        assert y.dtype == np.uint8 and y.shape == x.shape, c
    assert fr.degrade(x, "clean", None) is x
    with pytest.raises(ValueError, match="unknown condition"):
        fr.degrade(x, "fog 3 m", rng())


def test_blurs_spread_a_point_by_their_width_and_keep_its_light(fr):
    def spread(y):   # the second moment of the light about its centre: sigma^2 per axis for a Gaussian
        w = y.astype(np.float64)
        yy, xx = np.mgrid[:48, :48]
        c = centroid(y)
        return ((w * ((xx - c[0]) ** 2 + (yy - c[1]) ** 2)).sum() / w.sum()) / 2

    big = np.zeros((48, 48), np.uint8)
    big[20:29, 20:29] = 255   # a bright square, so that rounding to uint8 keeps the tails
    s0 = spread(big)
    assert spread(fr.degrade(big, "blur 1 px", rng())) - s0 == pytest.approx(1.0, abs=0.25)
    assert spread(fr.degrade(big, "blur 2 px", rng())) - s0 == pytest.approx(4.0, abs=0.6)
    line = fr.degrade(big, "motion blur 7 px", rng()).astype(np.float64)
    assert line.sum() == pytest.approx(big.sum(), rel=0.03)
    # a 7-pixel line: the spread along one direction grows by (7^2 - 1) / 12 = 4, across it stays
    w = line - 0
    yy, xx = np.mgrid[:48, :48]
    c = centroid(line.astype(np.uint8))
    cov = np.cov(np.stack([xx.ravel() - c[0], yy.ravel() - c[1]]), aweights=w.ravel())
    cov0 = np.cov(np.stack([xx.ravel(), yy.ravel()]), aweights=big.astype(np.float64).ravel())
    ev, ev0 = np.linalg.eigvalsh(cov), np.linalg.eigvalsh(cov0)
    assert ev[1] - ev0[1] == pytest.approx(4.0, abs=1.0) and ev[0] - ev0[0] < 1.0


def test_low_resolution_removes_detail_finer_than_its_pixels(fr):
    noise = np.random.default_rng(1).integers(0, 256, (48, 48)).astype(np.uint8)   # detail at every pixel
    bars = np.zeros((48, 48), np.uint8)
    bars[:, (np.arange(48) // 8) % 2 == 0] = 255   # 8-pixel bars survive both
    step = lambda z: np.abs(np.diff(z.astype(float), axis=1)).mean()   # noqa: E731  (neighbour difference)
    s24, s16 = (step(fr.degrade(noise, f"low resolution {n} px", rng())) for n in (24, 16))
    assert s16 < s24 < step(noise) / 3
    for n in (24, 16):
        assert fr.degrade(bars, f"low resolution {n} px", rng()).std() > 80, n


def test_jpeg_loses_more_at_lower_quality(fr):
    x = np.random.default_rng(1).integers(0, 256, (48, 48)).astype(np.uint8)
    x = np.clip(disk().astype(np.int16) + (x // 8), 0, 255).astype(np.uint8)
    err = {q: np.abs(fr.degrade(x, f"jpeg quality {q}", rng()).astype(float) - x).mean() for q in (20, 10)}
    assert 0 < err[20] < err[10]


def test_photometric_conditions_set_the_level_and_noise_they_name(fr):
    y = fr.degrade(flat(128), "sensor noise 8 %", rng()).astype(float)
    assert y.mean() == pytest.approx(128, abs=1.5) and y.std() == pytest.approx(0.08 * 255, rel=0.1)
    y = fr.degrade(flat(200), "low light", rng()).astype(float)
    assert y.mean() == pytest.approx(50, abs=1.0) and y.std() == pytest.approx(3.0, rel=0.2)
    assert fr.degrade(flat(100), "overexposed", rng()).mean() == pytest.approx(180, abs=0.5)
    assert fr.degrade(flat(200), "overexposed", rng()).max() == 255
    x = disk()
    y = fr.degrade(x, "low contrast", rng()).astype(float)
    assert y.std() == pytest.approx(0.5 * x.std(), rel=0.05) and y.mean() == pytest.approx(x.mean(), abs=1.0)


def test_geometric_conditions_turn_move_and_scale_the_face_as_named(fr):
    bar = np.full((48, 48), 30, np.uint8)
    bar[22:26, 8:40] = 220
    y = fr.degrade(bar, "rotated 20°", rng()).astype(float) - 30
    yy, xx = np.mgrid[:48, :48]
    c = centroid(y.clip(0).astype(np.uint8) + 1)
    cov = np.cov(np.stack([xx.ravel() - c[0], yy.ravel() - c[1]]), aweights=y.clip(0).ravel())
    angle = np.degrees(0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1]))
    assert abs(angle) == pytest.approx(20, abs=2)
    x = disk()
    moved = centroid(fr.degrade(x, "shifted 15 %", rng())) - centroid(x)
    assert np.hypot(*moved) == pytest.approx(0.15 * 48, abs=0.5)
    area = lambda z: (z > 125).sum()   # noqa: E731
    assert area(fr.degrade(x, "tight box 80 %", rng())) / area(x) == pytest.approx(1 / 0.8 ** 2, rel=0.08)
    assert np.array_equal(fr.degrade(x, "mirrored", rng()), x[:, ::-1])


def test_lower_third_is_covered_and_the_rest_untouched(fr):
    x = np.random.default_rng(2).integers(0, 256, (48, 48)).astype(np.uint8)
    y = fr.degrade(x, "lower third covered", rng())
    assert np.array_equal(y[:32], x[:32])
    assert (y[32:] == round(x.mean())).all()


def test_draws_are_seeded(fr):
    x = disk()
    for c in ("motion blur 7 px", "sensor noise 8 %", "rotated 20°", "shifted 15 %"):
        a = fr.degrade(x, c, np.random.default_rng([0, 3, fr.CONDITIONS.index(c)]))
        b = fr.degrade(x, c, np.random.default_rng([0, 3, fr.CONDITIONS.index(c)]))
        assert np.array_equal(a, b), c


def test_a_baseline_of_other_images_is_refused(fr, tmp_path):
    import robustness

    f = tmp_path / "base.json"
    f.write_text(json.dumps({"model": "m", "usage": "private", "per_class": 50, "seed": 0, "conditions": {}}))
    same = {"usage": "private", "per_class": 50, "seed": 0}
    assert robustness.load_baseline(str(f), same, "bench/face_robustness.py")["model"] == "m"
    with pytest.raises(SystemExit, match="per_class 50 seed 0, not usage private per_class 100 seed 0"):
        robustness.load_baseline(str(f), dict(same, per_class=100), "bench/face_robustness.py")
    with pytest.raises(SystemExit, match="not a result of bench/face_robustness.py"):
        robustness.load_baseline(str(tmp_path / "none.json"), same, "bench/face_robustness.py")


def test_brief_gives_clean_mean_and_the_worst_collapse_per_result(fr):
    import robustness

    classes = ["neutral", "happy", "sad"]
    true = ["neutral", "happy", "sad", "sad"]
    res = robustness.with_mean({"model": "m", "conditions": {
        "clean": robustness.summary(true, true, true, classes),
        "blur 2 px": robustness.summary(["neutral"] * 4, true, true, classes),
        "mirrored": robustness.summary(["neutral", "happy", "sad", "happy"], true, true, classes)}})
    assert res["mean_degraded_accuracy"] == pytest.approx((0.25 + 0.75) / 2)
    row = robustness.brief([res], ["shipped"]).splitlines()[2]
    assert row == "| shipped | 100.0 % | 50.0 % | 100 % neutral (blur 2 px) |"
