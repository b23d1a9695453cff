"""Actor-disjoint evaluation folds.

A protocol is a JSON file (shipped ones live in `mrpn/data/folds/`, made by `tools/make_folds.py`):

    {"dataset": "ravdess", "protocol": "paper12", "description": "...",
     "actors": ["01", ..., "24"],
     "folds": [{"name": "A1,2", "val": ["01", "02"]}, ...],
     "genders": {"01": "male", ...},          # optional
     "balanced_by_gender": true}              # optional: --check then also checks gender balance

Each fold validates on its `val` actors and trains on all other `actors`. A protocol is sound when
every val set is non-empty, uses known actors, and the val sets partition the actors (each actor is
validated exactly once), which `check_protocol` verifies. Shipped protocols:

    ravdess_paper12   the paper's 12 folds A1,2 ... A23,24 (one male and one female actor each)
    ravdess_hicmae6   6 folds of 4 consecutive actors (1-4, ..., 21-24), as in HiCMAE
    cremad_paper      the paper's 9 splits S1..S9 (about 10% of the 91 actors each, gender balanced)
    cremad_hicmae5    5 folds of contiguous actor ids (1001-1019, 1020-1037, ...), as in HiCMAE

`mrpn folds` lists them; `mrpn folds NAME` prints one; `--check` verifies them.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

FOLDS_DIR = Path(__file__).resolve().parent / "folds"
DEFAULT_PROTOCOLS = {"ravdess": "ravdess_paper12", "cremad": "cremad_paper"}


@dataclass(frozen=True)
class Fold:
    name: str
    index: int
    train_actors: tuple[str, ...]
    val_actors: tuple[str, ...]

    @property
    def slug(self) -> str:
        """The name made safe as a folder name ("A1,2" -> "A1_2")."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.name).strip("._") or f"fold{self.index}"


@dataclass
class Protocol:
    name: str
    dataset: str
    description: str
    actors: list[str]
    folds: list[Fold]
    genders: dict[str, str] | None = None
    balanced_by_gender: bool = False
    path: str | None = None
    protocol: str = ""

    def fold(self, key: int | str) -> Fold:
        """A fold by index, name or slug."""
        for f in self.folds:
            if key in (f.index, f.name, f.slug) or str(key) == str(f.index):
                return f
        raise KeyError(f"protocol {self.name} has no fold {key!r}; folds: {[f.name for f in self.folds]}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"dataset": self.dataset, "protocol": self.protocol or self.name,
                             "description": self.description, "actors": list(self.actors),
                             "folds": [{"name": f.name, "val": list(f.val_actors)} for f in self.folds]}
        if self.genders:
            d["genders"] = dict(self.genders)
        if self.balanced_by_gender:
            d["balanced_by_gender"] = True
        return d


def protocol_from_dict(d: dict[str, Any], name: str | None = None, path: str | None = None) -> Protocol:
    """Build a Protocol from the JSON schema above; ValueError when it is malformed."""
    where = path or name or "protocol"
    for key in ("dataset", "actors", "folds"):
        if key not in d:
            raise ValueError(f"{where}: missing key {key!r}")
    actors = [str(a) for a in d["actors"]]
    if not actors or not d["folds"]:
        raise ValueError(f"{where}: needs at least one actor and one fold")
    folds = []
    for i, f in enumerate(d["folds"]):
        if not isinstance(f, dict) or "val" not in f:
            raise ValueError(f"{where}: fold {i} must be an object with a 'val' list")
        val = tuple(str(a) for a in f["val"])
        folds.append(Fold(str(f.get("name", f"F{i + 1}")), i, tuple(a for a in actors if a not in val), val))
    genders = {str(k): str(v) for k, v in d["genders"].items()} if d.get("genders") else None
    return Protocol(name=name or f"{d['dataset']}_{d.get('protocol', 'custom')}", dataset=str(d["dataset"]),
                    description=str(d.get("description", "")), actors=actors, folds=folds, genders=genders,
                    balanced_by_gender=bool(d.get("balanced_by_gender", False)), path=path,
                    protocol=str(d.get("protocol", "")))


def list_protocols() -> list[str]:
    """Names of the shipped protocols."""
    return sorted(p.stem for p in FOLDS_DIR.glob("*.json"))


def load_protocol(name: str | os.PathLike) -> Protocol:
    """A shipped protocol by name ("ravdess_paper12") or a user's fold JSON file by path."""
    text = str(name)
    shipped = FOLDS_DIR / f"{Path(text).stem}.json"
    if os.sep not in text and "/" not in text and shipped.is_file():
        path = shipped
    elif Path(text).expanduser().is_file():
        path = Path(text).expanduser()
    else:
        raise ValueError(f"unknown fold protocol {text!r}: not a shipped one ({', '.join(list_protocols())}) "
                         f"and not a JSON file")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read fold protocol {path}: {e}") from e
    return protocol_from_dict(d, name=path.stem, path=str(path))


def default_protocol(dataset: str) -> Protocol:
    """The paper's protocol for "ravdess" or "cremad"; other corpora need `make_actor_folds`."""
    if dataset not in DEFAULT_PROTOCOLS:
        raise ValueError(f"no shipped folds for dataset {dataset!r} (have: {', '.join(DEFAULT_PROTOCOLS)}); "
                         f"use make_actor_folds(actors, k) for other corpora")
    return load_protocol(DEFAULT_PROTOCOLS[dataset])


def split_clips(clips: Iterable[Any], fold: Fold) -> tuple[list[Any], list[Any]]:
    """(train, val) clips of `fold` by `clip.actor`; a clip whose actor is in neither set is an error."""
    train_set, val_set = set(fold.train_actors), set(fold.val_actors)
    train, val, unknown = [], [], set()
    for c in clips:
        if c.actor in val_set:
            val.append(c)
        elif c.actor in train_set:
            train.append(c)
        else:
            unknown.add(c.actor)
    if unknown:
        raise ValueError(f"fold {fold.name}: clips of actors {sorted(unknown)} are in neither its train nor its "
                         f"val actors; does the protocol match the dataset?")
    return train, val


def inner_val_actors(protocol: Protocol, fold_index: int, train_actors: Iterable[str],
                     named: str = "") -> list[str]:
    """Actors held out of fold `fold_index`'s (1-based) training set to choose its epoch (issue 9 item 4).

    Deterministic and never a test actor: the validation actors of the next fold of the protocol
    (cyclically) that are training actors of this one, e.g. A3,4 for fold A1,2 of ravdess_paper12
    (one man and one woman, like every paper fold). When that leaves nothing (a protocol whose folds
    overlap), the first two training actors in sorted order. `named` ("23,24", `train.inner_actors`)
    names them instead: a second, fresh selection pair once the usual one has been used for a choice;
    each must be a training actor of this fold, and some must stay to train on."""
    train = sorted(set(train_actors))
    if len(train) < 2:
        raise ValueError(f"fold {fold_index}: an inner validation split needs at least 2 training actors, "
                         f"got {len(train)}")
    if named.strip():
        picked = sorted({a.strip() for a in named.split(",") if a.strip()})
        bad = [a for a in picked if a not in set(train)]
        if bad or len(picked) >= len(train):
            raise ValueError(f"fold {fold_index}: train.inner_actors={named!r}: "
                             + (f"{', '.join(bad)} not among its training actors ({', '.join(train)})" if bad
                                else "no training actor would be left"))
        return picked
    n = len(protocol.folds)
    nxt = protocol.folds[fold_index % n]
    chosen = [a for a in nxt.val_actors if a in set(train)]
    if not chosen or len(chosen) == len(train):
        chosen = train[:2]
    return sorted(chosen)


def make_actor_folds(actors: Iterable[str], k: int, genders: dict[str, str | None] | None = None,
                     seed: int | None = 0, dataset: str = "custom", name: str | None = None,
                     fold_names: Sequence[str] | None = None) -> Protocol:
    """`k` actor-disjoint folds whose val sets partition `actors`, deterministic for a given seed.

    Actors are grouped by gender (when `genders` is given), each group sorted and shuffled with
    `random.Random(seed)` (no shuffle when seed is None), and the groups, one after the other, are
    dealt round-robin over the folds. Fold sizes then differ by at most one, and so does each
    gender's count per fold."""
    actors = sorted({str(a) for a in actors})
    if not 2 <= k <= len(actors):
        raise ValueError(f"need 2 <= k <= number of actors ({len(actors)}), got k={k}")
    genders = {str(a): g for a, g in genders.items()} if genders else {}
    groups: dict[str, list[str]] = {}
    for a in actors:
        groups.setdefault(str(genders.get(a) or "~unknown"), []).append(a)
    rng = random.Random(seed)
    order = []
    for g in sorted(groups):
        members = groups[g]
        if seed is not None:
            rng.shuffle(members)
        order += members
    vals: list[list[str]] = [[] for _ in range(k)]
    for i, a in enumerate(order):
        vals[i % k].append(a)
    names = list(fold_names) if fold_names else [f"F{i + 1}" for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} fold names for {k} folds")
    known = {a: str(genders[a]) for a in actors if genders.get(a)}
    balanced = len(known) == len(actors)
    d = {"dataset": dataset, "protocol": name or f"actors{k}",
         "description": f"{k} actor-disjoint folds (seed {seed}" + (", gender balanced)" if balanced else ")"),
         "actors": actors, "folds": [{"name": n, "val": sorted(v)} for n, v in zip(names, vals)],
         "genders": known or None, "balanced_by_gender": balanced}
    return protocol_from_dict(d, name=f"{dataset}_{d['protocol']}")


def gender_counts(protocol: Protocol) -> list[dict[str, int]]:
    """Per fold: how many val actors of each gender ("unknown" when not known)."""
    g = protocol.genders or {}
    out = []
    for f in protocol.folds:
        counts: dict[str, int] = {}
        for a in f.val_actors:
            counts[g.get(a, "unknown")] = counts.get(g.get(a, "unknown"), 0) + 1
        out.append(counts)
    return out


def check_protocol(protocol: Protocol) -> list[str]:
    """Everything wrong with `protocol` (empty list when sound)."""
    issues = []
    actors = set(protocol.actors)
    if len(actors) != len(protocol.actors):
        issues.append("duplicate actors in the actor list")
    seen: dict[str, str] = {}
    for f in protocol.folds:
        if not f.val_actors:
            issues.append(f"fold {f.name}: empty val set")
        if not f.train_actors:
            issues.append(f"fold {f.name}: empty train set")
        if set(f.train_actors) & set(f.val_actors):
            shared = sorted(set(f.train_actors) & set(f.val_actors))
            issues.append(f"fold {f.name}: train and val share actors {shared}")
        for a in f.val_actors:
            if a not in actors:
                issues.append(f"fold {f.name}: val actor {a} is not in the actor list")
            elif a in seen:
                issues.append(f"actor {a} is validated in both {seen[a]} and {f.name}")
            seen[a] = f.name
    never = sorted(actors - set(seen))
    if never:
        issues.append(f"actors never validated: {never}")
    if len({f.name for f in protocol.folds}) != len(protocol.folds):
        issues.append("duplicate fold names")
    if protocol.balanced_by_gender:
        issues += _gender_issues(protocol)
    return issues


def _gender_issues(protocol: Protocol) -> list[str]:
    if not protocol.genders or set(protocol.actors) - set(protocol.genders):
        return ["balanced_by_gender is set but not every actor has a gender"]
    counts = gender_counts(protocol)
    issues = []
    for g in sorted(set(protocol.genders.values())):
        per_fold = [c.get(g, 0) for c in counts]
        if max(per_fold) - min(per_fold) > 1:
            issues.append(f"{g} actors per val set range from {min(per_fold)} to {max(per_fold)} (not balanced)")
    return issues


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", nargs="?", help="a shipped protocol name or a fold JSON file; "
                                                    "omit to list the shipped protocols")
    parser.add_argument("--check", action="store_true",
                        help="verify disjointness and coverage (and gender balance where declared); "
                             "exit 1 on failure")


def _print_protocol(p: Protocol) -> None:
    print(f"{p.name} ({p.dataset}, {len(p.folds)} folds, {len(p.actors)} actors)")
    if p.description:
        print(f"  {p.description}")
    counts = gender_counts(p) if p.genders else [{}] * len(p.folds)
    for f, c in zip(p.folds, counts):
        gtxt = "  " + " ".join(f"{g[0]}={n}" for g, n in sorted(c.items())) if c else ""
        print(f"  {f.index:2d} {f.name:<12} val={','.join(f.val_actors)}  train={len(f.train_actors)} actors{gtxt}")


def main(args: argparse.Namespace) -> int:
    names = [args.protocol] if args.protocol else list_protocols()
    try:
        protocols = [load_protocol(n) for n in names]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = False
    for p in protocols:
        if args.protocol:
            _print_protocol(p)
        else:
            desc = p.description.split(". ")[0]
            desc = desc[:77] + "..." if len(desc) > 80 else desc
            print(f"{p.name:<18} {p.dataset:<8} {len(p.folds):2d} folds  {desc}")
        if args.check:
            issues = check_protocol(p)
            failed |= bool(issues)
            for msg in issues:
                print(f"FAIL {p.name}: {msg}", file=sys.stderr)
            if not issues:
                print(f"ok   {p.name}: val sets are disjoint and cover all {len(p.actors)} actors")
    return 1 if failed else 0


__all__ = ["Fold", "Protocol", "list_protocols", "load_protocol", "default_protocol", "split_clips",
           "make_actor_folds", "check_protocol", "gender_counts", "protocol_from_dict", "FOLDS_DIR"]
