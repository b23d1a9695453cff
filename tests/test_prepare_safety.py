"""A cache is a cache (issue 10, faults 2 and 3): prepare/verify/merge write only into an empty
folder or a marked cache, one writer at a time (flock), and verify never drops a record silently."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from media_factory import write_video

from mrpn.cli import main
from mrpn.data.cache import Cache
from mrpn.data.datasets import scan
from mrpn.data.prepare import PrepareConfig, PrepareError, run_prepare
from mrpn.data.prepare.guard import LOCK, MARKER, cache_writer

QUIET = {"progress": False, "log": lambda *a: None}
CFG = PrepareConfig(detector="none", face_size=16, gray=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("safety")
    for i in range(3):
        write_video(d / f"v{i}.mp4", n_frames=8, fps=15, size=(64, 48))
    (d / "m.csv").write_text("id,video,audio,label,speaker\n"
                             + "".join(f"c{i},v{i}.mp4,,{'happy' if i % 2 else 'sad'},s{i}\n" for i in range(3)))
    return d


def _user_folder(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    files = {"manifest.json": '{"my": "list"}', "summary.json": "[1, 2]", "notes.tmp": "keep me",
             "holiday.mp4": "not really a video"}
    for k, v in files.items():
        (d / k).write_text(v)
    return d, files


def _unchanged(d, files):
    assert sorted(p.name for p in d.iterdir()) == sorted(files)
    assert all((d / k).read_text() == v for k, v in files.items())


def test_prepare_and_verify_refuse_a_folder_that_is_not_a_cache(data, tmp_path, capsys):
    d, files = _user_folder(tmp_path)
    assert main(["prepare", "custom", str(data / "m.csv"), "--out", str(d), "--detector", "none",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not an mrpn cache" in err and str(d) in err and "Traceback" not in err
    _unchanged(d, files)
    assert main(["prepare", "verify", str(d)]) == 2
    assert "not an mrpn cache" in capsys.readouterr().err
    _unchanged(d, files)
    assert main(["prepare", "merge", str(d), str(tmp_path / "nothing")]) == 2
    _unchanged(d, files)


def test_prepare_out_is_a_file(data, tmp_path, capsys):
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert main(["prepare", "custom", str(data / "m.csv"), "--out", str(f), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and len(err.strip().splitlines()) == 1 and f.read_text() == "x"


def test_empty_folder_becomes_a_marked_cache_and_resumes(data, tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    assert run_prepare(scan("custom", data / "m.csv"), out, CFG, **QUIET).ok == 3
    assert json.loads((out / MARKER).read_text())["generator"] == "mrpn prepare"
    assert run_prepare(scan("custom", data / "m.csv"), out, CFG, **QUIET).already_done == 3


def test_only_mrpn_tmp_files_are_removed(data, tmp_path):
    out = tmp_path / "c"
    run_prepare(scan("custom", data / "m.csv"), out, CFG, **QUIET)
    theirs = [out / "clips" / "x.tmp", out / ".editor.swp.tmp", out / "clips" / ".c0.json.1234.tmp"]
    ours = out / "clips" / ".c0.npz.mrpn.ab12_x.tmp"
    for p in theirs + [ours]:
        p.write_text("data")
    run_prepare(scan("custom", data / "m.csv"), out, CFG, **QUIET)
    assert all(p.read_text() == "data" for p in theirs) and not ours.exists()


def test_a_second_writer_waits_then_stops_with_a_message(data, tmp_path):
    out = tmp_path / "c"
    with cache_writer(out):
        t0 = time.monotonic()
        with pytest.raises(PrepareError, match="another mrpn prepare .* this cache"):
            run_prepare(scan("custom", data / "m.csv"), out, CFG, lock_wait_s=0.3, **QUIET)
        assert time.monotonic() - t0 >= 0.3
    assert not list((out / "clips").glob("*.json")) if (out / "clips").exists() else True


def test_the_lock_is_released_when_its_holder_is_killed(data, tmp_path):
    out = tmp_path / "c"
    code = ("import sys, time; from mrpn.data.prepare.guard import cache_writer\n"
            f"with cache_writer({str(out)!r}):\n    print('held', flush=True); time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(PrepareError, match="another mrpn prepare"):
            run_prepare(scan("custom", data / "m.csv"), out, CFG, lock_wait_s=0.1, **QUIET)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        assert run_prepare(scan("custom", data / "m.csv"), out, CFG, **QUIET).ok == 3
    finally:
        if p.poll() is None:
            p.kill()
    assert (out / LOCK).exists()


def test_two_runs_with_other_settings_never_mix_in_one_cache(data, tmp_path):
    out = tmp_path / "c"
    errors: list[str] = []

    def run(cfg):
        try:
            run_prepare(scan("custom", data / "m.csv"), out, cfg, lock_wait_s=30, **QUIET)
        except PrepareError as e:
            errors.append(str(e))

    ts = [threading.Thread(target=run, args=(c,)) for c in (CFG, PrepareConfig(detector="none", face_size=24))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(errors) == 1 and "other settings" in errors[0]
    cache = Cache(out)
    size = cache.config["face_size"]
    for cid in cache.ids():
        assert cache.read_record(cid)["prepare_config"]["face_size"] == size
        assert cache.load(cid, verify=True)["faces"].shape[1] == size


def test_shards_with_the_same_settings_share_a_cache_and_verify_waits_for_them(data, tmp_path):
    from mrpn.data.prepare import verify

    out = tmp_path / "c"
    results = []

    def run(i):
        results.append(run_prepare(scan("custom", data / "m.csv"), out, CFG, shard=(i, 2), lock_wait_s=30, **QUIET))

    ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert sum(r.ok for r in results) == 3
    assert verify(out)[1:] == ([], {})
    with cache_writer(out) as w:                 # a writer is active: verify must not run beside it
        w.setup_done()
        with pytest.raises(PrepareError, match="another mrpn prepare .* is writing"):
            verify(out, lock_wait_s=0.2)


def test_verify_reports_every_unreadable_record_and_keeps_it_listed(data, tmp_path, capsys):
    out = tmp_path / "c"
    run_prepare(scan("custom", data / "m.csv"), out, CFG, **QUIET)
    (out / "clips" / "c1.json").write_text('{"clip": {"id": "c1"}, "status": "ok"')   # torn by hand
    (out / "clips" / "c2.json").write_text("[]")
    assert main(["prepare", "verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert "c1.json: unreadable record" in text and "c2.json: unreadable record" in text and "2 bad" in text
    m = json.loads((out / "manifest.json").read_text())
    assert [r["clip"]["id"] for r in m["records"]] == ["c0"]
    assert sorted(os.path.basename(k) for k in m["unreadable"]) == ["c1.json", "c2.json"]
    s = json.loads((out / "summary.json").read_text())
    assert s["counts"]["unreadable"] == 2
    # a resume redoes the unreadable clips (they are not done), after which verify is clean
    run_prepare(scan("custom", data / "m.csv"), out, CFG, **QUIET)
    assert main(["prepare", "verify", str(out)]) == 0
    assert np.array_equal(Cache(out).load("c1", verify=True)["face_found"].shape, (8,))


def test_preview_replaces_only_an_earlier_preview(data, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    argv = ["prepare", "custom", str(data / "m.csv"), "--out", str(tmp_path / "c"), "--detector", "none",
            "--face-size", "16", "--gray", "--workers", "1", "--no-progress", "--preview"]
    assert main(argv + [str(photo)]) == 0
    assert "not an earlier mrpn preview" in capsys.readouterr().err and photo.read_bytes()[8:] == b"\0" * 40
    mine = tmp_path / "sheet.png"
    assert main(argv + [str(mine)]) == 0 and mine.stat().st_size > 100
    before = mine.stat().st_mtime_ns
    assert main(argv + [str(mine)]) == 0 and mine.stat().st_mtime_ns != before     # its own: replaced
    capsys.readouterr()


def test_a_cache_made_before_edge_pad_resumes_only_with_its_old_behaviour(data, tmp_path):
    """prepare.json of a cache made before `edge_pad` existed has no such key; those caches were
    made without edge padding, so resuming with the new default would mix two detections."""
    out = tmp_path / "c"
    assert run_prepare(scan("custom", data / "m.csv"), out, CFG, **QUIET).ok == 3
    info_path = out / "prepare.json"
    info = json.loads(info_path.read_text())
    del info["prepare_config"]["edge_pad"]
    info_path.write_text(json.dumps(info))
    with pytest.raises(PrepareError, match="edge_pad=0.0 there, 0.15 now"):
        run_prepare(scan("custom", data / "m.csv"), out, CFG, **QUIET)
    old = PrepareConfig(**{**CFG.to_dict(), "edge_pad": 0.0})
    again = run_prepare(scan("custom", data / "m.csv"), out, old, **QUIET)
    assert (again.already_done, again.failed) == (3, 0)     # accepted, and nothing left to redo
