/*
 * A native program a plugin could ship in its tree: it makes i386 system
 * calls from a 64-bit process (int $0x80), which a seccomp policy written for
 * x86_64 numbers does not see, to connect to a Unix socket on the host.
 * verify's TestHostile compiles it with SOCK_PATH set and asserts that the
 * sandbox kills it before it connects. Build: gcc -static -nostdlib -no-pie.
 */
#ifndef SOCK_PATH
#define SOCK_PATH "/nonexistent"
#endif

struct sockaddr_un32 {
	unsigned short family;
	char path[108];
};

/* Static, so that its address fits the 32-bit ABI's pointers. */
static struct sockaddr_un32 addr = {1, SOCK_PATH};

static long sys32(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return ret;
}

static void exit64(long code)
{
	__asm__ volatile("syscall" : : "a"(60), "D"(code) : "rcx", "r11", "memory");
	for (;;) {
	}
}

void _start(void)
{
	long fd = sys32(359, 1, 1, 0); /* socket(AF_UNIX, SOCK_STREAM, 0) */
	if (fd < 0)
		exit64(2);
	if (sys32(362, fd, (long)&addr, sizeof addr) < 0) /* connect */
		exit64(3);
	exit64(0);
}
