"""`emomon run` end to end on real video with the real YOLO weights, plus bad inputs and Ctrl-C."""

from __future__ import annotations

import collections
import csv
import json
import signal
import socket
import subprocess
import sys
import time

import cv2
import pytest

from fusion import EMOTIC_CATEGORIES


def emomon(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "emomon", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runs that finish on their own, side by side: one 60-frame run of the street clip with the trained test
    model (its outputs depend on each person; the real-size model's CLI run is tests/test_predict_cli.py's),
    shared by the assertions below, and a run on a folder of two photos. Name -> (process, its folder)."""
    import shutil

    from cli_runs import emomon_runs
    from conftest import TRAINED_MODEL, shared_file

    video, weights = shared_file("data/street_crossing.mp4"), shared_file("weights/yolo11n-pose.pt")
    photo = shared_file("data/group_photo.jpg")
    street, photos = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("photos")
    folder = photos / "photos"
    folder.mkdir()
    shutil.copy(photo, folder / "a.jpg")
    cv2.imwrite(str(folder / "b.png"), cv2.imread(str(photo))[:, ::-1])
    street_proc, folder_proc = emomon_runs([
        ["run", "--source", video, "--max-frames", "60", "--emotion-model", TRAINED_MODEL, "--detector-weights",
         weights, "--output", street / "o.mp4", "--jsonl", street / "o.jsonl", "--csv", street / "o.csv",
         "--summary", street / "s.json"],
        ["run", "--source", folder, "--emotion-model", "random:two_stream_tiny", "--detector-weights", weights,
         "--jsonl", photos / "o.jsonl"]], timeout=600)
    return {"street": (street_proc, street), "folder": (folder_proc, photos)}


@pytest.fixture(scope="module")
def street_run(runs):
    return runs["street"]


def test_run_exits_0_and_logs_every_frame(street_run):
    proc, out = street_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (out / "o.jsonl").read_text().splitlines()
    assert len(lines) == 60
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == list(range(60))
    assert all(b["time"] > a["time"] for a, b in zip(records, records[1:]))
    persons = [p for r in records for p in r["persons"]]
    assert len(persons) >= 60 * 3, "several people per frame in this clip"
    for p in persons:
        assert list(p["emotions"]) == list(EMOTIC_CATEGORIES)
        assert all(1 <= v <= 10 for v in p["vad"].values())
        assert len(p["top"]) == 3 and len(p["box"]) == 4 and 0 < p["score"] <= 1
        assert p["keypoints"] is not None and len(p["keypoints"]) == 17


def test_track_ids_persist(street_run):
    _, out = street_run
    records = [json.loads(line) for line in (out / "o.jsonl").read_text().splitlines()]
    frames_per_id = collections.Counter(
        tid for r in records for tid in {p["track_id"] for p in r["persons"] if p["track_id"] is not None})
    assert frames_per_id.most_common(1)[0][1] >= 40


def test_video_csv_and_summary(street_run):
    _, out = street_run
    cap = cv2.VideoCapture(str(out / "o.mp4"))
    assert cap.isOpened()
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (640, 360)
    summary = json.loads((out / "s.json").read_text())
    assert summary["frames"] == 60 and summary["tracks"]
    for track in summary["tracks"]:
        assert track["dominant_emotion"] in EMOTIC_CATEGORIES and set(track["mean_vad"]) == {
            "valence", "arousal", "dominance"}
    rows = (out / "o.csv").read_text().splitlines()
    jsonl_persons = sum(len(json.loads(line)["persons"]) for line in (out / "o.jsonl").read_text().splitlines())
    assert len(rows) == 1 + jsonl_persons


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BAD_INPUTS = ["missing", "truncated", "text_as_mp4", "empty_dir", "unreachable_rtsp", "bad_option"]


def bad_input(case: str, tmp_path) -> tuple[str, str]:
    """The source of a bad-input case (made under `tmp_path`) and what its error line must name."""
    if case == "missing":
        return str(tmp_path / "nope.mp4"), "not found"
    if case == "truncated":
        from conftest import shared_file

        data = shared_file("data/street_crossing.mp4").read_bytes()
        (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 5])
        return str(tmp_path / "cut.mp4"), "cut.mp4"
    if case == "text_as_mp4":
        (tmp_path / "notes.mp4").write_text("this is not a video\n" * 50)
        return str(tmp_path / "notes.mp4"), "notes.mp4"
    if case == "empty_dir":
        (tmp_path / "empty").mkdir()
        return str(tmp_path / "empty"), "empty"
    if case == "unreachable_rtsp":
        return f"rtsp://127.0.0.1:{closed_port()}/live", "rtsp://127.0.0.1"
    return "0", "--scene-every"


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory):
    """Every case's run, two at a time (each waits mostly on its own imports): case -> (process, expected text,
    seconds it took)."""
    from concurrent.futures import ThreadPoolExecutor

    from cli_runs import PARALLEL
    from conftest import shared_file

    weights = shared_file("weights/yolo11n-pose.pt")

    def one(case):
        tmp_path = tmp_path_factory.mktemp(case)
        source, expect = bad_input(case, tmp_path)
        extra = ["--scene-every", "0"] if case == "bad_option" else []
        start = time.monotonic()
        proc = emomon("run", "--source", source, "--emotion-model", "random:two_stream_tiny",
                      "--detector-weights", str(weights), "--jsonl", str(tmp_path / "o.jsonl"), *extra, timeout=120)
        return proc, expect, time.monotonic() - start

    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip(BAD_INPUTS, pool.map(one, BAD_INPUTS)))


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_inputs_exit_2_with_one_clear_line(case, bad_input_runs):
    proc, expect, seconds = bad_input_runs[case]
    assert proc.returncode == 2, (case, proc.stderr[-1500:])
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(("emomon: error:", "emomon run: error:")) and expect in last, last  # argparse: its prog
    assert "Traceback" not in proc.stderr
    assert seconds < 60


# The runs stopped by a signal, each with its model, the JSONL lines it writes before the signal and whether it
# has --max-frames 300 and a CSV: Ctrl-C (SIGINT), and what service managers and `docker stop` send.
STOPPED = {"SIGINT": ("random:two_stream_tiny", 8, False), "SIGTERM": ("trained", 5, True),
           "SIGHUP": ("trained", 5, True)}


@pytest.fixture(scope="module")
def stopped_runs(tmp_path_factory):
    """The Ctrl-C, SIGTERM and SIGHUP runs side by side (each mostly waits on its own start-up): each gets its
    signal once it has written its first lines. Signal name -> (process, stdout, stderr, its folder)."""
    from conftest import TRAINED_MODEL, shared_file

    video, weights = shared_file("data/street_crossing.mp4"), shared_file("weights/yolo11n-pose.pt")
    runs = {}
    for sig, (model, _, with_csv) in STOPPED.items():
        if getattr(signal, sig, None) is None:
            continue  # the test says so (a Windows machine has no SIGHUP)
        out = tmp_path_factory.mktemp(sig)
        extra = ["--max-frames", "300", "--csv", str(out / "o.csv")] if with_csv else []
        runs[sig] = out, subprocess.Popen(
            [sys.executable, "-m", "emomon", "run", "--source", str(video), "--emotion-model",
             str(TRAINED_MODEL) if model == "trained" else model, "--detector-weights", str(weights),
             "--output", str(out / "o.mp4"), "--jsonl", str(out / "o.jsonl"), "--summary", str(out / "s.json"), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting, deadline = set(runs), time.monotonic() + 180
    while waiting:
        for sig in sorted(waiting):
            out, proc = runs[sig]
            jsonl = out / "o.jsonl"
            written = len(jsonl.read_text().splitlines()) if jsonl.exists() else 0
            if proc.poll() is not None:  # ended on its own: its test says how
                waiting.discard(sig)
            elif written >= STOPPED[sig][1] or time.monotonic() > deadline:
                proc.send_signal(getattr(signal, sig))
                waiting.discard(sig)
        time.sleep(0.2)
    return {sig: (proc, *proc.communicate(timeout=60), out) for sig, (out, proc) in runs.items()}


def test_ctrl_c_leaves_valid_video_and_jsonl(stopped_runs):
    proc, _, err, tmp_path = stopped_runs["SIGINT"]
    jsonl = tmp_path / "o.jsonl"
    assert proc.returncode == 130, err[-1500:]
    lines = jsonl.read_text().splitlines()
    assert 8 <= len(lines) < 686
    for line in lines:
        json.loads(line)
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(lines)
    ok, frame = cap.read()
    assert ok and frame.shape == (360, 640, 3)
    assert json.loads((tmp_path / "s.json").read_text())["stopped_by"] == "interrupted"


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_close_every_output_and_exit_128_plus_the_signal(sig, stopped_runs):
    """What service managers and `docker stop` send: the frame is finished, the video stays playable with the
    same frames as the JSONL and CSV, the summary and the printed report say which signal stopped the run."""
    signum = getattr(signal, sig, None)
    if signum is None:
        pytest.skip(f"{sig} needs POSIX signals")
    proc, out, err, tmp_path = stopped_runs[sig]
    jsonl = tmp_path / "o.jsonl"
    assert proc.returncode == 128 + signum, err[-1500:]
    assert err.strip().splitlines()[-1] == f"emomon: stopped by {sig}"
    lines = jsonl.read_text().splitlines()
    assert 5 <= len(lines) < 300
    frames = [json.loads(line)["frame"] for line in lines]
    assert frames == list(range(len(frames)))
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert cap.isOpened() and cap.read()[0] and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(lines)
    with open(tmp_path / "o.csv", newline="") as f:
        assert sorted({int(r["frame"]) for r in csv.DictReader(f)}) == frames
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] == len(lines) and summary["stopped_by"] == sig
    assert json.loads(out.strip().splitlines()[-1])["stopped_by"] == sig
    assert not list(tmp_path.glob("*.tmp"))


def test_image_folder_is_detected_per_image_without_tracking(runs):
    proc, tmp_path = runs["folder"]
    assert proc.returncode == 0, proc.stderr[-1500:]
    records = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [len(r["persons"]) for r in records] == [6, 6], "every photo's persons, none lost to track confirmation"
