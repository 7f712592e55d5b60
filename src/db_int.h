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
	Q_EVENTS_NEXT, Q_EVENTS_PURGE,
	Q__MAX
};

/* A cached statement, reset and with bindings cleared. */
sqlite3_stmt	*db_stmt(struct db *, enum db_query);

struct db {
	sqlite3		*h;
	sqlite3_stmt	*st[Q__MAX];
	unsigned int	 seed;
	struct cache	*cache;		/* NULL: not caching */
	int64_t		 gen;		/* of the rows in the cache */
	int		 fresh;		/* this snapshot has seen gen */
	int		 wal_frames;	/* in the WAL at our last commit */
};

/* Whether reads may be served from and kept in the cache. */
int		 cached(const struct db *);
/* The db_res for an SQLite result code (logging the unexpected). */
enum db_res	 db_res_of(struct db *, int rc);
/*
 * Bind s (NULL: NULL), or n, as parameter i of a statement of db; -1,
 * logged as db_res_of logs, when SQLite refuses (no memory, too big,
 * no such parameter).  The caller then fails as on any SQLite error.
 */
int		 bind_text(struct db *, sqlite3_stmt *, int i, const char *s);
int		 bind_int(struct db *, sqlite3_stmt *, int i, int64_t n);
/* bind_text of v[0] to v[n - 1] as parameters 1 to n; 0 or -1. */
int		 bind_texts(struct db *, sqlite3_stmt *, const char *const *v,
		    size_t n);
/* bind_texts of the strings given, counted by the compiler. */
#define BIND_TEXTS(db, st, ...)	bind_texts((db), (st),			\
	(const char *const []){ __VA_ARGS__ },				\
	sizeof((const char *const []){ __VA_ARGS__ }) / sizeof(const char *))
char		*col_strdup(sqlite3_stmt *, int i);
void		 col_copy(sqlite3_stmt *, int i, char *dst, size_t dstsz);
/* A one-row, one-column query; its text into out ("" for NULL). */
int		 query_text(struct db *, sqlite3_stmt *, char *out,
		    size_t outsz);
/* An ISO 8601 UTC timestamp as stored; -1 if it is not one. */
time_t		 parse_iso(const char *s);
/* Step statement q once and reset it; the SQLite result. */
int		 step_simple(struct db *, enum db_query q);
/* Run fn inside BEGIN IMMEDIATE ... COMMIT, rolling back on failure. */
enum db_res	 in_tx(struct db *, enum db_res fn(struct db *, void *),
		    void *arg);

#endif
