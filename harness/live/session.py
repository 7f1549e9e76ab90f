"""`harness test --live`: the current guest tests, run again in a live VM over SSH.

One SSH connection per run: one exec copies what changed (see live/sync.py),
one forward reaches the guest's pytest server (guest/pytest_zygote.py), which
runs pytest with the booted run's options and results plugin in a fork that
has pytest imported already. The plugin's records come back as they happen,
pytest's own output beside them; the console log the VM has been writing
since it booted gives the kernel reports of the run.
"""

from __future__ import annotations

import json
import select
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from harness.core.errors import InfraError
from harness.core.jsonfile import read_json, write_json
from harness.core.progress import Progress
from harness.core.status import Status, worst
from harness.core.vocabulary import Outcome
from harness.live import state as live_state
from harness.live import sync as livesync
from harness.live import vm as live
from harness.results.junit import Suite, write_junit
from harness.verdict.cell import GuestEvidence, decide
from harness.verdict.expectations import NO_EXPECTATIONS, Expectations
from harness.verdict.judge import Judgement, judge
from harness.vm.boot import BootEnd
from harness.vm.kernellog import KernelReport
from harness.vm.records import GuestRun, parse_records


@dataclass(frozen=True)
class LiveRun:
    vm: live_state.LiveVM
    guest_tests: Path
    pytest_args: list[str]
    cell_dir: Path  # where this cell's results go
    test_timeout: float  # seconds without a record or output before the run counts as hung
    run_timeout: float
    expectations: Expectations = NO_EXPECTATIONS  # judged as in a booted run


@dataclass
class LiveOutcome:
    status: Status = Status.PASS
    reason: str = ""
    guest: GuestRun = field(default_factory=GuestRun)
    reports: list[KernelReport] = field(default_factory=list)
    copied: int = 0
    removed: int = 0
    judgement: Judgement | None = None
    seconds: float = 0.0
    exit_status: int | None = None  # pytest's, when the guest's server reported it
    end: BootEnd | None = None  # set when the host ended the session (a hang)
    detail: str = ""

    def fail(self, status: Status, reason: str) -> None:
        if status.outranks(self.status):
            self.status, self.reason = status, reason


def request(pytest_args: list[str]) -> bytes:
    """What the guest's pytest server (guest/pytest_zygote.py) reads: one JSON line."""
    return (json.dumps({"args": pytest_args}) + "\n").encode()


class Frames:
    """The server's reply, split into (kind, data) frames as bytes arrive."""

    HEADER = struct.Struct(">cI")

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= self.HEADER.size:
            kind, length = self.HEADER.unpack_from(self._buffer)
            end = self.HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append((kind, bytes(self._buffer[self.HEADER.size : end])))
            del self._buffer[:end]
        return frames


def _exec(client: paramiko.SSHClient, command: str, stdin: bytes = b"") -> tuple[int, str]:
    """Run a short guest command; its exit status and merged output."""
    channel = client.get_transport().open_session()
    channel.set_combine_stderr(True)
    channel.exec_command(command)
    if stdin:
        channel.sendall(stdin)
    channel.shutdown_write()
    output = bytearray()
    while chunk := channel.recv(65536):
        output += chunk
    return int(channel.recv_exit_status()), output.decode(errors="replace")


def copy_changes(client: paramiko.SSHClient, run: LiveRun, outcome: LiveOutcome) -> None:
    synced_path = Path(run.vm.directory) / live.SYNCED
    sync = livesync.plan(run.guest_tests, read_json(synced_path))
    if not sync.empty:
        status, output = _exec(client, livesync.apply_command(sync), livesync.tar_stream(sync))
        if status != 0:
            raise InfraError(f"copying the guest tests into {run.vm.cell} failed: {output[-300:]}")
    write_json(synced_path, sync.manifest)
    outcome.copied, outcome.removed = len(sync.changed), len(sync.removed)


class _RecordStream:
    """Splits the records' byte stream into lines and announces each finished test."""

    def __init__(self, cell: str, progress: Progress) -> None:
        self.cell = cell
        self.progress = progress
        self.data = bytearray()
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("type") == "result":
                self.announce(record)

    def announce(self, record: dict[str, object]) -> None:
        outcome, nodeid = str(record.get("outcome")), str(record.get("nodeid"))
        line = f"{self.cell}: {outcome.upper():7} {nodeid} ({record.get('duration', 0):.2f} s)"
        message = str(record.get("message") or "").strip().splitlines()
        if Outcome.parse(outcome).failing and message:
            line += f": {message[-1][:200]}"
        self.progress.line(line)


def open_pytest_channel(client: paramiko.SSHClient, deadline: float) -> paramiko.Channel:
    """A forward to the guest's pytest server; it may still be importing pytest after a boot."""
    while True:
        try:
            return client.get_transport().open_channel(
                "direct-tcpip", ("127.0.0.1", live.PYTEST_PORT), ("127.0.0.1", 0), timeout=10
            )
        except paramiko.ChannelException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_pytest(
    client: paramiko.SSHClient, run: LiveRun, progress: Progress, outcome: LiveOutcome
) -> bytes:
    """Stream one pytest run; its records. Marks a hang or a lost guest on `outcome`.

    Hanging up ends the run in the guest (the server kills pytest's group),
    which is all that a hang, a lost VM or Ctrl-C needs.
    """
    records = _RecordStream(run.vm.cell, progress)
    started = last_progress = time.monotonic()
    channel = open_pytest_channel(client, started + 30)
    frames = Frames()
    with channel, (run.cell_dir / "pytest.log").open("wb") as pytest_log:

        def take(data: bytes) -> None:
            for kind, payload in frames.feed(data):
                if kind == b"o":
                    pytest_log.write(payload)
                elif kind == b"r":
                    records.feed(payload)
                elif kind == b"x":
                    outcome.exit_status = int(payload)

        channel.sendall(request(run.pytest_args))
        while outcome.exit_status is None:
            select.select([channel], [], [], 0.5)
            now = time.monotonic()
            while channel.recv_ready():
                take(channel.recv(65536))
                last_progress = now
            if channel.eof_received and outcome.exit_status is None:
                # Data and EOF may both have come since the drain above: read to the end.
                while data := channel.recv(65536):
                    take(data)
            if outcome.exit_status is not None or channel.closed or channel.eof_received:
                break
            hung, hang_end = None, BootEnd.TEST_HANG
            if now - last_progress > run.test_timeout:
                running = parse_records(records.data.decode(errors="replace")).running
                hung = f"{running or 'the test session'} ran past {run.test_timeout:.0f} s"
            elif now - started > run.run_timeout:
                hung = f"the guest tests still ran after {run.run_timeout:.0f} s"
                hang_end = BootEnd.RUN_TIMEOUT
            if hung:
                outcome.end, outcome.detail = hang_end, hung
                break
            if not live_state.is_running(run.vm):
                break
    return bytes(records.data)


def classify(run: LiveRun, outcome: LiveOutcome, console: str) -> None:
    """The run's status, decided as a booted run's is (verdict/cell.py)."""
    end, detail = _how_it_ended(run, outcome)
    evidence = GuestEvidence(end=end, guest=outcome.guest, console=console, detail=detail)
    verdict = decide(
        evidence, lambda results: judge(run.expectations, run.vm.arch, run.vm.variant, results)
    )
    outcome.reports, outcome.judgement = verdict.reports, verdict.judgement
    outcome.fail(verdict.status, verdict.reason)


def _how_it_ended(run: LiveRun, outcome: LiveOutcome) -> tuple[BootEnd, str]:
    """The live session's end in the booted run's terms: a hang, a session pytest
    finished (or cut short), a VM gone, or an SSH session lost."""
    if outcome.end is not None:
        return outcome.end, outcome.detail
    if outcome.guest.finished:
        return BootEnd.COMPLETED, ""
    if outcome.exit_status is not None:
        return BootEnd.COMPLETED, (
            f"pytest exited with status {outcome.exit_status} before its session "
            "finished; see pytest.log"
        )
    if not live_state.is_running(run.vm):
        return BootEnd.QEMU_EXITED, f"the live VM's QEMU exited; see {run.vm.console_log}"
    return BootEnd.TRANSPORT_LOST, "the SSH session ended before pytest did"


def run_live(run: LiveRun, progress: Progress) -> LiveOutcome:
    """Copy, run, collect and write the results of one live VM."""
    outcome = LiveOutcome()
    started = time.monotonic()
    run.cell_dir.mkdir(parents=True, exist_ok=True)
    console_start = run.vm.console_log.stat().st_size if run.vm.console_log.exists() else 0
    try:
        client = live.connect(run.vm)
    except (OSError, paramiko.SSHException) as error:
        raise InfraError(f"cannot log in to the live VM {live.describe(run.vm)}: {error}") from None
    try:
        copy_changes(client, run, outcome)
        progress.line(
            f"{run.vm.cell}: copied {outcome.copied} changed file(s), removed "
            f"{outcome.removed}; running the guest tests"
        )
        records = run_pytest(client, run, progress, outcome)
    except (OSError, paramiko.SSHException) as error:
        raise InfraError(f"the SSH session with {run.vm.cell} failed: {error}") from None
    finally:
        client.close()  # on Ctrl-C too: the guest's server then kills the run
    outcome.seconds = time.monotonic() - started
    (run.cell_dir / "results.jsonl").write_bytes(records)
    outcome.guest = parse_records(records.decode(errors="replace"))
    with run.vm.console_log.open("rb") as stream:
        stream.seek(console_start)
        console = stream.read().decode(errors="replace")
    (run.cell_dir / "console.log").write_text(console)
    classify(run, outcome, console)
    write_results(run, outcome)
    return outcome


def write_results(run: LiveRun, outcome: LiveOutcome) -> None:
    vm = run.vm
    session = outcome.guest.session
    expected = outcome.judgement.expected_failure_reasons() if outcome.judgement else {}
    properties = {
        "arch": vm.arch,
        "variant": vm.variant,
        "live": "true",
        "kernel_release": str(session.get("kernel_release", "")),
        "kernel_version": str(session.get("kernel_version", "")),
        "build_key": str(vm.build_key),
    }
    write_junit(
        run.cell_dir / "junit.xml",
        [Suite(f"{vm.arch}.{vm.variant}", outcome.guest.results, properties, expected)],
    )


def summary_line(cell: str, outcome: LiveOutcome) -> str:
    counts = outcome.guest.counts()
    shown = ", ".join(f"{counts[k]} {k}" for k in Outcome if counts[k]) or "no tests"
    line = f"{cell} (live): {outcome.status.label}: {shown} in {outcome.seconds:.1f} s"
    return line + (f" -- {outcome.reason}" if outcome.reason else "")


def overall(outcomes: list[LiveOutcome]) -> Status:
    return worst([outcome.status for outcome in outcomes])
