/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Inside the mailer process: what mailer.c (the process, its pool of
 * session threads, the verdicts' records) and relay.c (one SMTP
 * connection to the relay, with libesmtp) share.
 */
#ifndef RELAY_H
#define RELAY_H

#include <pthread.h>
#include <time.h>

#include "db.h"
#include "mailer.h"

/*
 * Invites one connection carries at most: a burst spreads over the
 * sessions, and each connection still carries many.
 */
#define SESSION_BATCH	1000
#define SESSION_IDLE_MS	1000	/* a connection kept open with nothing due */

/*
 * One SMTP session of the mailer's smtp_sessions, each a thread: takes
 * claimed invites from the keeper, sends them, hands each verdict back.
 * Only the keeper (the mailer's own thread) touches the database.
 */
struct session {
	struct mailer	*ml;
	pthread_t	 th;
};

/* One session builds messages at a time (token.c's HMAC context). */
extern pthread_mutex_t build_mu;

/* ----------------------------------------------------------- mailer.c */

/* Hand a claimed invite's verdict to the keeper, which records it. */
void		 session_record(struct session *, const struct outbox *,
		    const char *status, const char *reply, time_t next,
		    int bounce);
/* Requeue with backoff, or give up when the invite is too old. */
void		 session_defer(struct session *, struct outbox *,
		    const char *reply);
/*
 * Take this session's share of the claimed invites, at most max, into
 * *out (the caller's to free with db_outbox_free), waiting for some until
 * until (CLOCK_REALTIME; NULL: without end).  0 on a stop or timeout.
 */
size_t		 pool_take(struct session *, struct outbox **out, size_t max,
		    const struct timespec *until);

/* ------------------------------------------------------------ relay.c */

/*
 * Send n claimed invites (ob, freed here) over one SMTP connection, and
 * what comes due while it is open; record each verdict.
 */
void		 relay_send(struct session *, struct outbox *ob, size_t n);
/* The TLS context every session's STARTTLS uses, made after fork. */
struct ssl_ctx_st *relay_tls_ctx(void);

#endif
