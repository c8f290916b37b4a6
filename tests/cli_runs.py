"""Run the `emomon` console entry point (or any command) in subprocesses, several at once where a test needs
several runs.

A CLI run is mostly one process importing torch and loading models while pytest waits: two of them side by side
use both cores of a 2-core machine. Each run is the same process with the same arguments as alone, so what a
test asserts does not change; only the waiting overlaps.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

PARALLEL = 2  # CI machines have 2 cores; more would only make each run slower


def emomon(*args, timeout: float = 300, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """`python -m emomon ARGS`, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "emomon", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def processes(commands, timeout: float = 300, cwd=None, parallel: int = PARALLEL) -> list[subprocess.CompletedProcess]:
    """Each command (an argv list, or (argv, env) for one with its own environment) run to its end, output
    captured as text, at most `parallel` at a time; the results in the order of `commands`."""
    def one(command):
        argv, env = command if isinstance(command, tuple) else (command, None)
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=cwd)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(one, commands))


def emomon_runs(runs, timeout: float = 300, cwd=None, parallel: int = PARALLEL) -> list[subprocess.CompletedProcess]:
    """`emomon(*args)` for each item of `runs` (a list of arguments, or (arguments, env)), as `processes` runs
    them."""
    def command(run):
        args, env = run if isinstance(run, tuple) else (run, None)
        return [sys.executable, "-m", "emomon", *args], env

    return processes([command(run) for run in runs], timeout=timeout, cwd=cwd, parallel=parallel)
