"""Live VM only: pytest imported once, one forked child per `harness test --live` run.

Importing pytest takes seconds under TCG, more than most edits' test runs,
so the live VM's init starts this server at boot and every run is a fork of
it: pytest is already imported, the tests, their conftest and the results
plugin are imported fresh in each child. The host reaches it through an SSH
port forward (never the network) and sends one JSON line, the pytest
arguments; the reply is a stream of frames, a kind byte and a 4-byte length:
"p" the child's pid, "o" pytest's own output, "r" the results plugin's
records, "x" pytest's exit status (last). The host hanging up kills the
child's whole process group: a hung test or Ctrl-C on the host leaves
nothing running.

usage: pytest_zygote.py PORT TESTS_DIR
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys

import pytest  # the slow part, done once

# The same options as /harness/run-pytest, the booted run's invocation.
PYTEST_OPTIONS = ["-p", "harness_results", "-p", "no:cacheprovider", "--color=no"]
RECORDS_FD = 3


def frame(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack(">I", len(data)) + data


def child(args: list[str], tests_dir: str, output: int, records: int) -> None:
    """In the forked child: become pytest with fd 1 and 2 on `output`, 3 on `records`."""
    os.setsid()  # one group to kill: pytest and everything the tests fork
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((null, 0), (output, 1), (output, 2), (records, RECORDS_FD)):
        os.dup2(source, target)
    os.closerange(RECORDS_FD + 1, 1 << 16)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    os.chdir(tests_dir)
    sys.path.insert(0, tests_dir)  # what `python3 -m pytest` in tests_dir puts first
    os.environ["HARNESS_RESULTS_PORT"] = f"/proc/self/fd/{RECORDS_FD}"
    sys.dont_write_bytecode = False  # byte-code of unchanged modules is kept between runs
    status = 3
    try:
        status = int(pytest.main([*PYTEST_OPTIONS, *args]))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def read_request(connection: socket.socket) -> list[str]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("the host hung up before its request")
        data += chunk
    request = json.loads(data)
    return [str(arg) for arg in request["args"]]


def serve_one(connection: socket.socket, tests_dir: str) -> None:
    args = read_request(connection)
    output_r, output_w = os.pipe()
    records_r, records_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        connection.close()
        child(args, tests_dir, output_w, records_w)
    os.close(output_w)
    os.close(records_w)
    streams = {output_r: b"o", records_r: b"r"}
    host_gone = True  # until the run is seen through: a send that fails means gone too
    try:
        connection.sendall(frame(b"p", str(pid).encode()))
        host_gone = False
        while streams and not host_gone:
            ready, _, _ = select.select([*streams, connection.fileno()], [], [])
            host_gone = connection.fileno() in ready and not connection.recv(4096)
            for fd in ready:
                if fd in streams and not host_gone:
                    data = os.read(fd, 65536)
                    if data:
                        host_gone = True
                        connection.sendall(frame(streams[fd], data))
                        host_gone = False
                    else:
                        os.close(fd)
                        del streams[fd]
    finally:
        for fd in streams:
            os.close(fd)
        if host_gone:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        # The tests' own children left in the group, if any.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    if not host_gone:
        connection.sendall(frame(b"x", str(os.waitstatus_to_exitcode(status)).encode()))


def main() -> None:
    port, tests_dir = int(sys.argv[1]), sys.argv[2]
    server = socket.create_server(("127.0.0.1", port))
    print(f"HARNESS: live: pytest ready on 127.0.0.1:{port}", flush=True)
    while True:
        connection, _ = server.accept()
        with connection:
            try:
                serve_one(connection, tests_dir)
            except (OSError, ValueError, KeyError) as error:
                print(f"HARNESS: live: pytest run failed: {error}", flush=True)


if __name__ == "__main__":
    main()
