"""What a failed build step says about the kernel: a full disk and a timeout are the
host's (infra, exit 10), a compile error the kernel's (build_failed, exit 5), also
when it is the series' selftests that do not compile. On the fake kernel tree
(tests/data/fakelinux: `#enospc` and `#slow N` lines make its compiler fail as a
full disk does, or take N seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_bad_input import Inputs

from harness.cli.main import main
from harness.core.arches import get_arch
from harness.core.errors import BuildError, InfraError
from harness.core.kselftests import COLLECTIONS
from harness.core.process import Completed
from harness.core.status import Status
from harness.kernel import selftests
from harness.kernel.selftest_tap import SelftestBinary


def build(inputs: Inputs, *extra: str) -> dict[str, object]:
    results = inputs.root / "results"
    code = main([
        "build", "--arch", "x86_64", "--variant", "baseline", "--source", str(inputs.linux),
        "--series", str(inputs.series), "--configs", str(inputs.configs),
        "--work-dir", str(inputs.root / "work"), "--results", str(results),
        "--matrix", str(inputs.matrix), *extra,
    ])  # fmt: skip
    cell: dict[str, object] = json.loads((results / "summary.json").read_text())["cells"][0]
    assert code == cell["exit_code"]
    return cell


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    return Inputs(tmp_path)


def test_a_full_disk_during_the_build_is_infra(inputs: Inputs) -> None:
    with (inputs.linux / "kernel/b.c").open("a") as source:
        source.write("#enospc\n")
    cell = build(inputs)
    assert (cell["status"], cell["exit_code"]) == ("infra", Status.INFRA.exit_code)
    assert "disk full while writing under" in str(cell["reason"])


def test_a_build_past_its_timeout_is_infra_and_says_so(inputs: Inputs) -> None:
    with (inputs.linux / "kernel/b.c").open("a") as source:
        source.write("#slow 30\n")
    cell = build(inputs, "--build-timeout", "2")
    assert (cell["status"], cell["exit_code"]) == ("infra", Status.INFRA.exit_code)
    assert "build timed out after 2 s (--build-timeout)" in str(cell["reason"])


def test_a_compile_error_is_build_failed(inputs: Inputs) -> None:
    with (inputs.linux / "kernel/b.c").open("a") as source:
        source.write("#error broken\n")
    cell = build(inputs)
    assert (cell["status"], cell["exit_code"]) == ("build_failed", Status.BUILD_FAILED.exit_code)


@pytest.mark.parametrize(("from_series", "failure"), [(True, BuildError), (False, InfraError)])
def test_a_selftest_the_series_broke_is_build_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_series: bool, failure: type
) -> None:
    """The patched tree's seccomp_bpf (or the series' hunks on the pristine one) that
    does not compile is the series' fault; the pristine tree's, the host's (its
    sysroot, its compiler)."""

    def run_logged(command: list[str], log_path: Path, **_kwargs: object) -> Completed:
        failed = "gcc" in command[0]
        output = "seccomp_bpf.c:42:7: error: 'PTRACE_SECCOMP' undeclared\n" if failed else ""
        return Completed(command, 1 if failed else 0, output, 0.1)

    monkeypatch.setattr(selftests, "run_logged", run_logged)
    (tmp_path / "seccomp_bpf.c").write_text("int main(void) { return 0; }\n")
    binary = SelftestBinary(COLLECTIONS["seccomp"], "seccomp_bpf", series=from_series)
    with pytest.raises(failure) as raised:
        selftests.build_binary(
            get_arch("x86_64"), binary, tmp_path, tmp_path, tmp_path / "build",
            tmp_path / "sysroot", tmp_path / "log", tmp_path / "ccache", from_series=from_series,
        )  # fmt: skip
    assert "error: 'PTRACE_SECCOMP' undeclared" in str(raised.value)
    assert "building seccomp/" in str(raised.value)
