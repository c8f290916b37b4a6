"""Per-test wall and CPU time (own + waited-for children), setup+call+teardown: a load-tolerant measure."""
import os
import resource
import time

import pytest

_ROWS = []


def _cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    w0, (s0, c0) = time.monotonic(), _cpu()
    try:
        return (yield)
    finally:
        s1, c1 = _cpu()
        _ROWS.append((item.nodeid, time.monotonic() - w0, s1 - s0, c1 - c0, os.getloadavg()[0]))


def pytest_terminal_summary(terminalreporter):
    out = os.environ.get("CPUCLOCK_OUT")
    lines = [f"{'wall':>7} {'cpu_self':>8} {'cpu_kids':>8} {'cpu_all':>8} {'load':>5}  test"]
    for nid, w, s, c, load in _ROWS:
        lines.append(f"{w:7.1f} {s:8.1f} {c:8.1f} {s + c:8.1f} {load:5.1f}  {nid}")
    tw, ts, tc = sum(r[1] for r in _ROWS), sum(r[2] for r in _ROWS), sum(r[3] for r in _ROWS)
    lines.append(f"{tw:7.1f} {ts:8.1f} {tc:8.1f} {ts + tc:8.1f}        TOTAL ({len(_ROWS)} tests)")
    terminalreporter.section("cpuclock")
    for line in lines:
        terminalreporter.line(line)
    if out:
        with open(out, "w") as f:
            f.write("\n".join(lines) + "\n")
