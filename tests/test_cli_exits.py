"""Every exit code end to end, without a kernel: the real CLI (`harness.cli.main.main`, or
`python -m harness` for the signals) on the fake kernel tree (tests/data/fakelinux), each
guest booted in a fake QEMU (tests/fake_qemu.py) that replays a recorded console and
result stream, or stops, or dies, as the case needs.

Each case asserts the exit code, the cell's status and reason in summary.json and
cell.json, the last progress line, and the test the verdict blames. Run with -s to see
the table: scenario, exit code and reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, ROOT

from harness.cli.main import main
from harness.core.arches import ARCHES
from harness.core.status import EXIT_INTERRUPTED, Status, exit_code_table
from harness.vm import initramfs, qemu

FAKE_QEMU = Path(__file__).parent / "fake_qemu.py"
FAULTS = "test_faults.py::"


@dataclass
class Inputs:
    """A fake tree, a one-patch series, config fragments and an empty expectations file."""

    root: Path
    linux: Path = field(init=False)
    series: Path = field(init=False)
    configs: Path = field(init=False)
    expectations: Path = field(init=False)

    def __post_init__(self) -> None:
        self.linux = self.root / "linux"
        shutil.copytree(DATA / "fakelinux", self.linux)
        self.series = self.root / "series"
        self.series.mkdir()
        (self.series / "0001-a.patch").write_text(
            "From: A U Thor <a@example.invalid>\nSubject: [PATCH] a\n\n"
            "Signed-off-by: A U Thor <a@example.invalid>\n---\n"
            "--- a/kernel/a.c\n+++ b/kernel/a.c\n@@ -1 +1 @@\n-"
            + (self.linux / "kernel/a.c").read_text().splitlines()[0]
            + "\n+/* patched */\n"
        )
        (self.series / "series").write_text("0001-a.patch\n")
        self.configs = self.root / "configs"
        self.configs.mkdir()
        for name, option in (("base", "FAKE_BASE"), ("x86_64", "FAKE_X86"),
                             ("seccomp", "SECCOMP")):  # fmt: skip
            (self.configs / f"{name}.config").write_text(f"CONFIG_{option}=y\n")
        # No entry: every test must pass or skip.
        self.expectations = self.root / "expectations.toml"
        self.expectations.write_text("# no known failures\n")

    def argv(self, command: str, *options: str) -> list[str]:
        return [
            command, "--arch", "x86_64", "--variant", "baseline", "--source", str(self.linux),
            "--series", str(self.series), "--configs", str(self.configs),
            "--work-dir", str(self.root / "work"), "--results", str(self.root / "results"),
            "-j", "2", *options,
        ]  # fmt: skip

    def guest_argv(self, *options: str) -> list[str]:
        # Timeouts are given at KVM speed; --accel tcg triples them, the factor undoes that.
        # The run's timeout bounds a case whose own end the harness fails to see.
        return self.argv(
            "run", "--accel", "tcg", "--timeout-factor", str(1 / 3), "--run-timeout", "10",
            "--no-selftests",
            "--expectations", str(self.expectations), "--guest-tests", str(ROOT / "guest-tests"),
            *options,
        )  # fmt: skip


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    return Inputs(tmp_path)


def records(*tests: tuple[str, str | None], exit_status: int | None = None) -> str:
    """A guest's result stream: each (nodeid, outcome) test started and, unless its outcome
    is None (the guest stopped during it), finished; pytest's end when `exit_status`."""
    lines: list[dict[str, Any]] = [{"type": "session", "kernel_release": "6.12.117",
                                    "machine": "x86_64", "time": 1000.0}]  # fmt: skip
    for nodeid, outcome in tests:
        lines.append({"type": "start", "nodeid": nodeid, "time": 1001.0})
        if outcome is not None:
            lines.append({"type": "result", "nodeid": nodeid, "outcome": outcome,
                          "duration": 0.01, "message": ""})  # fmt: skip
    if exit_status is not None:
        lines.append({"type": "end", "exitstatus": exit_status, "time": 1002.0})
    return "".join(json.dumps(line) + "\n" for line in lines)


def console_until(name: str, pattern: str, root: Path, keep_match: bool = True) -> Path:
    """A copy of a recorded console cut at the first line matching `pattern`."""
    kept = []
    for line in (DATA / name).read_text().splitlines(keepends=True):
        if re.search(pattern, line):
            if keep_match:
                kept.append(line)
            break
        kept.append(line)
    else:
        raise AssertionError(f"{pattern!r} not in {name}")
    path = root / f"cut-{name}"
    path.write_text("".join(kept))
    return path


@dataclass(frozen=True)
class Guest:
    """What the fake QEMU does: its mode, the console it prints, the records it writes."""

    mode: str
    console: Callable[[Path], Path]
    records: Callable[[Path], Path]


def data(name: str) -> Callable[[Path], Path]:
    return lambda _root: DATA / name


def written(text: str) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        path = root / "records.jsonl"
        path.write_text(text)
        return path

    return write


def fake_guests(monkeypatch: pytest.MonkeyPatch, root: Path, guest: Guest) -> list[list[str]]:
    """QEMU, the guest userspace (mmdebstrap) and the initramfs, faked; the commands run."""
    commands: list[list[str]] = []

    def command(setup: qemu.QemuSetup) -> list[str]:
        argv = [sys.executable, str(FAKE_QEMU), guest.mode, str(guest.console(root)),
                str(guest.records(root)), str(setup.results)]  # fmt: skip
        commands.append(argv)
        return argv

    def base(_arch: object, cache_dir: Path, _log: Path) -> initramfs.Initramfs:
        return initramfs.Initramfs(cache_dir / "fake-base.cpio", "fake")

    def assemble(_base: object, _tests: Path, _args: list[str], destination: Path,
                 *_rest: object, **_options: object) -> None:  # fmt: skip
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(b"fake initrd")

    monkeypatch.setattr(qemu, "qemu_command", command)
    monkeypatch.setattr(initramfs, "build_base", base)
    monkeypatch.setattr(initramfs, "assemble", assemble)
    which, faked = shutil.which, {"qemu-system-x86_64", "mmdebstrap"}
    monkeypatch.setattr(shutil, "which", lambda tool: "/bin/true" if tool in faked
                        else which(tool))  # fmt: skip
    return commands


@dataclass(frozen=True)
class Finished:
    code: int
    out: list[str]  # the progress lines, without their clock
    summary: dict[str, Any]
    cell: dict[str, Any]  # its cell.json

    def result(self, nodeid: str) -> dict[str, Any]:
        return next(r for r in self.cell["results"] if r["nodeid"] == nodeid)


def run_cli(
    argv: list[str], root: Path, capsys: pytest.CaptureFixture[str], cell: str = "x86_64-baseline"
) -> Finished:
    code = main(argv)
    err = capsys.readouterr().err
    out = [re.sub(r"^\[\d\d:\d\d\] ", "", line) for line in err.splitlines()]
    results = root / "results"
    summary_path, cell_path = results / "summary.json", results / cell / "cell.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return Finished(code, out, summary, json.loads(cell_path.read_text()) if
                    cell_path.is_file() else {})  # fmt: skip


def show(pytestconfig: pytest.Config, capsys: pytest.CaptureFixture[str], name: str,
         finished: Finished) -> None:  # fmt: skip
    if pytestconfig.getoption("capture") == "no":  # -s: print the table as it goes
        with capsys.disabled():
            print(f"\n{name} -> exit {finished.code}: {finished.cell.get('status')}: "
                  f"{finished.cell.get('reason')}", end="")  # fmt: skip


def assert_cell(
    finished: Finished, status: Status, reason: str, cell: str = "x86_64/baseline"
) -> None:
    """The exit code, summary.json, cell.json and the progress lines all say `status`."""
    assert finished.code == status.exit_code, finished.out
    assert finished.summary["status"] == status.label, finished.summary
    (summary_cell,) = finished.summary["cells"]
    for written in (summary_cell, finished.cell):
        assert (written["status"], written["exit_code"]) == (status.label, status.exit_code)
        assert re.fullmatch(reason, written["reason"]), written["reason"]
    expected_line = f"{cell}: {status.label}" + (
        f" ({finished.cell['reason']})" if finished.cell["reason"] else ""
    )
    assert expected_line in finished.out, finished.out
    assert finished.out[-1].startswith(f"run {status.label} (exit {status.exit_code}); see "), (
        finished.out[-1]
    )


# -- the guest's ways to end, through `harness run` --------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    guest: Guest
    status: Status
    reason: str  # a regex over the cell's reason
    options: tuple[str, ...] = ()
    blamed: str | None = None  # the test the verdict fails for it
    blamed_outcome: str = ""
    blamed_message: str = ""  # a regex over that test's message
    report: str | None = None  # the kind of the kernel report attributed to `blamed`


SYSRQ = f"{FAULTS}test_sysrq_is_available_before_the_fault"
CRASH = f"{FAULTS}test_sysrq_crash_panics_the_kernel"
LKDTM = f"{FAULTS}test_lkdtm_warning"
AFTER = f"{FAULTS}test_userspace_still_works_after_the_fault"
FIRST = "test_boot_smoke.py::test_runs_on_a_supported_arch"
SECOND = "test_boot_smoke.py::test_two_cpus_online_for_races"

SCENARIOS = [
    Scenario(
        "clean", Guest("replay", data("console-x86_64-pass.log"),
                       data("results-x86_64-pass.jsonl")),
        Status.PASS, "",
    ),
    Scenario(
        "a test fails", Guest("replay", data("console-x86_64-pass.log"),
                              data("results-x86_64-one-failure.jsonl")),
        Status.TEST_FAILED, rf"test: 1 test\(s\) departed from expectations\.toml: "
        rf"{re.escape(SECOND)} .*",
        blamed=SECOND, blamed_outcome="failed",
        blamed_message=r"(?s)def test_two_cpus_online_for_races.*AssertionError",
    ),
    Scenario(
        "panic during a test",
        Guest("replay", data("console-x86_64-sysrq-panic.log"),
              written(records((SYSRQ, "passed"), (CRASH, None)))),
        Status.KERNEL_PANIC, r"test: kernel panic: sysrq triggered crash",
        blamed=CRASH, blamed_outcome="error",
        blamed_message=r"no result: the guest stopped during it \(kernel panic\)", report="panic",
    ),
    Scenario(
        "WARNING during a test",
        Guest("replay", data("console-x86_64-lkdtm-warning.log"),
              written(records((SYSRQ, "passed"), (LKDTM, "passed"), (AFTER, "passed"),
                              exit_status=0))),
        Status.KERNEL_WARNING,
        r"kernel warning: CPU: 1 PID: 48 at .*lkdtm/bugs\.c:112 lkdtm_WARNING\+0x8/0xb",
        blamed=LKDTM, blamed_outcome="failed",
        blamed_message=r"kernel warning during this test: CPU: 1 PID: 48 at .*",
        report="warning",
    ),
    Scenario(
        "test hang",
        Guest("stall", lambda root: console_until("console-x86_64-pass.log",
                                                  f"test-start {re.escape(SECOND)}", root),
              written(records((FIRST, "passed"), (SECOND, None)))),
        Status.GUEST_HANG, rf"test: {re.escape(SECOND)} ran past 1 s", ("--test-timeout", "1"),
        blamed=SECOND, blamed_outcome="error",
        blamed_message=rf"no result: the guest stopped during it \({re.escape(SECOND)} ran "
        r"past 1 s\)",
    ),
    Scenario(
        "no userspace",
        Guest("stall", lambda root: console_until("console-x86_64-pass.log",
                                                  "HARNESS: userspace up", root, False),
              written("")),
        Status.BOOT_TIMEOUT, r"boot: no userspace after 1 s", ("--boot-timeout", "1"),
    ),
    Scenario(
        "silence", Guest("silent", data("console-x86_64-pass.log"), written("")),
        Status.BOOT_TIMEOUT, r"boot: no userspace after 1 s", ("--boot-timeout", "1"),
    ),
    Scenario(
        "QEMU dies at once", Guest("crash", data("console-x86_64-pass.log"), written("")),
        Status.INFRA, r"boot: QEMU exited \(status 1, signal None\)",
    ),
]  # fmt: skip


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_guest_end_gives_its_exit_code_reason_and_blamed_test(
    scenario: Scenario, inputs: Inputs, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config,
) -> None:  # fmt: skip
    commands = fake_guests(monkeypatch, inputs.root, scenario.guest)
    started = time.monotonic()
    finished = run_cli(inputs.guest_argv(*scenario.options), inputs.root, capsys)
    show(pytestconfig, capsys, scenario.name, finished)
    assert len(commands) == 1 and commands[0][2] == scenario.guest.mode
    assert_cell(finished, scenario.status, scenario.reason)
    assert time.monotonic() - started < 15
    failing = [r["nodeid"] for r in finished.cell["results"] if r["outcome"] in ("failed", "error")]
    if scenario.blamed is None:
        assert failing == []
    else:
        # The blamed test, and only it, fails, with the words that say why.
        assert failing == [scenario.blamed], failing
        blamed = finished.result(scenario.blamed)
        assert blamed["outcome"] == scenario.blamed_outcome
        assert re.fullmatch(scenario.blamed_message, blamed["message"]), blamed["message"]
    reports = finished.cell["kernel_reports"]
    if scenario.report is None:
        assert reports == []
    else:
        assert [(r["kind"], r["test"]) for r in reports] == [(scenario.report, scenario.blamed)]
    if scenario.status is Status.PASS:
        assert finished.cell["tests"] == {"passed": 53, "failed": 0, "error": 0, "skipped": 41,
                                          "total": 94}  # fmt: skip


def test_qemu_failing_with_a_message_is_infra_not_a_boot_timeout(
    inputs: Inputs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    guest = Guest("qemu-error", data("console-x86_64-pass.log"), written(""))
    fake_guests(monkeypatch, inputs.root, guest)
    finished = run_cli(inputs.guest_argv(), inputs.root, capsys)
    assert "Cannot allocate memory" in (inputs.root / "results/x86_64-baseline/console.log"
                                        ).read_text()  # fmt: skip
    assert_cell(finished, Status.INFRA, r"boot: QEMU exited \(status 1, signal None\)")


def test_a_guest_program_that_does_not_build_is_infra_not_a_pass(
    inputs: Inputs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 32-bit tracee the guest tests need but that does not compile fails the cell:
    a guest that cannot run those tests must not pass, whatever it reports."""
    if shutil.which(ARCHES["x86_64"].compat.compiler) is None:
        pytest.skip("the ia32 compiler is not installed (scripts/setup-host.sh installs it)")
    tests = inputs.root / "guest-tests"
    shutil.copytree(ROOT / "guest-tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    (tests / "compat/broken32.c").write_text("int main(void) { return undeclared; }\n")
    guest = Guest("replay", data("console-x86_64-pass.log"), data("results-x86_64-pass.jsonl"))
    commands = fake_guests(monkeypatch, inputs.root, guest)
    finished = run_cli(inputs.guest_argv("--guest-tests", str(tests)), inputs.root, capsys)
    assert_cell(finished, Status.INFRA, r"guest program .*broken32\.c: does not build for ia32 .*")
    assert commands == [], "a guest was booted"


# -- `harness build` on the fake tree: an option dropped, a build broken -------------------

# Wraps the fake tree's kbuild (scripts/fake_kbuild.py, renamed fake_kbuild_real.py):
# olddefconfig drops an option whose `depends on SYMBOL` is not set, as Kconfig does; with
# FAKE_KBUILD_SLOW set, building the image writes the pid there and takes a minute.
KBUILD_WRAPPER = """\
import os, re, runpy, sys, time
from pathlib import Path
here = Path(__file__).resolve().parent
build, target = Path(sys.argv[1]), sys.argv[4]
if target == "olddefconfig":
    kconfig = (here.parent / "Kconfig").read_text()
    config = (build / ".config").read_text().splitlines(keepends=True)
    chosen = {line.split("=")[0][7:] for line in config if line.startswith("CONFIG_")}
    needs = re.findall(r"^config (\\w+)\\n(?:\\t.*\\n)*?\\tdepends on (\\w+)$", kconfig, re.M)
    unmet = {name for name, symbol in needs if symbol not in chosen}
    kept = [line for line in config if line.split("=")[0][7:] not in unmet]
    (build / ".config").write_text("".join(kept))
    sys.exit(0)
slow = os.environ.get("FAKE_KBUILD_SLOW")
if slow and target == "bzImage":
    Path(slow).write_text(f"{os.getpid()}\\n")
    time.sleep(60)
sys.argv[0] = str(here / "fake_kbuild_real.py")
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def wrap_kbuild(linux: Path) -> None:
    scripts = linux / "scripts"
    (scripts / "fake_kbuild.py").rename(scripts / "fake_kbuild_real.py")
    (scripts / "fake_kbuild.py").write_text(KBUILD_WRAPPER)


def add_an_option_that_cannot_be_set(linux: Path) -> None:
    """FAKE_DROPPED, which depends on FAKE_MISSING, which nothing sets."""
    with (linux / "Kconfig").open("a") as kconfig:
        kconfig.write('\nconfig FAKE_MISSING\n\tbool "never set"\n\n'
                      'config FAKE_DROPPED\n\tbool "needs FAKE_MISSING"\n'
                      "\tdepends on FAKE_MISSING\n")  # fmt: skip


def test_build_with_a_dropped_option_is_config_failed_naming_it(
    inputs: Inputs, capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config
) -> None:
    wrap_kbuild(inputs.linux)
    add_an_option_that_cannot_be_set(inputs.linux)
    (inputs.configs / "seccomp.config").write_text("CONFIG_SECCOMP=y\nCONFIG_FAKE_DROPPED=y\n")
    finished = run_cli(inputs.argv("build"), inputs.root, capsys)
    show(pytestconfig, capsys, "build, option dropped", finished)
    assert_cell(
        finished, Status.CONFIG_FAILED,
        r"config: CONFIG_FAKE_DROPPED=y \(.*seccomp\.config.*\) ended up not set: "
        r"depends on FAKE_MISSING \(unmet: FAKE_MISSING=n\)",
    )  # fmt: skip
    stages = finished.cell["stages"]
    assert (stages["config"]["status"], stages["build"]["status"]) == ("fail", "not_run")


def test_a_selftest_collections_dropped_option_is_config_failed_naming_its_file(
    inputs: Inputs, capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config
) -> None:
    """A collection's own config file is merged and verified as a fragment is: an option
    it needs that does not survive olddefconfig fails the cell, naming the file."""
    wrap_kbuild(inputs.linux)
    add_an_option_that_cannot_be_set(inputs.linux)
    config = inputs.linux / "tools/testing/selftests/ptrace/config"
    config.parent.mkdir(parents=True)
    config.write_text("CONFIG_FAKE_DROPPED=y\n")
    finished = run_cli(inputs.argv("build"), inputs.root, capsys)
    show(pytestconfig, capsys, "build, a selftest collection's option dropped", finished)
    assert_cell(
        finished, Status.CONFIG_FAILED,
        r"config: CONFIG_FAKE_DROPPED=y \(.*/tools/testing/selftests/ptrace/config:1\) ended up "
        r"not set: depends on FAKE_MISSING \(unmet: FAKE_MISSING=n\)",
    )  # fmt: skip
    # Without the collection its option is not asked for: the same tree builds.
    shutil.rmtree(inputs.root / "results")
    finished = run_cli(inputs.argv("build", "--selftests", "seccomp"), inputs.root, capsys)
    assert finished.code == 0, finished.cell.get("reason")


def test_build_that_does_not_compile_is_build_failed_naming_the_error(
    inputs: Inputs, capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config
) -> None:
    with (inputs.linux / "kernel/b.c").open("a") as source:
        source.write("#error the series broke b.c\n")
    finished = run_cli(inputs.argv("build"), inputs.root, capsys)
    show(pytestconfig, capsys, "build, does not compile", finished)
    build_log = inputs.root / "results/x86_64-baseline/build.log"
    assert_cell(
        finished, Status.BUILD_FAILED,
        rf"build: build failed: \S*kernel/b\.c:\d+:2: error: #error the series broke b\.c; "
        rf"see {re.escape(str(build_log))}",
    )  # fmt: skip
    stages = finished.cell["stages"]
    assert (stages["config"]["status"], stages["build"]["status"]) == ("pass", "fail")
    assert "#error the series broke b.c" in build_log.read_text()


def test_build_of_a_series_that_does_not_apply_is_patch_failed_naming_the_patch(
    inputs: Inputs, capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config
) -> None:
    patch = inputs.series / "0001-a.patch"
    first = (inputs.linux / "kernel/a.c").read_text().splitlines()[0]
    text = patch.read_text()
    assert f"\n-{first}\n" in text
    patch.write_text(text.replace(f"\n-{first}\n", "\n-/* not in the tree */\n"))
    argv = inputs.argv("build")
    argv[argv.index("baseline")] = "patched"
    finished = run_cli(argv, inputs.root, capsys, cell="x86_64-patched")
    show(pytestconfig, capsys, "build, patch does not apply", finished)
    assert_cell(finished, Status.PATCH_FAILED, r"patch: .*0001-a\.patch.*", cell="x86_64/patched")
    stages = finished.cell["stages"]
    assert (stages["patch"]["status"], stages["config"]["status"]) == ("fail", "not_run")


# -- SIGTERM: exit 130, and nothing of the run left running --------------------------------

# The real CLI in a process of its own, its guests faked as fake_guests() does here.
WITH_FAKE_GUESTS = """
import shutil, sys
from harness.cli.main import main
from harness.vm import initramfs, qemu
fake, mode, console, records = sys.argv[1:5]
def command(setup):
    return [sys.executable, fake, mode, console, records, str(setup.results)]
def base(arch, cache_dir, log):
    return initramfs.Initramfs(cache_dir / "fake-base.cpio", "fake")
def assemble(base, tests, args, destination, *rest, **options):
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(b"fake initrd")
qemu.qemu_command, initramfs.build_base, initramfs.assemble = command, base, assemble
which = shutil.which
shutil.which = lambda tool: "/bin/true" if tool in ("qemu-system-x86_64", "mmdebstrap") \\
    else which(tool)
raise SystemExit(main(sys.argv[5:]))
"""


def alive(pid: int) -> bool:
    """`pid` runs (a zombie, reaped by nobody yet, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def ours_running(root: Path) -> dict[int, str]:
    """Processes whose command line names a path under `root` (make, kbuild, fake QEMU)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(root) in cmdline and alive(int(entry.name)):
                found[int(entry.name)] = cmdline
    return found


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def terminate_during(
    argv: list[str],
    pidfile: Path,
    root: Path,
    env: dict[str, str],
    settle: float = 0.0,
    within: float = 30.0,
) -> float:
    """Start `argv`, SIGTERM it `settle` s after the long child wrote `pidfile`: exit 130,
    one line, and the child, and every process of the run, gone. Returns the seconds from
    the signal to the harness's exit; raises TimeoutExpired past `within` of them."""
    harness = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **env}, cwd=ROOT)  # fmt: skip
    try:
        started = wait_for(
            lambda: (
                harness.poll() is not None
                or (pidfile.is_file() and pidfile.read_text().endswith("\n"))
            )
        )
        assert started and harness.poll() is None, (
            f"the long step never started: {harness.poll()} {harness.communicate()}"
        )
        child = int(pidfile.read_text())
        time.sleep(settle)
        assert alive(child)
        signalled = time.monotonic()
        harness.send_signal(signal.SIGTERM)
        _out, err = harness.communicate(timeout=within)
        seconds = time.monotonic() - signalled
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    assert harness.returncode == EXIT_INTERRUPTED, err
    assert err.strip().splitlines()[-1] == "harness: interrupted; children stopped", err
    assert wait_for(lambda: not alive(child), 5), f"pid {child} outlived the harness"
    assert wait_for(lambda: not ours_running(root), 5), ours_running(root)
    return seconds


def assert_interrupted(root: Path) -> None:
    """summary.json and the cell's cell.json say interrupted (exit 130): never a verdict
    the cell did not get."""
    summary = json.loads((root / "results/summary.json").read_text())
    cell = json.loads((root / "results/x86_64-baseline/cell.json").read_text())
    assert (summary["status"], summary["exit_code"]) == ("interrupted", 130)
    assert (cell["status"], cell["exit_code"]) == ("interrupted", 130)


def test_sigterm_during_the_build_exits_130_and_stops_make(inputs: Inputs) -> None:
    wrap_kbuild(inputs.linux)
    pidfile = inputs.root / "kbuild.pid"
    argv = [sys.executable, "-m", "harness", *inputs.argv("build")]
    terminate_during(argv, pidfile, inputs.root, {"FAKE_KBUILD_SLOW": str(pidfile)})
    assert_interrupted(inputs.root)


def test_sigkill_during_the_build_leaves_no_process_of_the_run(inputs: Inputs) -> None:
    wrap_kbuild(inputs.linux)
    pidfile = inputs.root / "kbuild.pid"
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness", *inputs.argv("build")], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "FAKE_KBUILD_SLOW": str(pidfile)}, cwd=ROOT,
    )  # fmt: skip
    try:
        assert wait_for(lambda: pidfile.is_file() and pidfile.read_text().endswith("\n"))
        harness.kill()
        harness.wait()
        assert wait_for(lambda: not ours_running(inputs.root), 3), ours_running(inputs.root)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        for pid in ours_running(inputs.root):  # what a failure left: started by this test
            os.kill(pid, signal.SIGKILL)


def test_sigterm_during_a_boot_exits_130_and_stops_qemu(inputs: Inputs) -> None:
    pidfile = inputs.root / "qemu.pid"
    argv = [sys.executable, "-c", WITH_FAKE_GUESTS, str(FAKE_QEMU), "hang",
            str(DATA / "console-x86_64-pass.log"), str(DATA / "results-x86_64-pass.jsonl"),
            *inputs.guest_argv()]  # fmt: skip
    seconds = terminate_during(argv, pidfile, inputs.root, {"FAKE_QEMU_PIDFILE": str(pidfile)})
    assert seconds < 5, f"the guest took {seconds:.1f} s to stop"
    # An interrupted cell has no verdict: it is not written as if its guest had ended.
    assert_interrupted(inputs.root)


def test_sigterm_while_qemu_lingers_after_the_guest_is_done_exits_at_once(
    inputs: Inputs,
) -> None:
    pidfile = inputs.root / "qemu.pid"
    argv = [sys.executable, "-c", WITH_FAKE_GUESTS, str(FAKE_QEMU), "stall",
            str(DATA / "console-x86_64-pass.log"), str(DATA / "results-x86_64-pass.jsonl"),
            *inputs.guest_argv()]  # fmt: skip
    # The guest said it was done; QEMU lingers, and the harness waits up to 15 s for it.
    # Not exited 3 s after the signal: fails (TimeoutExpired) without waiting that out.
    terminate_during(argv, pidfile, inputs.root, {"FAKE_QEMU_PIDFILE": str(pidfile)},
                     settle=1.0, within=3)  # fmt: skip
    assert_interrupted(inputs.root)


# -- the README's table of exit codes ----------------------------------------------------


def readme_exit_codes() -> tuple[list[tuple[int, str, str]], str]:
    """The rows of the README's "Exit codes" table, and the precedence sentence after it."""
    readme = (ROOT / "README.md").read_text()
    assert readme.count("### Exit codes") == 1
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = re.findall(r"^\| *(\d+) *\| *`(\w+)` *\| *(.+?) *\|$", section, re.MULTILINE)
    table_lines = [line for line in section.splitlines() if line.startswith("|")]
    assert len(table_lines) == len(rows) + 2, "a row of the table does not parse"  # + header
    precedence = section.split("Precedence, worst first:", 1)[1].split(":", 1)[0]
    return [(int(code), status, meaning) for code, status, meaning in rows], precedence


def test_readme_exit_codes_are_the_codes_of_the_code() -> None:
    rows, precedence = readme_exit_codes()
    assert rows == exit_code_table()
    # Every status has its row, its own code, and the README ranks them as status.py does.
    codes = [code for code, _status, _meaning in rows]
    assert len(set(codes)) == len(codes)
    assert {status for _code, status, _meaning in rows} >= {s.label for s in Status}
    ranked = re.findall(r"`(\w+)`", precedence)
    assert ranked == [s.label for s in sorted(Status, key=lambda s: s.rank, reverse=True)]
