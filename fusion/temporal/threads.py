"""One intra-op thread for the temporal head's tiny matrices."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def one_thread():
    """Tiny matrices (a few tracks x 32 frames x 64 channels): one intra-op thread is faster than several, which
    mostly wait on each other, badly so on a loaded machine (a training step of a tiny head took 18x longer with
    2 threads than with 1 on 2 busy cores here). Results do not depend on it. Restores the setting after."""
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
