"""Recording conditions on the training wave (features/acoustics.py): each draw does what it says, the
whole stays seeded and off by default, the loader applies it in training only, the config checks it."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mrpn.config import ConfigError, DataConfig, config_from_dict, load_config
from mrpn.features import acoustics

SR = 16000


def speech_like(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * 120 * t) / k for k in range(1, 25)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return ((x - x.mean()) / x.std()).astype(np.float32)


def test_room_direct_to_reverberant_ratio_and_decay():
    h = acoustics.room(0.6, np.random.default_rng(0), SR, drr_db=6.0)
    assert np.sum(h ** 2) == pytest.approx(1.0, rel=1e-5)
    assert 10 * np.log10(h[0] ** 2 / np.sum(h[1:] ** 2)) == pytest.approx(6.0, abs=1e-3)
    tail = h[1:] ** 2
    assert 10 * np.log10(tail[:800].mean() / tail[-800:].mean()) > 45        # 60 dB over 0.6 s, ~0.55 s apart


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_noise_colour_is_the_slope_of_its_spectrum(beta):
    n = acoustics.coloured_noise(1 << 16, beta, np.random.default_rng(0))
    assert n.std() == pytest.approx(1.0, rel=1e-3)
    f = np.fft.rfftfreq(n.size, 1 / SR)
    p = np.abs(np.fft.rfft(n)) ** 2
    band = (f > 100) & (f < 6000)
    slope = np.polyfit(np.log10(f[band]), np.log10(p[band]), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.1)


def test_lowpass_removes_the_band_above_its_cutoff():
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    y = acoustics.lowpass(x, 4000.0, SR)
    f = np.fft.rfftfreq(SR, 1 / SR)
    px, py = np.abs(np.fft.rfft(x)) ** 2, np.abs(np.fft.rfft(y)) ** 2
    assert py[f > 4000].sum() < 1e-6 * px[f > 4000].sum()
    assert py[f < 3700].sum() == pytest.approx(px[f < 3700].sum(), rel=1e-4)


def test_augment_is_off_by_default_seeded_and_standardised():
    x = speech_like()
    d = DataConfig()
    assert not acoustics.active(d) and acoustics.augment(x, np.random.default_rng(0), d) is x
    on = replace(d, wave_noise=1.0, wave_reverb=1.0, wave_lowpass=1.0, wave_snr_min=5.0, wave_snr_max=5.0)
    a = acoustics.augment(x, np.random.default_rng([0, 3, 7]), on)
    b = acoustics.augment(x, np.random.default_rng([0, 3, 7]), on)
    c = acoustics.augment(x, np.random.default_rng([0, 4, 7]), on)
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert a.shape == x.shape and a.dtype == np.float32
    assert abs(float(a.mean())) < 1e-4 and float(a.std()) == pytest.approx(1.0, rel=1e-3)
    assert np.corrcoef(a, x)[0, 1] < 0.95                                   # changed, but still the same voice
    assert np.corrcoef(a, x)[0, 1] > 0.2


def test_empty_silent_and_low_rate_waves():
    d = replace(DataConfig(), wave_noise=1.0, wave_reverb=1.0, wave_lowpass=1.0)
    for n in (0, 1):
        w = np.zeros(n, np.float32)
        assert acoustics.augment(w, np.random.default_rng(0), d) is w
    silent = acoustics.augment(np.zeros(SR, np.float32), np.random.default_rng(0), d)
    assert np.isfinite(silent).all() and not silent.any()                  # noise scales with the clip's power
    low = replace(d, sample_rate=8000, wave_noise=0.0, wave_reverb=0.0)     # the cut-off stays below 4 kHz
    x = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    y = acoustics.augment(x, np.random.default_rng(0), low)
    f = np.fft.rfftfreq(8000, 1 / 8000)
    assert (np.abs(np.fft.rfft(y))[f > 3800] ** 2).sum() < 1e-6 * (np.abs(np.fft.rfft(x))[f > 3800] ** 2).sum()


def test_noise_alone_lands_at_the_drawn_snr():
    x = speech_like()
    d = replace(DataConfig(), wave_noise=1.0, wave_snr_min=10.0, wave_snr_max=10.0)
    y = acoustics.augment(x, np.random.default_rng(1), d) * 1.0
    # undo the re-standardisation: the mix had the clean voice at unit power plus noise at -10 dB
    mix = y * np.sqrt(1 + 10 ** (-10 / 10))
    assert 10 * np.log10(np.mean(x ** 2) / np.mean((mix - x) ** 2)) == pytest.approx(10.0, abs=0.3)


def test_loader_applies_conditions_in_training_only(corpus):
    from mrpn.data.loader import EmotionDataset
    from mrpn.training.setup import make_source

    root, _ = corpus
    base = ["data.dataset=custom", "data.cache=" + str(root / "cache"), "data.gray=true", "data.face_size=32",
            "data.time_aug=false", "data.specaug_freq=0", "data.specaug_time=0", "model.kind=am"]
    plain = load_config("cpu", overrides=base)
    noisy = load_config("cpu", overrides=[*base, "data.wave_noise=1", "data.wave_snr_max=5"])
    src = make_source(plain, set())
    idx = list(range(len(src.clips())))

    def first(cfg, train):
        return EmotionDataset(src, idx, cfg.data, ("a",), train=train, seed=0)[0]["a"]

    assert not np.allclose(first(plain, True).numpy(), first(noisy, True).numpy(), atol=1e-3)
    assert np.array_equal(first(plain, False).numpy(), first(noisy, False).numpy())


def test_config_checks_and_older_configs():
    with pytest.raises(ConfigError, match="wave_noise"):
        load_config("cpu", overrides=["data.wave_noise=1.5"])
    with pytest.raises(ConfigError, match="wave_snr_min=20 is above"):
        load_config("cpu", overrides=["data.wave_snr_min=20", "data.wave_snr_max=10"])
    d = load_config("cpu").to_dict()
    for k in ("wave_noise", "wave_snr_min", "wave_snr_max", "wave_reverb", "wave_lowpass"):
        d["data"].pop(k)                                                     # a run saved before the keys
    old = config_from_dict(d)
    assert old.data.wave_noise == 0.0 and old.data.wave_snr_max == 30.0 and not acoustics.active(old.data)
