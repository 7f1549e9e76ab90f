"""Progress lines: stage, cell and elapsed time, and how far a long stage is.

A stage may report how far it is (`Meter.report`: "1234/~3519 objects, ETA
2:10"). On a terminal, one live line shows every stage under way, redrawn
each second; in a log (CI), a stage that reports prints one plain line every
PLAIN_EVERY seconds at most. `quiet` keeps the stage lines and drops the rest.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

PLAIN_EVERY = 30.0  # seconds between two plain progress lines of one stage


def clock(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` past an hour."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class Meter:
    """One stage under way: what it last said of itself."""

    cell: str
    stage: str
    begun: float
    detail: str = ""
    printed: float = field(default=0.0)  # when its last plain line went out

    def report(self, detail: str) -> None:
        self.detail = detail

    def describe(self, now: float) -> str:
        return f"{self.cell}: {self.stage} {self.detail or clock(now - self.begun)}"


class Progress:
    def __init__(
        self, stream: TextIO | None = None, live: bool | None = None, quiet: bool = False
    ) -> None:
        # sys.stderr when called, not when imported: it may have been replaced since.
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.quiet = quiet
        self.started = time.monotonic()
        # Stages under way: cells build and boot side by side.
        self.meters: list[Meter] = []
        self.lock = threading.Lock()
        self.ticker: threading.Thread | None = None

    def _clock(self) -> str:
        elapsed = int(time.monotonic() - self.started)
        return f"[{elapsed // 60:02d}:{elapsed % 60:02d}]"

    def line(self, text: str) -> None:
        with self.lock:
            prefix = "\r\033[K" if self.live else ""
            self.stream.write(f"{prefix}{self._clock()} {text}\n")
            self.stream.flush()

    @contextmanager
    def stage(self, cell: str, stage: str) -> Iterator[Meter]:
        """Announce a stage and keep its meter shown until it ends."""
        self.line(f"{cell}: {stage} ...")
        meter = Meter(cell, stage, time.monotonic())
        meter.printed = meter.begun
        with self.lock:
            self.meters.append(meter)
            if self.ticker is None and not self.quiet:
                self.ticker = threading.Thread(target=self._tick, daemon=True)
                self.ticker.start()
        ending = "stopped"
        try:
            yield meter
            ending = "finished"
        finally:
            with self.lock:
                self.meters.remove(meter)
            said = f", {meter.detail}" if meter.detail else ""
            elapsed = time.monotonic() - meter.begun
            self.line(f"{cell}: {stage} {ending} after {elapsed:.1f} s{said}")

    def _tick(self) -> None:
        while True:
            time.sleep(1.0)
            with self.lock:
                if not self.meters:
                    self.ticker = None  # the next stage starts another
                    return
                self.show(time.monotonic())

    def show(self, now: float) -> None:
        """One round of the ticker (the caller holds the lock)."""
        if self.live:
            if not self.meters:
                return
            text = " | ".join(meter.describe(now) for meter in self.meters)
            width = shutil.get_terminal_size().columns - 1
            self.stream.write(f"\r\033[K{self._clock()} {text}"[: width + 4])
            self.stream.flush()
            return
        for meter in self.meters:
            if meter.detail and now - meter.printed >= PLAIN_EVERY:
                meter.printed = now
                self.stream.write(f"{self._clock()} {meter.describe(now)}\n")
                self.stream.flush()
