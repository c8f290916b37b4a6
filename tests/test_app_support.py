"""Fixtures shared by the app's server and browser tests (no tests here): one app process per test session.

The app runs as `python app.py` on a free localhost port with the real-size random emotion model (the tiny
one is offered as an extra model for the webcam test) and the shared YOLO weights.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, shared_file

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
TINY = "random:two_stream_tiny"


@dataclass
class AppServer:
    url: str
    proc: subprocess.Popen
    log: Path

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    weights = shared_file("weights/yolo11n-pose.pt")
    shared_file("data/group_photo.jpg")
    tmp = tmp_path_factory.mktemp("app")
    port = free_port()
    env = {**os.environ, "YOLO_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "GRADIO_TEMP_DIR": str(tmp / "gradio"), "EMOMON_CACHE": str(tmp / "cache")}
    log = tmp / "app.log"
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--emotion-model", "random",
           "--extra-model", TINY, "--extra-model", "missing_model.pt",  # fails its start-up check: not offered
           "--detector-weights", str(weights), "--video-seconds", "2"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}/", proc, log)
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the app exited with {proc.returncode} before serving:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the app did not serve within 180 s:\n{server.log_tail()}")
        time.sleep(0.5)
    yield server
    proc.send_signal(signal.SIGINT)  # Gradio shuts down cleanly; the app removes its run folder at exit
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def fake_camera_clip(tmp_path_factory) -> Path:
    """The first 3 s of the street clip as a Y4M file for Chromium's fake camera (written with OpenCV)."""
    import cv2

    path = tmp_path_factory.mktemp("cam") / "street.y4m"
    cap = cv2.VideoCapture(str(shared_file("data/street_crossing.mp4")))
    with open(path, "wb") as out:
        out.write(b"YUV4MPEG2 W640 H360 F24:1 Ip A1:1 C420jpeg\n")
        for _ in range(72):
            ok, frame = cap.read()
            if not ok:
                break
            out.write(b"FRAME\n" + cv2.cvtColor(cv2.resize(frame, (640, 360)), cv2.COLOR_BGR2YUV_I420).tobytes())
    cap.release()
    return path


@pytest.fixture(scope="session")
def playwright_instance():
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"{CHROMIUM} is absent (Debian's chromium package; .ci/system-deps.sh installs it)")
    from playwright import sync_api  # a dev dependency (pyproject)

    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def chromium(playwright_instance, fake_camera_clip):
    """Headless Debian Chromium with a fake camera playing the street clip; camera permission auto-granted."""
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    b = playwright_instance.chromium.launch(
        executable_path=executable, headless=True,
        args=[*CHROMIUM_FLAGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={fake_camera_clip}"])
    yield b
    b.close()


@pytest.fixture
def app_page(chromium, app_server):
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_server.url, wait_until="load")  # not networkidle: Gradio keeps a connection open
    page.wait_for_selector("#banner")
    yield page
    context.close()


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Keep a screenshot in test-artifacts/ (toasts sit in the viewport's corner: full_page=False for them)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path
