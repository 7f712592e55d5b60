/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The channel between a worker and the writer (commit.c, writer.c): one
 * SOCK_SEQPACKET message an invite, one answer a message.
 */
#ifndef WRITER_H
#define WRITER_H

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

#endif
