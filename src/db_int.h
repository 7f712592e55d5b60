/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Inside the database layer only (db*.c): the connection and the helpers
 * its files share.  Nothing outside them includes this.
 */
#ifndef DB_INT_H
#define DB_INT_H

enum db_query {
	Q_BEGIN, Q_BEGIN_READ, Q_GENERATION, Q_COMMIT, Q_ROLLBACK, Q_APP_GET,
	Q_USER_GET, Q_KEY_FIND, Q_IS_MEMBER, Q_IS_SUPPRESSED, Q_COOLDOWN,
	Q_NTH_INVITER, Q_NTH_APP, Q_INSERT, Q_STATUS, Q_RECOVER, Q_DUE,
	Q_CANCEL_SUPPRESSED, Q_CLAIM, Q_MARK, Q_NEXT_DUE, Q_SUPPRESS_BOUNCE,
	Q_LIST, Q_ACCEPT_FIND, Q_ACCEPT_FIND_OLD, Q_ACCEPT_SET, Q_OPTOUT_ADD,
	Q_OPTOUT_CANCEL, Q_IDEM_GET, Q_IDEM_CLAIM, Q_IDEM_SET, Q_IDEM_DEL,
	Q_IDEM_PURGE, Q_IDEM_STORED, Q_SAVEPOINT, Q_RELEASE, Q_ROLLBACK_TO,
	Q_DUE_COUNT, Q_COUNTS, Q_COUNTS_DROP, Q_COUNTS_ADD, Q_COUNTS_PURGE,
	Q_IN_INVITER, Q_IN_APP, Q_OPS_QUEUE, Q_OPS_STATUSES, Q_OPS_SOURCES,
	Q_ACCEPT_REPLACED, Q_LIFE_FIND, Q_REVOKE, Q_RESEND_SET, Q_RESEND_LOG,
	Q_INSERT_HIDDEN, Q_EVENTS_DUE, Q_EVENT_TAKE, Q_EVENT_DONE,
	Q_EVENTS_NEXT, Q_EVENTS_PURGE, Q_UNCLAIM, Q_WRITE_LOCK,
	Q_TOUCH, Q_BEGIN_OUTBOX, Q_NOTIFY,
	Q__MAX
};

#define STMT_PARAMS	20	/* the most a statement has (?1 to ?20) */

/*
 * One of the statements above on the connection's engine, made once per
 * connection and reused.  SQLite: its prepared statement.  PostgreSQL: a
 * statement prepared on the server under the name "qN", its parameters
 * as text, and the rows of its last run.  The code above this reads rows
 * the same way from either (st_step, st_text, ...) and speaks SQLite's
 * result codes: a PostgreSQL error becomes SQLITE_CONSTRAINT,
 * SQLITE_BUSY, SQLITE_FULL or SQLITE_ERROR (pg_rc in db.c).
 */
struct stmt {
	struct db		*db;
	int			 q;	/* enum db_query */
	struct sqlite3_stmt	*sq;	/* SQLite */
	int			 prepared;	/* PostgreSQL, on this session */
	int			 nparams;
	const char		*vals[STMT_PARAMS];
	char			 nums[STMT_PARAMS][24];
	struct pg_result	*r;	/* the rows of the last run */
	int			 row, nrows;
};

/* Statement q, reset and with its parameters cleared; NULL on error. */
struct stmt	*db_stmt(struct db *, enum db_query);
/* SQLITE_ROW, SQLITE_DONE or the error, as sqlite3_step(). */
int		 st_step(struct stmt *);
/* Forget the last run's rows (its parameters stay bound). */
void		 st_reset(struct stmt *);
/* Column i of the current row: its text (NULL for NULL), as a number. */
const char	*st_text(struct stmt *, int i);
int64_t		 st_int(struct stmt *, int i);
int		 st_null(struct stmt *, int i);
/* The rows the last INSERT, UPDATE or DELETE changed. */
int		 db_changes(struct db *);
/* Whether a transaction is open on the connection. */
int		 db_in_tx(struct db *);

struct db {
	struct sqlite3		*h;	/* SQLite, or NULL */
	struct pg_conn		*pg;	/* PostgreSQL, or NULL */
	struct stmt		 st[Q__MAX];
	int			 changes;	/* PostgreSQL's last count */
	int			 reconnect;	/* PostgreSQL: before the next */
	int			 pg_full;	/* SYNC_FULL: commits wait */
	int			 lease;		/* a mailer's claims, seconds */
	int			 listen;	/* PostgreSQL: LISTEN verdicts */
	char			 err[256];	/* PostgreSQL's last error */
	unsigned int		 seed;
	struct cache		*cache;		/* NULL: not caching */
	int64_t			 gen;		/* of the rows in the cache */
	int			 fresh;		/* this snapshot has seen gen */
	int			 wal_frames;	/* in the WAL at our last commit */
};

/* Whether reads may be served from and kept in the cache. */
int		 cached(const struct db *);
/* The db_res for an SQLite result code (logging the unexpected). */
enum db_res	 db_res_of(struct db *, int rc);
/*
 * Bind s (NULL: NULL), or n, as parameter i of a statement of db; -1,
 * logged as db_res_of logs, when SQLite refuses (no memory, too big).
 * A parameter the engine's form of the statement does not use is left
 * out (a PostgreSQL form may use one SQLite's does not, or the other way
 * round).  The caller then fails as on any SQLite error.
 */
int		 bind_text(struct db *, struct stmt *, int i, const char *s);
int		 bind_int(struct db *, struct stmt *, int i, int64_t n);
/* bind_text of v[0] to v[n - 1] as parameters 1 to n; 0 or -1. */
int		 bind_texts(struct db *, struct stmt *, const char *const *v,
		    size_t n);
/* bind_texts of the strings given, counted by the compiler. */
#define BIND_TEXTS(db, st, ...)	bind_texts((db), (st),			\
	(const char *const []){ __VA_ARGS__ },				\
	sizeof((const char *const []){ __VA_ARGS__ }) / sizeof(const char *))
char		*col_strdup(struct stmt *, int i);
void		 col_copy(struct stmt *, int i, char *dst, size_t dstsz);
/* A one-row, one-column query; its text into out ("" for NULL). */
int		 query_text(struct db *, struct stmt *, char *out,
		    size_t outsz);
/* An ISO 8601 UTC timestamp as stored; -1 if it is not one. */
time_t		 parse_iso(const char *s);
/* Step statement q once and reset it; the SQLite result. */
int		 step_simple(struct db *, enum db_query q);
/* Run fn inside BEGIN IMMEDIATE ... COMMIT, rolling back on failure. */
enum db_res	 in_tx(struct db *, enum db_res fn(struct db *, void *),
		    void *arg);

#endif
