/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Inside referral-invitesctl only (ctl*.c): what its files share.  ctl.c
 * holds the options, the command table, usage, dispatch and main;
 * ctl_db.c the database it works on (statements, rows printed, init);
 * ctl_app.c apps, API keys, users and tokens; ctl_invite.c invites and
 * the do-not-invite list; ctl_metrics.c the metrics; ctl_bounce.c the
 * reports that come back to bounce_address; ctl_hook.c webhooks and
 * their events; ctl_pg.c init on PostgreSQL and migrate.  Include after
 * sqlite3.h, extern.h and db.h.
 */
#ifndef CTL_H
#define CTL_H

/* The --options of a command; NULL where not given. */
struct opts {
	const char	*name, *invite_url, *sender, *language, *type, *email;
	const char	*id, *alg, *public_key, *issuer, *status, *since;
	const char	*app;
	const char	*accept_ttl, *per_hour, *per_day, *per_minute;
	const char	*cooldown, *ttl, *redirect_allow;
	const char	*maildir, *recipient, *webhook_url, *to;
	int		 nset;		/* how many were given */
};

/* What a command gets: its words, its positional arguments, its options. */
struct cmd_args {
	const char	*noun;
	const char	*verb;
	char		**pos;
	int		 npos;
	struct opts	*o;
};

/* ---------------------------------------------------------------- ctl.c */

extern struct db	*ctl_db;	/* open while a command runs */
extern const char	*ctl_dbpath;
extern int		 ctl_json;	/* --json */
extern const struct conf *ctl_conf;	/* NULL with -d */

/* Print why (when not NULL) and the usage to stderr; exit 2. */
void		 ctl_usage(const char *why) __attribute__((noreturn));

/* ------------------------------------------------------------- ctl_db.c */

/*
 * Print "referral-invitesctl: " and the message to stderr; exit with
 * ctl_fail_status (1; 75, EX_TEMPFAIL, for bounce, set by main before
 * the config is read, so that its MTA retries).
 */
extern int	 ctl_fail_status;
void		 ctl_refuse(const char *fmt, ...)
		    __attribute__((noreturn, format(printf, 1, 2)));
/* The time now as the database stores it. */
void		 ctl_now(char out[21]);
/*
 * Prepare sql on ctl_db and bind n texts (NULL binds NULL) as ?1 to ?n;
 * the caller finalizes it.  Refuses on any database error.
 */
sqlite3_stmt	*ctl_prep(const char *sql, int n, const char *const *vals);
/*
 * Run sql, without results, on n text arguments; the number of rows
 * changed.  Refuses on a database error, a refused constraint included.
 */
int		 ctl_exec(const char *sql, int n, ...);
/*
 * Print every row of sql on n text arguments: a JSON array of objects
 * with --json (or one object with single), otherwise an aligned table
 * for people.  The number of rows; refuses on a database error.
 */
int		 ctl_rows(const char *sql, int single, int n, ...);
/* Print a created value: alone, or as {"name": value} with --json. */
void		 ctl_created(const char *name, const char *value);
/* Whether sql on n text arguments gives a row. */
int		 ctl_exists(const char *sql, int n, ...);
/* The client id as stored into out; refuses a bad or unknown one. */
void		 ctl_need_app(const char *id, char out[UUID_LEN + 1]);

/* ------------------------------------------------------------- commands */

/*
 * The handlers of commands[] (ctl.c).  Each returns the exit status, 0;
 * a refusal or a usage error exits from inside (ctl_refuse, ctl_usage).
 */
int	 cmd_init(const struct cmd_args *);		/* ctl_db.c */
int	 cmd_app_add(const struct cmd_args *);		/* ctl_app.c */
int	 cmd_app_list(const struct cmd_args *);
int	 cmd_app_set(const struct cmd_args *);
int	 cmd_app_jwt_key(const struct cmd_args *);
int	 cmd_of_app(const struct cmd_args *);
int	 cmd_key_add(const struct cmd_args *);
int	 cmd_key_revoke(const struct cmd_args *);
int	 cmd_user_add(const struct cmd_args *);
int	 cmd_user_active(const struct cmd_args *);
int	 cmd_token(const struct cmd_args *);
int	 cmd_invites(const struct cmd_args *);		/* ctl_invite.c */
int	 cmd_invite(const struct cmd_args *);
int	 cmd_suppress(const struct cmd_args *);
int	 cmd_metrics(const struct cmd_args *);		/* ctl_metrics.c */
int	 cmd_bounce(const struct cmd_args *);		/* ctl_bounce.c */
int	 cmd_app_webhook_secret(const struct cmd_args *);	/* ctl_hook.c */
int	 cmd_events(const struct cmd_args *);
int	 cmd_event(const struct cmd_args *);
int	 cmd_migrate(const struct cmd_args *);		/* ctl_pg.c */
/*
 * init on a PostgreSQL database, uri (pg_uri.h): its schema created or
 * migrated in one transaction, and said so on standard output; 0, or a
 * refusal.
 */
int	 ctl_pg_init(const char *uri);
/*
 * app set --webhook-url (ctl_hook.c): the URL checked (refused with the
 * reason) before anything changes, then set for app; "" takes it away.
 * The first URL an app gets also makes its signing secret, printed once.
 */
void	 ctl_webhook_check(const char *url);
void	 ctl_webhook_url(const char *app, const char *url);

#endif
