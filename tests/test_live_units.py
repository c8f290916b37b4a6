"""Live cameras that run for weeks, the fast parts: reconnect policy, stream events, absolute timestamps,
outages in the outputs and the summary, unique track ids across a reconnect, rotation names, flags.
The real RTSP server, SIGKILL and rotation of real files are in test_live_runs.py."""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from fractions import Fraction

import numpy as np
import pytest
from scripted import ScriptedDetector

from emomon.commands.options import duration
from emomon.kernel import file_stamp, parse_utc, utc_iso
from emomon.pipeline import EmotionPipeline, PipelineConfig
from emomon.pipeline.rotation import Rotation, media_stamp, part_path
from emomon.pipeline.runner import OutputPaths, run_pipeline
from fusion import Predictor, create_model
from stream import Frame, SourceConfig, SourceError, SourceInfo, SourceKind, StreamEvent, VideoSource, open_source


class Camera:
    """Frames until `count`, one per `delay_s`, then a dropped read (a camera that went away)."""

    def __init__(self, count: int, delay_s: float = 0.0):
        self.count, self.delay_s, self.produced, self.released = count, delay_s, 0, 0

    def read(self):
        if self.produced >= self.count:
            return False, None
        time.sleep(self.delay_s)
        self.produced += 1
        return True, np.full((48, 64, 3), self.produced % 255, np.uint8)

    def release(self):
        self.released += 1


def live_source(kind: SourceKind, first: int, reopen, max_frames: int | None = None, **config) -> VideoSource:
    """A live source whose camera drops after `first` frames; `max_frames` ends the test (it never gives up)."""
    info = SourceInfo(kind=kind, spec="fake", fps=30.0, width=64, height=48, frame_count=None)
    cfg = SourceConfig(**{"reconnect_backoff_s": 0.05, "reconnect_max_backoff_s": 0.1, "buffer_size": 64, **config})
    return VideoSource(Camera(first), info, config=cfg, reopen=reopen, max_frames=max_frames)


def away_then_back(tries_refused: int, then: int = 10**6):
    """A reopen that is refused `tries_refused` times, then hands out a camera with `then` frames at 100/s."""
    calls = []

    def reopen():
        calls.append(time.monotonic())
        if len(calls) <= tries_refused:
            raise SourceError("cannot open webcam fake: no such camera")
        return Camera(then, delay_s=0.01)

    return reopen, calls


# -- the reconnect policy --------------------------------------------------------------------------------------


def test_reconnect_defaults_never_give_up_and_back_off_to_30_s_with_jitter():
    config = SourceConfig()
    assert config.reconnect_attempts is None and config.reconnect_max_backoff_s == 30.0
    rng = random.Random(0)
    waits = [[config.backoff_s(a, rng) for a in range(1, 12)] for _ in range(50)]
    for a, column in enumerate(zip(*waits), start=1):
        nominal = min(2 ** (a - 1), 30)
        assert all(nominal * (1 - config.reconnect_jitter) <= w <= nominal for w in column)
        assert len(set(column)) > 40, "each camera waits its own time"
    with pytest.raises(SourceError, match="reconnect_jitter"):
        SourceConfig(reconnect_jitter=1.0)


def test_a_webcam_that_goes_away_is_waited_for_and_the_events_say_so():
    reopen, calls = away_then_back(tries_refused=3)
    source = live_source(SourceKind.WEBCAM, 3, reopen, max_frames=7)
    with source:
        items = list(source.with_events())
    kinds = [type(i).__name__ if isinstance(i, Frame) else i.kind for i in items]
    assert kinds == ["Frame"] * 3 + ["stream_lost", "stream_restored"] + ["Frame"] * 4
    lost, back = items[3], items[4]
    assert lost.last_frame == back.last_frame == 2 and lost.last_utc == items[2].utc
    assert back.attempts == 4 and len(calls) == 4
    # the gap: from the last frame before the loss to the first one after (three refused tries of ~0.05-0.1 s)
    assert 0.1 < back.downtime_s < 2 and back.downtime_s == pytest.approx(back.utc - lost.last_utc, abs=0.05)
    frames = [i for i in items if isinstance(i, Frame)]
    assert [f.index for f in frames] == list(range(7))
    utcs = [f.utc for f in frames]
    assert all(b > a for a, b in zip(utcs, utcs[1:])) and utcs[3] - utcs[2] >= back.downtime_s - 0.05
    assert source.stats.outages == 1 and source.stats.reconnects == 1
    assert back.record()["downtime_s"] == round(back.downtime_s, 3) and back.record()["event"] == "stream_restored"


def test_a_camera_that_drops_right_after_coming_back_is_not_hammered():
    calls = []

    def reopen():  # back at once, but only for one frame each time
        calls.append(time.monotonic())
        return Camera(1)

    source = live_source(SourceKind.NETWORK, 1, reopen, max_frames=6, reconnect_backoff_s=0.02,
                         reconnect_max_backoff_s=5, reconnect_jitter=0)
    with source:
        assert len(list(source)) == 6
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert gaps[0] >= 0.04 and gaps[3] >= 0.32, gaps  # 0.02, 0.04, 0.08, ... as if it had never come back


def test_plain_iteration_hands_out_frames_only():
    reopen, _ = away_then_back(tries_refused=0, then=2)
    with live_source(SourceKind.NETWORK, 2, reopen, max_frames=4) as source:
        assert [f.index for f in source] == [0, 1, 2, 3]


def test_reconnect_attempts_zero_ends_the_run_after_saying_the_stream_was_lost(caplog):
    reopen, calls = away_then_back(tries_refused=0, then=5)
    source = live_source(SourceKind.NETWORK, 2, reopen, reconnect_attempts=0)
    got = []
    with source, pytest.raises(SourceError, match="stream fake dropped \\(reconnecting is off\\)"):
        for item in source.with_events():
            got.append(item)
    assert [getattr(i, "kind", "frame") for i in got] == ["frame", "frame", "stream_lost"] and not calls


def test_files_never_reconnect(tmp_path, caplog):
    clip = tmp_path / "c.avi"
    write_clip(clip, frames=5)
    with caplog.at_level(logging.WARNING, logger="stream"), open_source(clip) as source:
        items = list(source.with_events())
    assert len(items) == 5 and all(isinstance(i, Frame) for i in items) and "reconnect" not in caplog.text


# -- absolute timestamps ----------------------------------------------------------------------------------------


def test_utc_format_round_trips_with_milliseconds():
    assert utc_iso(0.0) == "1970-01-01T00:00:00.000Z" and utc_iso(None) is None
    assert utc_iso(1764684187.2506) == "2025-12-02T14:03:07.251Z"
    assert parse_utc(utc_iso(1764684187.25)) == 1764684187.25
    assert parse_utc("2025-12-02T15:03:07.250+01:00") == 1764684187.25
    assert file_stamp(1764684187.9) == "20251202T140307Z"


def write_clip(path, frames: int, fps: int = 10, creation_time: str | None = None) -> None:
    import av

    with av.open(str(path), "w") as container:
        if creation_time:
            container.metadata["creation_time"] = creation_time
        stream = container.add_stream("mpeg4" if str(path).endswith(".mp4") else "mjpeg", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p" if str(path).endswith(".mp4") else "yuvj420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_a_file_that_records_its_start_gets_absolute_times_from_it(tmp_path):
    clip, plain = tmp_path / "cam.mp4", tmp_path / "plain.mp4"
    write_clip(clip, frames=6, creation_time="2026-03-01T08:30:00.000000Z")
    write_clip(plain, frames=3)
    with open_source(clip) as source:
        frames = list(source)
    start = parse_utc("2026-03-01T08:30:00Z")
    assert [f.utc for f in frames] == pytest.approx([start + f.time for f in frames], abs=1e-6)
    assert utc_iso(frames[3].utc) == "2026-03-01T08:30:00.300Z"
    with open_source(plain) as source:
        assert [f.utc for f in source] == [None] * 3  # no recorded start: no made-up absolute time


# -- outages in the run's outputs -------------------------------------------------------------------------------


def scripted_pipeline(frames: int, ids_per_frame) -> EmotionPipeline:
    script = [([[4, 4, 40, 44]] * len(ids), ids) for ids in ids_per_frame]
    assert len(script) == frames
    return EmotionPipeline(ScriptedDetector(script), Predictor(create_model("two_stream_tiny", pretrained=False)),
                           PipelineConfig())


def test_an_outage_is_a_pair_of_event_lines_resets_tracks_and_is_counted(tmp_path):
    # The tracker numbers from 1 again after a reset (the scripted one replays its script from the start);
    # the run's ids must not name two people.
    pipeline = scripted_pipeline(7, [[1], [1, 2], [2], [1], [1, 2], [2], [3]])
    reopen, _ = away_then_back(tries_refused=2)
    source = live_source(SourceKind.NETWORK, 3, reopen, max_frames=7)
    out = OutputPaths(jsonl=str(tmp_path / "o.jsonl"), csv=str(tmp_path / "o.csv"), summary=str(tmp_path / "s.json"))
    with source:
        run_pipeline(source, pipeline, out, progress=False)
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r.get("event", r.get("frame")) for r in lines] == [0, 1, 2, "stream_lost", "stream_restored", 3, 4, 5, 6]
    back = lines[4]
    assert back["tracks_reset"] is True and back["next_track_id"] == 3
    ids_before = {p["track_id"] for r in lines[:3] for p in r["persons"]}
    ids_after = {p["track_id"] for r in lines[5:] for p in r["persons"]}
    assert ids_before == {1, 2} and ids_after == {3, 4}
    assert all(r["utc"] and parse_utc(r["utc"]) >= parse_utc(back["utc"]) for r in lines[5:])
    csv_frames = [line.split(",")[0] for line in (tmp_path / "o.csv").read_text().splitlines()[1:]]
    assert sorted(set(csv_frames)) == ["0", "1", "2", "3", "4", "5", "6"], "events are not CSV rows"
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["outages"] == {"count": 1, "total_downtime_s": back["downtime_s"],
                                  "longest_s": back["downtime_s"], "down_since": None}
    assert sorted(t["track_id"] for t in summary["tracks"]) == [1, 2, 3, 4]


# -- rotation names and flags -----------------------------------------------------------------------------------


def test_rotation_names_parts_by_their_start():
    assert part_path("out/cam.jsonl", "20261202T140000Z") == "out/cam.20261202T140000Z.jsonl"
    assert media_stamp(90.5) == "t000130" and media_stamp(360000) == "t1000000"
    live = Rotation(3600, live=True, started_utc=parse_utc("2026-12-02T13:47:12.5Z"))
    assert live.name("o.csv") == "o.20261202T134712Z.csv"  # the first part: the run's start
    assert not live.due(parse_utc("2026-12-02T13:47:13Z"), 0.5)
    assert not live.due(parse_utc("2026-12-02T13:59:59.9Z"), 767)
    assert live.due(parse_utc("2026-12-02T14:00:00.1Z"), 768)
    live.rotate(parse_utc("2026-12-02T14:00:00.1Z"), 768)
    assert live.name("o.csv") == "o.20261202T140000Z.csv"  # then aligned to the clock
    recorded = Rotation(60, live=False, start_utc=parse_utc("2026-03-01T08:30:00Z"))
    recorded.due(None, 0.0)
    recorded.rotate(None, 61.0)
    assert [p.stamp for p in recorded.parts] == ["20260301T083000Z", "20260301T083100Z"]


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600),
                                               ("1.5h", 5400), ("1d", 86400), (" 2H ", 7200)])
def test_rotate_durations(text, seconds):
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "0.5s", "-1h", "1w", "inf", "nan"])
def test_bad_rotate_durations_are_one_line(text):
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


def test_stream_event_record_tells_itself_apart_from_frames():
    event = StreamEvent("stream_lost", utc=1764684187.25, time=12.0, last_frame=41, last_utc=1764684186.0,
                        reason="the source stopped delivering frames")
    record = event.record()
    assert "frame" not in record and record["event"] == "stream_lost"
    assert record["utc"] == "2025-12-02T14:03:07.250Z" and record["last_utc"] == "2025-12-02T14:03:06.000Z"


def test_run_flags_parse_and_their_help_renders():
    from emomon.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["run", "--source", "rtsp://cam/live", "--reconnect-attempts", "0",
                              "--reconnect-max-wait", "2.5", "--rotate", "15m"])
    assert (args.reconnect_attempts, args.reconnect_max_wait, args.rotate) == (0, 2.5, 900)
    defaults = parser.parse_args(["run", "--source", "0"])
    assert (defaults.reconnect_attempts, defaults.reconnect_max_wait, defaults.rotate) == (None, 30.0, None)
    run = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "run")[1]
    assert "minus up to 20% jitter" in " ".join(run.format_help().split())  # argparse %-formats help


def test_the_soak_report_matches_planted_outages_to_recorded_ones(tmp_path):
    from benchmarks.soak import analyse

    def frame(n, utc):
        return {"frame": n, "time": n / 5, "utc": utc, "persons": []}

    lines = [frame(0, "2026-12-02T10:00:00.000Z"),
             {"event": "stream_lost", "utc": "2026-12-02T10:00:00.300Z", "last_utc": "2026-12-02T10:00:00.000Z"},
             {"event": "stream_restored", "utc": "2026-12-02T10:01:30.000Z", "downtime_s": 90.0, "attempts": 7},
             frame(1, "2026-12-02T10:01:30.000Z")]
    (tmp_path / "run.x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"frame": 2, "ti')
    planted = [{"down_utc": "2026-12-02T10:00:00.100Z", "up_utc": "2026-12-02T10:01:15.100Z", "seconds": 75.0},
               {"down_utc": "2026-12-02T10:20:00.000Z", "up_utc": "2026-12-02T10:21:15.000Z", "seconds": 75.0}]
    samples = [{"t_s": t, "rss_mb": 1000 + t / 3600, "threads": 9, "fds": 30} for t in range(0, 3600, 60)]
    result = analyse(tmp_path, planted, samples, warmup_s=300)
    assert result["frames"] == 2 and result["unreadable_lines"] == 1 and result["utc_rising"]
    assert result["planted_matched"][0]["recorded"]["downtime_s"] == 90.0
    assert result["planted_matched"][1]["recorded"] is None and not result["all_planted_recorded"]
    assert result["memory"]["slope_mb_per_hour"] == pytest.approx(1.0, abs=0.01)
