/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The mailer process (mailer.c).
 */
#ifndef MAILER_H
#define MAILER_H

#include <signal.h>

struct ssl_ctx_st;

/*
 * A verdict, as the mailer tells every worker once it is recorded (a
 * datagram on each worker's channel): a worker that parked the invite's
 * request answers it; the others drop it.
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
	int			 wake_fd;	/* read end, non-blocking */
	const int		*verdict_fds;	/* one a worker, or NULL */
	int			 nverdict;
	volatile sig_atomic_t	*stopping;
	struct ssl_ctx_st	*tls;		/* made after fork */
	struct db		**session_db;	/* one a session, opened */
	int			 nsessions;	/* smtp_sessions */
};

/* Deliver until *stopping; the caller has opened db after fork. */
void	 mailer_run(struct mailer *);

#endif
