/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The mailer's queue: invites due, claimed, marked with their verdicts;
 * bounces.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util.h"
#include "db.h"
#include "db_int.h"

/* ------------------------------------------------------------- mailer */

int
db_outbox_recover(struct db *db)
{
	int rc = step_simple(db, Q_RECOVER);

	return rc == SQLITE_DONE ? sqlite3_changes(db->h) : -1;
}

ssize_t
db_outbox_due(struct db *db, time_t now, size_t max)
{
	sqlite3_stmt *st;
	char ts[21];
	ssize_t n = -1;

	util_isotime(now, ts);
	if ((st = db_stmt(db, Q_DUE_COUNT)) == NULL ||
	    bind_text(db, st, 1, ts) == -1 ||
	    bind_int(db, st, 2, (int64_t)max) == -1)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = (ssize_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

void
db_outbox_free(struct outbox *o, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(o[i].email);
		free(o[i].email_norm);
		free(o[i].app_name);
		free(o[i].sender);
		free(o[i].invite_url);
		free(o[i].inviter_name);
		free(o[i].inviter_email);
	}
	free(o);
}

static int
outbox_fill(struct outbox *o, sqlite3_stmt *st)
{
	col_copy(st, 0, o->id, sizeof(o->id));
	col_copy(st, 1, o->app_id, sizeof(o->app_id));
	o->email = col_strdup(st, 2);
	o->email_norm = col_strdup(st, 3);
	col_copy(st, 4, o->language, sizeof(o->language));
	o->app_name = col_strdup(st, 5);
	o->sender = col_strdup(st, 6);
	o->invite_url = col_strdup(st, 7);
	o->inviter_name = col_strdup(st, 8);
	o->inviter_email = col_strdup(st, 9);
	o->attempts = sqlite3_column_int(st, 10) + 1;
	col_copy(st, 11, o->created_at, sizeof(o->created_at));
	return o->email && o->email_norm && o->app_name && o->invite_url &&
	    o->inviter_email ? 0 : -1;
}

ssize_t
db_outbox_claim(struct db *db, time_t now, size_t max, struct outbox **out)
{
	sqlite3_stmt *st = NULL, *up;
	struct outbox *o = NULL;
	char ts[21];
	size_t n = 0;
	int rc;

	*out = NULL;
	if ((o = calloc(max, sizeof(*o))) == NULL)
		return -1;
	if (step_simple(db, Q_BEGIN) != SQLITE_DONE)
		goto fail;
	util_isotime(now, ts);
	/* An address may have opted out since its invite was queued. */
	if ((st = db_stmt(db, Q_CANCEL_SUPPRESSED)) == NULL ||
	    bind_text(db, st, 1, ts) == -1)
		goto rollback;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto rollback;
	if ((st = db_stmt(db, Q_DUE)) == NULL ||
	    bind_text(db, st, 1, ts) == -1 ||
	    bind_int(db, st, 2, (int64_t)max) == -1)
		goto rollback;
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		if (outbox_fill(&o[n++], st) == -1)
			goto rollback;
	sqlite3_reset(st);
	if ((up = db_stmt(db, Q_CLAIM)) == NULL)
		goto rollback;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(up);
		if (BIND_TEXTS(db, up, o[i].id, ts) == -1 ||
		    sqlite3_step(up) != SQLITE_DONE)
			goto rollback;
	}
	sqlite3_reset(up);
	if (step_simple(db, Q_COMMIT) != SQLITE_DONE)
		goto rollback;
	if (n == 0) {
		free(o);
		return 0;
	}
	*out = o;
	return (ssize_t)n;
rollback:
	sqlite3_reset(st);
	step_simple(db, Q_ROLLBACK);
fail:
	db_outbox_free(o, n);
	return -1;
}

int
db_outbox_mark(struct db *db, const char *id, const char *status,
    const char *reply, time_t next)
{
	sqlite3_stmt *st;
	char ts[21], nx[21];
	int rc;

	util_isotime(time(NULL), ts);
	util_isotime(next, nx);
	if ((st = db_stmt(db, Q_MARK)) == NULL ||
	    BIND_TEXTS(db, st, id, status, reply, nx, ts) == -1)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return db_res_of(db, rc) == DB_OK ? 0 : -1;
}

int
db_suppress_bounce(struct db *db, const char *app, const char *email_norm)
{
	sqlite3_stmt *st;
	char ts[21];
	int rc;

	util_isotime(time(NULL), ts);
	if ((st = db_stmt(db, Q_SUPPRESS_BOUNCE)) == NULL ||
	    BIND_TEXTS(db, st, app, email_norm, ts) == -1)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * A permanent refusal: the row failed and the address on the app's list,
 * in one transaction, so that the 400 a worker answers when it sees
 * "failed" always comes with the listing, whatever crashes after.
 */
int
db_outbox_bounce(struct db *db, const char *id, const char *reply,
    const char *app, const char *email_norm)
{
	if (db_begin(db) != DB_OK)
		return -1;
	if (db_suppress_bounce(db, app, email_norm) == -1 ||
	    db_outbox_mark(db, id, "failed", reply, time(NULL)) == -1) {
		db_rollback(db);
		return -1;
	}
	return db_commit(db) == DB_OK ? 0 : -1;
}

time_t
db_outbox_next_due(struct db *db)
{
	sqlite3_stmt *st;
	char t[32];

	if ((st = db_stmt(db, Q_NEXT_DUE)) == NULL ||
	    query_text(db, st, t, sizeof(t)) == -1 || t[0] == '\0')
		return 0;
	return parse_iso(t);
}
