from __future__ import annotations

from pathlib import Path

from harness.selftests import parse_tap


def test_recorded_seccomp_bpf_tap(data_dir: Path) -> None:
    results, planned = parse_tap((data_dir / "seccomp_bpf-one-failure.tap").read_text())
    assert planned == 99
    assert len(results) == 99
    outcomes = {r.nodeid: r.outcome for r in results}
    assert outcomes["seccomp_bpf::global.kcmp"] == "passed"
    assert outcomes["seccomp_bpf::global.user_notification_addfd_send_interrupted"] == "failed"
    assert sum(o == "passed" for o in outcomes.values()) == 98


def test_directives_and_truncated_output() -> None:
    text = (
        "TAP version 13\n1..4\n"
        "ok 1 global.a\n"
        "ok 2 global.b # SKIP needs CONFIG_X\n"
        "ok 3 TRACE_syscall.ptrace.skip # XFAIL arm32 does not support it\n"
        "# RUN global.d ...\n"
    )
    results, planned = parse_tap(text)
    assert planned == 4
    assert [(r.nodeid, r.outcome) for r in results] == [
        ("seccomp_bpf::global.a", "passed"),
        ("seccomp_bpf::global.b", "skipped"),
        ("seccomp_bpf::TRACE_syscall.ptrace.skip", "skipped"),
    ]
    assert results[1].message == "SKIP: needs CONFIG_X"
