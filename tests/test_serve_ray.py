"""`emomon serve --ray` (issue 15) on the session's local Ray cluster: a camera served by the shared RTSP server
and a file camera, the model as a Ray Serve deployment. Both write JSONL; killing the RTSP server fails that
camera, which is restarted (its earlier output kept) while the file camera goes on; /status and /health say so.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import TRAINED_MODEL, shared_file
from test_stream_network import RtspServer, free_port, needs_rtsp

from emomon.cli import main


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")


@needs_rtsp
def test_two_cameras_one_dies_the_other_goes_on_and_the_status_says_so(ray_cluster, tmp_path):
    from detector import DetectorConfig
    from emomon.cluster import ServeConfig, WorkerConfig, load_cameras, serve_cameras
    from emomon.pipeline import EmotionModelConfig, MonitorConfig
    from stream import SourceConfig

    server = RtspServer(free_port())
    server.start()
    (tmp_path / "cameras.yaml").write_text(f"""cameras:
  - name: street
    source: {server.url}
    output: out/street.jsonl
    reconnect_attempts: 0
  - name: file
    source: {shared_file("data/street_crossing.mp4")}
    output: out/file.jsonl
    csv: out/file.csv
    vid_stride: 2
""")
    cameras = load_cameras(tmp_path / "cameras.yaml")
    street, file = (tmp_path / "out" / "street.jsonl"), (tmp_path / "out" / "file.jsonl")
    config = MonitorConfig(DetectorConfig(weights=str(shared_file("weights/yolo11n-pose.pt"))),
                           EmotionModelConfig(emotion_model=str(TRAINED_MODEL)))
    port = free_port()
    serve = ServeConfig(status_port=port, restart_delay_s=0.5, max_batch_size=4)
    stop, result = threading.Event(), {}
    job = threading.Thread(target=lambda: result.setdefault("status", serve_cameras(
        cameras, config, SourceConfig(open_timeout_s=2, read_timeout_s=2), serve, WorkerConfig(num_cpus=0.5),
        camera_cpus=0.5, stop=stop)))
    job.start()
    try:
        wait_for(lambda: lines(street) >= 2 and lines(file) >= 2, 180, "JSONL lines from both cameras")
        server.stop()  # the RTSP camera's source dies
        at_kill = lines(file)
        url = f"http://127.0.0.1:{port}"
        status = wait_for(lambda: (s := get(f"{url}/status")[1])["cameras"]["street"]["restarts"] >= 1 and s,
                          60, "the street camera's restart")["cameras"]
        assert status["street"]["last_error"] and status["street"]["state"] in ("restarting", "starting", "failed")
        assert status["file"]["restarts"] == 0 and status["file"]["last_error"] is None
        assert status["file"]["frames"] >= at_kill and status["file"]["persons"] >= 0
        wait_for(lambda: lines(file) > at_kill + 3, 60, "the file camera to go on")
        assert get(f"{url}/health") == (503, {"ok": False, "failing": ["street"]})  # its server stays away
        # restarted: the earlier run's output is kept beside the new one
        kept = wait_for(lambda: list((tmp_path / "out").glob("street.*.jsonl")), 30, "the street camera's restart")
        assert len(kept) == 1 and lines(kept[0]) >= 2
        model = get(f"{url}/status")[1]["model"]
        assert model["calls"] > 0 and model["mean_batch"] >= 1
    finally:
        stop.set()
        job.join(timeout=60)
        server.stop()
    assert not job.is_alive() and result["status"]["cameras"]["file"]["frames"] > at_kill
    for record in map(json.loads, file.read_text().splitlines()):
        assert set(record) >= {"frame", "time", "persons"}
    assert any(json.loads(line)["persons"] for line in kept[0].read_text().splitlines())


def test_serve_without_ray_or_with_a_bad_cameras_file_is_one_line(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("cameras:\n  - name: a b\n    source: 0\n    output: a.jsonl\n")
    assert main(["serve", "--cameras", str(tmp_path / "c.yaml")]) == 2
    assert "add --ray" in capsys.readouterr().err
    assert main(["serve", "--ray", "--cameras", str(tmp_path / "c.yaml")]) == 2
    assert "may hold only letters" in capsys.readouterr().err
    (tmp_path / "c.yaml").write_text("cameras:\n  - name: a\n    source: 0\n")
    assert main(["serve", "--ray", "--cameras", str(tmp_path / "c.yaml")]) == 2
    assert "'output' is missing" in capsys.readouterr().err
