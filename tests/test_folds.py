"""Fold protocols: shipped JSON files, loader, splitting, generic folds and the `mrpn folds` CLI."""
from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

from mrpn.data.clip import Clip
from mrpn.data.folds import (
    Fold, check_protocol, default_protocol, gender_counts, list_protocols, load_protocol, main,
    make_actor_folds, split_clips,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["cremad_hicmae5", "cremad_paper", "ravdess_hicmae6", "ravdess_paper12"]


def _clip(actor: str, i: int = 0) -> Clip:
    return Clip(id=f"{actor}-{i}", dataset="synth", label=0, label_name="x", actor=actor)


def test_shipped_protocols_listed():
    assert list_protocols() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_val_sets_partition_actors_and_are_disjoint_from_train(name):
    p = load_protocol(name)
    assert check_protocol(p) == []
    validated = [a for f in p.folds for a in f.val_actors]
    assert sorted(validated) == sorted(p.actors)           # each actor validated exactly once
    for f in p.folds:
        assert not set(f.train_actors) & set(f.val_actors)
        assert set(f.train_actors) | set(f.val_actors) == set(p.actors)
        assert f.val_actors and f.train_actors
    assert [f.index for f in p.folds] == list(range(len(p.folds)))


def test_ravdess_paper12_matches_the_paper():
    p = load_protocol("ravdess_paper12")
    assert p.dataset == "ravdess" and len(p.folds) == 12
    assert [f.name for f in p.folds] == [f"A{2 * k - 1},{2 * k}" for k in range(1, 13)]
    assert p.folds[0].val_actors == ("01", "02") and p.folds[-1].val_actors == ("23", "24")
    for counts in gender_counts(p):
        assert counts == {"male": 1, "female": 1}
    assert p.fold("A9,10").index == 4 and p.fold(4).slug == "A9_10"


def test_cremad_paper_is_gender_balanced_and_about_10_percent():
    p = load_protocol("cremad_paper")
    assert p.dataset == "cremad" and len(p.actors) == 91 and len(p.folds) == 9
    assert p.actors == [str(a) for a in range(1001, 1092)]
    assert [f.name for f in p.folds] == [f"S{i}" for i in range(1, 10)]
    assert sum(g == "male" for g in p.genders.values()) == 48
    assert sum(g == "female" for g in p.genders.values()) == 43
    assert sorted(len(f.val_actors) for f in p.folds) == [10] * 8 + [11]
    for counts in gender_counts(p):
        assert counts["male"] in (5, 6) and counts["female"] in (4, 5)
    assert p.balanced_by_gender and "9" in p.description


def test_hicmae_protocols():
    r = load_protocol("ravdess_hicmae6")
    assert [f.val_actors for f in r.folds] == [tuple(f"{a:02d}" for a in range(s, s + 4)) for s in range(1, 25, 4)]
    c = load_protocol("cremad_hicmae5")
    assert [len(f.val_actors) for f in c.folds] == [19, 18, 18, 18, 18]
    assert c.folds[0].val_actors[0] == "1001" and c.folds[0].val_actors[-1] == "1019"
    assert c.folds[1].val_actors[0] == "1020" and c.folds[-1].val_actors[-1] == "1091"


def test_tools_make_folds_reproduces_the_shipped_files():
    spec = importlib.util.spec_from_file_location("make_folds", REPO / "tools" / "make_folds.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, d in mod.build_all().items():
        assert json.loads((REPO / "src/mrpn/data/folds" / f"{name}.json").read_text()) == d, name


def test_default_protocol():
    assert default_protocol("ravdess").name == "ravdess_paper12"
    assert default_protocol("cremad").name == "cremad_paper"
    with pytest.raises(ValueError, match="make_actor_folds"):
        default_protocol("fer2013")


def test_split_clips():
    p = load_protocol("ravdess_paper12")
    clips = [_clip(f"{a:02d}", i) for a in range(1, 25) for i in range(3)]
    train, val = split_clips(clips, p.folds[1])
    assert {c.actor for c in val} == {"03", "04"} and len(val) == 6 and len(train) == 66
    with pytest.raises(ValueError, match="99"):
        split_clips(clips + [_clip("99")], p.folds[0])


def test_load_user_protocol_file(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"dataset": "custom", "protocol": "two", "actors": ["a", "b", "c", "d"],
                                "folds": [{"name": "x", "val": ["a", "b"]}, {"name": "y", "val": ["c", "d"]}]}))
    p = load_protocol(str(path))
    assert p.name == "mine" and p.folds[1] == Fold("y", 1, ("a", "b"), ("c", "d"))
    assert check_protocol(p) == []


def test_bad_protocols(tmp_path):
    with pytest.raises(ValueError, match="unknown fold protocol"):
        load_protocol("no_such_protocol")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        load_protocol(broken)
    (tmp_path / "nokey.json").write_text(json.dumps({"dataset": "x", "folds": []}))
    with pytest.raises(ValueError, match="actors"):
        load_protocol(tmp_path / "nokey.json")
    overlap = tmp_path / "overlap.json"
    overlap.write_text(json.dumps({"dataset": "x", "actors": ["a", "b", "c"],
                                   "folds": [{"val": ["a"]}, {"val": ["a", "b"]}, {"val": ["z"]}]}))
    issues = check_protocol(load_protocol(overlap))
    text = " ".join(issues)
    assert "validated in both" in text and "never validated" in text and "not in the actor list" in text


def test_make_actor_folds_deterministic_and_balanced():
    actors = [f"s{i:02d}" for i in range(23)]
    genders = {a: ("male" if i % 3 else "female") for i, a in enumerate(actors)}
    p = make_actor_folds(actors, 5, genders=genders, seed=3)
    q = make_actor_folds(reversed(actors), 5, genders=genders, seed=3)
    assert [f.val_actors for f in p.folds] == [f.val_actors for f in q.folds]
    assert check_protocol(p) == []
    sizes = [len(f.val_actors) for f in p.folds]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 23
    partly = make_actor_folds(actors, 5, genders={"s00": "male", "s01": None}, seed=0)
    assert check_protocol(partly) == [] and not partly.balanced_by_gender
    r = make_actor_folds(actors, 5, seed=None)
    assert check_protocol(r) == [] and r.folds[0].val_actors[0] == "s00"
    assert make_actor_folds(actors, 5, seed=4).folds != make_actor_folds(actors, 5, seed=5).folds
    for k in (1, 24):
        with pytest.raises(ValueError):
            make_actor_folds(actors, k)


def _cli(argv):
    ap = argparse.ArgumentParser()
    from mrpn.data.folds import add_arguments

    add_arguments(ap)
    return main(ap.parse_args(argv))


def test_cli_lists_prints_and_checks(tmp_path, capsys):
    assert _cli([]) == 0
    assert "cremad_paper" in capsys.readouterr().out
    assert _cli(["ravdess_paper12", "--check"]) == 0
    out = capsys.readouterr().out
    assert "A23,24" in out and "ok" in out
    assert _cli(["--check"]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dataset": "x", "actors": ["a", "b"], "folds": [{"val": ["a"]}, {"val": ["a"]}]}))
    assert _cli([str(bad), "--check"]) == 1
    assert "FAIL" in capsys.readouterr().err
    assert _cli(["nope"]) == 2


def test_cli_dispatch():
    from mrpn.cli import main as cli_main

    assert cli_main(["folds", "cremad_paper", "--check"]) == 0
