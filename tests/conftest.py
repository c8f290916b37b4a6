"""Shared fixtures: paths to the real assets in ../shared (tests skip with a reason when absent)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# The tiny two-stream model trained on the synthetic set (tests/assets/make_test_model.py): its outputs depend
# on the input, unlike random weights, so tests about outputs (reuse, parity, batching, order) use it.
TRAINED_MODEL = ROOT / "tests" / "assets" / "trained_tiny.pt"

# Never reach for the network from tests: hub libraries fail fast instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent (the ../shared assets are not here)")
    return path


@pytest.fixture
def group_photo() -> Path:
    return shared_file("data/group_photo.jpg")


@pytest.fixture
def street_video() -> Path:
    return shared_file("data/street_crossing.mp4")


@pytest.fixture
def yolo_weights() -> Path:
    return shared_file("weights/yolo11n-pose.pt")


@pytest.fixture
def trained_model_path() -> Path:
    return TRAINED_MODEL


@pytest.fixture
def trained_model():
    """A fresh copy of the trained test model (a backend may convert the weights it is given)."""
    from fusion import load_checkpoint

    return load_checkpoint(TRAINED_MODEL).eval()


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Each test run gets its own emomon cache, so cache behaviour is tested, not inherited."""
    monkeypatch.setenv("EMOMON_CACHE", str(tmp_path_factory.getbasetemp() / "emomon-cache"))


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """One local Ray cluster (2 CPUs) per test module: starting one takes seconds, and shutting it down after
    the module keeps its idle processes (and Serve's) off the CPU during the rest of the suite. Its workers get
    the session's emomon cache (the autouse fixture above sets it only in this process)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'emomon[ray]')")
    cache = str(tmp_path_factory.getbasetemp() / "emomon-cache")
    # ray.init installs its own SIGTERM handler in this process; the signal tests that run later in the session
    # need the default one (emomon leaves a handler someone else installed alone), so it is put back.
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
             runtime_env={"env_vars": {"EMOMON_CACHE": cache, "HF_HUB_OFFLINE": "1", "YOLO_OFFLINE": "1"}})
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    yield ray
    ray.shutdown()


# -- CI says what it skipped ---------------------------------------------------------------------------
# With CI set (`.ci/run` sets CI=true), a test that skips because a part of the machine is missing (Chromium,
# ffmpeg, GStreamer's RTSP server, the ../shared assets, a Python package) FAILS instead: CI installs them
# (.ci/system-deps.sh), so a skip there means the installation broke. Still skipping in CI: tests marked `gpu`
# or `tensorrt`, skips whose reason names CUDA, TensorRT or a GPU, and skips that say the machine *has*
# something that makes the test moot. Every run ends with one line per skip reason and its count.
import re  # noqa: E402  (appended section; the fixtures above stay first)
from collections import Counter  # noqa: E402

CI_SKIP_FAILS = "(CI: a missing system part fails the run)"
CI_SKIP_ALLOWED = re.compile(r"CUDA|TensorRT|GPU|\bthis machine has\b|is in Ultralytics' weights folder here"
                             r"|needs POSIX signals")
_SKIPS = pytest.StashKey[Counter]()          # (verdict, reason) -> count
_CI_MODULE_SKIPS = pytest.StashKey[list]()   # reasons of whole modules skipped at collection in CI


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _skip_allowed_in_ci(reason: str, node) -> bool:
    markers = node is not None and any(node.get_closest_marker(m) for m in ("gpu", "tensorrt"))
    return bool(markers or CI_SKIP_ALLOWED.search(reason))


def pytest_configure(config):
    config.stash[_SKIPS] = Counter()
    config.stash[_CI_MODULE_SKIPS] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if in_ci() and not _skip_allowed_in_ci(reason, item):
            report.outcome = "failed"
            report.longrepr = f"{reason} {CI_SKIP_FAILS}"
            report.ci_missing_part = True
            item.config.stash[_SKIPS]["FAILED in CI", reason] += 1
        else:
            item.config.stash[_SKIPS]["skipped", reason] += 1
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A whole module skipped at import (`pytest.importorskip` at the top) cannot fail as a test: it is
    counted, and in CI it fails the run at the end (a collection error would stop every other test)."""
    report = yield
    if report.skipped:
        reason = _skip_reason(report)
        if in_ci() and not _skip_allowed_in_ci(reason, collector):
            collector.config.stash[_CI_MODULE_SKIPS].append(f"{collector.nodeid}: {reason}")
            collector.config.stash[_SKIPS]["FAILED in CI", reason] += 1
        else:
            collector.config.stash[_SKIPS]["skipped", reason] += 1
    return report


def pytest_report_teststatus(report, config):
    """A CI-failed skip reads FAILED (not ERROR), whichever phase skipped (a skipif mark skips in setup)."""
    if getattr(report, "ci_missing_part", False):
        return "failed", "F", "FAILED"
    return None


def pytest_sessionfinish(session, exitstatus):
    if session.config.stash.get(_CI_MODULE_SKIPS, []) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skips = config.stash.get(_SKIPS, Counter())
    if not skips:
        return
    terminalreporter.section("skip reasons")
    for (verdict, reason), count in sorted(skips.items(), key=lambda kv: (-kv[1], kv[0])):
        note = f" {CI_SKIP_FAILS}" if verdict == "FAILED in CI" else ""
        terminalreporter.line(f"{count:4d} {verdict}: {reason}{note}")
    for module in config.stash.get(_CI_MODULE_SKIPS, []):
        terminalreporter.line(f"FAILED in CI (module skipped at collection): {module} {CI_SKIP_FAILS}", red=True)
