/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Landlock: after the privilege drop each process confines itself to the
 * files it needs (the database directory read-write, what it reads
 * read-only) and, where the kernel can (Landlock ABI 4), to the network
 * it needs: only the mailer may connect out, to the relay's port, and
 * the webhook process, to the ports of webhook_ports.  On a kernel
 * without Landlock this does nothing but say so.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/landlock.h>

#include "log.h"
#include "sandbox.h"

/* Newer than Debian 12's header; the kernel tells whether it has them. */
#define LL_FS_TRUNCATE		(1ULL << 14)
#define LL_NET_BIND_TCP		(1ULL << 0)
#define LL_NET_CONNECT_TCP	(1ULL << 1)
#define LL_RULE_NET_PORT	2

struct ll_ruleset_attr {
	uint64_t	handled_access_fs;
	uint64_t	handled_access_net;
};

struct ll_net_port_attr {
	uint64_t	allowed_access;
	uint64_t	port;
} __attribute__((packed));

#define LL_FS_READ	(LANDLOCK_ACCESS_FS_READ_FILE | \
	LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_FS_FILE	(LANDLOCK_ACCESS_FS_EXECUTE | \
	LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
	LL_FS_TRUNCATE)

static int
ll_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : (int)abi;
}

static uint64_t
ll_fs_rights(int abi)
{
	uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LL_FS_TRUNCATE;
	return r;
}

/* Allow access (masked to what a file may carry) beneath fd. */
static int
ll_fd(int rs, int fd, uint64_t access, uint64_t handled)
{
	struct landlock_path_beneath_attr pb;
	struct stat st;

	if (fstat(fd, &st) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode))
		access &= LL_FS_FILE;
	memset(&pb, 0, sizeof(pb));
	pb.allowed_access = access & handled;
	pb.parent_fd = fd;
	return (int)syscall(SYS_landlock_add_rule, rs,
	    LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
}

/* The same beneath path; a missing path is skipped. */
static int
ll_path(const char *role, int rs, const char *path, uint64_t access,
    uint64_t handled)
{
	int fd, rc;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		/* Say which path, as which user: the fix is the admin's. */
		log_warn("%s: Landlock: %s, as uid %ld", role, path,
		    (long)geteuid());
		return -1;
	}
	rc = ll_fd(rs, fd, access, handled);
	close(fd);
	return rc;
}

int
sandbox_apply(const char *role, const char *const rw[],
    const char *const ro[], const int connect[])
{
	return sandbox_apply_fds(role, rw, ro, NULL, connect);
}

int
sandbox_apply_fds(const char *role, const char *const rw[],
    const char *const ro[], const int ro_fds[], const int connect[])
{
	struct ll_ruleset_attr attr;
	struct ll_net_port_attr np;
	uint64_t fs;
	int abi, rs, i;

	if ((abi = ll_abi()) < 1) {
		log_info("%s: Landlock not available, not sandboxed", role);
		return 0;
	}
	fs = ll_fs_rights(abi);
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = fs;
	if (abi >= 4)
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr,
	    abi >= 4 ? sizeof(attr) : sizeof(uint64_t), 0);
	if (rs == -1)
		goto fail;
	for (i = 0; rw != NULL && rw[i] != NULL; i++)
		if (ll_path(role, rs, rw[i], fs, fs) == -1)
			goto fail;
	for (i = 0; ro != NULL && ro[i] != NULL; i++)
		if (ll_path(role, rs, ro[i], LL_FS_READ |
		    LANDLOCK_ACCESS_FS_EXECUTE, fs) == -1)
			goto fail;
	for (i = 0; ro_fds != NULL && ro_fds[i] != -1; i++)
		if (ll_fd(rs, ro_fds[i], LL_FS_READ, fs) == -1)
			goto fail;
	for (i = 0; abi >= 4 && connect != NULL && connect[i] > 0; i++) {
		np.allowed_access = LL_NET_CONNECT_TCP;
		np.port = (uint64_t)connect[i];
		if (syscall(SYS_landlock_add_rule, rs, LL_RULE_NET_PORT, &np,
		    0) == -1)
			goto fail;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    syscall(SYS_landlock_restrict_self, rs, 0) == -1)
		goto fail;
	close(rs);
	/* Once at start in the log; each child's only when debugging. */
	if (strcmp(role, "referral-invitesd") == 0)
		log_info("Landlock ABI %d applied%s", abi,
		    abi >= 4 ? " (files and network)" : " (files)");
	else
		log_debug("%s: Landlock ABI %d applied", role, abi);
	return 0;
fail:
	log_warn("%s: Landlock", role);
	if (rs != -1)
		close(rs);
	return -1;
}
