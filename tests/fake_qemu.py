"""Stands in for QEMU in host tests: replays a recorded console and result stream.

usage: fake_qemu.py MODE CONSOLE_LOG RESULTS_SRC RESULTS_DST
MODE: replay (print everything, then exit 0), silent (print nothing, sleep),
hang (print until userspace is up, write the records, then sleep),
stall (write the records, print everything, then sleep: a guest that stopped
where its console and records end), crash (print nothing, exit 1: a QEMU that
dies before the guest starts), qemu-error (the same, saying why on stderr as
QEMU does), split (replay, but each HARNESS line comes in two writes with a
pause between, as a pty may deliver it).
With FAKE_QEMU_PIDFILE set, it first writes its pid there.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path


def main() -> None:
    mode, console, results_src, results_dst = sys.argv[1:5]
    pidfile = os.environ.get("FAKE_QEMU_PIDFILE")
    if pidfile:
        Path(pidfile).write_text(f"{os.getpid()}\n")
    if mode == "qemu-error":
        print("qemu-system-x86_64: cannot set up guest memory 'pc.ram': Cannot allocate memory",
              file=sys.stderr)  # fmt: skip
        sys.exit(1)
    if mode == "crash":
        sys.exit(1)
    if mode == "silent":
        time.sleep(60)
        return
    shutil.copyfile(results_src, results_dst)
    with open(console, encoding="utf-8", errors="replace") as log:
        for line in log:
            if mode == "split" and line.startswith("HARNESS: "):
                # One character into the last word, for longer than the reader polls.
                cut = line.rindex(" ") + 2
                sys.stdout.write(line[:cut])
                sys.stdout.flush()
                time.sleep(0.6)
                line = line[cut:]
            sys.stdout.write(line)
            sys.stdout.flush()
            if mode == "hang" and line.startswith("HARNESS: userspace up"):
                time.sleep(60)
                return
    if mode == "stall":
        time.sleep(60)


if __name__ == "__main__":
    main()
