"""What the model test's default budget covers, per seed, without a guest.

Runs guest-tests/test_model.py's generator against seccomplib.model alone (the
"kernel" answers what the model predicts), for each seed, on both variants,
as one machine, and prints one JSON line per seed: examples, checked
operations and the new operations covered (the tally line's counts). The
draws depend on the Hypothesis version: use the guest's, e.g. its
dist-packages unpacked from the initramfs base

    cpio -idm 'usr/lib/python3/dist-packages/*' < WORK/initramfs/base-x86_64-*.cpio
    PYTHONPATH=usr/lib/python3/dist-packages python3 scripts/model-seeds.py aarch64 0 400

(Debian 12's python3-hypothesis 6.67.1 at the time of writing). A seed with
-1 is the machine's seed in test_model.DEFAULT_BUDGET. `--full` prints only seeds whose patched runs
cover every new operation and v1's kill (a seccomp stop resumed with the
tracer gone at once) and whose baseline runs fork, start a thread and execve.
`--examples N` tries a budget of N examples instead of the test's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

GUEST_TESTS = Path(__file__).resolve().parent.parent / "guest-tests"
NEW = {"fork", "fork (auto-attached)", "thread", "thread (auto-attached)", "execve"}
# v1's kill: a seccomp stop resumed, and the tracer gone before the tracee ran on.
GONE_AT_ONCE = "resume of a seccomp stop, tracer gone at once"


class ModelOnlyWorld:
    """Stands in for modelworld.World: nothing runs, nothing is seen."""

    def __init__(self, cpu: int) -> None:
        self.tracee = SimpleNamespace(pid=1)
        self.tracer = None

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: 0

    def observe(self, expect: str) -> str:
        return expect

    def observe_child(self) -> str:
        return ""

    def stray_child(self) -> None:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("machine", choices=["x86_64", "aarch64"])
    parser.add_argument("first", type=int)
    parser.add_argument("last", type=int, help="exclusive")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--examples", type=int, help="instead of the machine's default")
    args = parser.parse_args()

    import hypothesis  # noqa: F401  (before os.uname() is faked)
    import pytest  # noqa: F401

    real = os.uname()
    fake = (real.sysname, real.nodename, real.release, real.version, args.machine)
    os.uname = lambda: os.uname_result(fake)  # test_model reads the machine at import
    sys.path.insert(0, str(GUEST_TESTS))
    import test_model as tm
    from hypothesis import HealthCheck, seed, settings
    from hypothesis.stateful import run_state_machine_as_test
    from seccomplib import probe

    tm.World = ModelOnlyWorld
    tm.ptrace_errno = lambda *args: 0
    tm.online_cpus = lambda: [0]
    tm.kmsg = lambda line: None

    def check(self: Any, what: str, predicted: Any, err: Any, expect_seen: bool = True) -> None:
        type(self).steps_run += 1

    def check_text(self: Any, what: str, kernel: str, predicted: str) -> None:
        type(self).steps_run += 1

    machine = tm.PtraceSeccompMachine
    machine.check, machine.check_text, machine.stray = check, check_text, lambda self: None

    want = NEW | {GONE_AT_ONCE} | ({"PTRACE_SYSEMU"} if tm.SYSEMU_RESULT[args.machine] else set())
    default_seed, default_examples = tm.DEFAULT_BUDGET[args.machine]
    for number in range(args.first, args.last):
        line: dict[str, Any] = {"seed": default_seed if number < 0 else number}
        for variant in ("patched", "baseline"):
            kind = probe.SUPPORTED if variant == "patched" else probe.ABSENT
            tm.ptrace_seccomp_verdict = lambda kind=kind: SimpleNamespace(kind=kind, message="")
            test = tm.machine_for_kernel()  # the test's own class: its source is in the seed
            seed(line["seed"])(test)
            run_state_machine_as_test(
                test,
                settings=settings(
                    max_examples=args.examples or default_examples,
                    stateful_step_count=tm.STEPS_PER_EXAMPLE,
                    derandomize=True,
                    database=None,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    print_blob=False,
                ),
            )
            line[variant] = [test.examples, test.steps_run, dict(sorted(test.covered.items()))]
        covered = line["patched"][2], line["baseline"][2]
        full = want <= set(covered[0]) and all(
            any(name.startswith(kind) for name in covered[1])
            for kind in ("fork", "thread", "execve")
        )
        if full or not args.full:
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
