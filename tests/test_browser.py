"""The `mrpn serve` page in a real headless browser (Debian's Chromium driven by Playwright).

Starts the real server (`mrpn serve`, a subprocess) on a free 127.0.0.1 port, uploads a real RAVDESS
clip through the page, checks the label against `mrpn predict`'s JSON, seeks the video and checks
that the cursor and the current label follow, records 3 s from Chromium's fake camera and
microphone, and saves a screenshot (MRPN_SCREENSHOT=path also copies it there, e.g. docs/img/serve.png).
Install the browser with tools/install_browser.sh; without one the test skips and says why.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLIP = "ravdess/video/Actor_01/01-01-08-01-01-02-01.mp4"  # audio + video, surprised


def chromium() -> str | None:
    return os.environ.get("MRPN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
    from serve_util import free_port

    port = free_port()
    tmp = tmp_path_factory.mktemp("uploads")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "mrpn.cli", "serve", "--port", str(port), "--tmp-dir", str(tmp)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"mrpn serve did not start: {proc.stdout.read()}")
        time.sleep(0.2)
    yield url, tmp
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium installed (run tools/install_browser.sh)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip package 'playwright' is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=[
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


MASK_VIDEO = """(() => {
  const v = document.getElementById('video'), r = v.getBoundingClientRect(), m = document.createElement('div');
  m.id = 'mask';
  Object.assign(m.style, {position: 'absolute', left: r.left + scrollX + 'px', top: r.top + scrollY + 'px',
    width: r.width + 'px', height: r.height + 'px', background: '#3a4150', color: '#cfd6e2',
    display: 'flex', alignItems: 'center', justifyContent: 'center', textAlign: 'center', font: '15px system-ui',
    borderRadius: '6px'});
  m.textContent = 'RAVDESS clip playing here (its frames are not reproduced: the data set stays out of the repository)';
  document.body.append(m);
})()"""


def nearest_label(rec: dict, t: float) -> str:
    wins = [w for w in rec["timeline"] if w["probabilities"]]
    return min(wins, key=lambda w: abs((w["start"] + w["end"]) / 2 - t))["label"]


@pytest.mark.slow
@pytest.mark.realdata
def test_page_upload_seek_record(shared_data, server, browser, tmp_path):
    from mrpn.cli import main

    url, uploads = server
    clip = shared_data / CLIP
    assert main(["predict", str(clip), "--json", str(tmp_path / "cli.json")]) == 0
    cli = json.loads((tmp_path / "cli.json").read_text())

    page = browser.new_page(viewport={"width": 1200, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("document.getElementById('model').options.length > 0")
    page.set_input_files("#file", str(clip))
    page.wait_for_function("document.getElementById('status').textContent.includes('predicted in')", timeout=120_000)
    assert page.text_content("#file-label").split()[0] == cli["label"]
    assert page.text_content("#file-name") == clip.name
    page.wait_for_function("document.getElementById('video').readyState >= 1", timeout=30_000)

    # seek: the cursor moves to the time's x and the current label is that time's window's label
    left, width = (float(page.get_attribute("#timeline", a)) for a in ("data-plot-left", "data-plot-width"))
    for t in (0.6, 2.0, cli["duration_s"] - 0.3, 1.2):
        page.evaluate(f"(() => {{ const v = document.getElementById('video'); v.pause(); v.currentTime = {t}; }})()")
        page.wait_for_function(f"Math.abs(+document.getElementById('now-label').dataset.t - {t}) < 0.05")
        x = float(page.get_attribute("#timeline", "data-cursor-x"))
        assert abs(x - (left + t / cli["duration_s"] * width)) < 2.0, (t, x)
        assert page.text_content("#now-label") == nearest_label(cli, t), t
    # playback moves the cursor by itself
    x0 = float(page.get_attribute("#timeline", "data-cursor-x"))
    page.evaluate("document.getElementById('video').play()")
    page.wait_for_function(f"+document.getElementById('timeline').dataset.cursorX > {x0 + 5}", timeout=15_000)
    page.evaluate("(() => { const v = document.getElementById('video'); v.pause(); v.currentTime = 1.2; })()")
    page.wait_for_function("Math.abs(+document.getElementById('now-label').dataset.t - 1.2) < 0.05")
    page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
    if os.environ.get("MRPN_SCREENSHOT"):
        # the copy for docs/ covers the RAVDESS frames: the data set's media never enters the repository
        page.evaluate(MASK_VIDEO)
        page.screenshot(path=os.environ["MRPN_SCREENSHOT"], full_page=True)
        page.evaluate("document.getElementById('mask').remove()")

    # downloads: the JSON is the record shown, the PNG is the `mrpn predict --plot` image
    with page.expect_download() as d:
        page.click("#dl-json")
    assert json.loads(Path(d.value.path()).read_text())["label"] == cli["label"]
    with page.expect_download() as d:
        page.click("#dl-png")
    assert Path(d.value.path()).read_bytes()[:4] == b"\x89PNG"

    # record 3 s from the fake camera + microphone (a test pattern without a face, and a beep)
    page.click("#record")
    page.wait_for_function("document.getElementById('status').textContent.includes('recording.webm: predicted')",
                           timeout=120_000)
    assert page.text_content("#file-name") == "recording.webm"
    assert page.text_content("#now-label") != "-"
    mods = page.eval_on_selector_all("#mods .mod.on", "els => els.map(e => e.textContent)")
    assert mods, "a recording must be predicted from at least one modality"
    if "face" not in mods:
        assert "no face" in page.text_content("#notes")
    page.screenshot(path=str(tmp_path / "serve_recording.png"), full_page=True)
    if os.environ.get("MRPN_SCREENSHOT"):
        shutil.copy(tmp_path / "serve_recording.png", str(os.environ["MRPN_SCREENSHOT"]).replace(".png", "_recording.png"))
    assert not errors, errors
    assert list(uploads.iterdir()) == []
