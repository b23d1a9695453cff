"""Fuzz test of the model loader and the CLI (issue 10): random bytes, truncated and mutated real
files and model files, random metadata, random arguments, and caches with one file mutated
(`prepare verify`, then a resume). Every outcome must be a result or a
clean error (the documented error types, or an exit status with one-line messages), never a
traceback, a hang, or a write outside the output folder.

Bounded: MRPN_FUZZ_SECONDS (default 20) split over the targets; the seed is printed and can be
replayed with MRPN_FUZZ_SEED. Every input that ever failed is kept in tests/fuzz_regressions/
(<target>-<sha>.<ext>; small generated files, nothing from shared/) and replayed first, always.
A failing input found now is written there too (commit it with the fix).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from media_factory import write_audio, write_image, write_video

REG = Path(__file__).parent / "fuzz_regressions"
SEED = int(os.environ.get("MRPN_FUZZ_SEED", random.SystemRandom().randrange(2**31)))
BUDGET = float(os.environ.get("MRPN_FUZZ_SECONDS", "20"))
CASE_TIMEOUT_S = 20


class Hang(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: int):
    def on_alarm(*_):
        raise Hang(f"no outcome after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --- mutations -----------------------------------------------------------------------------

def mutate(rng: random.Random, data: bytes, hot: int = 4096) -> bytes:
    """One of: random bytes, truncation, byte flips (mostly in the first `hot` bytes, where
    headers live), a deleted or duplicated chunk, or the bytes of another length field."""
    op = rng.choice(["random", "truncate", "flip", "flip", "chunk", "header"])
    b = bytearray(data)
    if op == "random" or not b:
        return rng.randbytes(rng.choice([0, 1, 7, 8, 64, 1000, 5000]))
    if op == "truncate":
        return bytes(b[: rng.randrange(len(b))])
    if op == "flip":
        for _ in range(rng.randint(1, 24)):
            i = rng.randrange(min(len(b), hot)) if rng.random() < 0.8 else rng.randrange(len(b))
            b[i] = rng.randrange(256)
        return bytes(b)
    if op == "chunk":
        i = rng.randrange(len(b))
        j = min(len(b), i + rng.randint(1, 512))
        return bytes(b[:i] + (b[i:j] * 2 if rng.random() < 0.5 else b"") + b[j:])
    # header: an absurd 8-byte length (safetensors) or 4-byte box size (mp4) at the start
    n = rng.choice([0, 1, 2**31 - 1, 2**63 - 1, len(b) * 2]).to_bytes(8, "little")
    return bytes(n + b[8:]) if rng.random() < 0.5 else bytes(b[:4] + n[:4] + b[8:])


def _json_value(rng: random.Random, depth: int = 0):
    kinds = ["int", "float", "str", "bool", "none", "list", "dict"] if depth < 2 else ["int", "str", "none"]
    k = rng.choice(kinds)
    if k == "int":
        return rng.choice([0, -1, 1, 3, 7, 4096, 2**40, -(2**63)])
    if k == "float":
        return rng.choice([0.0, -1.5, 1e-9, 1e300, 0.5])
    if k == "str":
        return rng.choice(["", "a", "\x1b[31mred", "n2", "transformer", "x" * 300, "é", "\0"])
    if k == "bool":
        return rng.random() < 0.5
    if k == "none":
        return None
    if k == "list":
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["model", "data", "kind", "n_classes", "video_width", "zz"]): _json_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}


def mutate_model_metadata(rng: random.Random, sd: dict, meta: dict) -> bytes:
    """A safetensors file with the base tensors and randomly edited metadata."""
    from safetensors.torch import save

    m = dict(meta)
    cfg = json.loads(m["config"])
    for _ in range(rng.randint(1, 4)):
        target = rng.choice(["cfg", "classes", "format", "drop", "raw"])
        if target == "cfg":
            sec = rng.choice(["model", "data", "train"])
            key = rng.choice(sorted(cfg.get(sec) or {"x": 0}))
            cfg.setdefault(sec, {})[key] = _json_value(rng)
        elif target == "classes":
            m["classes"] = json.dumps(_json_value(rng) if rng.random() < 0.5 else
                                      [rng.choice(["a", "b", "\x07", "neutral", ""]) for _ in range(rng.randint(0, 9))])
        elif target == "format":
            m["format"] = rng.choice(["", "mrpn-model-2", "x" * 1000])
        elif target == "drop":
            m.pop(rng.choice(["config", "classes", "format"]), None)
        else:
            m["config"] = rng.choice(["{", "[]", "null", "1e999", '{"model": 5}'])
            cfg = None
            break
    if cfg is not None:
        m["config"] = json.dumps(cfg)
    return save(sd, metadata=m)


# --- bases (generated here, nothing from shared/) ---------------------------------------------

@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    import torch

    from mrpn.config import load_config
    from mrpn.inference.model_io import save_for_inference
    from mrpn.models.build import build_model

    d = tmp_path_factory.mktemp("fuzzbase")
    cfg = load_config("cpu", overrides=["model.kind=n2", "model.video_width=2", "model.audio_width=2",
                                        "model.agg_hidden=4", "model.fusion_hidden=4", "model.n_classes=3"])
    model = build_model(cfg.model)
    save_for_inference(model, cfg.to_dict(), ["calm", "happy", "sad"], d / "tiny.safetensors")
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "classes": ["calm", "happy", "sad"]}, buf)
    from safetensors import safe_open

    with safe_open(str(d / "tiny.safetensors"), framework="pt") as f:
        sd, meta = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())  # noqa: SIM118
    return {
        "cache": _cache_template(d / "tpl"),
        "model": (d / "tiny.safetensors").read_bytes(), "checkpoint": buf.getvalue(), "sd": sd, "meta": meta,
        "mp4": write_video(d / "v.mp4", n_frames=6, fps=10, size=(64, 48)).read_bytes(),
        "flv": write_video(d / "v.flv", n_frames=6, fps=10, size=(64, 48)).read_bytes(),
        "wav": write_audio(d / "a.wav", seconds=0.5, rate=16000, channels=1).read_bytes(),
        "png": write_image(d / "i.png", size=48).read_bytes(),
    }


PREPARE_ARGS = ["--detector", "none", "--face-size", "16", "--gray", "--workers", "1", "--no-progress"]


def _cache_template(root: Path) -> Path:
    """Two small clips and their prepared cache (root/cache), copied for each cache case."""
    from mrpn.data.datasets import scan
    from mrpn.data.prepare import PrepareConfig, run_prepare

    root.mkdir()
    for i in range(2):
        write_video(root / f"v{i}.mp4", n_frames=5, fps=10, size=(48, 48))
    (root / "m.csv").write_text("id,video,audio,label,speaker\nc0,v0.mp4,,happy,s0\nc1,v1.mp4,,sad,s1\n")
    run_prepare(scan("custom", root / "m.csv"), root / "cache", PrepareConfig(detector="none", face_size=16, gray=True),
                progress=False, log=lambda *a: None)
    return root


def mutate_cache(rng: random.Random, tpl: Path) -> bytes:
    """One file of the template cache, mutated: {"path": relative path, "b64": new bytes}."""
    import base64

    files = sorted(str(p.relative_to(tpl / "cache")) for p in (tpl / "cache").rglob("*") if p.is_file())
    rel = rng.choice(files)
    data = (tpl / "cache" / rel).read_bytes()
    if rel.endswith(".json") and rng.random() < 0.5:
        obj = json.loads(data)
        if isinstance(obj, dict) and obj:
            obj[rng.choice(sorted(obj))] = _json_value(rng)
        data = json.dumps(obj).encode()
    else:
        data = mutate(rng, data)
    return json.dumps({"path": rel, "b64": base64.b64encode(data).decode()}).encode()


def run_cache_case(case: dict, tpl: Path, tmp: Path, capsys) -> None:
    """verify, then resume, a copy of the template cache with one file replaced."""
    import base64
    import shutil

    work = tmp / "work"
    shutil.copytree(tpl, work)
    target = (work / "cache" / case["path"]).resolve()
    assert (work / "cache").resolve() in target.parents
    target.write_bytes(base64.b64decode(case["b64"]))
    run_cli(["prepare", "verify", str(work / "cache")], work / "cache", tmp, capsys)
    run_cli(["prepare", "custom", str(work / "m.csv"), "--out", str(work / "cache"), *PREPARE_ARGS],
            work / "cache", tmp, capsys)


# --- targets: each returns normally (result or clean error) or raises (a failure) ------------------

def load_model(path: Path) -> None:
    from mrpn.inference.model_io import load_for_inference
    from mrpn.training.checkpoint import CheckpointError

    try:
        load_for_inference(path)
    except CheckpointError as e:                          # ModelFileError is one
        assert "\n" not in str(e) and "weights_only" not in str(e), str(e)


def run_cli(argv: list[str], out: Path, watch: Path, capsys) -> None:
    """mrpn in-process; an exception escaping main() is a traceback for the user (a failure)."""
    from mrpn.cli import main

    before = _snapshot(watch, out)
    try:
        rc = main(argv)
    except SystemExit as e:                               # argparse: exit status 2 and one line
        rc = e.code
    io_ = capsys.readouterr()
    assert rc in (0, 1, 2), f"exit status {rc}"
    assert "Traceback" not in io_.err, io_.err[-2000:]
    assert _snapshot(watch, out) == before, "a file outside the output folder changed"


def _snapshot(root: Path, skip: Path) -> dict:
    out = {}
    for p in root.rglob("*"):
        if skip in p.parents or p == skip or not p.is_file():
            continue
        st = p.stat()
        out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def _random_args(rng: random.Random) -> list[str]:
    """Random arguments for a command that cannot start long work ({CASE}: a small video, {OUT}:
    the output folder; substituted when the case runs, so a kept case replays anywhere)."""
    cmd = rng.choice(["predict", "predict", "cv", "train", "prepare", "folds"])
    vals = ["abc", "-1", "0", "5-3", "1e999", "nan", "", "x=y", "data.face_size=-1", "train.lr=abc",
            "model.kind=zz", "1,2", "3", "{CASE}", "{OUT}", "{OUT}/f.json", "--", "\x1b[2J"]
    flags = {"predict": ["--json", "--plot", "--window", "--hop", "--detector", "--model", "--audio", "--backend"],
             "cv": ["--folds", "--lr", "--epochs", "--set", "--dataset", "--preset", "--model"],
             "train": ["--fold", "--lr", "--batch-size", "--set", "--workers", "--config"],
             "prepare": ["--face-size", "--workers", "--shard", "--limit", "--margin", "--detector"],
             "folds": []}[cmd]
    argv = [cmd]
    if cmd == "predict":
        argv += ["{CASE}", "--json", "{OUT}/"]
    elif cmd in ("cv", "train"):
        argv += ["--cache", "{OUT}/no-cache", "--out", "{OUT}/runs"]
    elif cmd == "prepare":
        argv += [rng.choice(["custom", "ravdess", "verify", "merge"]), "{CASE}", "--out", "{OUT}/cache"]
    for _ in range(rng.randint(0, 3)):
        if flags:
            argv += [rng.choice(flags), rng.choice(vals)]
    return argv


# --- the test ------------------------------------------------------------------------------------

def _keep(target: str, data: bytes, ext: str) -> Path:
    REG.mkdir(exist_ok=True)
    p = REG / f"{target}-{hashlib.sha256(data).hexdigest()[:12]}.{ext}"
    if len(data) <= 512 * 1024 and not p.exists():
        p.write_bytes(data)
    return p


def _check(target: str, data: bytes, ext: str, tmp: Path, bases: dict, capsys, failures: list) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    case = tmp / f"case.{ext}"
    case.write_bytes(data)
    out = tmp / "out"
    out.mkdir()
    cwd = os.getcwd()
    os.chdir(out)                 # relative output names (`--plot 5-3`) are outputs: they land in out/
    try:
        with _deadline(CASE_TIMEOUT_S):
            if target == "model":
                load_model(case)
            elif target == "cache":
                run_cache_case(json.loads(data.decode("utf-8")), bases["cache"], tmp, capsys)
            elif target == "predict":
                run_cli(["predict", str(case), "--json", str(out) + "/", "--plot", str(out) + "/"], out, tmp, capsys)
            else:
                video = tmp / "video.mp4"
                video.write_bytes(bases["mp4"])
                argv = [a.replace("{CASE}", str(video)).replace("{OUT}", str(out))
                        for a in json.loads(data.decode("utf-8"))]
                run_cli(argv, out, tmp, capsys)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        kept = _keep(target, data, ext)
        failures.append(f"{target} {kept.name}: {type(e).__name__}: {str(e)[:300]}")
    finally:
        os.chdir(cwd)


def _ext(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def test_fuzz_regressions_replay(bases, tmp_path, capsys):
    """Every input that once failed (tests/fuzz_regressions/) must now give a clean outcome."""
    failures: list[str] = []
    files = sorted(REG.glob("*-*.*")) if REG.is_dir() else []
    for i, p in enumerate(files):
        target = p.name.split("-", 1)[0]
        _check(target, p.read_bytes(), _ext(p.name), tmp_path / f"r{i}", bases, capsys, failures)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_fuzz_loader_and_cli(bases, tmp_path, capsys):
    print(f"fuzz seed {SEED} (replay: MRPN_FUZZ_SEED={SEED}), budget {BUDGET:g} s")
    rng = random.Random(SEED)
    failures: list[str] = []
    t_end = time.monotonic() + BUDGET
    counts = {"model": 0, "predict": 0, "args": 0, "cache": 0}
    i = 0
    while time.monotonic() < t_end:
        i += 1
        kind = rng.choices(["model", "predict", "args", "cache"], weights=[5, 2, 3, 2])[0]
        if kind == "model":
            r = rng.random()
            if r < 0.4:
                data = mutate_model_metadata(rng, bases["sd"], bases["meta"])
                ext = "safetensors"
            elif r < 0.8:
                data, ext = mutate(rng, bases["model"]), "safetensors"
            else:
                data, ext = mutate(rng, bases["checkpoint"]), "pt"
        elif kind == "predict":
            ext = rng.choice(["mp4", "flv", "wav", "png"])
            data = mutate(rng, bases[ext])
        elif kind == "cache":
            data, ext = mutate_cache(rng, bases["cache"]), "json"
        else:
            data, ext = json.dumps(_random_args(rng)).encode(), "json"
        counts[kind] += 1
        _check(kind, data, ext, tmp_path / f"c{i}", bases, capsys, failures)
        if len(failures) >= 5:
            break
    print(f"fuzz: {counts} cases, {len(failures)} failure(s)")
    assert not failures, f"seed {SEED}:\n" + "\n".join(failures)
