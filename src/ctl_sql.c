/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl's one seam between its commands and the two engines
 * (issue 21): the database opened once, by what database names, and a
 * statement run on text parameters with its rows read the same way from
 * SQLite or PostgreSQL.  The SQL is SQLite's, placeholders ?1 to ?n, which
 * become $1 to $n here on PostgreSQL; ctl_dialect() picks the statement
 * where the dialects differ.  A failure refuses, worded as SQLite words it,
 * so that the tool says the same on either engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "extern.h"
#include "db.h"
#include "pg_uri.h"
#include "pg.h"
#include "ctl.h"

#define SQL_MAX		4096
#define MAX_PARAMS	16
#define INT8OID		20	/* PostgreSQL's catalog, pg_type.h */
#define INT2OID		21
#define INT4OID		23
#define TEXTOID		25
#define FLOAT4OID	700
#define FLOAT8OID	701
#define NUMERICOID	1700

/* The rows of one statement, from either engine. */
struct ctl_res {
	sqlite3_stmt	*st;
	PGresult	*r;
	int		 row;	/* PostgreSQL: -1 before the first */
	int		 changes;
};

static PGconn	*pg;		/* NULL: SQLite, ctl_db */

/* ------------------------------------------------------------ opening */

/* Whether pg's schema is pg_schema_latest()'s. */
static int
pg_current(void)
{
	PGresult *r;
	int ok;

	r = PQexec(pg, "SELECT version FROM referral_invites_schema");
	ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    atoi(PQgetvalue(r, 0, 0)) == pg_schema_latest();
	PQclear(r);
	return ok;
}

void
ctl_open(const char *database, int need_schema)
{
	char err[1024];

	if (pg_uri_is(database)) {
		if (pg_uri_check(database, err, sizeof(err)) == -1)
			ctl_refuse("%s", err);
		if ((pg = pg_connect(database, err, sizeof(err))) == NULL)
			ctl_refuse("%s", err);
		if (need_schema && !pg_current()) {
			pg_uri_redact(database, err, sizeof(err));
			ctl_refuse("%s: schema missing or old: run "
			    "referral-invitesctl init", err);
		}
		return;
	}
	if ((ctl_db = db_open(database, SYNC_FULL, 0)) == NULL)
		ctl_refuse("%s: cannot open the database", database);
	if (need_schema && !db_schema_current(ctl_db))
		ctl_refuse("%s: schema missing or old: run referral-invitesctl "
		    "init", database);
}

void
ctl_close(void)
{
	if (pg != NULL)
		PQfinish(pg);
	if (ctl_db != NULL)
		db_close(ctl_db);
	pg = NULL;
	ctl_db = NULL;
}

int
ctl_is_pg(void)
{
	return pg != NULL;
}

const char *
ctl_dialect(const char *sqlite, const char *postgresql)
{
	return pg != NULL ? postgresql : sqlite;
}

void
ctl_begin(void)
{
	ctl_exec(ctl_dialect("BEGIN IMMEDIATE", "BEGIN"), 0);
}

/* ---------------------------------------------------------- PostgreSQL */

/* sql with ?N made $N, outside quoted literals. */
static const char *
pg_sql(const char *sql, char out[SQL_MAX])
{
	size_t i;
	int quoted = 0;

	for (i = 0; sql[i] != '\0'; i++) {
		if (i + 1 >= SQL_MAX)
			ctl_refuse("internal: statement too long");
		if (sql[i] == '\'')
			quoted = !quoted;
		out[i] = !quoted && sql[i] == '?' && sql[i + 1] >= '0' &&
		    sql[i + 1] <= '9' ? '$' : sql[i];
	}
	out[i] = '\0';
	return out;
}

/*
 * A refused unique key as SQLite says it, "UNIQUE constraint failed:
 * t.a, t.b", from the table and the detail "Key (a, b)=(...) ...".
 */
static void
pg_unique_refuse(const PGresult *r)
{
	const char *t = PQresultErrorField(r, PG_DIAG_TABLE_NAME);
	const char *d = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
	char cols[512] = "";
	size_t n, len = 0;

	if (t == NULL || d == NULL || strncmp(d, "Key (", 5) != 0)
		ctl_refuse("refused by the database: %s",
		    PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
	for (d += 5; *d != '\0' && *d != ')' && len < sizeof(cols); d += n) {
		n = strcspn(d, ",)");
		len += (size_t)snprintf(cols + len, sizeof(cols) - len,
		    "%s%s.%.*s", len ? ", " : "", t, (int)n, d);
		if (d[n] == ',')
			n += 1 + (d[n + 1] == ' ');
	}
	ctl_refuse("refused by the database: UNIQUE constraint failed: %s",
	    cols);
}

/* Refuse r's failure: a constraint as ctl_exec says, others "database:". */
static void
pg_refuse_res(PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	if (msg == NULL)
		msg = PQerrorMessage(pg);
	if (state != NULL && strcmp(state, "23505") == 0)
		pg_unique_refuse(r);
	if (state != NULL && strncmp(state, "23", 2) == 0)
		ctl_refuse("refused by the database: %s", msg);
	ctl_refuse("database: %.*s", (int)strcspn(msg, "\n"), msg);
}

/*
 * Every parameter is text, as SQLite binds them: "?1 IS NULL" needs a
 * type, and a number goes through CAST(?n AS INTEGER) on either engine.
 */
static void
pg_run(struct ctl_res *res, const char *sql, int n, const char *const *vals)
{
	static const Oid types[MAX_PARAMS] = { TEXTOID, TEXTOID, TEXTOID,
	    TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	    TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID };
	char text[SQL_MAX];
	ExecStatusType s;

	if (n > MAX_PARAMS)
		ctl_refuse("internal: too many parameters");
	res->r = PQexecParams(pg, pg_sql(sql, text), n, types, vals, NULL,
	    NULL, 0);
	s = PQresultStatus(res->r);
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)
		pg_refuse_res(res->r);
	res->row = -1;
	res->changes = atoi(PQcmdTuples(res->r));
}

/* ------------------------------------------------------------ SQLite */

static void
sqlite_refuse(int rc)
{
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		ctl_refuse("refused by the database: %s",
		    sqlite3_errmsg(db_handle(ctl_db)));
	ctl_refuse("database: %s", sqlite3_errmsg(db_handle(ctl_db)));
}

/* ------------------------------------------------------------ rows */

struct ctl_res *
ctl_query(const char *sql, int n, const char *const *vals)
{
	struct ctl_res *res;

	if ((res = calloc(1, sizeof(*res))) == NULL)
		ctl_refuse("out of memory");
	if (pg != NULL)
		pg_run(res, sql, n, vals);
	else
		res->st = ctl_prep(sql, n, vals);
	return res;
}

int
ctl_next(struct ctl_res *res)
{
	int rc;

	if (res->r != NULL)
		return ++res->row < PQntuples(res->r);
	if ((rc = sqlite3_step(res->st)) == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		sqlite_refuse(rc);
	res->changes = sqlite3_changes(db_handle(ctl_db));
	return 0;
}

void
ctl_rewind(struct ctl_res *res)
{
	if (res->r != NULL)
		res->row = -1;
	else
		sqlite3_reset(res->st);
}

int
ctl_changes(const struct ctl_res *res)
{
	return res->changes;
}

int
ctl_ncols(const struct ctl_res *res)
{
	return res->r != NULL ? PQnfields(res->r) :
	    sqlite3_column_count(res->st);
}

const char *
ctl_name(const struct ctl_res *res, int i)
{
	return res->r != NULL ? PQfname(res->r, i) :
	    sqlite3_column_name(res->st, i);
}

const char *
ctl_text(const struct ctl_res *res, int i)
{
	if (res->r == NULL)
		return (const char *)sqlite3_column_text(res->st, i);
	return PQgetisnull(res->r, res->row, i) ? NULL :
	    PQgetvalue(res->r, res->row, i);
}

/* SQLite's storage class of the value; PostgreSQL's by the column's type. */
enum ctl_kind
ctl_kind(const struct ctl_res *res, int i)
{
	if (res->r == NULL)
		switch (sqlite3_column_type(res->st, i)) {
		case SQLITE_NULL:
			return CTL_NULL;
		case SQLITE_INTEGER:
			return CTL_INT;
		case SQLITE_FLOAT:
			return CTL_REAL;
		default:
			return CTL_TEXT;
		}
	if (PQgetisnull(res->r, res->row, i))
		return CTL_NULL;
	switch (PQftype(res->r, i)) {
	case INT2OID:
	case INT4OID:
	case INT8OID:
		return CTL_INT;
	case FLOAT4OID:
	case FLOAT8OID:
	case NUMERICOID:
		return CTL_REAL;
	default:
		return CTL_TEXT;
	}
}

void
ctl_free(struct ctl_res *res)
{
	if (res == NULL)
		return;
	PQclear(res->r);
	sqlite3_finalize(res->st);
	free(res);
}
