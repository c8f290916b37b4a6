"""Data loss under faults: full disks, failed writes, bad output paths, sources that die, SIGTERM.

The rule held here: a failed write or a bad output ends the run with an InputError (exit 2 from the CLI) that
names the file and the cause; every output written so far is valid and holds the same frames as the others
(a half-written JSONL/CSV line is cut back, a frame one output missed is taken back out of the others, a
video that cannot be finished is removed, never left unplayable); no temporary file is left; the summary and
the printed report say why the run stopped; a second error while closing never hides the first.

The in-process tests fake the faults (a file object that fails like a full disk); the CLI tests use a real
tmpfs that fills up (root only: they skip with the reason where mounting is not allowed).
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from emomon.kernel import InputError
from emomon.kernel.files import check_writable, write_json_atomic
from emomon.pipeline import CsvWriter, EmotionPipeline, PipelineConfig, VideoWriter
from emomon.pipeline import outputs as outputs_mod
from emomon.pipeline.interrupts import Terminated
from emomon.pipeline.outputs import JsonlWriter, SummaryWriter
from emomon.pipeline.runner import OutputPaths, RunReport, run_pipeline
from fusion import EMOTIC_CATEGORIES, PersonResult, Predictor, create_model
from stream import SourceConfig, SourceError, SourceInfo, SourceKind, VideoSource

ROOT = Path(__file__).resolve().parents[1]
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# -- helpers ---------------------------------------------------------------------------------------------


class ScriptedDetector:
    """One person per frame at a fixed box; `new_ids` gives every frame a new track (the summary grows)."""

    def __init__(self, new_ids: bool = False):
        self.i, self.new_ids = 0, new_ids

    def reset(self):
        self.i = 0

    def track(self, image):
        tid = self.i + 1 if self.new_ids else 1
        self.i += 1
        return sv.Detections(xyxy=np.array([[10, 5, 50, 45]], np.float32), confidence=np.array([0.9], np.float32),
                             class_id=np.zeros(1, int), tracker_id=np.array([tid]))


class Reader:
    def __init__(self, count: int, size=(96, 64)):
        self.count, self.size, self.read_frames = count, size, 0
        self.rng = np.random.default_rng(0)

    def read(self):
        if self.read_frames >= self.count:
            return False, None
        self.read_frames += 1
        return True, self.rng.integers(0, 255, (self.size[1], self.size[0], 3), dtype=np.uint8)

    def release(self):
        pass


def person_record(track_id: int) -> dict:
    probs = np.full(len(EMOTIC_CATEGORIES), 0.01)
    probs[0] = 0.9
    return PersonResult(0, np.array([1.0, 2.0, 30.0, 60.0]), probs, np.array([5.0, 6.0, 7.0]), track_id=track_id,
                        score=0.8).record()


def make_source(frames: int = 6, size=(96, 64), known_size: bool = True, **kwargs) -> VideoSource:
    kind = kwargs.pop("kind", SourceKind.FILE)
    w, h = size if known_size else (0, 0)
    info = SourceInfo(kind=kind, spec="fake", fps=10.0, width=w, height=h, frame_count=frames)
    return VideoSource(Reader(frames, size), info, **kwargs)


def make_pipeline(new_ids: bool = False) -> EmotionPipeline:
    return EmotionPipeline(ScriptedDetector(new_ids), Predictor(create_model("two_stream_tiny", pretrained=False)),
                           PipelineConfig())


def all_outputs(folder: Path) -> OutputPaths:
    return OutputPaths(video=str(folder / "o.mp4"), jsonl=str(folder / "o.jsonl"), csv=str(folder / "o.csv"),
                       summary=str(folder / "s.json"))


def jsonl_frames(path) -> list[int]:
    text = Path(path).read_text()
    assert text == "" or text.endswith("\n"), "the JSONL ends with a whole line"
    return [r["frame"] for r in map(json.loads, text.splitlines()) if "event" not in r]  # events: own lines


def csv_frames(path) -> list[int]:
    with open(path, newline="") as f:
        return sorted({int(r["frame"]) for r in csv.DictReader(f)})


def video_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        assert cap.isOpened() and cap.read()[0], f"{path} is not a playable video"
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def assert_consistent(folder: Path, frames: int, video: bool = True) -> dict:
    """JSONL, CSV, video and summary all hold frames 0..frames-1; no temporary file is left."""
    assert jsonl_frames(folder / "o.jsonl") == list(range(frames))
    assert csv_frames(folder / "o.csv") == list(range(frames))
    if video:
        if frames:
            assert video_frames(folder / "o.mp4") == frames
        else:
            assert not (folder / "o.mp4").exists(), "an empty container is not left behind"
    summary = json.loads((folder / "s.json").read_text())
    assert summary["frames"] == frames
    assert not list(folder.rglob("*.tmp")), "temporary files are cleaned up"
    return summary


class FullDisk:
    """Stands in for an output's file object: `whole` writes land, the next lands half, then ENOSPC."""

    def __init__(self, real, whole: int):
        self.real, self.whole, self.calls = real, whole, 0

    def write(self, data):
        self.calls += 1
        if self.calls <= self.whole:
            return self.real.write(data)
        if self.calls == self.whole + 1:
            return self.real.write(bytes(data[: max(1, len(data) // 2)]))
        raise ENOSPC

    def __getattr__(self, name):
        return getattr(self.real, name)


def fill_after(monkeypatch, suffix: str, whole: int) -> None:
    """The output ending in `suffix` hits a full disk after `whole` write calls."""
    real_init = outputs_mod._RecordFile.__init__

    def init(self, path):
        real_init(self, path)
        if str(path).endswith(suffix):
            self._f = FullDisk(self._f, whole)

    monkeypatch.setattr(outputs_mod._RecordFile, "__init__", init)


# -- full disk and failed writes, in process -------------------------------------------------------------


def test_a_full_disk_cuts_the_jsonl_back_to_its_last_whole_line(tmp_path, monkeypatch):
    fill_after(monkeypatch, ".jsonl", whole=3)  # frames 0-2 land, frame 3 is cut in the middle
    report = RunReport()
    with make_source(8) as source, pytest.raises(InputError) as caught:
        run_pipeline(source, make_pipeline(), all_outputs(tmp_path), progress=False, report=report)
    assert str(caught.value) == f"cannot write '{tmp_path / 'o.jsonl'}': No space left on device"
    summary = assert_consistent(tmp_path, 3)
    assert summary["stopped_by"] == report.stopped_by == f"error: {caught.value}"
    assert report.frames == 3


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_a_writer_cuts_its_half_written_frame_back_by_itself(tmp_path, kind):
    """Without the runner's help: the file ends with its last whole line, and the writer keeps going from there."""
    record = {"frame": 0, "time": 0.0, "persons": [person_record(1), person_record(2)]}
    w = (JsonlWriter if kind == "jsonl" else CsvWriter)(tmp_path / f"o.{kind}")
    w._file._f = FullDisk(w._file._f, whole=2)  # frames 0 and 1 land, frame 2 is cut in the middle
    w.write(record)
    w.write({**record, "frame": 1})
    before = (tmp_path / f"o.{kind}").read_bytes()
    with pytest.raises(InputError, match=rf"o\.{kind}': No space left on device"):
        w.write({**record, "frame": 2})
    assert (tmp_path / f"o.{kind}").read_bytes() == before and before.endswith(b"\n")
    w._file._f = w._file._f.real  # room again: the next frame starts on a line of its own
    w.write({**record, "frame": 3})
    w.close()
    assert (jsonl_frames if kind == "jsonl" else csv_frames)(tmp_path / f"o.{kind}") == [0, 1, 3]


def test_a_frame_one_output_missed_is_taken_back_out_of_the_others(tmp_path, monkeypatch):
    fill_after(monkeypatch, ".csv", whole=1 + 3)  # the header and frames 0-2; frame 3 fails after the JSONL had it
    with make_source(8) as source, pytest.raises(InputError, match="o.csv'"):
        run_pipeline(source, make_pipeline(), all_outputs(tmp_path), progress=False)
    assert_consistent(tmp_path, 3)


def test_a_video_whose_disk_fills_stops_while_it_can_still_be_finished(tmp_path, monkeypatch):
    """The free space drops once frame 3 is in the JSONL: the video refuses the frame and the JSONL and CSV give
    it back, so all four outputs hold frames 0-2 and the video is playable."""
    jsonl = tmp_path / "o.jsonl"

    def free(folder):
        return 10**12 if len(jsonl.read_text().splitlines()) < 4 else 100 << 10

    monkeypatch.setattr(outputs_mod, "free_bytes", free)
    with make_source(8) as source, pytest.raises(InputError) as caught:
        run_pipeline(source, make_pipeline(), all_outputs(tmp_path), progress=False)
    assert str(caught.value).startswith(f"cannot write '{tmp_path / 'o.mp4'}': No space left on device")
    assert_consistent(tmp_path, 3)


def test_the_summary_holds_its_room_so_a_full_disk_leaves_it_whole(tmp_path, monkeypatch):
    """New tracks grow the summary's reservation; the disk refuses at the fifth: the run stops before frame 4
    and the summary of frames 0-3 is still written, with the reason."""
    real = outputs_mod._allocate

    def allocate(f, size):
        if size > 16 << 10:
            raise ENOSPC
        real(f, size)

    monkeypatch.setattr(outputs_mod, "_allocate", allocate)
    with make_source(8) as source, pytest.raises(InputError, match="s.json': No space left on device"):
        run_pipeline(source, make_pipeline(new_ids=True), all_outputs(tmp_path), progress=False)
    summary = assert_consistent(tmp_path, 4)
    assert summary["stopped_by"].startswith("error: cannot write") and len(summary["tracks"]) == 4


def test_a_second_error_while_closing_never_hides_the_first(tmp_path, monkeypatch, caplog):
    fill_after(monkeypatch, ".jsonl", whole=2)

    def broken_close(self):
        raise InputError(f"cannot write '{self.path}': second failure")

    monkeypatch.setattr(VideoWriter, "close", broken_close)
    with make_source(6) as source, caplog.at_level(logging.WARNING), pytest.raises(InputError) as caught:
        run_pipeline(source, make_pipeline(), all_outputs(tmp_path), progress=False)
    assert "o.jsonl': No space left on device" in str(caught.value)
    assert "second failure" in caplog.text
    assert jsonl_frames(tmp_path / "o.jsonl") == [0, 1] and csv_frames(tmp_path / "o.csv") == [0, 1]
    assert json.loads((tmp_path / "s.json").read_text())["frames"] == 2


def test_a_video_that_does_not_play_after_release_is_an_error_and_is_removed(tmp_path):
    class DropFrames:  # the encoder silently loses every frame, as OpenCV's write() would never tell
        def __init__(self, real):
            self.real = real

        def write(self, image):
            pass

        def __getattr__(self, name):
            return getattr(self.real, name)

    v = VideoWriter(tmp_path / "o.mp4", 10, size=(64, 48))
    v._writer = DropFrames(v._writer)
    for _ in range(3):
        v.write(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(InputError, match=r"cannot write '.*o\.mp4': .*(not a playable video|empty)"):
        v.close()
    assert not (tmp_path / "o.mp4").exists()


def test_a_record_file_that_cannot_be_cut_back_still_reports_the_first_error(tmp_path, monkeypatch, caplog):
    def ftruncate(fd, size):
        raise OSError(errno.EIO, "Input/output error")

    w = JsonlWriter(tmp_path / "o.jsonl")
    w._file._f = FullDisk(w._file._f, whole=0)
    monkeypatch.setattr(os, "ftruncate", ftruncate)
    with caplog.at_level(logging.WARNING), pytest.raises(InputError, match="No space left on device"):
        w.write({"frame": 0})
    assert "could not cut" in caplog.text
    w.close()


def test_atomic_json_write_failure_names_the_file_and_leaves_no_tmp(tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open

    def full_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if str(path).endswith(".tmp") and "w" in mode:
            f.close()
            raise ENOSPC
        return f

    monkeypatch.setattr(builtins, "open", full_open)
    with pytest.raises(InputError, match=r"cannot write '.*m\.json': No space left on device"):
        write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_summary_writer_discard_leaves_nothing(tmp_path):
    s = SummaryWriter(tmp_path / "s.json")
    assert s.tmp.exists() and s.tmp.stat().st_size >= SummaryWriter.BASE
    s.discard()
    assert list(tmp_path.iterdir()) == []
    s = SummaryWriter(tmp_path / "s.json")
    s.write({"frames": 1})
    assert json.loads((tmp_path / "s.json").read_text()) == {"frames": 1} and len(list(tmp_path.iterdir())) == 1


# -- the real reason a run stopped ------------------------------------------------------------------------


def test_a_stream_that_never_comes_back_is_recorded_as_the_error(tmp_path):
    def reopen():
        raise SourceError("cannot open stream fake: refused")

    config = SourceConfig(reconnect_attempts=1, reconnect_backoff_s=0.01)
    report = RunReport()
    source = make_source(3, kind=SourceKind.NETWORK, reopen=reopen, config=config)
    with source, pytest.raises(SourceError) as caught:
        run_pipeline(source, make_pipeline(), all_outputs(tmp_path), progress=False, report=report)
    summary = assert_consistent(tmp_path, 3)
    assert report.stopped_by == summary["stopped_by"] == f"error: {caught.value}"
    assert "did not come back" in report.stopped_by
    last = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "stream_lost" and last["last_frame"] == 2  # the loss is in the log, not only stderr
    assert summary["outages"]["count"] == 1 and summary["outages"]["down_since"] == last["last_utc"]


def test_sigterm_mid_frame_finishes_the_frame_and_says_so(tmp_path, monkeypatch):
    import signal

    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("SIGTERM has a handler in this test process: the guard leaves it alone")
    real_write = JsonlWriter.write

    def write_then_sigterm(self, record):
        real_write(self, record)
        if record["frame"] == 2:
            # Without the guard's handler SIGTERM would end the test process: fail the test instead.
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, "the run installed no SIGTERM handler"
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(JsonlWriter, "write", write_then_sigterm)
    report = RunReport()
    with make_source(8) as source, pytest.raises(Terminated) as caught:
        run_pipeline(source, make_pipeline(), all_outputs(tmp_path), progress=False, report=report)
    assert caught.value.signum == signal.SIGTERM and caught.value.exit_code == 143
    summary = assert_consistent(tmp_path, 3)
    assert summary["stopped_by"] == report.stopped_by == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the default action is back after the run"


# -- bad output paths fail before any frame ---------------------------------------------------------------


@pytest.mark.parametrize("case", ["txt", "folder", "same_file", "no_extension"])
def test_bad_outputs_fail_before_the_source_is_read(tmp_path, case):
    out = all_outputs(tmp_path)
    if case == "txt":
        out.video, expect = str(tmp_path / "o.txt"), "unknown extension '.txt'"
    elif case == "folder":
        (tmp_path / "dir.jsonl").mkdir()
        out.jsonl, expect = str(tmp_path / "dir.jsonl"), "it is a folder"
    elif case == "same_file":
        out.csv, expect = out.jsonl, "it is also the JSONL output"
    else:
        out.video, expect = str(tmp_path / "video"), "no extension"
    source = make_source(4)
    with source, pytest.raises(InputError, match=re.escape(expect)):
        run_pipeline(source, make_pipeline(), out, progress=False)
    assert source._reader.read_frames == 0
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("known_size", [True, False], ids=["size-from-source", "size-at-frame-0"])
def test_a_frame_too_large_for_the_codec_is_named_before_any_output_gets_it(tmp_path, known_size):
    out = all_outputs(tmp_path)
    source = make_source(2, size=(8400, 48), known_size=known_size)
    with source, pytest.raises(InputError) as caught:
        run_pipeline(source, make_pipeline(), out, progress=False)
    assert "cannot encode 8400x48 frames" in str(caught.value) and "o.mp4" in str(caught.value)
    assert "extension" not in str(caught.value)
    if known_size:
        assert source._reader.read_frames == 0, "the video opened from the source's size, before reading"
    assert (tmp_path / "o.jsonl").read_text() == "" and (tmp_path / "o.csv").read_text().count("\n") == 1
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] == 0 and "cannot encode" in summary["stopped_by"]
    assert not (tmp_path / "o.mp4").exists()


def test_check_writable_makes_the_folder_and_leaves_no_probe(tmp_path):
    target = tmp_path / "a" / "b" / "s.json"
    assert check_writable(target) == target
    assert target.parent.is_dir() and list(target.parent.iterdir()) == []


# -- real file systems: a tmpfs that fills up, a read-only folder (root only) -----------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size, ro=False) -> a fresh tmpfs folder, unmounted after the test."""
    mounted: list[Path] = []

    def mount(size: str, ro: bool = False) -> Path:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            pytest.skip("mounting a tmpfs is not allowed here (not root)")
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        options = f"size={size}" + (",ro" if ro else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not allowed here: {proc.stderr.strip() or proc.returncode}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def read_only_folder(tmpfs, tmp_path) -> Path:
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    return tmpfs("64k", ro=True)  # root writes through permissions: only a read-only mount stops it


def test_an_unwritable_summary_fails_before_any_frame(tmp_path, tmpfs):
    ro = read_only_folder(tmpfs, tmp_path)
    out = all_outputs(tmp_path)
    out.summary = str(ro / "s.json")
    source = make_source(4)
    with source, pytest.raises(InputError, match=r"cannot write '.*ro.*s\.json': "):
        run_pipeline(source, make_pipeline(), out, progress=False)
    assert source._reader.read_frames == 0 and not (tmp_path / "o.jsonl").exists()


def test_video_writes_cut_by_a_full_disk_are_detected_and_the_file_removed(tmpfs):
    """With the room check off (another program fills the disk), the encoder's cut write is still caught."""
    folder = tmpfs("300k")
    v = VideoWriter(folder / "o.mp4", 10, size=(320, 240))
    v.room_needed = lambda: 0
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match=r"o\.mp4': No space left on device"):
        for _ in range(200):
            v.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    v.close()
    assert not (folder / "o.mp4").exists(), "an unplayable video is not left behind"


# -- the real CLI ----------------------------------------------------------------------------------------


def emomon(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "emomon", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def run_args(street_video, yolo_weights, frames: int) -> list[str]:
    return ["run", "--source", str(street_video), "--emotion-model", str(ROOT / "tests/assets/trained_tiny.pt"),
            "--detector-weights", str(yolo_weights), "--max-frames", str(frames), "--no-progress"]


def last_line(proc) -> str:
    return proc.stderr.strip().splitlines()[-1]


def test_cli_full_tmpfs_exits_2_naming_the_file_with_consistent_outputs(tmpfs, street_video, yolo_weights):
    disk = tmpfs("200k")  # ~10 KiB of JSONL per frame: full after about a dozen frames
    proc = emomon(*run_args(street_video, yolo_weights, 40), "--jsonl", str(disk / "o.jsonl"),
                  "--csv", str(disk / "o.csv"), "--summary", str(disk / "s.json"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert last_line(proc) == f"emomon: error: cannot write '{disk / 'o.jsonl'}': No space left on device"
    assert "Traceback" not in proc.stderr
    frames = jsonl_frames(disk / "o.jsonl")
    assert 3 <= len(frames) < 40 and frames == list(range(len(frames)))
    assert csv_frames(disk / "o.csv") == frames
    summary = json.loads((disk / "s.json").read_text())
    assert summary["frames"] == len(frames) and summary["stopped_by"].startswith("error: cannot write")
    assert json.loads(proc.stdout.strip().splitlines()[-1])["stopped_by"] == summary["stopped_by"]
    assert not list(disk.rglob("*.tmp"))


def test_cli_video_alone_on_a_full_disk_stays_playable(tmpfs, tmp_path, street_video, yolo_weights):
    disk = tmpfs("400k")
    proc = emomon(*run_args(street_video, yolo_weights, 60), "--output", str(disk / "v.mp4"),
                  "--jsonl", str(tmp_path / "o.jsonl"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert last_line(proc).startswith(f"emomon: error: cannot write '{disk / 'v.mp4'}': No space left on device")
    assert f"wrote {disk / 'v.mp4'}" not in proc.stderr
    frames = jsonl_frames(tmp_path / "o.jsonl")
    assert 1 <= len(frames) < 60
    assert video_frames(disk / "v.mp4") == len(frames)
    assert not list(disk.rglob("*.tmp"))


@pytest.mark.parametrize("case", ["txt_output", "read_only_folder", "unwritable_summary"])
def test_cli_bad_outputs_fail_before_any_frame(case, tmp_path, tmpfs, street_video, yolo_weights):
    jsonl = tmp_path / "o.jsonl"
    if case == "txt_output":
        extra, named = ["--output", str(tmp_path / "o.txt")], tmp_path / "o.txt"
    elif case == "read_only_folder":
        named = read_only_folder(tmpfs, tmp_path) / "o.mp4"
        extra = ["--output", str(named)]
    else:
        named = read_only_folder(tmpfs, tmp_path) / "s.json"
        extra = ["--summary", str(named)]
    start = time.monotonic()
    proc = emomon(*run_args(street_video, yolo_weights, 5), "--jsonl", str(jsonl), *extra)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = last_line(proc)
    assert line.startswith("emomon: error: cannot write") and f"'{named}'" in line, line
    assert "Traceback" not in proc.stderr and "processed" not in proc.stderr
    assert not jsonl.exists() or jsonl.read_text() == ""
    assert time.monotonic() - start < 60, "checked before the models load"


def test_cli_evaluate_json_unwritable_fails_up_front(tmp_path, tmpfs):
    named = read_only_folder(tmpfs, tmp_path) / "metrics.json"
    proc = emomon("evaluate", "--checkpoint", str(ROOT / "tests/assets/trained_tiny.pt"), "--data",
                  str(tmp_path / "no-such-data"), "--json", str(named))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert last_line(proc).startswith(f"emomon: error: cannot write '{named}'"), last_line(proc)
