"""Video jobs that outlive their page, stable person numbers, fixed timeline colours, status lines and paths
kept out of the page: the app's pieces without a server or a model (fast)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from emomon.kernel import InputError
from emomon.webapp import status
from emomon.webapp.jobs import VideoJobs
from emomon.webapp.views import emotion_colors, model_banner, stable_numbers, strip_folders
from fusion import EMOTIC_CATEGORIES


def wait(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def frames_until_cancelled(started: threading.Event):
    def work(job):
        started.set()
        n = 0
        while not job.cancel.is_set():
            n += 1
            job.report(n, 1000, 50.0, 2, np.zeros((4, 4, 3), np.uint8))
            time.sleep(0.005)
        return n

    return work


def test_a_released_job_stops_after_the_grace_time_and_the_next_one_runs():
    jobs = VideoJobs(grace_s=0.2)
    started = threading.Event()
    first = jobs.submit("page-a", "long.mp4", frames_until_cancelled(started))
    second = jobs.submit("page-b", "short.mp4", lambda job: "done")
    assert started.wait(5)
    assert jobs.ahead(second) == 1 and second.state == "waiting"
    jobs.release("page-a")  # page a closed: nobody re-attaches
    wait(lambda: second.state == "done")
    assert first.state == "done" and first.cancel.is_set() and second.result == "done"


def test_a_reloaded_page_reattaches_and_its_job_keeps_running():
    jobs = VideoJobs(grace_s=0.2)
    started = threading.Event()
    job = jobs.submit("page-a", "long.mp4", frames_until_cancelled(started))
    assert started.wait(5)
    jobs.release("page-a")
    assert jobs.attach(job.id, "page-a-reloaded") is job
    time.sleep(0.5)
    assert job.state == "running" and not job.cancel.is_set(), "re-attached within the grace time: kept"
    assert job.preview is not None and job.remaining_s is not None and job.remaining_s > 0
    assert jobs.stop("page-a-reloaded") == 1
    wait(lambda: job.state == "done")
    assert jobs.attach("no-such-job", "x") is None


def test_job_errors_are_one_line():
    jobs = VideoJobs()

    def bad_input(job):
        raise InputError("'x.mp4' cannot be played")

    def bug(job):
        raise RuntimeError("boom\nwith a second line")

    a, b = jobs.submit("p", "x.mp4", bad_input), jobs.submit("p", "y.mp4", bug)
    wait(lambda: not b.active)
    assert a.state == b.state == "failed"
    assert a.error == "'x.mp4' cannot be played"
    assert "\n" not in b.error and "boom" not in b.error and "server log" in b.error


def test_person_numbers_survive_a_rerun():
    first = stable_numbers([[300, 0, 400, 200], [10, 0, 110, 200], [150, 0, 250, 200]], None)
    assert first == [3, 1, 2]  # left to right
    previous = list(zip(first, [[300, 0, 400, 200], [10, 0, 110, 200], [150, 0, 250, 200]]))
    # a lower confidence finds a new person on the far left and moves the others a little
    again = stable_numbers([[0, 0, 40, 200], [152, 2, 250, 200], [12, 0, 110, 198], [300, 0, 401, 200]], previous)
    assert again == [4, 2, 1, 3]


def test_each_emotion_has_its_own_fixed_colour():
    colors = emotion_colors()
    assert set(EMOTIC_CATEGORIES) | {"valence", "arousal", "dominance"} <= set(colors)
    assert len({colors[c] for c in EMOTIC_CATEGORIES}) == len(EMOTIC_CATEGORIES)
    assert colors == emotion_colors()


def test_banner_and_labels_show_file_names_not_server_folders():
    banner = model_banner("checkpoint", "two_stream_tiny from /srv/models/runs/x/best.pt",
                          "/home/me/weights/yolo11n-pose.pt on cpu")
    assert "best.pt" in banner and "yolo11n-pose.pt" in banner and "/srv" not in banner and "/home" not in banner
    assert strip_folders("C:\\models\\best.pt and /a/b.pt") == "best.pt and b.pt"


@pytest.mark.parametrize("remaining, expected", [(None, "frame 3 / 10"), (75, "about 1 min 15 s left")])
def test_progress_line_says_frames_speed_and_time_left(remaining, expected):
    line = status.progress(3, 10, 1.5 if remaining else 0.0, remaining, 4)
    assert expected in line and "emomon-bar" in line
    assert ("1.5 frames/s" in line) == bool(remaining)
    assert status.error("a <b> c").count("a &lt;b&gt; c") == 1


def test_on_end_runs_once_however_the_job_ends():
    jobs = VideoJobs(grace_s=0.1)
    started, ended = threading.Event(), []
    running = jobs.submit("a", "long.mp4", frames_until_cancelled(started), on_end=lambda: ended.append("run"))
    waiting = jobs.submit("b", "next.mp4", lambda job: "x", on_end=lambda: ended.append("waiting"))
    assert started.wait(5)
    jobs.stop("b")      # stopped while it waited: its work never runs...
    jobs.stop("a")
    wait(lambda: not running.active and not waiting.active)
    wait(lambda: len(ended) == 2)
    assert sorted(ended) == ["run", "waiting"], "...but its upload is still let go"
