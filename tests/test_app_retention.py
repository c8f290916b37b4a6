"""The app keeps nothing of a session after it ends, in a real headless Chromium: a page that closes loses its
uploads and results at once (Gradio's unload event), other sessions keep theirs, and an open session's files
go when the keep time passes. Its own app process (tiny model, a 15 s keep time, a fast heartbeat).
Screenshot: test-artifacts/app_privacy.png (the face toggle, the note, a photo with its faces blurred)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, shared_file
from test_app_support import TINY, free_port, screenshot

pytest_plugins = ["test_app_support"]  # the session's browser
pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEEP_MINUTES = 0.25


@pytest.fixture(scope="module")
def short_keep_app(tmp_path_factory):
    weights = shared_file("weights/yolo11n-pose.pt")
    tmp = tmp_path_factory.mktemp("keep")
    gradio_dir = tmp / "gradio"
    port = free_port()
    env = {**os.environ, "YOLO_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "GRADIO_TEMP_DIR": str(gradio_dir), "EMOMON_CACHE": str(tmp / "cache"),
           "GRADIO_HEARTBEAT_INTERVAL": "0.5"}  # a closed page is noticed within a second
    log = tmp / "app.log"
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--emotion-model", TINY,
           "--detector-weights", str(weights), "--keep-minutes", str(KEEP_MINUTES)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the app exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the app did not serve within 180 s")
            time.sleep(0.5)
    yield url, gradio_dir
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def files_in(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def analyze_photo(chromium, url: str, photo: Path):
    """A new browser session that uploads `photo` in the Image tab and waits for the annotated result."""
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="load")
    page.wait_for_selector("#banner")
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-input input[type=file]").set_input_files(str(photo))
    page.locator("#image-output img").wait_for()
    page.wait_for_function("() => /person/.test(document.querySelector('#image-status').innerText)")
    return context, page


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_closing_the_page_deletes_its_files_and_the_keep_time_deletes_the_rest(chromium, short_keep_app):
    url, gradio_dir = short_keep_app
    before = files_in(gradio_dir)
    bus = Path(__import__("ultralytics").__file__).parent / "assets" / "bus.jpg"
    stays, stays_page = analyze_photo(chromium, url, bus)  # first: its files are the older ones
    files_b = files_in(gradio_dir) - before
    leaves, leaves_page = analyze_photo(chromium, url, shared_file("data/group_photo.jpg"))
    files_a = files_in(gradio_dir) - before - files_b
    assert any(p.name == "group_photo.jpg" for p in files_a), files_a  # the upload, as Gradio keeps it
    assert any(p.name != "group_photo.jpg" for p in files_a), files_a  # and the annotated result
    assert any(p.name == "bus.jpg" for p in files_b), files_b

    # The page says what it keeps, and offers the face toggle (the app hides faces by default).
    note = leaves_page.locator("#privacy-note").inner_text()
    assert "deleted from the server when you close this page" in note and f"{KEEP_MINUTES:g} minutes" in note
    assert leaves_page.locator("#anonymize input[value=blur]").is_checked()
    screenshot(leaves_page, "app_privacy.png")  # the toggle, the note and a photo with its faces blurred

    made = min(p.stat().st_ctime for p in files_a)
    leaves.close()  # the tab closes: its session ends
    assert wait_until(lambda: not any(p.exists() for p in files_a), 10), "the closed session's files are gone"
    assert time.time() - made < 60 * KEEP_MINUTES, "gone because the page closed, not because they were old"
    assert all(p.exists() for p in files_b), "the other (older) session keeps its files while it is open"
    assert not any(p.parent.exists() for p in files_a), "nor the folders Gradio made for them"

    # The open session's files go once they are older than the keep time (page still open).
    assert wait_until(lambda: not any(p.exists() for p in files_b), 60 * KEEP_MINUTES + 10)
    assert stays_page.locator("#banner").is_visible()
    stays.close()
