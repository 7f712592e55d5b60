/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * A worker process and its loop (worker.c), as handlers use it.
 */
#ifndef WORKER_H
#define WORKER_H

struct ctx;
struct req;
struct invite;
struct idem_state;
struct parked;
struct wake;

/* Serve requests until *ctx->stopping; parked requests answered last. */
void		 worker_run(struct ctx *);
/*
 * Park r: send inv to the writer and leave r unanswered; the loop serves
 * other connections and calls fn (park.h) when the writer answers, the
 * mailer's verdict comes or the deadline does.  -1: r answered 503.
 */
int		 worker_store(struct ctx *, struct req *r,
		    const struct invite *inv, const struct idem_state *is,
		    int (*fn)(struct ctx *, struct parked *,
		    const struct wake *));
/*
 * Park r until its Idempotency-Key has its first answer: the loop calls
 * fn (park.h) with WAKE_CHECK every few ms, and with WAKE_LATE after ms
 * or on a stop.  -1: no room, r unanswered.
 */
int		 worker_idem_wait(struct req *r, const struct idem_state *is,
		    int ms, int (*fn)(struct ctx *, struct parked *,
		    const struct wake *));
/* Write r's answer (500 when it has none) and end it. */
void		 worker_done(struct req *);

#endif
