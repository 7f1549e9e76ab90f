"""Scheduling tools for race tests: pinning, SCHED_FIFO, and round tallies.

A race test only means something if its rounds reach the window it is
about. Tracer and tracee pinned to one CPU, with the tracer SCHED_FIFO,
make "the tracer's next step lands before the tracee runs on" the normal
case instead of a lucky one; random short delays spread the rest of the
rounds over the window; and a tally records which path each round took,
so a run shows that every path was reached.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field


def online_cpus() -> list[int]:
    """The CPUs this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


def pin_to_cpu(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})


def become_fifo(priority: int = 1) -> None:
    """SCHED_FIFO: once runnable, this task keeps its CPU until it blocks or
    exits, so a task it wakes on the same CPU runs only after that."""
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))


def spin_for(seconds: float) -> None:
    """Busy-wait (a sleep would hand the CPU over, which a race test may not want)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


@dataclass
class Tally:
    """Which path each round of a race test took."""

    rounds: int = 0
    paths: Counter[str] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)  # "round N: what happened"

    def record(self, path: str, problem: str | None = None) -> None:
        self.rounds += 1
        self.paths[path] += 1
        if problem:
            self.bad.append(f"round {self.rounds}: {problem}")

    def summary(self) -> str:
        paths = ", ".join(f"{name} {count}" for name, count in sorted(self.paths.items()))
        return f"{self.rounds} rounds: {paths}"

    def report(self) -> str:
        """The summary, then the first bad rounds: the text of a failing test."""
        shown = "\n".join(self.bad[:10])
        more = f"\n... and {len(self.bad) - 10} more" if len(self.bad) > 10 else ""
        return f"{self.summary()}\n{shown}{more}"
