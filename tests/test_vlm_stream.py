"""The VLM slow path in the stream (`--vlm`, emomon.pipeline.vlm_stage) with the real detector, the trained test
model, the street clip and a real local chat-completions server (tests/vlm_server.py): the frame loop never waits
for the VLM, keeps its other outputs exactly while the VLM is slow or down, and answers land in the JSONL (a
`vlm` field of that person, once), the run summary (per track, and the status) and the app's explanation line."""

from __future__ import annotations

import json
import logging
import socket
import threading

import pytest
from vlm_server import FakeVlmServer

from emomon.kernel import InputError
from emomon.pipeline import EmotionModelConfig, MonitorConfig, OutputPaths, build_pipeline, run_pipeline
from emomon.pipeline.vlm_stage import VlmStage
from fusion.vlm import VlmConfig, load_vlm
from stream import open_source

FRAMES = 10


@pytest.fixture(scope="module")
def pipeline(trained_model_path_module, yolo_weights_module):
    config = MonitorConfig(model=EmotionModelConfig(str(trained_model_path_module), precision="fp32"))
    config.detector.weights, config.detector.imgsz, config.detector.runtime = str(yolo_weights_module), 320, "torch"
    return build_pipeline(config)


@pytest.fixture(scope="module")
def trained_model_path_module():
    from conftest import TRAINED_MODEL

    return TRAINED_MODEL


@pytest.fixture(scope="module")
def yolo_weights_module():
    from conftest import shared_file

    return shared_file("weights/yolo11n-pose.pt")


@pytest.fixture(scope="module")
def street():
    from conftest import shared_file

    return shared_file("data/street_crossing.mp4")


def run(pipeline, street, tmp_path, stage: VlmStage | None, on_frame=None, frames: int = FRAMES):
    pipeline.vlm = stage
    out = OutputPaths(jsonl=str(tmp_path / "o.jsonl"), summary=str(tmp_path / "s.json"))
    try:
        with open_source(street, max_frames=frames) as source:
            report = run_pipeline(source, pipeline, out, progress=False, on_frame=on_frame)
    finally:
        pipeline.vlm = None
        if stage is not None:
            stage.close()
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    return report, lines, json.loads((tmp_path / "s.json").read_text())


def without_vlm(lines):
    return [{**r, "persons": [{k: v for k, v in p.items() if k != "vlm"} for p in r["persons"]]} for r in lines]


@pytest.fixture(scope="module")
def baseline(pipeline, street, tmp_path_factory):
    """The same frames without a VLM: what every other output must stay."""
    return run(pipeline, street, tmp_path_factory.mktemp("base"), None)[1]


def stage_for(spec: str, every_s: float = 0.05, queue_size: int = 8, **client) -> VlmStage:
    return VlmStage(load_vlm(spec, VlmConfig(**{"timeout_s": 5, "retries": 0, **client})), every_s, queue_size)


def test_the_frame_loop_never_waits_for_a_vlm_that_holds_every_answer(pipeline, street, tmp_path, baseline):
    server = FakeVlmServer()
    server.hold = threading.Event()  # no answer until the frames are done
    asked_while = []
    try:
        report, lines, summary = run(pipeline, street, tmp_path, stage := stage_for(server.spec(), queue_size=1),
                                     on_frame=lambda r: asked_while.append((len(server.requests), server.answered)))
        state = stage.to_dict()
    finally:
        server.close()
    assert report.frames == FRAMES and len(lines) == FRAMES
    assert asked_while[0][0] >= 1 or asked_while[1][0] >= 1  # questions went out from the first frames...
    assert all(answered == 0 for _, answered in asked_while)   # ...and every frame was done with none answered
    # two questions with the workers, one queued: every other due track found the queue full and was skipped
    assert state["in_flight"] == 3 and state["answered"] == 0 and state["skipped_busy"] > 0
    assert without_vlm(lines) == baseline and not any("vlm" in p for r in lines for p in r["persons"])
    assert summary["vlm"]["asked"] >= 2 and summary["vlm"]["answered"] == 0


@pytest.mark.parametrize("case", ["refused", "500", "slow"])
def test_a_vlm_that_is_down_or_slow_changes_nothing_else_and_the_status_says_so(case, pipeline, street, tmp_path,
                                                                                 baseline, caplog):
    server = None if case == "refused" else FakeVlmServer(**({"status": 500} if case == "500" else {"delay_s": 0.6}))
    if server is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            spec = f"vlm:http://127.0.0.1:{s.getsockname()[1]}/v1#m"
    else:
        spec = server.spec()
    try:
        with caplog.at_level(logging.WARNING, logger="emomon.pipeline.vlm_stage"):
            report, lines, summary = run(pipeline, street, tmp_path, stage_for(spec, timeout_s=0.2))
    finally:
        if server:
            server.close()
    assert report.frames == FRAMES and without_vlm(lines) == baseline
    vlm = summary["vlm"]
    assert vlm["status"] == "down" and vlm["failed"] >= 1 and vlm["answered"] == 0
    says = {"refused": "Connection refused", "500": "HTTP 500", "slow": "no answer within 0.2 s"}[case]
    assert says in vlm["last_error"]
    assert caplog.text.count("gives no answers") == 1  # said once, not once per question


def test_answers_land_once_in_the_jsonl_and_per_track_in_the_summary(pipeline, street, tmp_path, baseline):
    server = FakeVlmServer()
    stage = stage_for(server.spec(), every_s=0.2)

    def settle(result):  # a few frames in, let the first answers arrive (the loop itself never waits)
        if result.index == 3:
            for _ in range(100):
                if not stage.to_dict()["in_flight"]:
                    break
                threading.Event().wait(0.05)

    try:
        report, lines, summary = run(pipeline, street, tmp_path, stage, on_frame=settle, frames=18)
    finally:
        server.close()
    landed = [(r["frame"], p["track_id"], p["vlm"]) for r in lines for p in r["persons"] if "vlm" in p]
    assert landed and without_vlm(lines[:FRAMES]) == baseline
    for frame, _, answer in landed:
        assert answer["frame"] < frame and answer["categories"] and answer["rationale"].startswith("brightness")
        assert set(answer["vad"]) == {"valence", "arousal", "dominance"} and answer["latency_s"] >= 0
        assert "test-vlm" in answer["model"]
    asked = {(a["frame"], t) for _, t, a in landed}
    assert len(asked) == len(landed)  # each answer lands once
    per_track = {t: [a for _, tt, a in landed if tt == t] for _, t, _ in landed}
    for answers in per_track.values():
        frames = [a["frame"] for a in answers]
        times = [a["time"] for a in answers]
        assert frames == sorted(frames) and all(b - a >= 0.2 - 1e-6 for a, b in zip(times, times[1:]))
    tracks = {t["track_id"]: t for t in summary["tracks"]}
    for track, answers in per_track.items():
        assert tracks[track]["vlm"]["answers"] == len(answers)
        assert tracks[track]["vlm"]["last"]["frame"] == answers[-1]["frame"]
    vlm = summary["vlm"]
    assert vlm["status"] == "ok" and vlm["attached"] == len(landed) and vlm["latency_s"]["count"] >= len(landed)


def test_app_shows_each_persons_explanation_and_the_vlm_status(tmp_path):
    import numpy as np

    from emomon.pipeline import RunSummary
    from emomon.webapp import views
    from fusion.models.labels import EMOTIC
    from fusion.results import PersonResult
    from fusion.vlm import parse_answer

    answer = parse_answer('{"categories": ["Peace"], "valence": 7, "arousal": 3, "dominance": 6, '
                          '"rationale": "sitting back, smiling"}', EMOTIC).at(frame=12, time=0.5)
    person = PersonResult(0, np.array([0, 0, 10, 10.0]), np.full(26, 0.1), np.full(3, 5.0), track_id=4)
    summary = RunSummary()
    summary.add(12, 0.5, [person])
    summary.add(13, 0.54, [person.replace(vlm=answer)])
    data = summary.to_dict()
    explain = views.explanations(data)
    assert explain == {4: "Peace: sitting back, smiling (frame 12)"}
    table = views.live_table([person, person.replace(track_id=5)], 3, explain)
    assert table["explanation"].tolist() == ["Peace: sitting back, smiling (frame 12)", "waiting for the VLM"]
    assert "explanation" not in views.live_table([person]).columns
    assert views.tracks_table(data)["explanation"].tolist() == ["Peace: sitting back, smiling (frame 12)"]


def test_cli_flags_and_a_vlm_as_frame_model(tmp_path, capsys, street, yolo_weights_module):
    import dataclasses

    from emomon.cli import main
    from emomon.commands.vlm_options import CLIENT_DEFAULTS

    defaults = dataclasses.asdict(VlmConfig())
    assert {k: defaults[k] for k in CLIENT_DEFAULTS} == CLIENT_DEFAULTS  # written out in the CLI, held equal here
    common = ["run", "--source", str(street), "--detector-weights", str(yolo_weights_module), "--jsonl",
              str(tmp_path / "o.jsonl")]
    assert main([*common, "--emotion-model", "vlm:http://127.0.0.1:9/v1#m"]) == 2
    assert "cannot be the frame model" in capsys.readouterr().err
    assert main([*common, "--vlm", "vlm:http://127.0.0.1:9/v1"]) == 2
    assert "names no model" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_app_webcam_session_with_a_vlm_and_without_a_server(pipeline, street, trained_model_path_module):
    """The Webcam tab's session over the real engine: the explanation column and the status line, first while
    the VLM answers, then with the server gone (the stream goes on and the line says so)."""
    import cv2

    from emomon.pipeline.config import VlmStageConfig
    from emomon.webapp import views
    from emomon.webapp.config import AppConfig, Settings
    from emomon.webapp.engine import AppEngine
    from emomon.webapp.ui import WebcamSession

    server = FakeVlmServer()
    config = AppConfig()
    config.monitor.model = EmotionModelConfig(str(trained_model_path_module), precision="fp32")
    config.monitor.vlm = VlmStageConfig(spec=server.spec(), every_s=0.01,
                                        client=VlmConfig(timeout_s=0.2, retries=0))
    engine = AppEngine(config, detector=pipeline.detector)
    config.extra_models.append(server.spec())  # offered as a frame model, it is refused with the way to use it
    with pytest.raises(InputError, match="add --vlm"):
        engine.model(server.spec())
    capture = cv2.VideoCapture(str(street))
    frames = [cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in range(5)]
    session = WebcamSession(engine, Settings.defaults(config))
    try:
        for i, rgb in enumerate(frames[:3]):
            session.process(rgb, Settings.defaults(config))
            if i == 0:
                for _ in range(100):  # let the first answers arrive before the next frames
                    if session.pipeline.vlm.to_dict()["answered"]:
                        break
                    threading.Event().wait(0.05)
        explain = views.explanations(session.summary.to_dict())
        assert explain and all("brightness" in text for text in explain.values())
        line = session.status_text(1, 1, (640, 360))
        assert "VLM:" in line and "answer" in line
        server.close()
        for rgb in frames[3:]:
            _, result = session.process(rgb, Settings.defaults(config))
            threading.Event().wait(0.3)  # the questions about these frames fail meanwhile
        assert result.persons and "VLM down: cannot reach" in session.status_text(1, 1, (640, 360))
    finally:
        session.close()
        server.close()
