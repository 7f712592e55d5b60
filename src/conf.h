/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The configuration file (conf.c): struct conf and the key table.
 */
#ifndef CONF_H
#define CONF_H

#include <sys/types.h>

enum starttls { STARTTLS_OFF, STARTTLS_OPPORTUNISTIC, STARTTLS_REQUIRED };
enum sync_mode { SYNC_FULL, SYNC_NORMAL };

struct conf {
	char		*database;
	char		*state_directory; /* PostgreSQL: secret.key */
	char		*listen;
	mode_t		 socket_mode;
	char		*socket_group;
	char		*user;
	int		 workers;
	size_t		 max_body;
	enum sync_mode	 synchronous;
	char		*templates_dir;		/* operator overrides, or NULL */
	char		*default_language;
	char		*mail_from;
	char		*public_url;
	char		*smtp_host;
	int		 smtp_port;
	enum starttls	 smtp_starttls;
	char		*smtp_user;
	char		*smtp_password_file;
	char		*smtp_helo;
	char		*bounce_address;	/* VERP envelope sender, or NULL */
	int		 smtp_timeout;
	int		 smtp_sessions;	/* the mailer's at once */
	int		 claim_lease;	/* PostgreSQL: seconds a claim holds */
	int		 delivery_wait;
	int		 retry_initial;
	int		 retry_max;
	int		 retry_give_up;
	int		 limit_per_hour;
	int		 limit_per_day;
	int		 app_limit_per_minute;
	int		 cooldown;
	int		 resend_interval;
	int		 hide_existing_users;	/* for tokens: 201, no mail */
	char		*webhook_ports;		/* "443" or a list */
	int		 webhook_allow_http;	/* to loopback only */
	int		 log_level;
};

/*
 * Fill c with the defaults, then read path over them.  On failure returns
 * -1 and writes a one-line reason (with the line number) into err.
 * required: also insist on the keys without a default (mail_from, public_url).
 */
int	 conf_load(struct conf *c, const char *path, int required,
	    char *err, size_t errsz);
/* The same, the file read from directory dirfd when it is not -1. */
int	 conf_load_at(struct conf *c, int dirfd, const char *path,
	    int required, char *err, size_t errsz);
/*
 * What conf_load cannot see in the file: that user exists, and
 * socket_group when listen is a path.  -1 with the reason, naming path
 * (the file read), the key and the value, in err.  A lookup the process
 * cannot make (confined, on reload) is no error: both apply at start only.
 */
int	 conf_check_system(const struct conf *c, const char *path,
	    char *err, size_t errsz);
void	 conf_defaults(struct conf *c);
void	 conf_free(struct conf *c);
/* A config key (conf.c): how it is read, its range, its default. */
enum conf_type { K_STR, K_INT, K_SIZE, K_MODE, K_ENUM, K_LANG, K_URL };
struct conf_key {
	const char		*key;		/* NULL ends the table */
	enum conf_type		 type;
	size_t			 off;		/* in struct conf */
	long long		 min, max;	/* K_INT, K_SIZE */
	const char		*def;		/* as in the file; NULL: none */
	int			(*check)(const char *, char *);	/* K_STR */
	const char *const	*names;		/* K_ENUM: by value */
};
extern const struct conf_key conf_keys[];

#endif
