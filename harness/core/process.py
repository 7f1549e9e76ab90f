"""Running host commands: argv lists only, logged with shlex.join, output kept whole."""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def parent_death_signal(signum: int, parent: int) -> bool:
    """Ask the kernel for `signum` when our parent dies (PR_SET_PDEATHSIG); False when
    `parent` is gone already, having died before the request took effect."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    return os.getppid() == parent


def die_with(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child (QEMU) gets SIGKILL when `parent`, the harness, dies, even
    by SIGKILL, so it never runs on beside the next run. A command that starts children
    of its own runs under core/guard.py instead (the kernel does not pass this on).

    The kernel sends the signal when the thread that started the child ends: a guest
    is started, waited for and stopped by one worker thread, so that is also when the
    harness is done with it.
    """

    def preexec() -> None:
        if not parent_death_signal(signal.SIGKILL, parent):
            os._exit(1)

    return preexec


@dataclass(frozen=True)
class Completed:
    command: list[str]
    returncode: int
    output: str
    seconds: float
    timed_out: bool = False


def run_logged(
    command: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Completed:
    """Run `command`, appending its merged output to `log_path` as it arrives.

    The child gets its own process group so that a timeout or Ctrl-C stops
    make's whole tree of compilers, not just make; its guard (core/guard.py)
    stops that group when the harness dies, by SIGKILL too.
    """
    argv = [str(part) for part in command]
    log.debug("running: %s", shlex.join(argv))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    output: list[str] = []
    expired = threading.Event()
    with log_path.open("a", encoding="utf-8", errors="replace") as log_file:
        log_file.write(f"$ {shlex.join(argv)}\n")
        log_file.flush()
        process = subprocess.Popen(
            guarded(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,
        )

        def expire() -> None:
            expired.set()
            kill_group(process)

        watchdog = threading.Timer(timeout, expire) if timeout is not None else None
        if watchdog is not None:
            watchdog.daemon = True
            watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log_file.write(line)
                output.append(line)
                if on_line is not None:
                    on_line(line)
            process.wait()
        except BaseException:
            kill_group(process)
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
            log_file.flush()
    seconds = time.monotonic() - started
    return Completed(argv, process.returncode, "".join(output), seconds, expired.is_set())


def guarded(argv: list[str]) -> list[str]:
    """`argv` under core/guard.py: it and every process it starts die with the harness,
    even when the harness is killed outright."""
    return [sys.executable, "-m", "harness.core.guard", str(os.getpid()), *argv]


def kill_group(process: subprocess.Popen[str]) -> None:
    """Stop a child started with start_new_session and everything it started."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def capture(command: Sequence[str], cwd: Path | None = None) -> str:
    """Run a quick command and return its stdout; '' when it fails or is missing."""
    try:
        result = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""
