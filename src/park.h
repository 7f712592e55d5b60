/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Parked requests: those a worker has left unanswered while they wait
 * for the writer's commit and then for the mailer's verdict, or for the
 * first answer of their Idempotency-Key, with their deadlines.  A table
 * and nothing else (no I/O): worker.c owns the one instance and feeds it
 * what arrives.  A worker holds at most CONN_MAX connections and a
 * connection carries one request at a time, so the table, PARK_MAX >=
 * CONN_MAX entries, has room for every request.
 */
#ifndef PARK_H
#define PARK_H

#include "api.h"
#include "conn.h"
#include "db.h"
#include "idem.h"
#include "mailer.h"

#define PARK_MAX	CONN_MAX	/* conn.h */

enum park_wait {
	PARK_FREE,
	PARK_SEND,		/* its message waits for room to the writer */
	PARK_WRITER,		/* sent: waits for the writer's answer */
	PARK_VERDICT,		/* stored: waits for the mailer's verdict */
	PARK_IDEM		/* waits for its key's first answer (idem.c) */
};

/* What woke a parked request. */
enum wake_kind {
	WAKE_STORED,		/* the writer's answer: res, retry */
	WAKE_VERDICT,		/* the mailer's verdict: v */
	WAKE_LATE,		/* its deadline came first */
	WAKE_CHECK		/* PARK_IDEM: time to look again */
};

struct wake {
	enum wake_kind		 kind;
	int			 res;	/* enum invite_res */
	int			 retry;
	const struct verdict_msg *v;
};

struct ctx;
struct req;
struct parked;
/*
 * Called with what woke p: answers p->r and returns 0, or returns how
 * many ms more to wait for the mailer's verdict on p->inv (after
 * WAKE_STORED only), or nonzero to be looked at again (PARK_IDEM,
 * after WAKE_CHECK only).
 */
typedef int	 park_fn(struct ctx *, struct parked *, const struct wake *);

struct parked {
	enum park_wait	 wait;
	struct req	*r;
	park_fn		*resume;	/* called with each wake */
	int64_t		 deadline;	/* CLOCK_MONOTONIC ms */
	int64_t		 until;		/* PARK_IDEM: the end of its wait */
	uint64_t	 seq;		/* its message to the writer */
	struct invite	 inv;		/* what it waits for */
	struct idem_state is;		/* its Idempotency-Key claim, if any;
					   PARK_IDEM: the key it waits on */
	/* A verdict that came before the writer's answer, kept for it. */
	int		 early;
	struct verdict_msg v;
};

struct park_table {
	struct parked	 e[PARK_MAX];
	int		 n;		/* entries not PARK_FREE */
};

/* A free entry for r, PARK_SEND with seq and deadline; NULL when full. */
struct parked	*park_add(struct park_table *, struct req *r, park_fn *,
		    uint64_t seq, int64_t deadline);
void		 park_free(struct park_table *, struct parked *);
/* The entry whose message to the writer was seq (PARK_WRITER). */
struct parked	*park_by_seq(struct park_table *, uint64_t seq);
/* The entry waiting for (or soon for) the verdict on invite id. */
struct parked	*park_by_invite(struct park_table *, const char *id);
/* The unsent entry with the lowest seq (PARK_SEND), or NULL. */
struct parked	*park_unsent(struct park_table *);
/* An entry whose deadline is at or before now, or NULL. */
struct parked	*park_due(struct park_table *, int64_t now);
/* ms from now until the first deadline; -1 when nothing is parked. */
int		 park_next_ms(const struct park_table *, int64_t now);

#endif
