/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * PostgreSQL (issue 21): the connection and its statements (pg.c), and
 * the schema with its migrations (pg_schema.c), the same tables, views
 * and triggers as SQLite's schema 7, and the nodes' secret check.  The
 * daemon's statements on it are db.c's, referral-invitesctl's init and
 * migrate ctl_pg.c.  Include after libpq-fe.h.
 */
#ifndef PG_H
#define PG_H

/* The version of the PostgreSQL schema this program writes. */
int	 pg_schema_latest(void);
/*
 * Bring the tables of the connection's current schema (the first of its
 * search_path) to pg_schema_latest(), inside the caller's transaction,
 * which it locks against another init or migrate.  *from gets the version
 * found there, 0 for a database without any table (then created).  0, or
 * -1 with the reason in err: tables that are not this program's, a
 * newer version, a statement refused.
 */
int	 pg_schema_migrate(PGconn *c, int *from, char *err, size_t errsz);

/*
 * The transaction-scoped advisory lock every write transaction of every
 * node takes (src/db.c's Q_BEGIN), as BEGIN IMMEDIATE in one SQLite file;
 * the admin tool takes it to recount the limits (migrate).
 */
#define PG_WRITE_LOCK	"7204526166"	/* "referral-invites" */

/*
 * A connection to uri (a pg_uri_check()ed URI), or NULL with the reason,
 * uri redacted, in err.
 */
PGconn	*pg_connect(const char *uri, char *err, size_t errsz);
/*
 * Run sql, one or more statements without parameters or rows: 0, or -1
 * with the server's reason in err.
 */
int	 pg_exec(PGconn *c, const char *sql, char *err, size_t errsz);
/*
 * Whether r (NULL: out of memory) has the status want; if not, r is
 * cleared and err says what failed: what, then the server's reason.
 */
int	 pg_ok(PGconn *c, PGresult *r, ExecStatusType want, const char *what,
	    char *err, size_t errsz);

#endif
