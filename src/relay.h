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
 * One SMTP session of the mailer's smtp_sessions, each a thread with its
 * own database connection: claims due invites, sends them, records each
 * verdict (keeping those the database would not take).
 */
struct session {
	struct mailer	*ml;
	struct db	*db;
	struct unrecorded *unrec;	/* verdicts not yet stored */
	size_t		 nunrec;
	time_t		 unrec_said;	/* when the log last said so */
	unsigned long	 seen;		/* the pool's last round it saw */
	pthread_t	 th;
};

/* The sessions' database writes, one at a time; message building too. */
extern pthread_mutex_t db_mu;
extern pthread_mutex_t build_mu;

/* ----------------------------------------------------------- mailer.c */

/* Record a claimed row's verdict now, or keep it to record later. */
void		 session_record(struct session *, const struct outbox *,
		    const char *status, const char *reply, time_t next,
		    int bounce);
/* Requeue with backoff, or give up when the invite is too old. */
void		 session_defer(struct session *, struct outbox *,
		    const char *reply);
int		 pool_stopping(void);
/* How many due invites this session should claim now. */
size_t		 pool_share(struct session *);
/* Wait until until for more invites committed; 0 on a stop or timeout. */
int		 pool_wait_round(struct session *, const struct timespec *until);

/* ------------------------------------------------------------ relay.c */

/*
 * Send n claimed invites (ob, freed here) over one SMTP connection, and
 * what comes due while it is open; record each verdict.
 */
void		 relay_send(struct session *, struct outbox *ob, size_t n);
/* The TLS context every session's STARTTLS uses, made after fork. */
struct ssl_ctx_st *relay_tls_ctx(void);

#endif
