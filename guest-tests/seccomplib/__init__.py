"""ctypes helpers for seccomp and ptrace tests (x86_64 and aarch64 guests).

Modules:
  libc      - the libc handle, raw syscall(2) and errno helpers
  syscalls  - per-arch syscall numbers and AUDIT_ARCH values
  bpf       - classic-BPF seccomp filters and their installation
  ptrace    - ptrace requests, wait statuses and register access
  proc      - forked children, pipes and cleanup (the `lab` fixture)
  sigsys    - a SA_SIGINFO SIGSYS handler that records its siginfo
  notify    - seccomp user-notification ioctls
"""
