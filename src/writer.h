/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The channel between a worker and the writer (commit.c, writer.c): one
 * SOCK_SEQPACKET message an invite, one answer a message.
 */
#ifndef WRITER_H
#define WRITER_H

#include <signal.h>
#include <stdint.h>

#include "db.h"

struct commit_msg {
	uint64_t	 seq;
	int64_t		 deadline;	/* CLOCK_MONOTONIC ms: skip after */
	struct invite	 inv;
};

struct commit_reply {
	uint64_t	 seq;
	int		 res;
	int		 retry;
};

/*
 * The writer process: batches the workers' invites until *stopping;
 * checkpoints with ckdb, a second connection, from a thread of its own,
 * and restarts the WAL between two batches when it has grown long.
 */
void		 commit_run(struct db *db, struct db *ckdb, const int *fds,
		    int nfds, int wake_fd, volatile sig_atomic_t *stopping);

#endif
