"""The web app's pieces without a server: per-session tracking over one shared detector, settings, tables,
timelines, the model banner, H.264 output, video jobs (stride, time limit, Stop) and the CLI's checks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from detector import DetectorConfig
from emomon.kernel import InputError, parse_utc
from emomon.pipeline import EmotionModelConfig, MonitorConfig, PipelineConfig, RunSummary, SmoothingConfig
from emomon.webapp import AppConfig, AppEngine, Settings
from emomon.webapp.video import H264Writer, process_video
from emomon.webapp.views import (
    Timeline,
    model_banner,
    persons_table,
    session_table,
    track_choices,
    tracks_table,
)
from fusion import EMOTIC_CATEGORIES, RANDOM_WARNING, VAD_NAMES, PersonResult

TINY = "random:two_stream_tiny"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """Real YOLO weights, the tiny random emotion model, and a tiny checkpoint offered as an extra model."""
    from conftest import shared_file

    from fusion import create_model, save_checkpoint

    ckpt = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(create_model("two_stream_tiny", pretrained=False), ckpt, metadata={"metrics": {"test_mAP": 27.5}})
    monitor = MonitorConfig(DetectorConfig(weights=str(shared_file("weights/yolo11n-pose.pt"))),
                            EmotionModelConfig(TINY))
    return AppEngine(AppConfig(monitor, extra_models=[str(ckpt)]))


@pytest.fixture(scope="module")
def clip():
    from conftest import shared_file

    cap = cv2.VideoCapture(str(shared_file("data/street_crossing.mp4")))
    frames = [cap.read()[1] for _ in range(12)]
    cap.release()
    return frames


def fake_person(tid, box=(0, 0, 10, 20), top_index=0):
    probs = np.full(len(EMOTIC_CATEGORIES), 0.1)
    probs[top_index] = 0.9
    return PersonResult(0, np.asarray(box, np.float32), probs, np.array([6.0, 4.0, 5.0]), track_id=tid, score=0.8)


# -- sessions over shared models -------------------------------------------------------------------------------

def ids_of(pipeline, frames):
    return [sorted(p.track_id for p in pipeline.process(i, i / 24, f).persons) for i, f in enumerate(frames)]


def test_sessions_keep_their_own_track_ids(engine, clip):
    """Two sessions interleaved on one detector get the same ids as each alone; ids start at 1 per session."""
    settings = Settings.defaults(engine.config)
    alone = engine.pipeline(settings)
    reference = ids_of(alone, clip)
    alone.close()
    a, b = engine.pipeline(settings), engine.pipeline(settings)
    flipped = [cv2.flip(f, 1) for f in clip]
    got_a, got_b = [], []
    for i, (fa, fb) in enumerate(zip(clip, flipped)):
        got_a.append(sorted(p.track_id for p in a.process(i, i / 24, fa).persons))
        got_b.append(sorted(p.track_id for p in b.process(i, i / 24, fb).persons))
    assert got_a == reference
    assert min(min(ids) for ids in got_b if ids) == 1
    a.reset()  # a new source for session a: its ids restart, b's tracker is untouched
    assert min(ids_of(a, clip[:3])[-1]) == 1
    for p in (a, b):
        p.close()


def test_session_confidence_does_not_leak(engine, clip):
    strict = engine.pipeline(Settings(conf=0.85, model=TINY))
    loose = engine.pipeline(Settings(conf=0.1, model=TINY))
    strict.tracking = loose.tracking = False
    n_strict = len(strict.process(0, 0, clip[0]).persons)
    n_loose = len(loose.process(0, 0, clip[0]).persons)
    assert n_loose > n_strict
    assert engine.detector.config.conf == engine.config.monitor.detector.conf  # restored after each call


def test_threads_share_the_engine_safely(engine, clip):
    """Webcam sessions run in Gradio's worker threads: concurrent sessions still match their solo runs."""
    settings = Settings.defaults(engine.config)
    solo = engine.pipeline(settings)
    reference = ids_of(solo, clip[:6])
    solo.close()
    results, errors = {}, []

    def work(name):
        try:
            p = engine.pipeline(settings)
            results[name] = ids_of(p, clip[:6])
            p.close()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert all(r == reference for r in results.values())


def test_webcam_session_restarts_after_a_pause(engine, clip):
    from emomon.webapp.ui import WebcamSession

    settings = Settings.defaults(engine.config)
    session = WebcamSession(engine, settings)
    for f in clip[:3]:
        annotated, result = session.process(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), settings)
    assert annotated.shape == f.shape and session.frames == 3
    assert session.summary.frames == 3 and result.persons
    stamp = parse_utc(result.record()["utc"])  # absolute capture time, as `emomon run` writes for a camera
    assert abs(stamp - time.time()) < 60
    session.last -= 10  # the user stopped and started again
    session.process(cv2.cvtColor(clip[3], cv2.COLOR_BGR2RGB), settings)
    assert session.frames == 1 and session.summary.frames == 1
    big = cv2.resize(clip[0], (1280, 720))
    _, result = session.process(cv2.cvtColor(big, cv2.COLOR_BGR2RGB), settings)
    assert result.image.shape[:2] == (360, 640)  # live frames are processed at the detector's size
    session.close()


def test_models_are_offered_loaded_once_and_described(engine, tmp_path):
    ckpt = engine.config.extra_models[0]
    assert engine.model_choices == [TINY, ckpt]
    info = engine.model(ckpt)
    assert engine.model(ckpt) is info
    assert info.kind == "checkpoint" and "reported mAP 27.50" in info.description
    assert engine.model(TINY).kind == "random"
    with pytest.raises(InputError, match="not offered"):
        engine.model("zero-shot")


# -- settings, tables, banner ---------------------------------------------------------------------------------

def test_settings_map_onto_pipeline_config():
    base = AppConfig()
    cfg = Settings(conf=0.3, top_k=4, smoothing=0.75, scene_every=8, refresh_every=3).pipeline_config(base)
    assert cfg.top_k == 4 and cfg.reuse.scene_every == 8 and cfg.reuse.refresh_every == 3
    assert cfg.smoothing.mode == "ema" and cfg.smoothing.alpha == pytest.approx(0.25)
    assert Settings(smoothing=0).pipeline_config(base).smoothing.mode == "none"
    start = AppConfig(MonitorConfig(pipeline=PipelineConfig(smoothing=SmoothingConfig(alpha=0.4))))
    assert Settings.defaults(start).smoothing == pytest.approx(0.6)
    with pytest.raises(InputError):
        Settings(scene_every=0).pipeline_config(base)


def test_tables_and_timeline():
    persons = [fake_person(None, (1, 2, 3, 4), 2), fake_person(None, (5, 6, 7, 8), 3)]
    table = persons_table(persons, [2, 5])
    assert table["#"].tolist() == ["#2", "#5"]
    assert table["top emotions"][0].startswith(f"{EMOTIC_CATEGORIES[2]} 90%")

    timeline, summary = Timeline(), RunSummary()
    for frame in range(5):
        ps = [fake_person(1, top_index=4)] + ([fake_person(2, top_index=7)] if frame < 2 else [])
        timeline.add(frame / 10, ps)
        summary.add(frame, frame / 10, ps)
    assert timeline.tracks() == [(1, 5), (2, 2)]
    emotions, vad = timeline.frames(1, top_n=3)
    assert len(emotions) == 15 and emotions["emotion"].iloc[0] == EMOTIC_CATEGORIES[4]
    assert set(vad["dimension"]) == set(VAD_NAMES) and len(vad) == 15
    empty_e, empty_v = timeline.frames(99)
    assert empty_e.empty and empty_v.empty
    data = summary.to_dict()
    assert tracks_table(data)["dominant"].tolist() == [EMOTIC_CATEGORIES[4], EMOTIC_CATEGORIES[7]]
    assert session_table(data)["frames"].tolist() == [5, 2]
    assert track_choices(timeline, data)[0] == (f"#1 · {EMOTIC_CATEGORIES[4]} · 5 frames", 1)


def test_banner_says_which_model_plainly():
    random = model_banner("random", "two_stream_vitb16 with RANDOM weights", "yolo11n-pose.pt on cpu")
    assert "WARNING" in random and RANDOM_WARNING in random
    zero = model_banner("zero-shot", "zero_shot_vitb16 (pretrained towers)", "yolo11n-pose.pt on cpu")
    assert "zero-shot CLIP" in zero and "WARNING" not in zero
    ckpt = model_banner("checkpoint", "trained checkpoint runs/best.pt (two_stream_vitb16, reported mAP 27.50)", "d")
    assert "reported mAP 27.50" in ckpt and "WARNING" not in ckpt
    assert "<script>" not in model_banner("checkpoint", "<script>x</script>", "d")


# -- video -----------------------------------------------------------------------------------------------------

def test_h264_writer_output_plays_in_browsers(tmp_path):
    path = tmp_path / "v.mp4"
    writer = H264Writer(path, 23.976)
    for i in range(10):
        writer.write(np.full((361, 641, 3), i * 20, np.uint8))  # odd sizes: yuv420p needs even ones
    writer.close()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (640, 360)
        assert sum(1 for _ in container.decode(stream)) == 10
    assert path.read_bytes()[4:8] == b"ftyp"
    assert path.read_bytes().find(b"moov") < path.read_bytes().find(b"mdat")  # +faststart: plays while loading


def test_video_job_time_limit_stride_and_outputs(engine, street_video, tmp_path):
    seen = []
    run = process_video(engine, str(street_video), Settings.defaults(engine.config), tmp_path, max_seconds=1,
                        stride=2, progress=lambda done, total, text: seen.append((done, total)), name="street")
    assert run.frames == 12 and seen[-1] == (12, 12)  # 24 fps, 1 s, every 2nd frame
    assert run.stopped_by == "time limit (1 s)"
    lines = [json.loads(line) for line in Path(run.jsonl).read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(0, 24, 2))
    summary = json.loads(Path(run.summary).read_text())
    assert summary["stopped_by"] == run.stopped_by and summary["tracks"]
    assert Path(run.csv).read_text().startswith("frame,time,")
    with av.open(run.video) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in c.decode(video=0)) == 12
    assert run.timeline.tracks()[0][1] == 12


def test_video_job_stop_keeps_what_was_done(engine, street_video, tmp_path):
    cancel = threading.Event()

    def progress(done, total, text):
        if done == 3:
            cancel.set()

    run = process_video(engine, str(street_video), Settings.defaults(engine.config), tmp_path, max_seconds=0,
                        progress=progress, cancel=cancel)
    assert run.frames == 3 and run.stopped_by == "stopped by the user"
    assert len(Path(run.jsonl).read_text().splitlines()) == 3
    assert json.loads(Path(run.summary).read_text())["stopped_by"] == "stopped by the user"


@pytest.mark.parametrize("content", [b"", b"not a video at all"])
def test_video_job_bad_file_is_one_line(engine, tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(InputError) as err:
        process_video(engine, str(bad), Settings.defaults(engine.config), tmp_path / "out")
    assert "\n" not in str(err.value) and "bad.mp4" in str(err.value)


def truncated_clip(source: Path, path: Path, frames: int = 24) -> Path:
    """A browser-style MP4 (index first) cut in half: it opens, says `frames` frames, and decodes fewer."""
    cap = cv2.VideoCapture(str(source))
    writer = H264Writer(path.with_suffix(".full.mp4"), 24)
    for _ in range(frames):
        writer.write(cv2.resize(cap.read()[1], (320, 180)))
    writer.close()
    cap.release()
    data = path.with_suffix(".full.mp4").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_video_job_names_an_upload_by_its_file_name(engine, street_video, tmp_path):
    """Status and summary call an upload 'cut.mp4', never by the server folder it is kept in."""
    folder = tmp_path / "gradio" / "0123abcd"
    folder.mkdir(parents=True)
    clip = truncated_clip(street_video, folder / "cut.mp4")
    run = process_video(engine, str(clip), Settings.defaults(engine.config), tmp_path / "out", label="cut.mp4")
    assert "'cut.mp4' ended after" in run.stopped_by and str(folder) not in run.stopped_by
    summary = json.loads(Path(run.summary).read_text())
    assert summary["source"] == "video 'cut.mp4'" and summary["stopped_by"] == run.stopped_by
    assert str(folder) not in Path(run.summary).read_text()
    notes = folder / "notes.mp4"
    notes.write_text("not a video")
    with pytest.raises(InputError) as err:
        process_video(engine, str(notes), Settings.defaults(engine.config), tmp_path / "out2", label="notes.mp4")
    assert "'notes.mp4'" in str(err.value) and str(folder) not in str(err.value)


def test_hide_paths_keeps_only_file_names():
    from emomon.webapp.views import hide_paths

    text = "cannot open video '/srv/up/ab12/my clip.mp4' or /srv/up/x.mp4; /srv/upload/keep and /etc/hostname"
    assert hide_paths(text, ["/srv/up/"]) == ("cannot open video 'my clip.mp4' or x.mp4; /srv/upload/keep and "
                                              "/etc/hostname")


# -- command line ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--port", "0"], "--port 0 is not a port number"),
    (["--scene-every", "0"], "--scene-every"),
])
def test_cli_rejects_bad_options_before_loading_models(args, message):
    proc = subprocess.run([sys.executable, "-m", "emomon", "app", *args], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_python_app_py_has_the_same_flags():
    from conftest import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "app.py"), "--help"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0
    for flag in ("--host", "--port", "--share", "--emotion-model", "--detector-weights", "--max-upload-mb",
                 "--device", "--extra-model", "--server-sources"):
        assert flag in proc.stdout


def test_unknown_emotion_model_exits_2(yolo_weights):
    proc = subprocess.run([sys.executable, "-m", "emomon", "app", "--emotion-model", "no_such_model",
                           "--detector-weights", str(yolo_weights)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "unknown emotion model 'no_such_model'" in proc.stderr
