"""The CI hooks in conftest.py: in CI a skip for a missing system part fails the run, GPU/TensorRT skips
still skip, and every run lists its skip reasons with counts."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")
SUFFIX = "(CI: a missing system part fails the run)"

TESTS = '''
import pytest

@pytest.fixture
def browser():
    pytest.skip("chromium is absent")

def test_browser(browser):
    pass

@pytest.mark.skipif(True, reason="ffmpeg is not installed")
def test_ffmpeg():
    pass

def test_cuda():
    pytest.skip("needs a CUDA device")

@pytest.mark.skipif(True, reason="needs a CUDA device")
def test_cuda_again():
    pass

@pytest.mark.gpu
def test_marked_gpu():
    pytest.skip("the driver is too old")

def test_runs():
    assert True
'''


def run(pytester, monkeypatch, ci: str | None, *files: str):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    gpu: needs a CUDA device\n    tensorrt: needs TensorRT\n")
    pytester.makepyfile(test_parts=TESTS, **{f"test_{i}": text for i, text in enumerate(files)})
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")


def test_missing_parts_fail_in_ci_and_gpu_skips_still_skip(pytester, monkeypatch):
    result = run(pytester, monkeypatch, "true")
    result.assert_outcomes(passed=1, failed=2, skipped=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        f"FAILED test_parts.py::test_browser - chromium is absent {SUFFIX}",
        f"FAILED test_parts.py::test_ffmpeg - ffmpeg is not installed {SUFFIX}",
    ], consecutive=False)
    assert "ERROR" not in result.stdout.str(), "a skip in setup reads FAILED, not ERROR"
    result.stdout.fnmatch_lines([
        "*= skip reasons =*",
        "   2 skipped: needs a CUDA device",
        f"   1 FAILED in CI: chromium is absent {SUFFIX}",
        f"   1 FAILED in CI: ffmpeg is not installed {SUFFIX}",
        "   1 skipped: the driver is too old",
    ])


def test_without_ci_everything_skips_and_is_counted(pytester, monkeypatch):
    for ci in (None, "false"):
        result = run(pytester, monkeypatch, ci)
        result.assert_outcomes(passed=1, skipped=5)
        assert result.ret == pytest.ExitCode.OK
        assert SUFFIX not in result.stdout.str()
        result.stdout.fnmatch_lines([
            "*= skip reasons =*",
            "   2 skipped: needs a CUDA device",
            "   1 skipped: chromium is absent",
            "   1 skipped: ffmpeg is not installed",
            "   1 skipped: the driver is too old",
        ])


def test_a_module_skipped_at_import_fails_the_ci_run_without_stopping_it(pytester, monkeypatch):
    module = 'import pytest\npytest.importorskip("no_such_package_for_emomon")\n\ndef test_x():\n    pass\n'
    result = run(pytester, monkeypatch, "1", module)
    result.assert_outcomes(passed=1, failed=2, skipped=4)  # the other tests still ran
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*FAILED in CI (module skipped at collection): test_0.py: *no_such_package*"])
    result = run(pytester, monkeypatch, None, module)
    result.assert_outcomes(passed=1, skipped=6)
    assert result.ret == pytest.ExitCode.OK


def test_no_summary_section_without_skips(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile("def test_ok():\n    pass\n")
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "skip reasons" not in result.stdout.str()
