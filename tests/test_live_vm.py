"""The live VM without QEMU: its state file, finding and stopping it, the errors
when none runs, its keys, its initrd layers, the guest init's live branch and
how a live run's records and console become a status."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest

from harness.cli.main import main
from harness.core.arches import ARCHES, get_arch
from harness.core.status import EXIT_BAD_INPUT, Status
from harness.core.vocabulary import Accel
from harness.core.workdir import WorkDir
from harness.live import keys as sshkeys
from harness.live import session as livetest
from harness.live import state as live_state
from harness.live import vm as live
from harness.vm import initramfs
from harness.vm.boot import USERSPACE_UP, BootEnd
from harness.vm.cpio import CpioWriter, member_names
from harness.vm.initramfs import GUEST_DIR
from harness.vm.records import parse_records


def make_vm(
    work: WorkDir, pid: int, arch: str = "x86_64", variant: str = "patched"
) -> live_state.LiveVM:
    directory = live_state.cell_dir(work, arch, variant)
    directory.mkdir(parents=True, exist_ok=True)
    build_dir = work.root / "build"
    (build_dir / "include/generated").mkdir(parents=True, exist_ok=True)
    (build_dir / "include/generated/utsversion.h").write_text('#define UTS_VERSION "#1 SMP"\n')
    return live_state.LiveVM(
        arch=arch, variant=variant, pid=pid, ssh_port=2222, directory=str(directory),
        client_key=str(work.live / "keys/client_ecdsa"), known_hosts=str(directory / "kh"),
        kernel="bzImage", build_dir=str(build_dir), build_key="k", uts_version="#1 SMP",
        accel=Accel.TCG, guest_tests="guest-tests", started=time.time(),
    )  # fmt: skip


@pytest.fixture
def work(tmp_path: Path) -> WorkDir:
    return WorkDir(tmp_path / "work")


@pytest.fixture
def stand_in(work: WorkDir) -> Iterator[live_state.LiveVM]:
    """A process standing in for the VM's QEMU: its command line names the pidfile."""
    pidfile = live_state.cell_dir(work, "x86_64", "patched") / "qemu.pid"
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(pidfile)])
    vm = make_vm(work, process.pid)
    deadline = time.monotonic() + 10
    while not live_state.is_running(vm):  # until the child has exec()ed
        assert time.monotonic() < deadline
        time.sleep(0.01)
    live_state.write_state(vm)
    yield vm
    process.kill()
    process.wait()


def test_state_round_trips_and_finds_the_running_vm(
    stand_in: live_state.LiveVM, work: WorkDir
) -> None:
    assert live_state.read_state(Path(stand_in.directory)) == stand_in
    assert live_state.running_vm(work, "x86_64", "patched") == stand_in
    assert live_state.running_vms(work, ["x86_64"], ["patched"]) == [stand_in]
    assert live_state.running_vms(work, ["arm64"], None) == []
    assert live_state.running_vms(work, None, ["baseline"]) == []


def test_a_reused_pid_is_not_the_vm_and_its_state_goes(work: WorkDir) -> None:
    # Our own pid runs, but it is not a QEMU with this VM's pidfile.
    vm = make_vm(work, pid=os.getpid())
    live_state.write_state(vm)
    assert not live_state.is_running(vm)
    assert live_state.running_vm(work, "x86_64", "patched") is None
    assert not (Path(vm.directory) / live_state.STATE).exists()


def test_stop_ends_the_process_and_removes_the_state(
    stand_in: live_state.LiveVM, work: WorkDir
) -> None:
    (Path(stand_in.directory) / live.SYNCED).write_text("{}")
    (Path(stand_in.directory) / "console.log").write_text("kept for a post-mortem")
    live.stop(stand_in, grace=5)
    assert not live_state.is_running(stand_in)
    assert not (Path(stand_in.directory) / live_state.STATE).exists()
    assert not (Path(stand_in.directory) / live.SYNCED).exists()
    assert (Path(stand_in.directory) / "console.log").exists()
    assert live_state.running_vms(work) == []


def test_a_state_file_of_another_version_is_ignored(work: WorkDir) -> None:
    directory = live_state.cell_dir(work, "x86_64", "patched")
    directory.mkdir(parents=True)
    (directory / live_state.STATE).write_text('{"arch": "x86_64", "pid": 1}')
    assert live_state.read_state(directory) is None


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err.strip()


def test_test_live_without_a_vm_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str], work: WorkDir
) -> None:
    code, err = run_cli(
        capsys, "test", "--live", "--arch", "x86_64", "--variant", "patched",
        "--work-dir", str(work.root),
    )  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert err == (
        "harness: error: no live VM for x86_64/patched; start one with "
        "'harness boot --ssh --arch x86_64 --variant patched'"
    )
    code, err = run_cli(capsys, "test", "--live", "--work-dir", str(work.root))
    assert code == EXIT_BAD_INPUT
    assert err.startswith("harness: error: no live VM; start one with 'harness boot --ssh")


def test_stop_without_a_vm_is_bad_input(capsys: pytest.CaptureFixture[str], work: WorkDir) -> None:
    code, err = run_cli(capsys, "boot", "--stop", "--arch", "arm64", "--work-dir", str(work.root))
    assert code == EXIT_BAD_INPUT
    assert "no live VM for arm64/*; start one with" in err


def test_second_boot_of_a_running_cell_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], stand_in: live_state.LiveVM, work: WorkDir
) -> None:
    code, err = run_cli(
        capsys, "boot", "--ssh", "--arch", "x86_64", "--variant", "patched",
        "--work-dir", str(work.root),
    )  # fmt: skip
    assert code == 0
    assert len(err.splitlines()) == 1
    assert f"a live VM for x86_64/patched already runs (QEMU pid {stand_in.pid})" in err
    assert "ssh -i " in err and "-p 2222" in err


def test_a_vm_of_an_older_build_is_refused(
    capsys: pytest.CaptureFixture[str], stand_in: live_state.LiveVM, work: WorkDir
) -> None:
    header = Path(stand_in.build_dir) / "include/generated/utsversion.h"
    header.write_text('#define UTS_VERSION "#2 SMP"\n')
    code, err = run_cli(capsys, "test", "--live", "--work-dir", str(work.root))
    assert code == EXIT_BAD_INPUT
    assert "runs an older build of its kernel; restart it with 'harness boot --stop" in err


def test_live_run_takes_its_timeouts_from_the_options_and_the_matrix_file(
    capsys: pytest.CaptureFixture[str], stand_in: live_state.LiveVM, work: WorkDir,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    runs: list[livetest.LiveRun] = []

    def record(run: livetest.LiveRun, progress: object) -> object:
        runs.append(run)
        raise KeyboardInterrupt  # stop before anything is sent to the VM

    monkeypatch.setattr(livetest, "run_live", record)
    matrix = tmp_path / "harness.toml"
    matrix.write_text("[timeouts]\nrun = 100\n")
    code, _ = run_cli(
        capsys, "test", "--live", "--work-dir", str(work.root), "--matrix", str(matrix),
        "--test-timeout", "7", "--guest-tests", str(tmp_path), "--results", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 130 and len(runs) == 1
    # Under TCG every guest timeout is tripled, as in a booted run.
    assert runs[0].test_timeout == 7 * 3  # the option
    assert runs[0].run_timeout == 100 * 3  # the matrix file


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--ssh-port", "2222"], "--ssh-port needs --ssh"),
        (["--gdb-wait"], "--gdb-port and --gdb-wait need --gdb"),
        (["--ssh", "--gdb", "--gdb-wait"], "--gdb-wait with --ssh: the guest would wait"),
        (["--ssh", "--ssh-port", "70000"], "--ssh-port 70000: not a TCP port"),
    ],
)
def test_boot_option_mistakes(
    capsys: pytest.CaptureFixture[str], work: WorkDir, options: list[str], message: str
) -> None:
    code, err = run_cli(
        capsys, "boot", "--arch", "x86_64", "--variant", "patched", *options,
        "--work-dir", str(work.root),
    )  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert message in err and len(err.splitlines()) == 1


def test_keys_are_made_once_and_the_host_key_is_in_dropbear_format(tmp_path: Path) -> None:
    keys = sshkeys.ensure_keys(tmp_path / "keys")
    assert keys.client_key_path.stat().st_mode & 0o077 == 0
    again = sshkeys.ensure_keys(tmp_path / "keys")
    assert again.client_key.get_base64() == keys.client_key.get_base64()
    assert again.host_key.get_base64() == keys.host_key.get_base64()
    assert keys.authorized_key.startswith("ecdsa-sha2-nistp256 AAAA")
    assert keys.known_hosts_line(2222).startswith("[127.0.0.1]:2222 ecdsa-sha2-nistp256 ")
    # dropbear's format: type, curve, Q, d; Q and the type make the public key again.
    blob = paramiko.Message(sshkeys.dropbear_private_key(keys.host_key))
    name, curve, point = blob.get_text(), blob.get_text(), blob.get_binary()
    private = blob.get_mpint()
    assert (name, curve) == ("ecdsa-sha2-nistp256", "nistp256")
    public = paramiko.Message()
    public.add_string(name)
    public.add_string(curve)
    public.add_string(point)
    assert paramiko.ECDSAKey(data=public.asbytes()).get_base64() == keys.host_key.get_base64()
    assert private == keys.host_key.signing_key.private_numbers().private_value
    assert blob.get_remainder() == b""


def test_member_names_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "a.cpio"
    with path.open("wb") as stream:
        archive = CpioWriter(stream)
        archive.directory("usr/lib")
        archive.file("usr/lib/libc.so.6", b"x" * 7)
        archive.symlink("lib", "usr/lib")
        archive.finish()
    assert member_names(path) == {"usr/lib", "usr/lib/libc.so.6", "lib"}
    path.write_bytes(b"not an archive at all, not at all, not at all" * 3)
    with pytest.raises(ValueError, match="not a newc cpio archive"):
        member_names(path)


def test_live_overlay_holds_only_what_the_base_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = get_arch("arm64")
    base_path = tmp_path / "base.cpio"
    with base_path.open("wb") as stream:
        archive = CpioWriter(stream)
        archive.directory("usr/lib/aarch64-linux-gnu")
        archive.file("usr/lib/aarch64-linux-gnu/libc.so.6", b"libc")
        archive.finish()
    extracted: list[tuple[str, ...]] = []

    def fake_extract(arch_: object, root: Path, log: Path, packages: tuple[str, ...]) -> None:
        extracted.append(packages)
        for name, data in {
            "usr/sbin/dropbear": b"sshd", "usr/bin/dbclient": b"client",
            "usr/lib/aarch64-linux-gnu/libc.so.6": b"libc again",
            "usr/lib/aarch64-linux-gnu/libtomcrypt.so.1": b"crypto",
            "usr/share/doc/dropbear-bin/copyright": b"text",
        }.items():  # fmt: skip
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)

    monkeypatch.setattr(initramfs, "_extract", fake_extract)
    base = initramfs.Initramfs(base_path, "basekey")
    overlay = initramfs.build_live_overlay(arch, base, tmp_path, tmp_path / "log")
    assert extracted == [("dropbear-bin",)]
    names = member_names(overlay)
    assert {"usr/sbin/dropbear", "usr/lib/aarch64-linux-gnu/libtomcrypt.so.1"} <= names
    assert "usr/lib/aarch64-linux-gnu/libc.so.6" not in names
    assert "usr/lib/aarch64-linux-gnu" not in names  # the base's directory is not laid again
    assert not any(name.startswith("usr/share") or name.endswith("dbclient") for name in names)
    assert initramfs.build_live_overlay(arch, base, tmp_path, tmp_path / "log") == overlay
    assert len(extracted) == 1  # cached


def test_live_initrd_layers_keys_and_accounts(tmp_path: Path) -> None:
    config = tmp_path / "live-config.cpio"
    initramfs.write_live_config_cpio("ecdsa-sha2-nistp256 AAAA key", b"hostkey", config)
    names = member_names(config)
    assert {"etc/passwd", "root/.ssh/authorized_keys", "etc/dropbear/host_key"} <= names
    tests = tmp_path / "guest-tests"
    tests.mkdir()
    (tests / "test_x.py").write_text("")
    overlay = tmp_path / "tests.cpio"
    initramfs.write_tests_cpio(tests, [], overlay, [])
    assert {"init", "harness/run-pytest", "harness/harness_results.py"} <= member_names(overlay)


def test_init_reads_the_live_parameter_the_harness_writes(tmp_path: Path) -> None:
    init = (GUEST_DIR / "init").read_text()
    parse = next(line for line in init.splitlines() if line.startswith("live="))
    cmdline = tmp_path / "cmdline"
    for arch in ARCHES.values():
        cmdline.write_text(f"console={arch.console} panic=-1 {live.live_cmdline(arch)} quiet\n")
        script = parse.replace("/proc/cmdline", str(cmdline)) + '\necho "$live"'
        shown = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
        assert shown.stdout.split() == [
            arch.guest_nic, live.GUEST_ADDRESS, live.GATEWAY, str(live.PYTEST_PORT),
        ]  # fmt: skip
    cmdline.write_text("console=ttyS0 panic=-1 harness.shell\n")
    script = parse.replace("/proc/cmdline", str(cmdline)) + '\necho "[$live]"'
    shown = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"


RECORDS = [
    '{"type": "session", "kernel_release": "6.12.117", "kernel_version": "#1 SMP", "time": 1}',
    '{"type": "start", "nodeid": "test_a.py::test_one", "time": 1}',
    '{"type": "result", "nodeid": "test_a.py::test_one", "outcome": "passed", "duration": 0.1}',
    '{"type": "start", "nodeid": "test_a.py::test_two", "time": 2}',
    '{"type": "result", "nodeid": "test_a.py::test_two", "outcome": "passed", "duration": 0.2}',
    '{"type": "end", "exitstatus": 0, "collected": 2, "time": 3}',
]


def live_run(tmp_path: Path, pid: int = 0) -> livetest.LiveRun:
    vm = make_vm(WorkDir(tmp_path / "work"), pid)
    return livetest.LiveRun(vm, tmp_path, [], tmp_path / "cell", 10.0, 100.0)


def test_records_are_announced_as_they_arrive_even_split_mid_line(tmp_path: Path) -> None:
    lines: list[str] = []

    class Recorder:
        def line(self, text: str) -> None:
            lines.append(text)

    stream = livetest._RecordStream("x86_64/patched", Recorder())  # type: ignore[arg-type]
    data = ("\n".join(RECORDS) + "\n").encode()
    stream.feed(data[:150])
    stream.feed(data[150:])
    assert lines == [
        "x86_64/patched: PASSED  test_a.py::test_one (0.10 s)",
        "x86_64/patched: PASSED  test_a.py::test_two (0.20 s)",
    ]
    assert bytes(stream.data) == data


def test_a_kernel_warning_during_a_test_fails_it(tmp_path: Path) -> None:
    console = (
        "[ 10.1] harness: test-start test_a.py::test_two\n"
        "[ 10.2] WARNING: CPU: 1 PID: 99 at kernel/seccomp.c:1 seccomp_run_filters\n"
        "[ 10.3] ---[ end trace 0000000000000000 ]---\n"
        "[ 10.4] harness: test-end test_a.py::test_two passed\n"
    )
    outcome = livetest.LiveOutcome(guest=parse_records("\n".join(RECORDS)))
    livetest.classify(live_run(tmp_path), outcome, console)
    assert outcome.status is Status.KERNEL_WARNING
    outcomes = {r.nodeid: r.outcome for r in outcome.guest.results}
    assert outcomes == {"test_a.py::test_one": "passed", "test_a.py::test_two": "failed"}
    assert "kernel warning during this test" in outcome.guest.results[1].message


def test_a_run_cut_short_keeps_its_results_and_names_the_unfinished_test(tmp_path: Path) -> None:
    outcome = livetest.LiveOutcome(guest=parse_records("\n".join(RECORDS[:4])))
    outcome.end, outcome.detail = BootEnd.TEST_HANG, "test_a.py::test_two ran past 180 s"
    livetest.classify(live_run(tmp_path), outcome, "")
    assert outcome.status is Status.GUEST_HANG
    assert [(r.nodeid, r.outcome) for r in outcome.guest.results] == [
        ("test_a.py::test_one", "passed"), ("test_a.py::test_two", "error"),
    ]  # fmt: skip
    line = livetest.summary_line("x86_64/patched", replace(outcome, seconds=4.25))
    assert line == (
        "x86_64/patched (live): guest_hang: 1 passed, 1 error in 4.2 s -- "
        "test: test_a.py::test_two ran past 180 s"
    )


def test_a_selection_that_runs_nothing_fails(tmp_path: Path) -> None:
    records = [RECORDS[0], '{"type": "end", "exitstatus": 5, "collected": 0, "time": 2}']
    outcome = livetest.LiveOutcome(guest=parse_records("\n".join(records)))
    livetest.classify(live_run(tmp_path), outcome, "")
    assert (outcome.status, outcome.reason) == (Status.TEST_FAILED, "test: no guest test ran")


def test_a_live_run_is_judged_by_the_expectations_file(tmp_path: Path) -> None:
    from harness.verdict import expectations

    known = tmp_path / "expectations.toml"
    known.write_text(
        '[[expect]]\narch = "x86_64"\nvariant = "patched"\ntest = "test_a.py::test_one"\n'
        'outcome = "failed"\nreason = "a known bug"\n'
        '[[expect]]\narch = "*"\nvariant = "*"\ntest = "test_a.py::test_two"\n'
        'outcome = "skipped"\nreason = "needs the series"\n'
    )
    records = [line.replace('"passed"', '"failed"', 1) if "test_one" in line and "result" in line
               else line for line in RECORDS]  # fmt: skip
    run = replace(live_run(tmp_path), expectations=expectations.load(known))
    outcome = livetest.LiveOutcome(guest=parse_records("\n".join(records)))
    livetest.classify(run, outcome, "")
    # test_one failed as expected; test_two passed where a skip was expected.
    assert outcome.status is Status.TEST_FAILED
    assert "1 test(s) departed from expectations.toml" in outcome.reason
    assert "test_a.py::test_two passed (expected skipped)" in outcome.reason
    assert outcome.judgement is not None
    assert outcome.judgement.expected_failure_reasons() == {
        "test_a.py::test_one": "expected failure: a known bug"
    }


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


BANNER = "[    0.000000] Linux version 6.12.117 (harness@harness) #1 SMP\n"
PANIC_CONSOLE = (Path(__file__).parent / "data/console-x86_64-sysrq-panic.log").read_text()


@pytest.mark.parametrize(
    ("console", "status", "words"),
    [
        ("", Status.INFRA, "QEMU exited during boot"),  # before the kernel said anything
        (BANNER, Status.BOOT_TIMEOUT, "QEMU exited during boot"),  # the kernel's doing
        (PANIC_CONSOLE, Status.KERNEL_PANIC, "sysrq triggered crash"),
        (BANNER + "HARNESS: userspace up: 6.12.117 #2 SMP\n", Status.INFRA, "another kernel"),
    ],
    ids=["qemu-gone-before-banner", "qemu-gone-after-banner", "panic", "another-kernel"],
)
def test_a_live_boot_that_fails_is_decided_as_a_matrix_boot(
    work: WorkDir, console: str, status: Status, words: str
) -> None:
    """`boot --ssh` asks the one verdict (verdict/cell.py's decide_boot): the same
    console gives the live VM the status a matrix cell would get."""
    vm = make_vm(work, dead_pid())
    vm.console_log.write_text(console)
    with pytest.raises(live.BootFailed) as failure:
        live.wait_until_ready(vm, timeout=5.0, expected_uts="#1 SMP")
    assert failure.value.status is status
    assert words in str(failure.value)
    assert str(vm.console_log) in str(failure.value)


def test_a_live_boot_with_no_ssh_in_time_is_a_boot_timeout(
    stand_in: live_state.LiveVM,
) -> None:
    stand_in.console_log.write_text(BANNER + "HARNESS: userspace up: 6.12.117 #1 SMP\n")
    with pytest.raises(live.BootFailed) as failure:
        live.wait_until_ready(stand_in, timeout=0.3, expected_uts="#1 SMP")
    assert failure.value.status is Status.BOOT_TIMEOUT
    assert "no SSH after 0 s" in str(failure.value)


def test_a_report_while_the_live_vm_came_up_fails_its_boot(
    stand_in: live_state.LiveVM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """test --live judges only the console of its own run, so a WARNING printed while
    the VM booted must fail `boot --ssh`, or no status would ever show it."""
    monkeypatch.setattr(live, "connect", lambda vm, timeout: paramiko.SSHClient())
    up = (
        BANNER + "HARNESS: userspace up: 6.12.117 #1 SMP\n"
        "HARNESS: live: sshd exit status 0\nHARNESS: live: pytest ready\n"
    )
    stand_in.console_log.write_text(up)
    assert live.wait_until_ready(stand_in, timeout=5.0, expected_uts="#1 SMP") >= 0
    warning = (Path(__file__).parent / "data/console-x86_64-lkdtm-warning.log").read_text()
    recorded = USERSPACE_UP.search(warning)  # the recorded boot's own kernel
    assert recorded is not None
    stand_in.console_log.write_text(warning + up)
    with pytest.raises(live.BootFailed) as failure:
        live.wait_until_ready(stand_in, timeout=5.0, expected_uts=recorded["version"].strip())
    assert failure.value.status is Status.KERNEL_WARNING
