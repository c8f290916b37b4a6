"""Network sources against a real RTSP server (GStreamer, ../shared/tools/rtsp_server.py): frames arrive,
a server that dies is retried and, when it comes back, the stream goes on; when it stays away, the
source gives up with a clear error. Unreachable URLs fail fast. Every test is bounded well under 30 s.
"""

import logging
import select
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from stream import SourceConfig, SourceError, SourceKind, open_source

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SERVER = SHARED / "tools" / "rtsp_server.py"
VIDEO = SHARED / "data" / "street_crossing.mp4"
SYSTEM_PYTHON = "/usr/bin/python3"


def _gst_rtsp_missing() -> str | None:
    if not SERVER.exists() or not VIDEO.exists():
        return f"shared RTSP server or video is absent ({SHARED})"
    probe = 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer'
    try:
        subprocess.run([SYSTEM_PYTHON, "-c", probe], check=True, capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return "GStreamer RTSP server is missing (python3-gi, gir1.2-gst-rtsp-server-1.0: .ci/system-deps.sh)"
    return None


_MISSING = _gst_rtsp_missing()
needs_rtsp = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RtspServer:
    """The shared test server as a subprocess; start() waits for its 'serving' line."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"rtsp://127.0.0.1:{port}/live"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        self.process = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), str(VIDEO), str(self.port)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        line = self.process.stdout.readline() if ready else ""
        if "serving" not in line:
            self.stop()
            pytest.fail(f"RTSP server did not start on port {self.port}: {line!r}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@pytest.fixture
def server():
    rtsp = RtspServer(free_port())
    try:
        rtsp.start()
        yield rtsp
    finally:
        rtsp.stop()


@needs_rtsp
@pytest.mark.timeout(30)
def test_rtsp_frames_arrive_with_the_video_size(server):
    started = time.monotonic()
    with open_source(server.url, max_frames=10) as source:
        opened_s = time.monotonic() - started
        frames = list(source)
    info = source.info
    assert info.kind is SourceKind.NETWORK and info.frame_count is None
    assert (info.width, info.height) == (640, 360)
    assert info.fps == pytest.approx(23.98, abs=0.1)
    assert [f.image.shape for f in frames] == [(360, 640, 3)] * 10
    indices = [f.index for f in frames]
    assert indices[0] == 0 and all(b > a for a, b in zip(indices, indices[1:], strict=False))
    times = [f.time for f in frames]
    assert all(b >= a for a, b in zip(times, times[1:], strict=False))
    assert opened_s < 5, f"opening took {opened_s:.1f} s"
    assert not source.running


@needs_rtsp
@pytest.mark.timeout(30)
def test_rtsp_server_restart_is_survived_by_reconnecting(server, caplog):
    config = SourceConfig(reconnect_attempts=8, reconnect_backoff_s=0.3, reconnect_max_backoff_s=1.0,
                          read_timeout_s=3.0, open_timeout_s=3.0)
    restarted = threading.Event()

    def restart():
        server.start()
        restarted.set()

    indices = []
    with caplog.at_level(logging.WARNING, logger="stream"), open_source(server.url, config=config) as source:
        deadline = time.monotonic() + 25
        for frame in source:
            indices.append(frame.index)
            assert frame.image.shape == (360, 640, 3)
            if len(indices) == 5:
                server.stop()  # the camera drops...
                threading.Timer(1.0, restart).start()  # ...and comes back a second later
            if source.stats.reconnects and len(indices) >= 15 or time.monotonic() > deadline:
                break
    assert restarted.is_set()
    assert source.stats.reconnects >= 1, caplog.text
    assert "reconnect attempt 1/8" in caplog.text and "reconnected after" in caplog.text
    assert len(indices) >= 15 and all(b > a for a, b in zip(indices, indices[1:], strict=False))
    assert not source.running


@needs_rtsp
@pytest.mark.timeout(30)
def test_rtsp_server_gone_for_good_gives_up_cleanly(server, caplog):
    config = SourceConfig(reconnect_attempts=3, reconnect_backoff_s=0.2, reconnect_max_backoff_s=0.5,
                          read_timeout_s=2.0, open_timeout_s=2.0)
    got = 0
    source = open_source(server.url, config=config)
    started = None
    with caplog.at_level(logging.WARNING, logger="stream"), pytest.raises(SourceError) as caught, source:
        for _frame in source:
            got += 1
            if got == 3:
                server.stop()
                started = time.monotonic()
    gave_up_s = time.monotonic() - started
    message = str(caught.value)
    assert message == f"stream {server.url} dropped and did not come back after 3 attempts"
    assert caplog.text.count("reconnect attempt") == 6  # announced, then failed, three times
    assert gave_up_s < 15, f"giving up took {gave_up_s:.1f} s"
    assert not source.running


@pytest.mark.timeout(20)
def test_unreachable_rtsp_url_fails_fast_with_a_clear_message():
    url = f"rtsp://127.0.0.1:{free_port()}/live"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        open_source(url, config=SourceConfig(open_timeout_s=2.0, open_attempts=2, reconnect_backoff_s=0.2))
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith(f"cannot open stream {url}: ") and "gave up after 2 attempts" in message
    assert "\n" not in message and elapsed < 5


@pytest.mark.timeout(20)
def test_silent_server_hits_the_open_timeout():
    with socket.socket() as listener:  # accepts TCP connections but never answers RTSP
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"rtsp://127.0.0.1:{listener.getsockname()[1]}/live"
        started = time.monotonic()
        with pytest.raises(SourceError, match="silent for 1.5 s"):
            open_source(url, config=SourceConfig(open_timeout_s=1.5))
        elapsed = time.monotonic() - started
    assert 1.0 < elapsed < 6, f"open took {elapsed:.1f} s"


def test_password_never_appears_in_errors():
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/live"
    with pytest.raises(SourceError) as caught:
        open_source(url, config=SourceConfig(open_timeout_s=1.0))
    assert "hunter2" not in str(caught.value) and "admin:***@" in str(caught.value)
