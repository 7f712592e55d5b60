/*
 * The mailer process (mailer.c).
 */
#ifndef MAILER_H
#define MAILER_H

#include <signal.h>

struct ssl_ctx_st;
struct unrecorded;

struct mailer {
	const struct conf	*conf;
	struct db		*db;
	const unsigned char	*secret;	/* 32 bytes */
	const char		*smtp_password;	/* or NULL */
	int			 wake_fd;	/* read end, non-blocking */
	volatile sig_atomic_t	*stopping;
	struct ssl_ctx_st	*tls;		/* made after fork */
	struct unrecorded	*unrec;		/* verdicts not yet stored */
	size_t			 nunrec;
	time_t			 unrec_said;	/* when the log last said so */
};

/* Deliver until *stopping; the caller has opened db after fork. */
void	 mailer_run(struct mailer *);

#endif
