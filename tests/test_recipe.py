"""The parts of the training recipe (issue 9): each does what it claims to the input, fast."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mrpn.config import config_from_dict, load_config
from mrpn.features.spectrogram import audio_segments, logmel_segments, mel_filterbank, spec_augment


def test_mel_filterbank_is_triangular_and_ordered():
    fb = mel_filterbank(257, 64, 16000)
    assert fb.shape == (64, 257) and (fb >= 0).all()
    peaks = fb.argmax(1)
    assert (peaks[1:] >= peaks[:-1]).all()                  # band centres rise with the band index
    assert (fb > 0).sum(1).min() >= 1                       # no empty band at 64 mels over 257 bins
    widths = (fb > 0).sum(1).float()
    assert widths[-1] > 3 * widths[5]                       # mel bands widen with frequency


def test_logmel_puts_a_tone_in_the_right_band():
    sr = 16000
    t = torch.arange(sr * 2) / sr
    for f in (300.0, 3000.0):
        x = logmel_segments(torch.sin(2 * math.pi * f * t), sr, 1.0, 0.5, 512, (64, 50))
        assert x.shape == (3, 1, 64, 50)                    # (2 s - 1 s) / 0.5 s + 1 segments
        band = int(x[0, 0].mean(1).argmax())
        fb = mel_filterbank(257, 64, sr)
        centre_hz = float(fb[band].argmax()) * sr / 2 / 256
        assert abs(centre_hz - f) / f < 0.15, (f, centre_hz)


def test_audio_segments_dispatches_on_the_front_end():
    wave = torch.randn(24000)
    lin = load_config("paper").data
    mel = load_config("paper", overrides=["data.audio_frontend=logmel", "data.spec_size=40x25"]).data
    assert audio_segments(wave, lin).shape[-2:] == (256, 250)
    assert audio_segments(wave, mel).shape[-2:] == (40, 25)


def test_spec_augment_masks_bands_and_spans_without_touching_the_input():
    x = torch.randn(4, 1, 64, 50)
    rng = np.random.default_rng(0)
    y = spec_augment(x, rng, freq_width=10, time_width=8, n_masks=2)
    assert not torch.equal(x, y) and y.shape == x.shape
    changed = (x != y)
    # every changed value equals its segment's fill value (the segment mean): no new extremes
    for s in range(4):
        vals = y[s][changed[s]]
        if vals.numel():
            assert torch.allclose(vals, x[s].mean().expand_as(vals))
    # masks are whole rows or whole columns
    rows = changed[:, 0].all(dim=2).any(1)
    cols = changed[:, 0].all(dim=1).any(1)
    assert (rows | cols).any()
    assert torch.equal(spec_augment(x, rng, 0, 0), x)


def test_mixup_mixes_inputs_and_weights_sum_to_one():
    from mrpn.training.loop import mixup_batch

    b = {"a": torch.randn(6, 3, 1, 8, 8), "a_len": torch.tensor([3, 2, 1, 3, 2, 1]), "label": torch.arange(6),
         "index": torch.arange(6)}
    g = torch.Generator().manual_seed(0)
    out, y2, lam = mixup_batch(b, 0.4, g, ("a",))
    assert 0.5 <= lam < 1.0
    # labels are 0..5, so the partners' labels are the partners' positions
    partner = y2
    assert sorted(partner.tolist()) == list(range(6))       # a permutation of the batch
    assert torch.allclose(out["a"], lam * b["a"] + (1 - lam) * b["a"][partner], atol=1e-6)
    assert torch.equal(out["a_len"], torch.maximum(b["a_len"], b["a_len"][partner]))
    assert torch.equal(out["label"], b["label"])            # the dominant clip keeps its label
    # soft targets lam * onehot(y) + (1 - lam) * onehot(y2) are a distribution
    soft = lam * torch.nn.functional.one_hot(b["label"], 6) + (1 - lam) * torch.nn.functional.one_hot(y2, 6)
    assert torch.allclose(soft.sum(1), torch.ones(6, dtype=soft.dtype))


@pytest.mark.parametrize("name", ["ravdess_paper12", "ravdess_hicmae6", "cremad_paper"])
def test_inner_split_never_holds_a_test_actor(name):
    from mrpn.data.folds import inner_val_actors, load_protocol

    p = load_protocol(name)
    seen = set()
    for k, fold in enumerate(p.folds, 1):
        inner = inner_val_actors(p, k, fold.train_actors)
        assert inner and not set(inner) & set(fold.val_actors)
        assert set(inner) <= set(fold.train_actors)
        assert inner == inner_val_actors(p, k, fold.train_actors)    # deterministic
        seen.add(tuple(inner))
    assert len(seen) == len(p.folds)                                   # a different pair per fold


def test_inner_actors_names_a_fresh_pair_of_training_actors_only():
    from mrpn.config import ConfigError
    from mrpn.data.folds import inner_val_actors, load_protocol

    p = load_protocol("ravdess_paper12")
    train = p.folds[0].train_actors
    assert inner_val_actors(p, 1, train) == ["03", "04"]                       # the next fold's pair
    assert inner_val_actors(p, 1, train, " 24,23 ") == ["23", "24"]           # named instead
    with pytest.raises(ValueError, match="01 not among its training actors"):
        inner_val_actors(p, 1, train, "01,23")                                 # a test actor: refused
    with pytest.raises(ValueError, match="no training actor would be left"):
        inner_val_actors(p, 1, train, ",".join(train))
    with pytest.raises(ConfigError, match="train.inner_val=true"):
        load_config("cpu", overrides=["train.inner_actors=23,24"])
    cfg = load_config("cpu", overrides=["train.inner_val=true", "train.inner_actors=23,24"])
    assert cfg.train.inner_actors == "23,24"


def test_schedules_rise_and_fall():
    from mrpn.training.run import make_scheduler

    for sched in ("onecycle", "cosine"):
        cfg = load_config("cpu", overrides=[f"train.schedule={sched}", "train.epochs=4", "train.lr=1e-2",
                                            "train.warmup_epochs=1"])
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.train.lr)
        per_epoch, per_step = make_scheduler(cfg, opt, steps_per_epoch=10)
        assert per_epoch is None
        lrs = []
        for _ in range(40):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            per_step.step()
        peak = int(np.argmax(lrs))
        assert 5 <= peak <= 12 and max(lrs) == pytest.approx(1e-2, rel=0.05)
        assert lrs[-1] < 0.05 * max(lrs) and lrs[0] < 0.2 * max(lrs)
    cfg = load_config("cpu", overrides=["train.schedule=plateau"])
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    per_epoch, per_step = make_scheduler(cfg, opt, 10)
    assert per_step is None and isinstance(per_epoch, torch.optim.lr_scheduler.ReduceLROnPlateau)


def test_extractor_lr_scale_puts_every_extractor_in_a_slower_group_through_the_schedule():
    from mrpn.models.build import build_model
    from mrpn.training.setup import make_scheduler, optimizer_groups

    cfg = load_config("cpu", overrides=["model.kind=n2", "train.schedule=onecycle", "train.epochs=2",
                                        "train.lr=1e-2", "train.extractor_lr_scale=0.1"])
    net = build_model(cfg.model)
    groups = optimizer_groups(net, cfg)
    ext = {id(p) for b in net.branches.values() for p in b.extractor.parameters()}
    assert [g["lr"] for g in groups] == [1e-2, pytest.approx(1e-3)]
    assert {id(p) for p in groups[1]["params"]} == ext and not ext & {id(p) for p in groups[0]["params"]}
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
    opt = torch.optim.AdamW(groups, lr=cfg.train.lr)
    _, sched = make_scheduler(cfg, opt, steps_per_epoch=10)
    peaks = [0.0, 0.0]
    for _ in range(20):
        peaks = [max(pk, g["lr"]) for pk, g in zip(peaks, opt.param_groups)]
        opt.step()
        sched.step()
    assert peaks[0] == pytest.approx(1e-2, rel=0.05) and peaks[1] == pytest.approx(1e-3, rel=0.05)
    one = optimizer_groups(net, load_config("cpu", overrides=["model.kind=n2"]))  # the default: one group
    assert len(one) == 1 and len(one[0]["params"]) == len(list(net.parameters()))


def test_paired_fuzzy_and_extractor_lr_scale_are_checked_at_load_time():
    from mrpn.config import ConfigError

    with pytest.raises(ConfigError, match="data.dataset=paired"):
        load_config("cpu", overrides=["data.paired_fuzzy=0.3"])
    with pytest.raises(ConfigError, match="extractor_lr_scale"):
        load_config("cpu", overrides=["train.extractor_lr_scale=0"])
    assert load_config("cpu", overrides=["data.dataset=paired", "data.paired_fuzzy=0.3"]).data.paired_fuzzy == 0.3
    with pytest.raises(ConfigError, match="data.paired_video=0.5 .*data.dataset=paired"):
        load_config("cpu", overrides=["data.paired_video=0.5"])
    with pytest.raises(ConfigError, match="paired_video"):
        load_config("cpu", overrides=["data.dataset=paired", "data.paired_video=2"])
    assert load_config("cpu", overrides=["data.dataset=paired", "data.paired_video=1"]).data.paired_video == 1.0


def test_configs_saved_before_the_recipe_keep_their_meaning():
    """A checkpoint's config without the new keys means linear spectrograms, ResNet-18, plateau."""
    d = load_config("cpu").to_dict()
    for section, key in (("data", "audio_frontend"), ("model", "audio_extractor"), ("train", "schedule"),
                         ("train", "inner_val"), ("data", "specaug_freq")):
        d[section].pop(key)
    cfg = config_from_dict(json.loads(json.dumps(d)))
    assert (cfg.data.audio_frontend, cfg.model.audio_extractor, cfg.train.schedule) == ("linear", "resnet18",
                                                                                         "plateau")
    assert cfg.train.inner_val is False and cfg.data.specaug_freq == 0


def test_cnn_extractor_every_parameter_gets_a_gradient():
    from mrpn.models.build import ModelConfig, build_model

    m = build_model(ModelConfig(kind="n2", n_classes=3, audio_extractor="cnn", video_extractor="cnn",
                                audio_width=4, video_width=4, video_in_channels=1, agg_hidden=8,
                                fusion_hidden=8, extractor_dropout=0.1))
    batch = {"v": torch.randn(4, 3, 1, 24, 24), "v_len": torch.tensor([3, 2, 3, 1]),
             "a": torch.randn(4, 2, 1, 32, 20), "a_len": torch.tensor([2, 2, 1, 1])}
    from mrpn.models.loss import mrpn_loss

    loss, _ = mrpn_loss(m(batch), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


@pytest.mark.slow
def test_inner_validation_fold_reports_both_selections(corpus):
    """A fold trained with train.inner_val chooses its epoch on training actors and says so."""
    from mrpn.training.run import run_fold

    root, _ = corpus
    cfg = load_config("cpu", overrides=[
        "data.face_size=32", "data.spec_size=16x10", "data.audio_frontend=logmel", "model.audio_extractor=cnn",
        "model.audio_width=4", "model.agg_hidden=8", "model.fusion_hidden=8", "train.epochs=2",
        "train.batch_size=4", "train.schedule=onecycle", "train.inner_val=true", "train.mixup=0.4",
        "train.label_smoothing=0.1", "data.specaug_freq=3", "data.specaug_time=2", "data.workers=0",
        "data.dataset=synth", "model.kind=am", f"data.cache={root / 'cache'}", f"out={root / 'runs'}",
        "name=inner", "train.early_stop=0"])
    m = run_fold(cfg, 1, root / "runs" / "inner" / "fold_01", progress=False, log=lambda *a: None)
    assert m["selection"] == "inner" and m["inner_val_actors"]
    assert not set(m["inner_val_actors"]) & set(m["val_actors"])
    assert m["n_train"] + m["n_val"] < 12                   # the inner actors left the training set
    hist = json.loads((root / "runs" / "inner" / "fold_01" / "history.json").read_text())
    assert all("inner_accuracy" in r for r in hist)
    assert m["accuracy_test_selected"] >= m["accuracy_inner_selected"]
    assert m["threads"] >= 1
    # what the run was computed on: without it, two runs that differ cannot be told from a bug
    assert m["machine"]["torch"] == m["torch"] and m["machine"]["cpus"] >= 1
    assert {"cpu", "cpu_capability", "numpy", "python"} <= set(m["machine"])


@pytest.mark.slow
def test_select_last_keeps_the_final_epoch_and_scores_every_head_on_the_inner_actors(corpus):
    """train.select=last (the shipped model): best.pt is the last epoch, whatever the inner actors say; the
    inner actors are still scored, per head, with confusion matrices (what a choice between models may use)."""
    from mrpn.training.checkpoint import load_checkpoint
    from mrpn.training.run import run_fold

    root, _ = corpus
    cfg = load_config("cpu", overrides=[
        "data.face_size=32", "data.spec_size=16x10", "model.audio_width=4", "model.video_width=4",
        "model.agg_hidden=8", "model.fusion_hidden=8", "train.epochs=3", "train.batch_size=4",
        "train.inner_val=true", "train.select=last", "data.workers=0", "data.dataset=synth", "model.kind=n2",
        f"data.cache={root / 'cache'}", f"out={root / 'runs'}", "name=last", "train.early_stop=0"])
    d = root / "runs" / "last" / "fold_01"
    m = run_fold(cfg, 1, d, progress=False, log=lambda *a: None)
    assert m["best_epoch"] == 3 and load_checkpoint(d / "best.pt")["epoch"] == 3
    assert m["accuracy"] == pytest.approx(m["accuracy_last_epoch"])
    n = len(m["class_names"])
    for head in (m, m["modalities"]["v"], m["modalities"]["a"], m["inner"], m["inner"]["modalities"]["a"]):
        assert len(head["confusion"]) == n and all(len(r) == n for r in head["confusion"])
    inner_n = sum(map(sum, m["inner"]["confusion"]))
    assert inner_n > 0 and inner_n == sum(map(sum, m["inner"]["modalities"]["v"]["confusion"]))
    with pytest.raises(Exception, match="train.select"):
        load_config("cpu", overrides=["train.select=first"])


def test_cv_summary_reports_every_selection(tmp_path):
    from mrpn.training.cv import summarise

    for k, (acc, inner, test, last) in enumerate([(0.5, 0.5, 0.6, 0.55), (0.7, 0.7, 0.75, 0.7)], 1):
        d = tmp_path / f"fold_{k:02d}"
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps({
            "fold": f"F{k}", "accuracy": acc, "uar": acc, "macro_f1": acc, "selection": "inner",
            "accuracy_inner_selected": inner, "accuracy_test_selected": test, "accuracy_last_epoch": last}))
    s = summarise(tmp_path)
    assert s["selection"] == ["inner"]
    assert s["accuracy_inner_selected"]["mean"] == pytest.approx(0.6)
    assert s["accuracy_test_selected"]["mean"] == pytest.approx(0.675)
    assert s["accuracy_test_selected"]["per_fold"] == {"F1": 0.6, "F2": 0.75}


def test_am_fold_table_puts_each_fold_in_its_column(tmp_path):
    """tools/am_fold_table.py: per-fold values land under their fold, missing folds show a dash and
    do not enter the mean, and the paper's row is Table 1's AM (T) with its 69.3 % mean."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("am_fold_table", Path(__file__).parent.parent / "tools" / "am_fold_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    summary = {"accuracy_test_selected": {"per_fold": {"A1,2": 0.7, "A23,24": 0.5}}}
    baselines = {"baselines": {"mfcc_svm": {"folds": {"A3,4": {"accuracy": 0.4}}}}}
    rows = tool.build(summary, baselines, "T")
    test_sel = next(r for r in rows if "test fold" in r["row"])
    assert test_sel["per_fold"][0] == pytest.approx(70) and test_sel["per_fold"][-1] == pytest.approx(50)
    assert test_sel["n_folds"] == 2 and test_sel["mean"] == pytest.approx(60) and test_sel["std"] == pytest.approx(10)
    assert next(r for r in rows if "MFCC" in r["row"])["per_fold"][1] == pytest.approx(40)
    paper = rows[-1]
    assert paper["n_folds"] == 12 and round(paper["mean"], 1) == 69.3
    md = tool.markdown(rows)
    assert "| 70.0 | – |" in md and "69.3 ± 8.5 (12)" in md


def test_am_fold_table_takes_several_baseline_files_and_names_the_cnn_by_its_epochs():
    """Two bench outputs (the 24-epoch CNN with the other baselines, an 80-epoch CNN alone): each CNN gets
    its own row named by its epoch count; the second file adds only the baseline it holds."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("am_fold_table", Path(__file__).parent.parent / "tools" / "am_fold_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    first = {"baselines": {"mfcc_svm": {"folds": {"A1,2": {"accuracy": 0.4}}},
                           "cnn": {"folds": {"A1,2": {"accuracy": 0.5, "config": {"epochs": 24}}}}}}
    second = {"baselines": {"cnn": {"folds": {"A1,2": {"accuracy": 0.6, "config": {"epochs": 80}},
                                              "A3,4": {"accuracy": 0.7, "config": {"epochs": 80}}}}}}
    rows = tool.build({}, [first, second], "T")
    names = [r["row"] for r in rows]
    assert names.count("baseline: log-mel clip CNN from scratch, 24 epochs") == 1
    cnn80 = next(r for r in rows if r["row"] == "baseline: log-mel clip CNN from scratch, 80 epochs")
    assert cnn80["per_fold"][:2] == [pytest.approx(60), pytest.approx(70)] and cnn80["n_folds"] == 2
    assert sum("MFCC" in n for n in names) == 1 and not any("GE2E" in n for n in names)
    # --versus: the run's rows against each baseline over the folds both have (A1,2 only for the inner row
    # here, too few for a standard error; the last-epoch row has two)
    rows = tool.build({"accuracy_last_epoch": {"per_fold": {"A1,2": 0.65, "A3,4": 0.8}}}, [first, second], "T")
    text = tool.versus_baselines(rows)
    assert "recipe, last epoch (no choice) − log-mel clip CNN from scratch, 80 epochs: +7.5 ± 2.5 points over " \
           "2 folds; better on 2, worse on 0" in text
    assert "24 epochs" not in text      # one shared fold: no standard error, no line


def test_am_fold_table_beside_rows_and_fit_statistics(tmp_path):
    """--beside adds another run's three rows under its own label; --fit reads each fold's history: the first
    epoch at 99 % training accuracy, inner accuracy n-k epochs before the end and at the end, and whether
    the last epoch beat the inner choice on the test pair."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("am_fold_table", Path(__file__).parent.parent / "tools" / "am_fold_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    other = {"accuracy_inner_selected": {"per_fold": {"A5,6": 0.6}}}
    rows = tool.build({}, {}, "NT", beside=("T", other))
    row = next(r for r in rows if r["row"].startswith("T: ") and "inner" in r["row"])
    assert row["per_fold"][2] == pytest.approx(60) and row["n_folds"] == 1
    assert rows[-1]["row"] == "paper, Table 1, AM (NT)"
    fold = tmp_path / "fold_01"
    fold.mkdir()
    hist = [{"epoch": e, "train_accuracy": min(1.0, 0.5 + 0.1 * e), "inner_accuracy": 0.8 if e in (5, 6) else 0.1 * e}
            for e in range(1, 8)]
    (fold / "history.json").write_text(json.dumps(hist))
    (fold / "metrics.json").write_text(json.dumps({"fold": "A1,2", "accuracy_last_epoch": 0.7,
                                                   "accuracy_inner_selected": 0.6, "wall_time_s": 12.0}))
    text = tool.fit(tmp_path, decay_epochs=3)
    # train 0.5 + 0.1e first reaches 0.99 at e = 5; inner at epoch 7-3 = 4 is 40 %, at the end 70 %; its
    # peak, 80 %, first reached at epoch 5
    assert "| A1,2 | 5 | 100.0 | 40.0 (4) → 70.0 (7) | 80.0 (5) | better | 12 |" in text
    # a run shorter than the decay window starts from its first epoch, and says so
    assert "| A1,2 | 5 | 100.0 | 10.0 (1) → 70.0 (7) | 80.0 (5) | better | 12 |" in tool.fit(tmp_path, decay_epochs=28)


def test_am_fold_table_paired_counts_folds_both_runs_have():
    """--beside also prints, per epoch choice, the mean fold-by-fold difference and the win / loss / tie counts,
    over only the folds both runs have."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("am_fold_table", Path(__file__).parent.parent / "tools" / "am_fold_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    this = {"accuracy_inner_selected": {"per_fold": {"A1,2": 0.6, "A3,4": 0.5, "A5,6": 0.7, "A7,8": 0.9}}}
    other = {"accuracy_inner_selected": {"per_fold": {"A1,2": 0.5, "A3,4": 0.6, "A5,6": 0.7}}}
    text = tool.paired(this, other, "B")
    # differences +10, -10, 0 over the 3 shared folds (A7,8 is only in this run)
    assert text == ("recipe, epoch chosen on the inner actors: this run − B = +0.0 points over 3 folds; "
                    "better on 1, worse on 1, tied on 1")


def test_paired_selections_adds_previous_runs_and_diffs_them_fold_by_fold(tmp_path, capsys):
    """tools/paired_selections.py: --previous adds an earlier output's runs without their folders; --diff prints
    A − B fold by fold over the folds every run has, with the standard error and the win / loss counts."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("paired_selections",
                                                  Path(__file__).parent.parent / "tools" / "paired_selections.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    keys = [k for k, _ in tool.KEYS]
    new = tmp_path / "new_run"
    new.mkdir()
    (new / "summary.json").write_text(json.dumps({k: {"per_fold": {"F1": 0.9, "F2": 0.8, "F3": 0.7}} for k in keys}))
    prev = tmp_path / "prev.json"
    prev.write_text(json.dumps({"runs": {"old_run": {k: {"per_fold": {"F1": 0.8, "F2": 0.8}} for k in keys}}}))
    assert tool.main([str(new), "--previous", str(prev), "--diff", "new_run,old_run"]) == 0
    out = capsys.readouterr().out
    # F3 is not in the old run: the diff is over F1, F2 (+10, 0 points)
    assert "new_run − old_run, last epoch: +5.0 ± 5.0 points over 2 folds; better on 1, worse on 0" in out
    assert tool.main([str(new), "--diff", "new_run,missing"]) == 1
