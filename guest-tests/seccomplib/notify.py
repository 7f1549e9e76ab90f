"""Seccomp user notification (SECCOMP_RET_USER_NOTIF) ioctls."""

from __future__ import annotations

import fcntl
import select
import struct
from dataclasses import dataclass

from .ptrace import DEFAULT_TIMEOUT

# _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp)
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1

_NOTIF = struct.Struct("<QIIiIQ6Q")  # id, pid, flags, seccomp_data
_RESP = struct.Struct("<QqiI")  # id, val, error, flags


@dataclass(frozen=True)
class Notification:
    id: int
    pid: int
    nr: int
    arch: int
    args: tuple[int, ...]


def receive(listener: int, timeout: float = DEFAULT_TIMEOUT) -> Notification:
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    if not poller.poll(int(timeout * 1000)):
        raise TimeoutError("no seccomp notification arrived")
    buffer = bytearray(_NOTIF.size)  # the kernel insists on a zeroed buffer
    fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, buffer)
    notif_id, pid, _flags, nr, arch, _ip, *args = _NOTIF.unpack(buffer)
    return Notification(notif_id, pid, nr, arch, tuple(args))


def respond(listener: int, notif_id: int, value: int = 0, error: int = 0, flags: int = 0) -> None:
    buffer = bytearray(_RESP.pack(notif_id, value, error, flags))
    fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, buffer)
