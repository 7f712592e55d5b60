/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Idempotency-Key on the POST routes (idem.c).
 */
#ifndef IDEM_H
#define IDEM_H

#include "extern.h"

struct ctx;
struct req;
struct principal;


struct idem_state {
	int	 active;
	char	 app[UUID_LEN + 1];
	char	 cred[72];
	char	 key[256];
	char	 hash[65];	/* of the request (idem.c) */
};

/*
 * With an Idempotency-Key header: replay a stored answer (returns 1), or
 * park r to wait for the answer of the same request under way (returns
 * 1: r is the loop's now, the caller leaves it), or answer 409/400
 * (returns -1), or claim the key (returns 0, st->active).  Without one
 * returns 0.
 */
int		 idem_begin(struct ctx *, struct req *,
		    const struct principal *, struct idem_state *st);
/* Store the answer for later replays (or release the claim on a 5xx). */
void		 idem_end(struct ctx *, struct req *, struct idem_state *st);
/* Answer 409 "in progress" with Retry-After. */
void		 idem_busy(struct req *);

#endif
