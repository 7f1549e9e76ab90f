"""The console driver against a fake QEMU replaying recorded guests."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from harness.vm.boot import (
    USERSPACE_UP,
    BootEnd,
    BootOutcome,
    BootWatcher,
    Event,
    Timeouts,
    boot_and_test,  # fmt: skip
)

FAKE = str(Path(__file__).parent / "fake_qemu.py")


def run_fake(
    tmp_path: Path, mode: str, console: Path, records: Path, probe: bool = False, **timeouts: float
) -> BootOutcome:
    results = tmp_path / "results.jsonl"
    command = [sys.executable, FAKE, mode, str(console), str(records), str(results)]
    return boot_and_test(
        command, tmp_path / "console.log", results, Timeouts(**timeouts), require_banner=probe
    )


def test_completed_run_reports_kernel_and_results(tmp_path: Path, data_dir: Path) -> None:
    outcome = run_fake(
        tmp_path, "replay", data_dir / "console-x86_64-pass.log",
        data_dir / "results-x86_64-pass.jsonl",
    )  # fmt: skip
    assert outcome.end is BootEnd.COMPLETED
    assert outcome.boot_seconds is not None
    # The first test starts after userspace is up (the plugin's kmsg line).
    assert outcome.first_test_seconds is not None
    assert outcome.first_test_seconds >= outcome.boot_seconds
    assert outcome.kernel_release == "6.12.117"
    assert outcome.guest.counts() == {
        "passed": 53, "failed": 0, "error": 0, "skipped": 41, "total": 94,
    }  # fmt: skip
    # The console is logged whole.
    recorded = (data_dir / "console-x86_64-pass.log").read_text()
    assert (tmp_path / "console.log").read_text().replace("\r\n", "\n") == recorded


def test_silent_guest_is_no_output_when_probing(tmp_path: Path, data_dir: Path) -> None:
    outcome = run_fake(
        tmp_path, "silent", data_dir / "console-x86_64-pass.log",
        data_dir / "results-x86_64-pass.jsonl", probe=True, first_output=1.0,
    )  # fmt: skip
    assert outcome.end is BootEnd.NO_OUTPUT
    assert outcome.total_seconds < 10


def test_guest_that_stops_reporting_is_a_test_hang(tmp_path: Path, data_dir: Path) -> None:
    outcome = run_fake(
        tmp_path, "hang", data_dir / "console-x86_64-pass.log",
        data_dir / "results-x86_64-pass.jsonl", test=1.5,
    )  # fmt: skip
    assert outcome.end is BootEnd.TEST_HANG
    assert "ran past 2 s" in outcome.detail or "ran past 1 s" in outcome.detail


def test_userspace_line_matches_only_once_complete() -> None:
    from harness.vm.boot import USERSPACE_UP

    assert USERSPACE_UP.search("HARNESS: userspace up: 6.12.117 #4 SMP Sat Nov 28 2") is None
    # A pty adds its own \r to the guest's \r\n.
    match = USERSPACE_UP.search("HARNESS: userspace up: 6.12.117 #4 SMP Sat Nov 28 20:53:52\r\r\n")
    assert match is not None
    assert match["version"] == "#4 SMP Sat Nov 28 20:53:52"


def test_taint_flags_line() -> None:
    from harness.vm.boot import TAINTED

    match = TAINTED.search("HARNESS: tainted 512\r\r\n")
    assert match is not None and int(match["flags"]) == 512
    assert TAINTED.search("HARNESS: tainted unknown") is None
    # Not before the line is whole: the rest of "512" may be on its way.
    assert TAINTED.search("HARNESS: tainted 5") is None


def test_lines_split_in_transit_are_read_whole(tmp_path: Path, data_dir: Path) -> None:
    """A pty may deliver "HARNESS: tainted 1" and "6384" apart: the value is 16384."""
    outcome = run_fake(
        tmp_path, "split", data_dir / "console-x86_64-lkdtm-softlockup.log",
        data_dir / "results-x86_64-pass.jsonl",
    )  # fmt: skip
    assert outcome.end is BootEnd.COMPLETED
    assert outcome.tainted == 16384
    assert outcome.kernel_version == "#1 SMP Wed Dec  2 17:07:11 UTC 2026"


def test_cancel_from_another_thread_stops_qemu(tmp_path: Path, data_dir: Path) -> None:
    import threading

    import pytest

    cancel = threading.Event()
    results = tmp_path / "results.jsonl"
    command = [
        sys.executable, FAKE, "hang", str(data_dir / "console-x86_64-pass.log"),
        str(data_dir / "results-x86_64-pass.jsonl"), str(results),
    ]  # fmt: skip
    threading.Timer(1.0, cancel.set).start()
    with pytest.raises(KeyboardInterrupt):
        boot_and_test(command, tmp_path / "console.log", results, Timeouts(), cancel=cancel)
    # The fake QEMU sleeps 60 s once userspace is up: it must be gone now.
    assert "fake_qemu.py hang" not in _processes()


def _processes() -> str:
    import subprocess

    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def _userspace_match() -> re.Match[str]:
    match = USERSPACE_UP.search("HARNESS: userspace up: 6.12.117 #7 SMP PREEMPT\n")
    assert match is not None
    return match


def test_the_watcher_decides_from_events_and_the_clock(tmp_path: Path) -> None:
    records = tmp_path / "results.jsonl"
    records.write_text("")
    timeouts = Timeouts(boot=10, test=5, run=100)
    watcher = BootWatcher(timeouts, (records,), started=0.0)
    watcher.see(Event.KERNEL_BANNER, None, 0.5)
    watcher.see(Event.USERSPACE_UP, _userspace_match(), 2.0)
    assert (watcher.boot_seconds, watcher.version) == (2.0, "#7 SMP PREEMPT")
    watcher.see(Event.TICK, None, 6.0)
    assert watcher.end is None  # 4 s without progress: within the test timeout
    watcher.see(Event.TICK, None, 7.5)
    assert watcher.end is BootEnd.TEST_HANG and watcher.detail == "the test session ran past 5 s"


@pytest.mark.parametrize(
    ("events", "end"),
    [
        ([(Event.TICK, 11.0)], BootEnd.BOOT_TIMEOUT),
        ([(Event.PANIC, 1.0)], BootEnd.PANIC),
        ([(Event.QEMU_GONE, 1.0)], BootEnd.QEMU_EXITED),
        ([(Event.GUEST_DONE, 3.0)], BootEnd.COMPLETED),
    ],
)
def test_the_watcher_ends(tmp_path: Path, events: list[tuple[Event, float]], end: BootEnd) -> None:
    watcher = BootWatcher(Timeouts(boot=10), (tmp_path / "r",), started=0.0)
    for event, now in events:
        watcher.see(event, None, now)
    assert watcher.end is end


def test_a_probe_without_a_banner_is_no_output(tmp_path: Path) -> None:
    watcher = BootWatcher(Timeouts(first_output=3), (tmp_path / "r",), require_banner=True)
    watcher.see(Event.QEMU_GONE, None, 1.0)
    assert watcher.end is BootEnd.NO_OUTPUT
