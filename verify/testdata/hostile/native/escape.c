/*
 * A native program a plugin could ship in its tree and start with
 * os.StartProcess: it tries what the Go standard library would not let it,
 * and prints one line per attempt, "what=ok" or "what=<errno name>".
 *
 *   escape sockets    socket families beyond the network namespace
 *                     (AF_VSOCK, AF_PACKET, AF_ALG, netlink other than
 *                     NETLINK_ROUTE) and the ones Go's net package uses
 *   escape pid PID    resource limits, priorities, CPU affinity, scheduler,
 *                     I/O priority of another process (the verifying
 *                     xtraefik, PID as the host numbers it) and a signal to
 *                     it; the same calls on itself. Every change it asks for
 *                     sets what it read, so that a defence that fails
 *                     changes nothing.
 *   escape nodes      device nodes (character, block) in its scratch
 *                     directory ($TMPDIR), a FIFO and a socket node there,
 *                     and the user and capabilities it runs with
 *
 * verify's TestHostile compiles it (gcc -static) and asserts each answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *errname(int e)
{
	static char buf[32];
	switch (e) {
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ESRCH: return "ESRCH";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	}
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}

static void report(const char *what, long r)
{
	printf("%s=%s\n", what, r < 0 ? errname(errno) : "ok");
}

static void sock(const char *what, unsigned long family, int type, int proto)
{
	long fd = syscall(SYS_socket, family, type, proto);
	report(what, fd);
	if (fd >= 0)
		close(fd);
}

static void sockets(void)
{
	int sv[2];
	sock("socket unix", AF_UNIX, SOCK_STREAM, 0);
	sock("socket inet", AF_INET, SOCK_STREAM, 0);
	sock("socket inet6", AF_INET6, SOCK_STREAM, 0);
	sock("socket netlink route", AF_NETLINK, SOCK_RAW, 0);
	sock("socket netlink audit", AF_NETLINK, SOCK_RAW, 9);
	sock("socket vsock", 40, SOCK_STREAM, 0);
	/* The kernel reads an int: the upper half must not get it past. */
	sock("socket vsock upper bits", 40UL | (1UL << 32), SOCK_STREAM, 0);
	sock("socket packet", AF_PACKET, SOCK_DGRAM, 0);
	sock("socket alg", 38, SOCK_SEQPACKET, 0);
	long r = syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv);
	report("socketpair unix", r);
	if (r == 0) {
		close(sv[0]);
		close(sv[1]);
	}
	report("socketpair vsock", syscall(SYS_socketpair, 40, SOCK_STREAM, 0, sv));
}

static void processes(pid_t pid)
{
	struct rlimit lim;
	report("prlimit self", syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &lim));
	long r = syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, NULL, &lim);
	report("prlimit read", r);
	if (r == 0)
		report("prlimit", syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, &lim, NULL));
	else
		report("prlimit", syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, NULL, &lim));

	errno = 0;
	int nice = getpriority(PRIO_PROCESS, pid);
	if (errno != 0)
		nice = 0;
	report("setpriority", syscall(SYS_setpriority, PRIO_PROCESS, pid, nice));
	errno = 0;
	int own = getpriority(PRIO_PROCESS, 0);
	report("setpriority self", syscall(SYS_setpriority, PRIO_PROCESS, 0, own));
	/* Its own process group: harmless, but not PRIO_PROCESS of itself. */
	report("setpriority group", syscall(SYS_setpriority, PRIO_PGRP, 0, own));

	cpu_set_t set;
	if (syscall(SYS_sched_getaffinity, pid, sizeof set, &set) < 0)
		syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
	report("sched_setaffinity", syscall(SYS_sched_setaffinity, pid, sizeof set, &set));
	syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
	report("sched_setaffinity self", syscall(SYS_sched_setaffinity, 0, sizeof set, &set));

	struct sched_param sp = {0};
	report("sched_setscheduler", syscall(SYS_sched_setscheduler, pid, SCHED_OTHER, &sp));
	report("sched_setparam", syscall(SYS_sched_setparam, pid, &sp));

	long prio = syscall(SYS_ioprio_get, 1, pid); /* IOPRIO_WHO_PROCESS */
	if (prio < 0)
		prio = 0;
	report("ioprio_set", syscall(SYS_ioprio_set, 1, pid, prio));
	prio = syscall(SYS_ioprio_get, 1, 0);
	report("ioprio_set self", syscall(SYS_ioprio_set, 1, 0, prio < 0 ? 0 : prio));

	/* Signal 0: the permission check without a signal. */
	report("kill", syscall(SYS_kill, pid, 0));
	report("kill self", syscall(SYS_kill, getpid(), 0));
}

static void nodes(void)
{
	const char *dir = getenv("TMPDIR");
	char p[4096];
	if (dir == NULL)
		dir = "/tmp";
	/* Harmless devices (null, loop0): making them is the attack. */
	snprintf(p, sizeof p, "%s/chr", dir);
	report("mknod chr", syscall(SYS_mknodat, AT_FDCWD, p, S_IFCHR | 0600, makedev(1, 3)));
	snprintf(p, sizeof p, "%s/blk", dir);
	report("mknod blk", syscall(SYS_mknodat, AT_FDCWD, p, S_IFBLK | 0600, makedev(7, 0)));
#ifdef SYS_mknod
	snprintf(p, sizeof p, "%s/chr2", dir);
	report("mknod chr old", syscall(SYS_mknod, p, S_IFCHR | 0600, makedev(1, 3)));
#endif
	snprintf(p, sizeof p, "%s/fifo", dir);
	report("mknod fifo", syscall(SYS_mknodat, AT_FDCWD, p, S_IFIFO | 0600, 0));
	snprintf(p, sizeof p, "%s/sock", dir);
	report("mknod sock", syscall(SYS_mknodat, AT_FDCWD, p, S_IFSOCK | 0600, 0));

	uid_t r, e, s;
	getresuid(&r, &e, &s);
	printf("uid=%u\neuid=%u\nsuid=%u\n", r, e, s);
	gid_t gr, ge, gs;
	getresgid(&gr, &ge, &gs);
	printf("gid=%u\negid=%u\n", gr, ge);
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) == 0)
		printf("cap effective=%x%08x\ncap permitted=%x%08x\n", data[1].effective, data[0].effective,
		       data[1].permitted, data[0].permitted);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "sockets") == 0)
		sockets();
	else if (argc >= 3 && strcmp(argv[1], "pid") == 0)
		processes((pid_t)atoi(argv[2]));
	else if (argc >= 2 && strcmp(argv[1], "nodes") == 0)
		nodes();
	else
		return 2;
	return 0;
}
