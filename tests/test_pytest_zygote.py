"""The live VM's pytest server, run on the host: a fork per run with the booted
run's options, records and output framed back, and a hang-up kills the run."""

from __future__ import annotations

import importlib.util
import json
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.live import session as livetest
from harness.live import vm as live
from harness.vm.initramfs import GUEST_DIR
from harness.vm.records import parse_records

ZYGOTE = GUEST_DIR / "pytest_zygote.py"


@dataclass
class Reply:
    pid: int
    exit_status: int | None
    output: str
    records: str


@pytest.fixture
def tests_dir(tmp_path: Path) -> Path:
    tests = tmp_path / "guest-tests"
    tests.mkdir()
    (tests / "test_a.py").write_text(
        "def test_passes():\n    assert True\n\ndef test_fails():\n    assert 1 == 2\n"
    )
    return tests


@pytest.fixture
def server(tests_dir: Path) -> Iterator[int]:
    port = live.free_port()
    process = subprocess.Popen(
        [sys.executable, str(ZYGOTE), str(port), str(tests_dir)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline() == f"HARNESS: live: pytest ready on 127.0.0.1:{port}\n"
    yield port
    process.kill()
    process.wait()


def run(port: int, args: list[str], hang_up: Callable[[], bool] | None = None) -> Reply:
    """One run; hung up by the client as soon as `hang_up()` says so."""
    frames = livetest.Frames()
    reply = Reply(0, None, "", "")
    deadline = time.monotonic() + 60
    with socket.create_connection(("127.0.0.1", port), timeout=0.1) as connection:
        connection.sendall(livetest.request(args))
        while reply.exit_status is None and time.monotonic() < deadline:
            if hang_up is not None and hang_up():
                break
            try:
                data = connection.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            for kind, payload in frames.feed(data):
                if kind == b"p":
                    reply.pid = int(payload)
                elif kind == b"o":
                    reply.output += payload.decode()
                elif kind == b"r":
                    reply.records += payload.decode()
                elif kind == b"x":
                    reply.exit_status = int(payload)
    return reply


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def test_a_run_gets_the_booted_runs_options_and_plugin(server: int) -> None:
    reply = run(server, ["-k", "passes or fails"])
    assert reply.exit_status == 1
    results = {r.nodeid: r.outcome for r in parse_records(reply.records).results}
    assert results == {"test_a.py::test_passes": "passed", "test_a.py::test_fails": "failed"}
    assert parse_records(reply.records).finished
    assert "1 failed, 1 passed" in reply.output
    assert "\x1b[" not in reply.output  # --color=no


def test_every_run_imports_the_tests_afresh(server: int, tests_dir: Path) -> None:
    assert run(server, ["-k", "passes"]).exit_status == 0
    (tests_dir / "test_a.py").write_text("def test_passes():\n    assert False\n")
    assert run(server, ["-k", "passes"]).exit_status == 1


def test_hanging_up_kills_the_run_and_what_it_forked(server: int, tests_dir: Path) -> None:
    marker = tests_dir / "forked.pid"
    (tests_dir / "test_hang.py").write_text(
        "import os, time\n"
        "def test_hangs():\n"
        "    child = os.fork()\n"
        "    if child == 0:\n"
        "        time.sleep(600)\n"
        "        os._exit(0)\n"
        f"    with open({str(marker)!r} + '.new', 'w') as out:\n"
        "        out.write(str(child))\n"
        f"    os.rename({str(marker)!r} + '.new', {str(marker)!r})\n"
        "    time.sleep(600)\n"
    )
    reply = run(server, ["-k", "hangs"], hang_up=marker.is_file)
    assert reply.exit_status is None and reply.pid
    forked = int(marker.read_text())
    deadline = time.monotonic() + 20
    while not (gone(reply.pid) and gone(forked)):
        assert time.monotonic() < deadline, "the run survived the hang-up"
        time.sleep(0.05)
    # The server goes on serving.
    assert run(server, ["-k", "passes"]).exit_status == 0


def test_options_are_those_of_run_pytest() -> None:
    spec = importlib.util.spec_from_file_location("pytest_zygote", ZYGOTE)
    assert spec is not None and spec.loader is not None
    zygote = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zygote)
    line = next(
        line for line in (GUEST_DIR / "run-pytest").read_text().splitlines()
        if line.startswith("exec python3 -m pytest")
    )  # fmt: skip
    words = shlex.split(line)
    assert words[4:-1] == zygote.PYTEST_OPTIONS
    assert words[-1] == "$@"


def test_the_request_is_one_json_line() -> None:
    data = livetest.request(["-k", "detach and not kill"])
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data) == {"args": ["-k", "detach and not kill"]}


def test_frames_split_across_reads() -> None:
    frames = livetest.Frames()
    stream = b"p\x00\x00\x00\x0242" + b"o\x00\x00\x00\x05hello" + b"x\x00\x00\x00\x011"
    assert frames.feed(stream[:3]) == []
    assert frames.feed(stream[3:12]) == [(b"p", b"42")]
    assert frames.feed(stream[12:]) == [(b"o", b"hello"), (b"x", b"1")]
