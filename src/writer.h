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
	char		 id[UUID_LEN + 1];
	char		 app[UUID_LEN + 1];
	char		 inviter[UUID_LEN + 1];
	char		 email[EMAIL_MAX + 1];
	char		 email_norm[EMAIL_MAX + 1];
	char		 lang_req[LANG_MAX];
	char		 lang_res[LANG_MAX];
	char		 request_id[REQID_MAX + 1];
	char		 token_hash[65];
	char		 idem_cred[72];	/* "" without an Idempotency-Key */
	char		 idem_key[256];
	char		 idem_hash[65];
	int		 limit_hour, limit_day, limit_minute, cooldown;
};

struct commit_reply {
	uint64_t	 seq;
	int		 res;
	int		 retry;
};

#endif
