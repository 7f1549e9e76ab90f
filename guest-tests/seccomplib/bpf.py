"""Classic-BPF seccomp filters: a tiny rule compiler and the installer.

A filter checks seccomp_data.arch first (a foreign arch is killed), then
tries each Rule in order; the first rule whose syscall number and argument
conditions all match decides the action, otherwise `default` applies. A
filter may also take the calls of other arches the kernel runs for this
process (x86_64's ia32 syscalls, made with int $0x80): each such arch gets
rules of its own, with the same default.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .libc import check, syscall
from .syscalls import ARCH, NR

# Actions (include/uapi/linux/seccomp.h). The low 16 bits are SECCOMP_RET_DATA.
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
RET_DATA_MASK = 0x0000FFFF

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
PR_SET_NO_NEW_PRIVS = 38

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
OFF_NR = 0
OFF_ARCH = 4

# Classic BPF opcodes used here.
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K


def errno_action(err: int) -> int:
    return RET_ERRNO | (err & RET_DATA_MASK)


def trace_action(data: int) -> int:
    return RET_TRACE | (data & RET_DATA_MASK)


def trap_action(data: int) -> int:
    return RET_TRAP | (data & RET_DATA_MASK)


def arg_offset(index: int) -> int:
    """Offset of the low 32 bits of args[index] (both arches are little endian)."""
    if not 0 <= index < 6:
        raise ValueError("syscall argument index out of range")
    return 16 + 8 * index


@dataclass(frozen=True)
class ArgEq:
    """args[index] == value; wide=False compares the low 32 bits only (int args)."""

    index: int
    value: int
    wide: bool = True


@dataclass(frozen=True)
class Rule:
    nr: int
    action: int
    args: tuple[ArgEq, ...] = field(default_factory=tuple)


Insn = tuple[int, int, int, int]  # code, jt, jf, k


def _rule_block(rule: Rule) -> list[Insn]:
    # Each block is self-contained: a failed comparison jumps past its end.
    body: list[tuple[int, int | None]] = [(_LD_W_ABS, OFF_NR), (_JEQ_K, rule.nr)]
    for cond in rule.args:
        body.append((_LD_W_ABS, arg_offset(cond.index)))
        body.append((_JEQ_K, cond.value & 0xFFFFFFFF))
        if cond.wide:
            body.append((_LD_W_ABS, arg_offset(cond.index) + 4))
            body.append((_JEQ_K, (cond.value >> 32) & 0xFFFFFFFF))
    body.append((_RET_K, rule.action))
    length = len(body)
    block: list[Insn] = []
    for pos, (code, k) in enumerate(body):
        skip_rest = length - pos - 1 if code == _JEQ_K else 0
        block.append((code, 0, skip_rest, k or 0))
    return block


def compile_filter(
    rules: Sequence[Rule],
    default: int = RET_ALLOW,
    other_arches: Mapping[int, Sequence[Rule]] | None = None,
) -> list[Insn]:
    """The program: per arch (the native one first, then `other_arches`, by
    AUDIT_ARCH value), a comparison that jumps past that arch's section
    unless seccomp_data.arch is it; each section ends with `default`, so the
    arch stays loaded for the next comparison. No section: killed."""
    program: list[Insn] = [(_LD_W_ABS, 0, 0, OFF_ARCH)]
    sections = {ARCH.audit_arch: rules, **(other_arches or {})}
    for audit_arch, section_rules in sections.items():
        section = [insn for rule in section_rules for insn in _rule_block(rule)]
        section.append((_RET_K, 0, 0, default))
        program.append((_JEQ_K, 0, len(section), audit_arch))
        program.extend(section)
    program.append((_RET_K, 0, 0, RET_KILL_PROCESS))
    if len(program) > 4096:
        raise ValueError("filter too long")
    return program


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_filter(
    rules: Sequence[Rule],
    default: int = RET_ALLOW,
    flags: int = 0,
    other_arches: Mapping[int, Sequence[Rule]] | None = None,
) -> int:
    """Install a filter on the calling thread (call only in a forked child).

    Returns seccomp(2)'s result: 0, or the listener fd with NEW_LISTENER.
    """
    program = compile_filter(rules, default, other_arches)
    raw = b"".join(struct.pack("<HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    prog = _SockFprog(len(program), ctypes.addressof(buffer))
    check(syscall(NR.prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    return check(
        syscall(NR.seccomp, SECCOMP_SET_MODE_FILTER, flags, ctypes.addressof(prog)),
        "seccomp(SET_MODE_FILTER)",
    )
