/*
 * The mailer process (mailer.c).
 */
#ifndef MAILER_H
#define MAILER_H

#include <signal.h>

struct ssl_ctx_st;

struct mailer {
	const struct conf	*conf;
	struct db		*db;
	const unsigned char	*secret;	/* 32 bytes */
	const char		*smtp_password;	/* or NULL */
	int			 wake_fd;	/* read end, non-blocking */
	volatile sig_atomic_t	*stopping;
	struct ssl_ctx_st	*tls;		/* made after fork */
};

/* Deliver until *stopping; the caller has opened db after fork. */
void	 mailer_run(struct mailer *);

#endif
