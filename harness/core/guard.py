"""Runs one command so that it, and everything it starts, dies with the harness.

PR_SET_PDEATHSIG reaches only the process that sets it: the kernel clears it in
that process's children, so make's compilers (or mmdebstrap's apt) would
outlive a harness killed outright and keep writing in a build dir the next run
takes over. The guard is the leader of the command's process group; it gets
SIGTERM when the harness dies and passes it to the whole group, which make
takes as its cue to delete half-written targets, then SIGKILLs what is left.

    python -m harness.core.guard PARENT_PID COMMAND [ARG...]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

from harness.core.process import parent_death_signal

GRACE = 5.0  # seconds the group has to stop after SIGTERM


def _stop_group(_signum: int, _frame: FrameType | None) -> None:
    """Pass the signal to the whole group, wait for it, then make sure."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's signal reaches us too
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.05)
        except ChildProcessError:
            break  # our command is gone; what it started may remain: SIGKILL below
    os.killpg(0, signal.SIGKILL)  # ends the guard too


def main(argv: list[str]) -> int:
    parent, command = int(argv[0]), argv[1:]
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop_group)
    if not parent_death_signal(signal.SIGTERM, parent):
        _stop_group(signal.SIGTERM, None)
    try:
        child = subprocess.Popen(command)
    except OSError as error:
        print(f"harness guard: cannot run {command[0]}: {error.strerror}", file=sys.stderr)
        return 127
    status = child.wait()
    return 128 - status if status < 0 else status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
