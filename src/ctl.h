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
/*
 * A path beside the node's own files, secret.key and the daemon's
 * metrics: a SQLite database's own, for PostgreSQL one in state_directory.
 */
extern const char	*ctl_node;
extern int		 ctl_json;	/* --json */
extern const struct conf *ctl_conf;	/* NULL with -d */

/* Print why (when not NULL) and the usage to stderr; exit 2. */
void		 ctl_usage(const char *why) __attribute__((noreturn));

/* ------------------------------------------------------------ ctl_sql.c */

/*
 * Open database, SQLite's path or PostgreSQL's URI, as the engine of every
 * statement below (ctl_db, or a connection of ctl_sql.c's own); with
 * need_schema, refuse one whose schema is missing or old.  Refuses when it
 * cannot.  ctl_close() closes it.
 */
void		 ctl_open(const char *database, int need_schema);
void		 ctl_close(void);
/* Whether the database is PostgreSQL's. */
int		 ctl_is_pg(void);
/* The statement for the engine: SQLite's, or PostgreSQL's where they differ. */
const char	*ctl_dialect(const char *sqlite, const char *postgresql);
/* Begin a write transaction (SQLite's BEGIN IMMEDIATE); COMMIT ends it. */
void		 ctl_begin(void);

/* What a value is, for JSON: SQLite's storage class, PostgreSQL's type. */
enum ctl_kind {
	CTL_NULL,
	CTL_INT,
	CTL_REAL,
	CTL_TEXT
};
/*
 * The rows of sql (SQLite's, ?1 to ?n) on n texts (NULL binds NULL), to be
 * read with ctl_next and freed with ctl_free; refuses on any failure, a
 * refused constraint worded "refused by the database: ..." as SQLite says
 * it, anything else "database: ...".
 */
struct ctl_res	*ctl_query(const char *sql, int n,
		    const char *const *vals);
/* Move to the next row: 1, or 0 after the last.  Refuses on a failure. */
int		 ctl_next(struct ctl_res *);
/* Back to before the first row. */
void		 ctl_rewind(struct ctl_res *);
/* The rows the statement changed, once ctl_next said 0. */
int		 ctl_changes(const struct ctl_res *);
int		 ctl_ncols(const struct ctl_res *);
const char	*ctl_name(const struct ctl_res *, int col);
/* The current row's value as text (numbers in decimal), NULL for NULL. */
const char	*ctl_text(const struct ctl_res *, int col);
enum ctl_kind	 ctl_kind(const struct ctl_res *, int col);
void		 ctl_free(struct ctl_res *);

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
 * Prepare sql on ctl_db, SQLite only (migrate reads its source with it;
 * the commands go through ctl_query), and bind n texts (NULL binds NULL)
 * as ?1 to ?n; the caller finalizes it.  Refuses on any database error.
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
/*
 * The first value of the first row of sql on n text arguments, as text
 * into out ("" for NULL): 1, or 0 when there is no row.
 */
int		 ctl_value(const char *sql, char *out, size_t outsz, int n,
		    ...);
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
