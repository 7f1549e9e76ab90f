"""The lab fixture's cleanup: a child it cannot reap fails the test, naming it."""

from __future__ import annotations

import os
import re
import signal

import pytest

from seccomplib import proc
from seccomplib.proc import Lab
from seccomplib.ptrace import wait_gone


def test_cleanup_fails_naming_a_task_that_will_not_die(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that SIGKILL does not end (os.kill made a no-op here, a task
    stuck in the kernel on a broken kernel) must fail the cleanup."""
    lab = Lab()
    gate = lab.gate()
    pid = lab.spawn(gate.wait)
    monkeypatch.setattr(proc.os, "kill", lambda pid, sig: None)
    try:
        with pytest.raises(AssertionError) as failure:
            lab.cleanup(timeout=0.2)
    finally:
        monkeypatch.undo()
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
    text = str(failure.value)
    assert f"pid {pid}: state S (sleeping)" in text, text
    assert re.search(r"wchan \w+", text) and "stack: " in text, text


def test_cleanup_reaps_quietly(lab: Lab) -> None:
    gate = lab.gate()
    pid = lab.spawn(gate.wait)
    lab.cleanup()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
