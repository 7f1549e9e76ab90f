"""Stands in for QEMU in host tests: replays a recorded console and result stream.

usage: fake_qemu.py MODE CONSOLE_LOG RESULTS_SRC RESULTS_DST
MODE: replay (print everything, then exit 0), silent (print nothing, sleep),
hang (print until userspace is up, write the records, then sleep).
"""

from __future__ import annotations

import shutil
import sys
import time


def main() -> None:
    mode, console, results_src, results_dst = sys.argv[1:5]
    if mode == "silent":
        time.sleep(60)
        return
    shutil.copyfile(results_src, results_dst)
    with open(console, encoding="utf-8", errors="replace") as log:
        for line in log:
            sys.stdout.write(line)
            sys.stdout.flush()
            if mode == "hang" and line.startswith("HARNESS: userspace up"):
                time.sleep(60)
                return


if __name__ == "__main__":
    main()
