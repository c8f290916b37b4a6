"""Ctrl-C is held back only while one frame's outputs are written, and is immediate elsewhere."""

import os
import signal
import threading

import pytest

from emomon.pipeline import InterruptGuard
from emomon.pipeline.interrupts import Terminated

needs_sighup = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP needs POSIX signals")


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_inside_deferred_block_finishes_the_block_then_raises():
    done = []
    with InterruptGuard() as guard, pytest.raises(KeyboardInterrupt):
        with guard.deferred():
            _ctrl_c()
            done.append("jsonl")
            done.append("video")
        done.append("after")  # never reached: the interrupt lands between frames
    assert done == ["jsonl", "video"]


def test_ctrl_c_outside_deferred_block_is_immediate():
    done = []
    with InterruptGuard(), pytest.raises(KeyboardInterrupt):
        _ctrl_c()
        done.append("not reached")
    assert done == []


def test_deferred_without_reraise_swallows_the_interrupt_while_closing():
    with InterruptGuard() as guard:
        with guard.deferred(reraise=False):
            _ctrl_c()
        closed = True
    assert closed


def test_previous_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    with InterruptGuard():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before


def test_off_the_main_thread_the_guard_installs_nothing():
    seen = []

    def worker():
        before = signal.getsignal(signal.SIGINT)
        with InterruptGuard() as guard, guard.deferred():
            seen.append(signal.getsignal(signal.SIGINT) is before)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [True]


def _signal(signum):
    # With no handler installed the signal would end the test process itself: fail the test instead.
    assert signal.getsignal(signum) not in (signal.SIG_DFL, None), f"no handler for {signum} is installed"
    os.kill(os.getpid(), signum)


@pytest.fixture
def default_stop_signals():
    """These tests send SIGTERM/SIGHUP to the test process: only safe while the guard can take them over."""
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is not signal.SIG_DFL:
            pytest.skip(f"{name} has a handler in this test process; the guard would leave it alone")


@pytest.mark.parametrize("name", ["SIGTERM", pytest.param("SIGHUP", marks=needs_sighup)])
def test_sigterm_and_sighup_inside_deferred_block_finish_it_then_raise_terminated(name, default_stop_signals):
    signum = getattr(signal, name)
    done = []
    with InterruptGuard() as guard, pytest.raises(Terminated) as caught:
        with guard.deferred():
            _signal(signum)
            done.append("jsonl")
            done.append("video")
        done.append("after")
    assert done == ["jsonl", "video"]
    assert caught.value.signum == signum and caught.value.name == name
    assert caught.value.exit_code == 128 + signum
    assert isinstance(caught.value, KeyboardInterrupt), "closes outputs wherever Ctrl-C would"


def test_sigterm_outside_deferred_block_is_immediate(default_stop_signals):
    done = []
    with InterruptGuard(), pytest.raises(Terminated):
        _signal(signal.SIGTERM)
        done.append("not reached")
    assert done == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "restored"


def test_first_stop_signal_wins_while_deferred(default_stop_signals):
    with InterruptGuard() as guard, pytest.raises(Terminated) as caught, guard.deferred():
        _signal(signal.SIGTERM)
        _ctrl_c()
    assert caught.value.signum == signal.SIGTERM


@needs_sighup
def test_an_ignored_sighup_stays_ignored_and_a_programs_own_sigterm_handler_stays():
    """`nohup` ignores SIGHUP; the web app installs its own SIGTERM handler: the guard takes neither over."""
    def own(signum, frame):
        pass

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN), signal.signal(signal.SIGTERM, own)
    try:
        with InterruptGuard() as guard:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is own
            with guard.deferred():
                _signal(signal.SIGHUP)
            assert guard.pending is None
    finally:
        signal.signal(signal.SIGHUP, before[0])
        signal.signal(signal.SIGTERM, before[1])


def test_off_the_main_thread_sigterm_is_left_alone():
    seen = []

    def worker():
        before = signal.getsignal(signal.SIGTERM)
        with InterruptGuard():
            seen.append(signal.getsignal(signal.SIGTERM) is before)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [True]
