"""stream/: kinds, file and image sources, live drop policy, reconnect logic, bad inputs, thread hygiene.

Network sources against a real RTSP server live in test_stream_network.py.
"""

import doctest
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import stream
from emomon.kernel import InputError
from stream import (
    Frame,
    SourceConfig,
    SourceError,
    SourceInfo,
    SourceKind,
    VideoSource,
    detect_kind,
    is_live,
    open_source,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
STREET = SHARED / "data" / "street_crossing.mp4"
GROUP = SHARED / "data" / "group_photo.jpg"
needs_street = pytest.mark.skipif(not STREET.exists(), reason=f"shared video {STREET} is absent")
needs_group = pytest.mark.skipif(not GROUP.exists(), reason=f"shared image {GROUP} is absent")

BITS = 8  # a frame's index is drawn as 8 black/white blocks, which survive lossy encoding


def numbered_image(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    block = width // BITS
    for bit in range(BITS):
        if index >> bit & 1:
            image[:, bit * block:(bit + 1) * block] = 255
    return image


def read_number(image: np.ndarray) -> int:
    block = image.shape[1] // BITS
    centre = image[image.shape[0] // 4: 3 * image.shape[0] // 4]
    return sum(1 << bit for bit in range(BITS)
               if centre[:, bit * block + 2:(bit + 1) * block - 2].mean() > 127)


def write_clip(path: Path, count: int, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for index in range(count):
        writer.write(numbered_image(index))
    writer.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "numbered.mp4", 50)


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stream-")]


@pytest.fixture(autouse=True)
def no_leftover_threads():
    yield
    deadline = time.monotonic() + 2
    while reader_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not reader_threads(), "a reader thread outlived its test"


class FakeReader:
    """A source that makes numbered frames as fast as asked; fails (ends) after `count` frames."""

    def __init__(self, count: int = 10**6, delay_s: float = 0.0, error_at: int | None = None):
        self.count, self.delay_s, self.error_at = count, delay_s, error_at
        self.produced = 0
        self.released = 0

    def read(self):
        if self.error_at is not None and self.produced == self.error_at:
            raise RuntimeError("camera driver exploded")
        if self.produced >= self.count:
            return False, None
        if self.delay_s:
            time.sleep(self.delay_s)
        image = numbered_image(self.produced % 256)
        self.produced += 1
        return True, image

    def release(self):
        self.released += 1


def fake_source(kind: SourceKind, reader: FakeReader, **kwargs) -> VideoSource:
    info = SourceInfo(kind=kind, spec="fake", fps=30.0, width=64, height=48, frame_count=None)
    return VideoSource(reader, info, **kwargs)


# -- kinds -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        (0, SourceKind.WEBCAM),
        ("1", SourceKind.WEBCAM),
        ("/dev/video2", SourceKind.WEBCAM),
        ("clip.mp4", SourceKind.FILE),
        ("rtsp://user:pw@10.0.0.5:554/stream1", SourceKind.NETWORK),
        ("https://example.org/live/index.m3u8", SourceKind.NETWORK),
        ("https://example.org/videos/talk.mp4?token=1", SourceKind.FILE),
        ("photo.JPG", SourceKind.IMAGE),
        ("frames/*.png", SourceKind.IMAGES),
    ],
)
def test_detect_kind(spec, kind):
    assert detect_kind(spec) is kind


def test_directory_is_images_and_live_kinds(tmp_path):
    assert detect_kind(tmp_path) is SourceKind.IMAGES
    assert [k for k in SourceKind if is_live(k)] == [SourceKind.WEBCAM, SourceKind.NETWORK]


def test_package_docstring_example_runs():
    result = doctest.testmod(stream)
    assert result.attempted > 0 and result.failed == 0


def test_config_validates_and_backs_off_exponentially():
    config = SourceConfig(reconnect_backoff_s=0.5, reconnect_max_backoff_s=3.0, reconnect_jitter=0)
    assert [config.backoff_s(a) for a in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert config.backoff_s(10_000) == 3.0  # no overflow on a camera that has been away for weeks
    with pytest.raises(SourceError, match="buffer_size"):
        SourceConfig(buffer_size=0)
    with pytest.raises(SourceError, match="vid_stride"):
        fake_source(SourceKind.FILE, FakeReader(), vid_stride=0)


# -- files -----------------------------------------------------------------------------------------------


@needs_street
def test_street_video_first_60_frames_in_order():
    with open_source(STREET, max_frames=60) as source:
        info = source.info
        frames = list(source)
    assert info.kind is SourceKind.FILE
    assert (info.width, info.height, info.frame_count) == (640, 360, 686)
    assert info.fps == pytest.approx(23.98, abs=0.01)
    assert [f.index for f in frames] == list(range(60))
    times = [f.time for f in frames]
    assert times[0] == 0.0 and all(b > a for a, b in zip(times, times[1:], strict=False))
    assert times[59] == pytest.approx(59 / info.fps, abs=1e-3)
    assert all(f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    assert source.stats.yielded == 60 and source.dropped == 0


def test_file_full_read_with_slow_consumer_drops_nothing(clip):
    seen = []
    with open_source(clip, config=SourceConfig(buffer_size=2)) as source:
        for frame in source:
            time.sleep(0.005)  # slower than the reader: the reader must wait, not drop
            seen.append((frame.index, read_number(frame.image), frame.time))
    assert [s[0] for s in seen] == list(range(50))
    assert [s[1] for s in seen] == list(range(50))  # the pixels really are frames 0..49, in order
    assert [s[2] for s in seen] == pytest.approx([i / 10 for i in range(50)], abs=1e-3)
    assert source.info.frame_count == 50 and source.dropped == 0 and source.end_reason is None
    assert source.stats.read == 50 and source.stats.yielded == 50


def test_stride_and_max_frames(clip):
    with open_source(clip, vid_stride=3) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(0, 50, 3))
    assert [read_number(f.image) for f in frames] == list(range(0, 50, 3))
    assert source.stats.read == 50  # skipped frames were grabbed, not lost
    with open_source(clip, vid_stride=2, max_frames=4) as source:
        assert [f.index for f in source] == [0, 2, 4, 6]


def test_truncated_video_without_index_fails_at_open(clip, tmp_path):
    # An mp4 whose index (moov) sits at the end, cut at 40%: no frame can be found.
    data = (STREET if STREET.exists() else clip).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])
    with pytest.raises(SourceError, match="cut.mp4"):
        open_source(cut)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_truncated_faststart_video_yields_what_decodes_then_warns(clip, tmp_path, caplog):
    faststart = tmp_path / "faststart.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c", "copy", "-movflags", "+faststart",
                    str(faststart)], check=True, timeout=30)
    data = faststart.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.7)])  # the index fills ~40% of this tiny file: keep 70%
    with caplog.at_level(logging.WARNING, logger="stream"), open_source(cut) as source:
        indices = [f.index for f in source]
    assert 0 < len(indices) < 50 and indices == list(range(len(indices)))
    expected = f"video '{cut}' ended after {len(indices)} of 50 frames (truncated or corrupt)"
    assert source.end_reason == expected
    assert source.end_reason in caplog.text


# -- bad inputs ------------------------------------------------------------------------------------------


def bad_inputs(tmp_path: Path, clip: Path) -> dict[str, str]:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    empty = tmp_path / "empty"
    empty.mkdir()
    only_text = tmp_path / "docs"
    only_text.mkdir()
    (only_text / "readme.txt").write_text("no images here")
    fake_jpg = tmp_path / "broken.jpg"
    fake_jpg.write_text("not a jpeg")
    return {
        "missing file": str(tmp_path / "missing.mp4"),
        "missing image": str(tmp_path / "missing.jpg"),
        "text renamed .mp4": str(text),
        "empty directory": str(empty),
        "directory without images": str(only_text),
        "glob matching nothing": str(tmp_path / "nothing-*.png"),
        "unreadable image": str(fake_jpg),
    }


@pytest.mark.parametrize(
    "case",
    ["missing file", "missing image", "text renamed .mp4", "empty directory", "directory without images",
     "glob matching nothing", "unreadable image"],
)
def test_bad_input_raises_one_line_source_error(case, tmp_path, clip):
    spec = bad_inputs(tmp_path, clip)[case]
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        open_source(spec)
    message = str(caught.value)
    assert isinstance(caught.value, InputError)
    assert "\n" not in message and spec in message, message
    assert time.monotonic() - started < 5
    assert not reader_threads()


@pytest.mark.skipif(Path("/dev/video7").exists(), reason="this machine has a /dev/video7")
def test_missing_webcam_raises_source_error():
    with pytest.raises(SourceError, match=r"^cannot open webcam 7: no such camera"):
        open_source("7")


@pytest.mark.parametrize("spec", [True, None, 2.5, ""])
def test_nonsense_spec_raises_source_error(spec):
    with pytest.raises(SourceError):
        open_source(spec)


# -- images ----------------------------------------------------------------------------------------------


@needs_group
def test_single_image():
    with open_source(str(GROUP)) as source:
        frames = list(source)
    assert source.info.kind is SourceKind.IMAGE and source.info.frame_count == 1
    assert (source.info.width, source.info.height) == (870, 553)
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].time == 0.0
    assert frames[0].image.shape == (553, 870, 3)


@pytest.fixture
def image_dir(tmp_path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for number in (10, 2, 1):  # natural order is 1, 2, 10 (plain sorting would give 1, 10, 2)
        cv2.imwrite(str(folder / f"img{number}.png"), numbered_image(number))
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_directory_of_images_in_natural_order(image_dir):
    with open_source(image_dir) as source:
        frames = list(source)
    assert source.info.kind is SourceKind.IMAGES and source.info.frame_count == 3
    assert [read_number(f.image) for f in frames] == [1, 2, 10]
    assert [(f.index, f.time) for f in frames] == [(0, 0.0), (1, 1.0), (2, 2.0)]


def test_glob_of_images(image_dir):
    with open_source(str(image_dir / "img*.png"), max_frames=2) as source:
        assert source.info.kind is SourceKind.IMAGES and source.info.frame_count == 3
        assert [read_number(f.image) for f in source] == [1, 2]


def test_corrupt_image_in_directory_is_skipped_with_warning(image_dir, caplog):
    (image_dir / "img5.png").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="stream"), open_source(image_dir) as source:
        assert [read_number(f.image) for f in source] == [1, 2, 10]
    assert "img5.png" in caplog.text


# -- live policy (fake readers: no webcam needed) --------------------------------------------------------


@pytest.mark.parametrize("kind", [SourceKind.WEBCAM, SourceKind.NETWORK])
def test_live_source_keeps_newest_frames_and_counts_drops(kind, caplog):
    reader = FakeReader(delay_s=0.001)  # ~1000 fps, the consumer below manages ~50
    buffer = 3
    frames, lag = [], []
    with caplog.at_level(logging.INFO, logger="stream"):
        with fake_source(kind, reader, max_frames=15, config=SourceConfig(buffer_size=buffer)) as source:
            iterator = iter(source)
            for _ in range(15):
                time.sleep(0.02)
                produced_before = reader.produced
                frame = next(iterator)
                frames.append(frame)
                lag.append(produced_before - frame.index)
        stats = source.stats
    indices = [f.index for f in frames]
    assert all(b > a for a, b in zip(indices, indices[1:], strict=False))
    assert any(b - a > 1 for a, b in zip(indices, indices[1:], strict=False)), "no frame was dropped"
    assert [read_number(f.image) for f in frames] == [i % 256 for i in indices]
    # What is missing up to the last yielded frame was dropped; more may have been dropped after it,
    # and up to `buffer` frames may still have been queued when the source closed.
    assert indices[-1] + 1 - len(frames) <= stats.dropped <= stats.read - stats.yielded
    assert stats.read - stats.yielded - stats.dropped <= buffer
    assert source.dropped == stats.dropped > 0
    # Each frame handed out is among the newest the reader had made, not a stale backlog.
    assert max(lag[1:]) <= buffer + 2, lag
    times = [f.time for f in frames]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))  # wall clock since start
    assert "dropping the oldest frames" in caplog.text
    assert f"dropped {stats.dropped} of {stats.read} frames" in caplog.text
    assert reader.released == 1


def test_same_fast_reader_as_file_drops_nothing():
    reader = FakeReader(count=40)
    with fake_source(SourceKind.FILE, reader, config=SourceConfig(buffer_size=2)) as source:
        indices = []
        for frame in source:
            time.sleep(0.002)
            indices.append(frame.index)
    assert indices == list(range(40)) and source.dropped == 0


def test_webcam_that_vanishes_ends_cleanly_with_a_message(caplog):
    source = fake_source(SourceKind.WEBCAM, FakeReader(count=5), config=SourceConfig(buffer_size=8))
    with caplog.at_level(logging.WARNING, logger="stream"), source:
        indices = [f.index for f in source]
    assert indices == [0, 1, 2, 3, 4]
    assert source.end_reason.startswith("webcam fake stopped delivering frames (unplugged")
    assert source.end_reason in caplog.text


def test_reader_exception_is_reraised_in_the_consumer():
    reader = FakeReader(error_at=3)
    source = fake_source(SourceKind.FILE, reader)
    got = []
    with pytest.raises(RuntimeError, match="camera driver exploded"):
        for frame in source:
            got.append(frame.index)
    assert got == [0, 1, 2] and not source.running and reader.released == 1


# -- reconnect logic (fake network readers; the real server is in test_stream_network.py) ---------------


def test_network_reconnects_after_a_drop(caplog):
    first, second = FakeReader(count=3), FakeReader(count=4)
    attempts = []

    def reopen():
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise SourceError("cannot open stream fake: refused")
        return second

    config = SourceConfig(reconnect_attempts=5, reconnect_backoff_s=0.02, reconnect_max_backoff_s=0.05)
    source = fake_source(SourceKind.NETWORK, first, config=config, reopen=reopen, max_frames=7)
    with caplog.at_level(logging.WARNING, logger="stream"), source:
        indices = [f.index for f in source]
    assert indices == list(range(7)) and source.stats.reconnects == 1
    assert len(attempts) == 3 and first.released == 1
    assert "reconnect attempt 1/5" in caplog.text and "reconnect attempt 3/5" in caplog.text
    assert "reconnected after 3 attempt(s)" in caplog.text
    assert attempts[2] - attempts[1] >= 0.04  # the wait doubled


def test_network_gives_up_after_the_attempts_with_a_clear_error(caplog):
    def reopen():
        raise SourceError("cannot open stream fake: refused")

    config = SourceConfig(reconnect_attempts=2, reconnect_backoff_s=0.01)
    source = fake_source(SourceKind.NETWORK, FakeReader(count=2), config=config, reopen=reopen)
    got = []
    with caplog.at_level(logging.WARNING, logger="stream"), pytest.raises(SourceError) as caught:
        for frame in source:
            got.append(frame.index)
    assert got == [0, 1]
    assert str(caught.value) == "stream fake dropped and did not come back after 2 attempts"
    assert caplog.text.count("reconnect attempt") == 4  # announced and failed, twice
    assert not source.running


def test_close_interrupts_a_reconnect_backoff():
    config = SourceConfig(reconnect_attempts=None, reconnect_backoff_s=30)
    source = fake_source(SourceKind.NETWORK, FakeReader(count=1), config=config, reopen=FakeReader)
    iterator = iter(source)
    assert next(iterator).index == 0
    time.sleep(0.1)  # the reader is now waiting 30 s before retrying
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 5 and not source.running  # far below the 30 s backoff


# -- thread hygiene --------------------------------------------------------------------------------------


def test_breaking_out_early_stops_the_reader(clip):
    source = open_source(clip, config=SourceConfig(buffer_size=1))
    for frame in source:  # no `with`: the generator's finally must clean up
        if frame.index == 3:
            break
    assert not source.running and not reader_threads()


def test_exception_in_consumer_stops_the_reader(clip):
    with pytest.raises(ZeroDivisionError), open_source(clip, config=SourceConfig(buffer_size=1)) as source:
        for frame in source:
            if frame.index == 5:
                1 / 0  # noqa: B018
    assert not source.running


def test_keyboard_interrupt_in_consumer_stops_a_live_reader():
    source = fake_source(SourceKind.WEBCAM, FakeReader(delay_s=0.001))
    with pytest.raises(KeyboardInterrupt):
        for frame in source:
            if frame.index > 20:
                raise KeyboardInterrupt
    assert not source.running


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
def test_real_sigint_while_iterating_stops_the_reader():
    source = fake_source(SourceKind.WEBCAM, FakeReader(delay_s=0.001))
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    count = 0
    with pytest.raises(KeyboardInterrupt):
        timer.start()
        deadline = time.monotonic() + 10
        for _frame in source:
            count += 1
            time.sleep(0.01)
            assert time.monotonic() < deadline, "SIGINT never arrived"
    timer.join()
    assert count > 0 and not source.running


def test_close_is_idempotent_and_works_before_iterating(clip):
    reader = FakeReader()
    source = fake_source(SourceKind.FILE, reader)
    source.close()
    source.close()
    assert reader.released == 1
    with pytest.raises(RuntimeError, match="closed"):
        iter(source)


def test_an_iterator_never_advanced_starts_no_thread():
    reader = FakeReader()
    source = fake_source(SourceKind.WEBCAM, reader)
    iterator = iter(source)
    assert not reader_threads() and not source.running
    del iterator
    source.close()
    assert reader.released == 1


def test_close_from_another_thread_ends_iteration():
    source = fake_source(SourceKind.WEBCAM, FakeReader(delay_s=0.005))
    threading.Timer(0.2, source.close).start()
    count = sum(1 for _ in source)
    assert count > 0 and not source.running


def test_source_can_be_iterated_once(clip):
    with open_source(clip, max_frames=1) as source:
        assert len(list(source)) == 1
        with pytest.raises(RuntimeError, match="only once"):
            iter(source)


def test_frame_is_a_plain_record():
    frame = Frame(index=3, time=0.1, image=np.zeros((2, 2, 3), np.uint8))
    assert (frame.index, frame.time, frame.image.shape) == (3, 0.1, (2, 2, 3))
