/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl on PostgreSQL (issue 21): init on a postgresql://
 * database, and migrate --to URI, which copies the SQLite database into
 * one: from one SQLite read transaction (one consistent picture of a live
 * database) into one PostgreSQL transaction (all or nothing), leaving the
 * rows already there alone, so that running it again copies nothing.  A
 * URI is shown only redacted (pg_uri.h).
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "extern.h"
#include "util.h"
#include "pg_uri.h"
#include "db.h"
#include "pg.h"
#include "ctl.h"

#define COLS_MAX	32
#define SHOWN_MAX	512

/*
 * Every table that holds data, each after those it refers to: its
 * columns, the same in both schemas (rowid is SQLite's own, a column in
 * PostgreSQL: pg_schema.c), the primary key that tells a row already
 * there, and an identity column to set past the rows copied.
 */
static const struct table {
	const char	*name;
	const char	*cols;
	const char	*key;
	const char	*identity;
} tables[] = {
	{ "apps", "id, name, invite_url, sender, language, jwt_alg, "
	    "jwt_public_key, jwt_issuer, jwt_generation, accept_ttl, "
	    "limit_per_hour, limit_per_day, limit_per_minute, cooldown, "
	    "created_at, updated_at, redirect_allow, webhook_url, "
	    "webhook_generation", "id", NULL },
	{ "api_keys", "id, app_id, type, key_hash, created_at, revoked_at",
	    "id", NULL },
	{ "users", "id, app_id, email, name, active, created_at", "id",
	    NULL },
	{ "invites", "id, app_id, inviter_id, email, email_normalized, "
	    "language_requested, language_resolved, status, attempts, "
	    "last_reply, request_id, accept_token_hash, accepted_at, "
	    "next_attempt_at, created_at, updated_at, sent_at, revoked_at, "
	    "expires_in, metadata, redirect_url, resends, resent_at, rowid",
	    "id", "rowid" },
	{ "invite_resends", "invite_id, app_id, inviter_id, "
	    "replaced_token_hash, request_id, created_at, rowid", "rowid",
	    "rowid" },
	{ "suppressions", "app_id, email_normalized, source, created_at",
	    "app_id, email_normalized", NULL },
	{ "idempotency_keys", "app_id, credential, key, request_hash, "
	    "status, response, headers, created_at",
	    "app_id, credential, key", NULL },
	{ "bounces", "id, received_at, verdict, invite_id, app_id, "
	    "recipient, status, diagnostic, reason", "id", "id" },
	{ "events", "id, app_id, type, invite_id, payload, status, "
	    "attempts, next_attempt_at, give_up_at, last_reply, created_at, "
	    "delivered_at, rowid", "id", "rowid" },
};
#define NTABLES	(sizeof(tables) / sizeof(tables[0]))

/*
 * The tables not copied: caches the rest derives.  cache_generation
 * only moves (PostgreSQL's own moves with the rows copied);
 * invite_counts, the limits' counters of the last day, are counted
 * again from every invite PostgreSQL then holds (recount), as SQLite's
 * schema 5 did when it made them.
 */
static const char *const caches[] = { "cache_generation", "invite_counts",
    NULL };

#define EPOCH	"extract(epoch FROM created_at::timestamptz)::bigint"
/*
 * One limit's slots from the invites and resends of its window (and the
 * slot its start cuts), as db_writer.c adds them: a resend counts as an
 * invite does.
 */
#define RECOUNT(kind, who, window, slot)				\
    "INSERT INTO invite_counts (kind, id, slot, n)"			\
    " SELECT '" kind "', " who ", "					\
    EPOCH " / " STRINGIFY(slot) " * " STRINGIFY(slot) ", count(*)"	\
    " FROM (SELECT app_id, inviter_id, created_at FROM invites"		\
    " UNION ALL SELECT app_id, inviter_id, created_at"			\
    " FROM invite_resends) AS counted WHERE " EPOCH			\
    " > extract(epoch FROM now())::bigint - " STRINGIFY(window)	\
    " - " STRINGIFY(slot) " GROUP BY 2, 3;"
static const char recount[] =
    /* The writers' lock: no node counts meanwhile. */
    "SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK ");"
    "DELETE FROM invite_counts;"
    RECOUNT("hour", "inviter_id", HOUR_WINDOW, HOUR_SLOT)
    RECOUNT("day", "inviter_id", DAY_WINDOW, DAY_SLOT)
    RECOUNT("minute", "app_id", MINUTE_WINDOW, MINUTE_SLOT);

/* What one table's copy did. */
struct count {
	long long	 copied, there;
};

/* ------------------------------------------------------------- init */

/* Refuse with err after closing pg (its transaction rolls back). */
static void __attribute__((noreturn))
pg_refuse(PGconn *pg, const char *err)
{
	PQfinish(pg);
	ctl_refuse("%s", err);
}

/* What init or migrate did to the schema, said with the URI redacted. */
static void
say_schema(const char *shown, int from)
{
	if (ctl_json)
		return;
	if (from == 0)
		printf("%s: schema created (version %d)\n", shown,
		    pg_schema_latest());
	else if (from < pg_schema_latest())
		printf("%s: schema migrated from version %d to %d\n", shown,
		    from, pg_schema_latest());
}

/* uri connected, in a transaction whose schema is this program's. */
static PGconn *
open_schema(const char *uri, int *from)
{
	PGconn *pg;
	char err[1024];

	if ((pg = pg_connect(uri, err, sizeof(err))) == NULL)
		ctl_refuse("%s", err);
	if (pg_exec(pg, "BEGIN", err, sizeof(err)) == -1 ||
	    pg_schema_migrate(pg, from, err, sizeof(err)) == -1)
		pg_refuse(pg, err);
	return pg;
}

/* Commit pg's transaction and close it; refuses when it fails. */
static void
commit(PGconn *pg)
{
	char err[1024];

	if (pg_exec(pg, "COMMIT", err, sizeof(err)) == -1)
		pg_refuse(pg, err);
	PQfinish(pg);
}

int
ctl_pg_init(const char *uri)
{
	char shown[SHOWN_MAX];
	int from;

	pg_uri_redact(uri, shown, sizeof(shown));
	commit(open_schema(uri, &from));
	if (ctl_json)
		printf("{\"from\":%d,\"version\":%d}\n", from,
		    pg_schema_latest());
	else if (from == pg_schema_latest())
		printf("%s: schema version %d is current, nothing changed\n",
		    shown, from);
	else
		say_schema(shown, from);
	return 0;
}

/* ------------------------------------------------------------- migrate */

/* Whether name is in the list, NULL-terminated. */
static int
listed(const char *name, const char *const list[])
{
	for (; *list != NULL; list++)
		if (strcmp(name, *list) == 0)
			return 1;
	return 0;
}

/* The table of tables[] named name, or NULL. */
static const struct table *
table_named(const char *name)
{
	size_t i;

	for (i = 0; i < NTABLES; i++)
		if (strcmp(tables[i].name, name) == 0)
			return &tables[i];
	return NULL;
}

/* How many columns a list of tables[] names. */
static int
ncols(const char *cols)
{
	int n = 1;

	for (; *cols != '\0'; cols++)
		n += *cols == ',';
	return n;
}

/*
 * Refuse a SQLite schema with a table or a column this copy does not
 * know (one a later migration added without its line here): nothing is
 * left behind unsaid.
 */
static void
check_known(void)
{
	sqlite3_stmt *st;
	const struct table *t;
	const char *name;
	int cols;

	st = ctl_prep("SELECT name, (SELECT count(*) FROM"
	    " pragma_table_info(s.name)) FROM sqlite_schema s"
	    " WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
	    0, NULL);
	while (sqlite3_step(st) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		cols = sqlite3_column_int(st, 1);
		if (listed(name, caches))
			continue;
		if ((t = table_named(name)) == NULL)
			ctl_refuse("table %s: not known to migrate", name);
		if (cols + (strstr(t->cols, "rowid") != NULL) !=
		    ncols(t->cols))
			ctl_refuse("table %s: a column not known to migrate",
			    name);
	}
	sqlite3_finalize(st);
}

/* INSERT of t's columns, $1 to $n, leaving a row already there alone. */
static void
insert_sql(const struct table *t, char *sql, size_t sz)
{
	size_t len;
	int i, n = ncols(t->cols);

	len = (size_t)snprintf(sql, sz, "INSERT INTO %s (%s) VALUES (",
	    t->name, t->cols);
	for (i = 1; i <= n && len < sz; i++)
		len += (size_t)snprintf(sql + len, sz - len, "$%d%s", i,
		    i < n ? ", " : "");
	if (len < sz)
		snprintf(sql + len, sz - len, ") ON CONFLICT (%s) DO NOTHING",
		    t->key);
}

/* Every row of t from SQLite into pg: how many were new, how many not. */
static void
copy_table(PGconn *pg, const struct table *t, struct count *n)
{
	const char *vals[COLS_MAX];
	char sql[1024], err[1024];
	sqlite3_stmt *st;
	PGresult *r;
	int i, cols = ncols(t->cols), rc;

	if (cols > COLS_MAX)
		pg_refuse(pg, "internal: too many columns");
	insert_sql(t, sql, sizeof(sql));
	r = PQprepare(pg, t->name, sql, cols, NULL);
	if (!pg_ok(pg, r, PGRES_COMMAND_OK, t->name, err, sizeof(err)))
		pg_refuse(pg, err);
	PQclear(r);
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s", t->cols, t->name);
	st = ctl_prep(sql, 0, NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* Text for every value: NULL stays NULL, integers decimal. */
		for (i = 0; i < cols; i++)
			vals[i] = (const char *)sqlite3_column_text(st, i);
		r = PQexecPrepared(pg, t->name, cols, vals, NULL, NULL, 0);
		if (!pg_ok(pg, r, PGRES_COMMAND_OK, t->name, err,
		    sizeof(err)))
			pg_refuse(pg, err);
		if (strcmp(PQcmdTuples(r), "1") == 0)
			n->copied++;
		else
			n->there++;
		PQclear(r);
	}
	if (rc != SQLITE_DONE)
		pg_refuse(pg, sqlite3_errmsg(db_handle(ctl_db)));
	sqlite3_finalize(st);
}

/*
 * t's identity column's sequence past the highest value now there, never
 * back: the next row PostgreSQL numbers itself follows those copied.
 */
static void
set_identity(PGconn *pg, const struct table *t)
{
	char sql[512], err[1024];
	PGresult *r;

	snprintf(sql, sizeof(sql), "SELECT setval(s, greatest(m,"
	    " coalesce(pg_sequence_last_value(s), 0))) FROM (SELECT"
	    " pg_get_serial_sequence('%s', '%s')::regclass AS s, max(%s) AS m"
	    " FROM %s) x WHERE m IS NOT NULL", t->name, t->identity,
	    t->identity, t->name);
	r = PQexec(pg, sql);
	if (!pg_ok(pg, r, PGRES_TUPLES_OK, t->name, err, sizeof(err)))
		pg_refuse(pg, err);
	PQclear(r);
}

/* What the copy did, table by table, and in all. */
static void
say_copied(const struct count n[], const char *src, const char *shown)
{
	long long all = 0;
	size_t i;

	if (ctl_json) {
		for (i = 0; i < NTABLES; i++)
			printf("%s{\"table\":\"%s\",\"copied\":%lld,"
			    "\"alreadyThere\":%lld}", i ? "," : "[",
			    tables[i].name, n[i].copied, n[i].there);
		printf("]\n");
		return;
	}
	for (i = 0; i < NTABLES; i++) {
		printf("%s: %lld copied, %lld already there\n",
		    tables[i].name, n[i].copied, n[i].there);
		all += n[i].copied;
	}
	if (all == 0)
		printf("nothing copied: every row of %s was already in %s\n",
		    src, shown);
	else
		printf("%lld rows copied from %s to %s\n", all, src, shown);
}

int
cmd_migrate(const struct cmd_args *a)
{
	struct count n[NTABLES];
	char shown[SHOWN_MAX], err[1024];
	const char *uri = a->o->to;
	PGconn *pg;
	size_t i;
	int from;

	if (uri == NULL)
		ctl_usage("migrate needs --to URI");
	if (pg_uri_check(uri, err, sizeof(err)) == -1)
		ctl_refuse("--to: %s", err);
	pg_uri_redact(uri, shown, sizeof(shown));
	memset(n, 0, sizeof(n));
	/* Deferred: every SELECT below reads the same snapshot. */
	ctl_exec("BEGIN", 0);
	check_known();
	pg = open_schema(uri, &from);
	/* The rows carry their events: the triggers make none (pg_schema.c). */
	if (pg_exec(pg, "SET LOCAL referral_invites.copying = 'on'", err,
	    sizeof(err)) == -1)
		pg_refuse(pg, err);
	for (i = 0; i < NTABLES; i++) {
		copy_table(pg, &tables[i], &n[i]);
		if (tables[i].identity != NULL && n[i].copied > 0)
			set_identity(pg, &tables[i]);
	}
	if (pg_exec(pg, recount, err, sizeof(err)) == -1)
		pg_refuse(pg, err);
	commit(pg);
	ctl_exec("COMMIT", 0);
	say_schema(shown, from);
	say_copied(n, ctl_dbpath, shown);
	return 0;
}
