#!/usr/bin/env python
"""Regenerate the fold protocols shipped in src/mrpn/data/folds/ (deterministic, no data needed).

    python tools/make_folds.py            # (re)write the JSON files
    python tools/make_folds.py --check    # exit 1 when a shipped file differs from what this makes

Protocols:
  ravdess_paper12  the paper's 12 folds (Table 1/2): fold k validates on actors 2k-1 and 2k.
  ravdess_hicmae6  6 folds of 4 consecutive actors (1-4, ..., 21-24), as in HiCMAE.
  cremad_paper     the paper's protocol (section 5.1, Table 3): 9 splits S1..S9, each validating about
                   10% of the 91 actors, male/female balanced, every actor validated exactly once.
  cremad_hicmae5   5 folds of contiguous sorted actor ids, sizes 19/18/18/18/18, as in HiCMAE.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mrpn.data.folds import FOLDS_DIR, check_protocol, make_actor_folds
from mrpn.io import atomic_write_json

# CREMA-D actors with Sex "Male" in VideoDemographics.csv of github.com/CheyneyComputerScience/CREMA-D
# (columns ActorID,Age,Sex,Race,Ethnicity). All other actors 1001-1091 are "Female": 48 male, 43 female.
CREMAD_MALE = {int(a) for a in """
1001 1005 1011 1014 1015 1016 1017 1019 1022 1023 1026 1027 1031 1032 1033 1034 1035 1036 1038 1039
1040 1041 1042 1044 1045 1048 1050 1051 1057 1059 1062 1064 1065 1066 1067 1068 1069 1070 1071 1077
1080 1081 1083 1085 1086 1087 1088 1090""".split()}
CREMAD_ACTORS = [str(a) for a in range(1001, 1092)]
CREMAD_GENDERS = {a: "male" if int(a) in CREMAD_MALE else "female" for a in CREMAD_ACTORS}
CREMAD_SEED = 0

RAVDESS_ACTORS = [f"{a:02d}" for a in range(1, 25)]
RAVDESS_GENDERS = {a: "male" if int(a) % 2 else "female" for a in RAVDESS_ACTORS}


def _contiguous(actors: list[str], sizes: list[int]) -> list[list[str]]:
    out, start = [], 0
    for n in sizes:
        out.append(actors[start:start + n])
        start += n
    assert start == len(actors)
    return out


def ravdess_paper12() -> dict:
    folds = [{"name": f"A{2 * k - 1},{2 * k}", "val": [f"{2 * k - 1:02d}", f"{2 * k:02d}"]} for k in range(1, 13)]
    return {"dataset": "ravdess", "protocol": "paper12",
            "description": "The paper's 12 actor-disjoint folds (Tables 1-2): fold Ax,y validates on actors x "
                           "and y (odd = male, even = female) and trains on the other 22.",
            "actors": RAVDESS_ACTORS, "folds": folds, "genders": RAVDESS_GENDERS, "balanced_by_gender": True}


def ravdess_hicmae6() -> dict:
    folds = [{"name": f"A{g[0].lstrip('0')}-{g[-1].lstrip('0')}", "val": g}
             for g in _contiguous(RAVDESS_ACTORS, [4] * 6)]
    return {"dataset": "ravdess", "protocol": "hicmae6",
            "description": "HiCMAE-compatible 6 folds of 4 consecutive actors (1-4, 5-8, ..., 21-24).",
            "actors": RAVDESS_ACTORS, "folds": folds, "genders": RAVDESS_GENDERS, "balanced_by_gender": True}


def cremad_paper() -> dict:
    p = make_actor_folds(CREMAD_ACTORS, 9, genders=CREMAD_GENDERS, seed=CREMAD_SEED, dataset="cremad",
                         name="paper", fold_names=[f"S{i}" for i in range(1, 10)])
    d = p.to_dict()
    d["description"] = (
        "The paper's CREMA-D protocol (section 5.1, Table 3): 9 actor-disjoint splits S1..S9, each validating "
        "about 10% of the 91 actors (S1: 11 actors, 6 male + 5 female; the others 10) with males (48) and "
        "females (43, genders from VideoDemographics.csv) spread evenly; every actor is validated exactly once. "
        "9 because the paper reports 9 splits and 91 actors at ~10% per split give 9 disjoint val sets. "
        "The paper does not list its actors per split: these were drawn by tools/make_folds.py "
        f"(make_actor_folds, seed {CREMAD_SEED}).")
    return d


def cremad_hicmae5() -> dict:
    folds = [{"name": f"A{g[0]}-{g[-1]}", "val": g} for g in _contiguous(CREMAD_ACTORS, [19, 18, 18, 18, 18])]
    return {"dataset": "cremad", "protocol": "hicmae5",
            "description": "HiCMAE-compatible 5 folds of contiguous actor ids (1001-1019, 1020-1037, 1038-1055, "
                           "1056-1073, 1074-1091); not gender balanced.",
            "actors": CREMAD_ACTORS, "folds": folds, "genders": CREMAD_GENDERS}


PROTOCOLS = {"ravdess_paper12": ravdess_paper12, "ravdess_hicmae6": ravdess_hicmae6,
             "cremad_paper": cremad_paper, "cremad_hicmae5": cremad_hicmae5}


def build_all() -> dict[str, dict]:
    return {name: make() for name, make in PROTOCOLS.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the shipped files instead of writing")
    ap.add_argument("--out", type=Path, default=FOLDS_DIR, help="output folder (default: the package's)")
    args = ap.parse_args(argv)
    from mrpn.data.folds import protocol_from_dict

    bad = 0
    for name, d in build_all().items():
        issues = check_protocol(protocol_from_dict(d, name=name))
        if issues:
            print(f"{name}: {issues}", file=sys.stderr)
            return 1
        path = args.out / f"{name}.json"
        if args.check:
            same = path.is_file() and json.loads(path.read_text()) == d
            bad += not same
            print(f"{'ok  ' if same else 'DIFF'} {path}")
        else:
            atomic_write_json(path, d)
            print(f"wrote {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
