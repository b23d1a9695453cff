"""`mrpn predict` output safety (issue 10, fault 1): a result never replaces an input, two inputs
never share an output, a user's file is replaced only with --overwrite, and no traceback."""
from __future__ import annotations

import json
import os

import pytest
from media_factory import write_video

from mrpn.cli import main
from mrpn.inference.outputs import is_mrpn_json, is_mrpn_png, output_names


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("pred")
    return write_video(d / "clip.mp4", n_frames=15, fps=15, size=(96, 72))


def _copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    return dst


def test_json_or_plot_onto_the_input_is_refused(clip, tmp_path, capsys):
    v = _copy(clip, tmp_path / "clip.mp4")
    before = v.read_bytes()
    for flag in ("--json", "--plot"):
        assert main(["predict", str(v), flag, str(v)]) == 2
        err = capsys.readouterr().err
        assert "is an input" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # another spelling of the same file, and a hard link to it: compared as files, not strings
    os.link(v, tmp_path / "link.mp4")
    assert main(["predict", str(v), "--json", str(tmp_path / "." / "link.mp4")]) == 2
    assert main(["predict", str(v), "--json", f"{tmp_path}/../{tmp_path.name}/clip.mp4"]) == 2
    assert v.read_bytes() == before


def test_two_inputs_with_the_same_name_get_two_results(clip, tmp_path, capsys):
    a, b = _copy(clip, tmp_path / "a" / "clip.mp4"), _copy(clip, tmp_path / "b" / "clip.mp4")
    assert main(["predict", str(a), str(b), "--json", str(tmp_path / "res") + "/",
                 "--plot", str(tmp_path / "res")]) == 0
    js = sorted((tmp_path / "res").glob("*.json"))
    pngs = sorted((tmp_path / "res").glob("*.png"))
    assert len(js) == 2 and len(pngs) == 2
    assert {json.loads(p.read_text())["file"] for p in js} == {str(a), str(b)}
    assert all(is_mrpn_json(p) for p in js) and all(is_mrpn_png(p) for p in pngs)
    # a re-run replaces its own earlier results (recognised by their marker)
    assert main(["predict", str(a), str(b), "--json", str(tmp_path / "res") + "/"]) == 0
    capsys.readouterr()


def test_output_names_are_distinct_and_stable():
    vids = ["a/clip.mp4", "b/clip.mp4", "c/CLIP.avi", "d/other.mp4"]
    names = output_names(vids, ".json")
    assert len({n.lower() for n in names}) == 4 and names[3] == "other.json"
    assert names == output_names(vids, ".json")


def test_existing_file_is_kept_unless_mrpn_made_it_or_overwrite(clip, tmp_path, capsys):
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "data"}')
    assert main(["predict", str(clip), "--json", str(mine)]) == 2
    assert "not an earlier mrpn result" in capsys.readouterr().err and mine.read_text() == '{"my": "data"}'
    assert main(["predict", str(clip), "--json", str(mine), "--overwrite"]) == 0
    assert is_mrpn_json(mine)
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert main(["predict", str(clip), "--plot", str(png)]) == 2
    assert png.read_bytes()[8:] == b"\0" * 40
    capsys.readouterr()


def test_existing_file_given_for_several_videos_is_a_clean_error(clip, tmp_path, capsys):
    f = tmp_path / "existing.json"
    f.write_text("{}")
    assert main(["predict", str(clip), str(clip), "--json", str(f)]) == 2
    err = capsys.readouterr().err
    assert "need a folder" in err and "Traceback" not in err and "FileExistsError" not in err
