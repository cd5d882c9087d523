/*
 * A worker binary planted where xtraefik looks for one (its worker cache,
 * next to xtraefik, $PATH, --yaegi-worker). Run, it writes MARKER on the host
 * and reads SECRET (a credential of the user running xtraefik), printing it,
 * then says it speaks the worker protocol (PROTO) and forges an answer.
 * verify's TestHostile compiles it with MARKER, SECRET and PROTO set and
 * asserts that it never runs outside the sandbox: no marker, no secret.
 * Build: gcc -static.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef MARKER
#define MARKER "/nonexistent/marker"
#endif
#ifndef SECRET
#define SECRET "/nonexistent/secret"
#endif
#ifndef PROTO
#define PROTO 4
#endif

int main(void)
{
	int fd = open(MARKER, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		write(fd, "planted worker ran\n", 19);
		close(fd);
	}
	char buf[256] = {0};
	fd = open(SECRET, O_RDONLY);
	if (fd >= 0) {
		read(fd, buf, sizeof buf - 1);
		close(fd);
		printf("planted: secret %s\n", buf);
	} else {
		perror("planted: secret");
	}
	fflush(stdout);
	dprintf(3, "{\"protocol\":%d}\n", PROTO);
	dprintf(3, "{\"seq\":1,\"body\":{\"result\":{\"ok\":true,\"interpreter\":\"yaegi v0.15.1\",\"std\":[\"fmt\"]}},\"mac\":\"00\"}\n");
	return 0;
}
