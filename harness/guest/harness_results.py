"""pytest plugin run inside the guest: one JSON record per event to the host.

Records go to a virtio-serial port (HARNESS_RESULTS_PORT), a channel kernel
messages cannot corrupt, and each is written as soon as the test finishes so
that a later panic or hang keeps every result before it. Test boundaries are
also written to /dev/kmsg so the host can attribute kernel reports to tests.
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any

import pytest

_port: int | None = None
_phases: dict[str, list[pytest.TestReport]] = {}


def _send(record: dict[str, Any]) -> None:
    if _port is None:
        return
    os.write(_port, (json.dumps(record, sort_keys=True) + "\n").encode())


def _kmsg(text: str) -> None:
    try:
        with open("/dev/kmsg", "w") as kmsg:
            kmsg.write(f"harness: {text}\n")
    except OSError:
        pass


def pytest_configure(config: pytest.Config) -> None:
    global _port
    path = os.environ.get("HARNESS_RESULTS_PORT")
    if path:
        _port = os.open(path, os.O_WRONLY)
    uname = os.uname()
    _send(
        {
            "type": "session",
            "kernel_release": uname.release,
            "kernel_version": uname.version,
            "machine": platform.machine(),
            "time": time.time(),
        }
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    # The host's progress line: tests done out of this many.
    _send({"type": "collected", "count": len(session.items)})


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _send(
            {
                "type": "result",
                "nodeid": report.nodeid or "<collection>",
                "outcome": "error",
                "duration": 0.0,
                "message": str(report.longrepr)[-4000:],
            }
        )


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _kmsg(f"test-start {nodeid}")
    _send({"type": "start", "nodeid": nodeid, "time": time.time()})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _phases.setdefault(report.nodeid, []).append(report)


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    reports = _phases.pop(nodeid, [])
    outcome, message = "passed", ""
    for report in reports:
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
            message = str(report.longrepr)[-4000:]
            break
        if report.skipped:
            outcome = "skipped"
            longrepr = report.longrepr
            message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    _kmsg(f"test-end {nodeid} {outcome}")
    _send(
        {
            "type": "result",
            "nodeid": nodeid,
            "outcome": outcome,
            "duration": sum(report.duration for report in reports),
            "message": message,
        }
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _send(
        {
            "type": "end",
            "exitstatus": int(exitstatus),
            "collected": session.testscollected,
            "time": time.time(),
        }
    )
