"""The running app through its API (`gradio_client`), as `python app.py --emotion-model random` serves it."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import gradio_client
import numpy as np
import pytest
from conftest import shared_file

from fusion import EMOTIC_CATEGORIES

pytest_plugins = ["test_app_support"]  # the session's app process


@pytest.fixture(scope="module")
def client(app_server):
    return gradio_client.Client(app_server.url, verbose=False)


def rows(table: dict) -> list[list]:
    return table["data"]


def test_page_names_the_model_with_a_warning_banner(app_server):
    import urllib.request

    with urllib.request.urlopen(app_server.url + "config", timeout=10) as r:
        config = r.read().decode()
    assert "WARNING: EMOTION MODEL HAS RANDOM WEIGHTS" in config
    assert "two_stream_vitb16 with RANDOM weights" in config


def test_image_api_group_photo_six_persons(client):
    annotated, table, status = client.predict(gradio_client.handle_file(str(shared_file("data/group_photo.jpg"))),
                                              api_name="/analyze_image")
    assert len(rows(table)) == 6, status
    assert "6 persons" in status
    assert [r[0] for r in rows(table)] == [f"#{i}" for i in range(1, 7)]
    first = rows(table)[0]
    assert first[1].split(" ")[0] in EMOTIC_CATEGORIES and 1 <= first[2] <= 10
    image = cv2.imread(annotated)
    assert image.shape == cv2.imread(str(shared_file("data/group_photo.jpg"))).shape


def test_video_api_first_seconds(client, street_video):
    video, files, status, tracks, track, emo, vad = client.predict(
        video=gradio_client.handle_file(str(street_video)), max_seconds=2, stride=2, api_name="/analyze_video")
    assert "Processed **24 frames**" in status and "time limit (2 s)" in status
    with av.open(video) as c:  # browser-playable: H.264 in MP4
        assert c.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in c.decode(video=0)) == 24
    by_name = {Path(f).suffix: f for f in files}
    assert set(by_name) == {".jsonl", ".csv", ".json"}
    records = [json.loads(line) for line in Path(by_name[".jsonl"]).read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(0, 48, 2))
    assert all(list(p["emotions"]) == list(EMOTIC_CATEGORIES) for r in records for p in r["persons"])
    assert sum(len(r["persons"]) for r in records) >= 24 * 3
    summary = json.loads(Path(by_name[".json"]).read_text())
    assert len(rows(tracks)) == len(summary["tracks"]) >= 3
    assert Path(by_name[".csv"]).read_text().count("\n") == 1 + sum(len(r["persons"]) for r in records)
    assert track["value"] == summary["tracks"][0]["track_id"]
    assert emo["data"] and vad["data"]


def test_bad_inputs_are_readable_errors_and_the_app_keeps_serving(client, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    with pytest.raises(gradio_client.exceptions.AppError) as err:
        client.predict(video=gradio_client.handle_file(str(notes)), api_name="/analyze_video")
    assert "cannot be played" in str(err.value) and "'notes.txt'" in str(err.value)
    assert "/gradio/" not in str(err.value)  # the upload's name, not its cache path

    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(gradio_client.exceptions.AppError, match="'empty.png' is an empty file"):
        client.predict(gradio_client.handle_file(str(empty)), api_name="/analyze_image")

    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8 this is not really a jpeg")
    with pytest.raises(gradio_client.exceptions.AppError, match="'garbage.jpg' is not a readable image"):
        client.predict(gradio_client.handle_file(str(garbage)), api_name="/analyze_image")

    with pytest.raises(gradio_client.exceptions.AppError, match="does not read server-side paths"):
        client.predict(server_path="/etc/hostname", api_name="/analyze_video")
    with pytest.raises(gradio_client.exceptions.AppError, match="No video yet"):
        client.predict(api_name="/analyze_video")

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 200, np.uint8))
    _, table, status = client.predict(gradio_client.handle_file(str(blank)), api_name="/analyze_image")
    assert rows(table) == [] and "No person found" in status

    _, table, _ = client.predict(gradio_client.handle_file(str(shared_file("data/group_photo.jpg"))), conf=0.5,
                                 api_name="/analyze_image")
    assert len(rows(table)) == 6


def raw_call(server, api: str, data: list) -> tuple[str, dict]:
    """One request through Gradio's HTTP API without gradio_client (which uploads every file it sends):
    the SSE event name and its data."""
    import urllib.request

    request = urllib.request.Request(f"{server.url}gradio_api/call/{api}", json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        event_id = json.load(r)["event_id"]
    with urllib.request.urlopen(f"{server.url}gradio_api/call/{api}/{event_id}", timeout=120) as r:
        lines = r.read().decode().splitlines()
    event = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("event:"))
    return event, json.loads(next(line.split(":", 1)[1] for line in lines if line.startswith("data:")))


def test_requests_gradio_refuses_are_readable(app_server):
    """A file path that was never uploaded, or too few inputs: one line saying why, not `{"error": null}`."""
    settings = [0.25, 3, 0.5, 4, 2, "random", "blur"]
    never_uploaded = {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}
    for api, data in (("analyze_video", [never_uploaded, "", 2, 1, *settings]),
                      ("analyze_image", [never_uploaded, *settings])):
        event, payload = raw_call(app_server, api, data)
        assert event == "error" and payload["error"], payload
        assert payload["error"].startswith("'hostname' was not uploaded to this app")
        assert "\n" not in payload["error"]
    event, payload = raw_call(app_server, "analyze_image", [never_uploaded])
    assert event == "error" and "inputs could not be read" in (payload["error"] or ""), payload


def test_status_names_the_upload_not_the_server_folder(client, street_video, tmp_path):
    from test_app_units import truncated_clip

    clip = truncated_clip(street_video, tmp_path / "cut.mp4")
    _, files, status, *_ = client.predict(video=gradio_client.handle_file(str(clip)), max_seconds=0,
                                          api_name="/analyze_video")
    assert "video 'cut.mp4' ended after" in status, status
    assert "/gradio/" not in status and "/tmp" not in status
    summary = json.loads(Path(next(f for f in files if f.endswith(".json"))).read_text())
    assert summary["source"] == "video 'cut.mp4'" and "/gradio/" not in summary["stopped_by"]


def test_settings_reach_the_pipeline(client):
    _, table, _ = client.predict(gradio_client.handle_file(str(shared_file("data/group_photo.jpg"))), top_k=5,
                                 conf=0.95, api_name="/analyze_image")
    assert len(rows(table)) < 6  # a strict detector threshold finds fewer persons
    _, table, _ = client.predict(gradio_client.handle_file(str(shared_file("data/group_photo.jpg"))), top_k=5,
                                 api_name="/analyze_image")
    assert all(r[1].count("%") == 5 for r in rows(table))


def test_switching_model_names_it(client):
    banner, *_ = client.predict(model="random:two_stream_tiny", api_name="/set_model")
    assert "two_stream_tiny with RANDOM weights" in banner and "WARNING" in banner


def test_stop_button_keeps_the_part_done(client, street_video):
    """Stop (same browser session) ends a long job after the current frame; the outputs so far come back."""
    import time

    job = client.submit(video=gradio_client.handle_file(str(street_video)), max_seconds=0,
                        api_name="/analyze_video")
    deadline = time.monotonic() + 120
    while not (job.status().progress_data or job.done()):  # wait until frames are being processed
        assert time.monotonic() < deadline, "no progress reported"
        time.sleep(0.2)
    client.predict(api_name="/stop_video")
    _, files, status, *_ = job.result(timeout=120)
    assert "stopped by the user" in status
    jsonl = next(f for f in files if f.endswith(".jsonl"))
    assert 1 <= len(Path(jsonl).read_text().splitlines()) < 100
