from __future__ import annotations

from harness.core.status import EXIT_BAD_INPUT, Status, exit_code_table, worst


def test_exit_codes_are_distinct_per_failure_class() -> None:
    codes = [code for code, _label, _meaning in exit_code_table()]
    assert len(codes) == len(set(codes))
    assert EXIT_BAD_INPUT in codes
    assert Status.PASS.exit_code == 0


def test_worst_cell_decides() -> None:
    assert worst([]) is Status.PASS
    assert worst([Status.PASS, Status.TEST_FAILED, Status.KERNEL_PANIC]) is Status.KERNEL_PANIC
    assert worst([Status.TEST_FAILED, Status.INFRA, Status.BUILD_FAILED]) is Status.INFRA
    # A failure in an earlier stage outranks anything a later stage could say.
    assert Status.BUILD_FAILED.rank > Status.BOOT_TIMEOUT.rank > Status.TEST_FAILED.rank
    # In the order the stages run: patch, config, build, boot, test.
    stages = [Status.PATCH_FAILED, Status.CONFIG_FAILED, Status.BUILD_FAILED,
              Status.BOOT_TIMEOUT, Status.TEST_FAILED]  # fmt: skip
    assert [s.rank for s in stages] == sorted((s.rank for s in stages), reverse=True)
