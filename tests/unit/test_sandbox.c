/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/* Unit tests: Landlock confinement, in a child process. */
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/landlock.h>

#include "sandbox.h"
#include "unit.h"

static int
have_landlock(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION) >= 1;
}

/* Exit status of a child: 0 when everything behaved. */
static int
child_checks(const char *dir)
{
	const char *rw[] = { dir, NULL };
	char path[256];
	int fd;

	if (sandbox_apply("test", rw, NULL, NULL) == -1)
		return 10;
	/* Outside: refused. */
	if (open("/etc/hostname", O_RDONLY) != -1 || errno != EACCES)
		return 11;
	/* Inside: create, write, remove. */
	snprintf(path, sizeof(path), "%s/f", dir);
	if ((fd = open(path, O_CREAT | O_WRONLY, 0600)) == -1)
		return 12;
	close(fd);
	if (unlink(path) == -1)
		return 13;
	return 0;
}

static void
confines_files(void)
{
	char dir[] = "/tmp/ri-sandbox-XXXXXX";
	int status;
	pid_t pid;

	if (!have_landlock()) {
		fprintf(stderr, "sandbox: no Landlock on this kernel\n");
		return;
	}
	CHECK(mkdtemp(dir) != NULL);
	if ((pid = fork()) == 0)
		_exit(child_checks(dir));
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	rmdir(dir);
	CHECK(WIFEXITED(status));
	CHECK(WEXITSTATUS(status) == 0);
}

const struct unit_test sandbox_tests[] = {
	{ "sandbox_confines_files", confines_files },
	{ NULL, NULL }
};
