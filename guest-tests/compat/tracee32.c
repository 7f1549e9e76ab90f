// SPDX-License-Identifier: GPL-2.0
/*
 * tracee32: a 32-bit tracee for the guest tests, so that seccomp and
 * PTRACE_SECCOMP run their compat paths (ia32 on x86_64, AArch32 on arm64).
 * The harness builds it static for the arch's 32-bit user mode (its arch
 * table) and puts it at /compat/tracee32 in the guest.
 *
 *   tracee32 ACTION
 *
 * installs a filter that returns ACTION (a number, e.g. 0x7ff00000) for
 * getppid() and allows every other syscall, prints "ready", waits for one
 * byte on stdin (the test's gate), makes getppid() itself, and prints
 * "ret=<value> mark=<hex>". mark is r12 on AArch32, which the tracee sets to
 * MARK right before the svc and reads right after: the register the entry
 * stops' convention borrows, which the kernel must give back. On i386 it is
 * always 0. A SIGSYS handler prints "sigsys nr=<nr> arch=<hex> errno=<n>".
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* getppid is 64 in both the i386 and the ARM EABI tables. */
#define NR_GETPPID 64
#define MARK 0x5eedUL

#if defined(__i386__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_I386
#elif defined(__arm__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_ARM
#else
#error "tracee32 is built for i386 or 32-bit ARM only"
#endif

/* The marked getppid(): raw, so nothing but this one instruction is traced. */
static long getppid_marked(unsigned long *mark_after)
{
#if defined(__i386__)
	long ret;

	asm volatile("int $0x80" : "=a"(ret) : "0"(NR_GETPPID) : "memory");
	*mark_after = 0;
	return ret;
#else
	register long r0 asm("r0");
	register long r7 asm("r7") = NR_GETPPID;
	register unsigned long r12 asm("r12") = MARK;

	asm volatile("svc #0" : "=r"(r0), "+r"(r12) : "r"(r7) : "memory");
	*mark_after = r12;
	return r0;
#endif
}

static void on_sigsys(int sig, siginfo_t *info, void *context)
{
	char line[96];
	int length;

	(void)sig;
	(void)context;
	length = snprintf(line, sizeof(line), "sigsys nr=%d arch=%#x errno=%d\n",
			  info->si_syscall, info->si_arch, info->si_errno);
	write(STDOUT_FILENO, line, length);
	_exit(0);
}

static int install_filter(unsigned int action)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_SELF, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_GETPPID, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, action),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog program = {
		.len = sizeof(code) / sizeof(code[0]),
		.filter = code,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program);
}

int main(int argc, char **argv)
{
	struct sigaction handler;
	unsigned long mark;
	char gate;
	long ret;

	if (argc != 2) {
		fprintf(stderr, "usage: %s ACTION\n", argv[0]);
		return 2;
	}
	memset(&handler, 0, sizeof(handler));
	handler.sa_sigaction = on_sigsys;
	handler.sa_flags = SA_SIGINFO;
	if (sigaction(SIGSYS, &handler, NULL) ||
	    install_filter(strtoul(argv[1], NULL, 0))) {
		fprintf(stderr, "tracee32: setup failed: %s\n", strerror(errno));
		return 3;
	}
	printf("ready\n");
	fflush(stdout);
	if (read(STDIN_FILENO, &gate, 1) != 1)
		return 4;
	ret = getppid_marked(&mark);
	printf("ret=%ld mark=%#lx\n", ret, mark);
	return 0;
}
