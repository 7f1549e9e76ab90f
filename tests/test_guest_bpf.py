"""The guest's seccomp filter compiler (guest-tests/seccomplib/bpf.py), run on
the host by a small classic-BPF interpreter of the three instructions it
emits: what each arch's calls get from the program."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

# The guest's package, from its folder (appended: nothing of the host's is shadowed).
sys.path.append(str(Path(__file__).resolve().parent.parent / "guest-tests"))
from seccomplib import bpf
from seccomplib.syscalls import ARCH

I386 = 0x40000003  # AUDIT_ARCH_I386
MARK = 0x5EC0_0000_7ACE_0001


def run(program: list[bpf.Insn], arch: int, nr: int, args: tuple[int, ...] = ()) -> int:
    """seccomp's verdict for one call, as the kernel's interpreter would reach it."""
    words = [*args, *[0] * (6 - len(args))]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *(w & 0xFFFFFFFFFFFFFFFF for w in words))
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            (accumulator,) = struct.unpack_from("<I", data, k)
            pc += 1
        elif code == 0x15:  # BPF_JMP | BPF_JEQ | BPF_K
            pc += 1 + (jt if accumulator == k else jf)
        elif code == 0x06:  # BPF_RET | BPF_K
            return k
        else:
            raise AssertionError(f"instruction {code:#x} at {pc}: not one the compiler emits")


def test_a_filter_without_other_arches_kills_them() -> None:
    program = bpf.compile_filter([bpf.Rule(39, bpf.trace_action(7))])
    assert run(program, ARCH.audit_arch, 39) == bpf.trace_action(7)
    assert run(program, ARCH.audit_arch, 40) == bpf.RET_ALLOW
    assert run(program, I386, 39) == bpf.RET_KILL_PROCESS


@pytest.mark.parametrize(
    ("arch", "nr", "arg1", "action"),
    [
        (ARCH.audit_arch, 110, MARK, bpf.trace_action(1)),  # native rule
        (ARCH.audit_arch, 64, MARK & 0xFFFFFFFF, bpf.RET_ALLOW),  # i386's number, native arch
        (I386, 64, MARK & 0xFFFFFFFF, bpf.trace_action(2)),  # the other arch's rule, low half
        (I386, 110, MARK, bpf.RET_ALLOW),  # the native number under the other arch
        (I386, 64, 0, bpf.RET_ALLOW),  # the other arch, the marker missing
        (0xC00000B7, 64, MARK, bpf.RET_KILL_PROCESS),  # an arch with no section
    ],
)
def test_each_arch_gets_its_own_rules(arch: int, nr: int, arg1: int, action: int) -> None:
    program = bpf.compile_filter(
        [bpf.Rule(110, bpf.trace_action(1), (bpf.ArgEq(1, MARK),))],
        other_arches={I386: [bpf.Rule(64, bpf.trace_action(2), (bpf.ArgEq(1, MARK, wide=False),))]},
    )
    assert run(program, arch, nr, (0, arg1)) == action
