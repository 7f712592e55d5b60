/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The mailer process (mailer.c).
 */
#ifndef MAILER_H
#define MAILER_H

#include <signal.h>

#include "extern.h"

struct ssl_ctx_st;

/*
 * What the writer tells the mailer after a commit, a datagram of up to
 * WAKE_MAX of these on the wake channel: each invite stored and the
 * worker slot whose request waits for it, so that its verdict goes to
 * that worker alone.
 */
#define WAKE_MAX	64
struct wake_rec {
	char	 id[UUID_LEN + 1];
	int	 slot;
};

/*
 * A verdict, as the mailer tells the waiting worker once it is recorded
 * (a datagram on that worker's channel; on every worker's when the
 * mailer does not know which one waits): a worker that parked the
 * invite's request answers it; the others drop it.
 */
enum verdict_kind { VERDICT_SENT, VERDICT_FAILED, VERDICT_DEFERRED };

struct verdict_msg {
	char	 id[37];		/* the invite */
	int	 kind;			/* enum verdict_kind */
	char	 reply[256];		/* the relay's, for VERDICT_FAILED */
};

struct mailer {
	const struct conf	*conf;
	struct db		*db;		/* the mailer thread's */
	const unsigned char	*secret;	/* 32 bytes */
	const char		*smtp_password;	/* or NULL */
	int			 wake_fd;	/* the writer's wake_recs come here */
	const int		*verdict_fds;	/* one a worker, or NULL */
	int			 nverdict;
	volatile sig_atomic_t	*stopping;
	struct ssl_ctx_st	*tls;		/* made after fork */
	int			 nsessions;	/* smtp_sessions */
};

/* Deliver until *stopping; the caller has opened db after fork. */
void	 mailer_run(struct mailer *);

#endif
