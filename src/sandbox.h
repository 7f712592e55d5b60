/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Landlock confinement (sandbox.c).
 */
#ifndef SANDBOX_H
#define SANDBOX_H

/*
 * Confine this process (and its future children) to read-write beneath
 * the paths of rw, read-only beneath ro (both NULL-terminated, may be
 * NULL; missing paths are skipped) and, where the kernel restricts the
 * network, TCP connections to the ports of connect (0-terminated; NULL:
 * none) only.  Returns 0,
 * also where Landlock is missing, or -1 with the reason logged.
 */
int	 sandbox_apply(const char *role, const char *const rw[],
	    const char *const ro[], const int connect[]);
/*
 * The same, also read-only beneath the directories open on ro_fds
 * (O_PATH descriptors, -1 terminated): a rule on a directory held from
 * before the privilege drop, which its user may not reach by path.
 */
int	 sandbox_apply_fds(const char *role, const char *const rw[],
	    const char *const ro[], const int ro_fds[], const int connect[]);

#endif
