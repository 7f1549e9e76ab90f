"""Progress lines: stage, cell and elapsed time; a live ticker on a terminal only."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        # sys.stderr when called, not when imported: it may have been replaced since.
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.started = time.monotonic()
        # Stages under way: cells build and boot side by side, and the
        # ticker only makes sense while there is one.
        self.active = 0
        self.active_lock = threading.Lock()

    def _clock(self) -> str:
        elapsed = int(time.monotonic() - self.started)
        return f"[{elapsed // 60:02d}:{elapsed % 60:02d}]"

    def line(self, text: str) -> None:
        prefix = "\r\033[K" if self.live else ""
        self.stream.write(f"{prefix}{self._clock()} {text}\n")
        self.stream.flush()

    @contextmanager
    def stage(self, cell: str, stage: str) -> Iterator[None]:
        """Announce a stage; on a terminal, tick its elapsed time until it ends."""
        self.line(f"{cell}: {stage} ...")
        with self.active_lock:
            self.active += 1
        begun = time.monotonic()
        stop = threading.Event()
        ticker = None
        if self.live:

            def tick() -> None:
                while not stop.wait(1.0):
                    if self.active != 1:
                        continue
                    seconds = time.monotonic() - begun
                    self.stream.write(f"\r\033[K{self._clock()} {cell}: {stage} {seconds:.0f} s")
                    self.stream.flush()

            ticker = threading.Thread(target=tick, daemon=True)
            ticker.start()
        ending = "stopped"
        try:
            yield
            ending = "finished"
        finally:
            stop.set()
            with self.active_lock:
                self.active -= 1
            if ticker is not None:
                ticker.join()
            self.line(f"{cell}: {stage} {ending} after {time.monotonic() - begun:.1f} s")
