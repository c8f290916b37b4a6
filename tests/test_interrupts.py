"""Ctrl-C is held back only while one frame's outputs are written, and is immediate elsewhere."""

import os
import signal
import threading

import pytest

from emomon.pipeline import InterruptGuard


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
