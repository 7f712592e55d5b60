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
#include "log.h"
#include "db.h"
#include "db_int.h"

/* ------------------------------------------------------------- mailer */

static int	step_texts(struct db *, struct stmt *, const char *,
		    const char *, const char *);

int
db_outbox_recover(struct db *db, time_t before)
{
	struct stmt *st;
	char ts[21];
	int rc;

	util_isotime(before, ts);
	if ((st = db_stmt(db, Q_RECOVER)) == NULL ||
	    bind_text(db, st, 1, ts) == -1)
		return -1;
	rc = st_step(st);
	st_reset(st);
	return rc == SQLITE_DONE ? db_changes(db) : -1;
}

void
db_outbox_lease(struct db *db, int seconds)
{
	db->lease = seconds;
}

int
db_outbox_touch(struct db *db, const char (*ids)[UUID_LEN + 1], size_t n,
    time_t now)
{
	struct stmt *st;
	char until[21];
	size_t i;

	if (n == 0)
		return 0;
	util_isotime(now + db->lease, until);
	if (step_simple(db, Q_BEGIN_OUTBOX) != SQLITE_DONE)
		return -1;
	if ((st = db_stmt(db, Q_TOUCH)) == NULL)
		goto fail;
	for (i = 0; i < n; i++)
		if (step_texts(db, st, ids[i], until, NULL) == -1)
			goto fail;
	if (step_simple(db, Q_COMMIT) == SQLITE_DONE)
		return 0;
fail:
	step_simple(db, Q_ROLLBACK);
	return -1;
}

int
db_outbox_unclaim(struct db *db, const char *id)
{
	struct stmt *st;
	int rc;

	if ((st = db_stmt(db, Q_UNCLAIM)) == NULL ||
	    bind_text(db, st, 1, id) == -1)
		return -1;
	rc = st_step(st);
	st_reset(st);
	return rc == SQLITE_DONE ? db_changes(db) : -1;
}

ssize_t
db_outbox_due(struct db *db, time_t now, size_t max)
{
	struct stmt *st;
	char ts[21];
	ssize_t n = -1;

	util_isotime(now, ts);
	if ((st = db_stmt(db, Q_DUE_COUNT)) == NULL ||
	    bind_text(db, st, 1, ts) == -1 ||
	    bind_int(db, st, 2, (int64_t)max) == -1)
		return -1;
	if (st_step(st) == SQLITE_ROW)
		n = (ssize_t)st_int(st, 0);
	st_reset(st);
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
outbox_fill(struct outbox *o, struct stmt *st)
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
	o->attempts = (int)st_int(st, 10) + 1;
	col_copy(st, 11, o->created_at, sizeof(o->created_at));
	o->resends = (int)st_int(st, 12);
	return o->email && o->email_norm && o->app_name && o->invite_url &&
	    o->inviter_email ? 0 : -1;
}

/*
 * Run an UPDATE of texts (an id, a time, a second time where the
 * statement has one); -1 unless done.
 */
static int
step_texts(struct db *db, struct stmt *st, const char *id, const char *ts,
    const char *ts2)
{
	int rc;

	st_reset(st);
	if (BIND_TEXTS(db, st, id, ts, ts2) == -1)
		return -1;
	rc = st_step(st);
	st_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Claim up to max due invites into o, inside the caller's transaction.
 * A due row whose address opted out since it was queued is canceled
 * instead: looked at only as it comes due, so that a round costs what it
 * claims, never the length of the queue.
 */
static int
claim_in(struct db *db, time_t now, size_t max, struct outbox *o, size_t *n)
{
	struct stmt *st, *up;
	char ts[21], until[21], (*cancel)[UUID_LEN + 1];
	size_t i, nc = 0;
	int rc = -1, step = SQLITE_DONE;

	*n = 0;
	util_isotime(now, ts);
	if ((cancel = calloc(max, sizeof(*cancel))) == NULL)
		return -1;
	if ((st = db_stmt(db, Q_DUE)) == NULL ||
	    bind_text(db, st, 1, ts) == -1 ||
	    bind_int(db, st, 2, (int64_t)max) == -1)
		goto out;
	while (*n + nc < max && (step = st_step(st)) == SQLITE_ROW) {
		if ((int)st_int(st, 13))
			col_copy(st, 0, cancel[nc++], sizeof(cancel[0]));
		else if (outbox_fill(&o[(*n)++], st) == -1) {
			step = SQLITE_NOMEM;
			break;
		}
	}
	st_reset(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		goto out;
	if ((up = db_stmt(db, Q_CANCEL_SUPPRESSED)) == NULL)
		goto out;
	for (i = 0; i < nc; i++)
		if (step_texts(db, up, cancel[i], ts, NULL) == -1)
			goto out;
	if ((up = db_stmt(db, Q_CLAIM)) == NULL)
		goto out;
	/* From now, not the round's start: no wait shortens a lease. */
	util_isotime(time(NULL) + db->lease, until);
	for (i = 0; i < *n; i++)
		if (step_texts(db, up, o[i].id, ts, until) == -1)
			goto out;
	rc = 0;
out:
	free(cancel);
	return rc;
}

/*
 * One verdict, inside the caller's transaction; on PostgreSQL told to
 * every node's mailer at the commit (db_verdicts_heard), unless the row
 * is no longer being sent (its lease lapsed, and another mailer took it
 * and recorded its own verdict first): this mark then changed nothing.
 */
static int
verdict_in(struct db *db, const struct outbox_verdict *v)
{
	struct stmt *st;
	char msg[UUID_LEN + 16 + 256];
	int rc;

	if (v->bounce && db_suppress_bounce(db, v->app, v->email_norm) == -1)
		return -1;
	if (db_outbox_mark(db, v->id, v->bounce ? "failed" : v->status,
	    v->reply, v->next) == -1)
		return -1;
	if (!db_shared(db))
		return 0;
	if (db_changes(db) == 0) {
		log_warnx("invite %s: \"%s\" not recorded, its claim had "
		    "lapsed and another mailer recorded it first", v->id,
		    v->status);
		return 0;
	}
	snprintf(msg, sizeof(msg), "%s %s %.255s", v->id, v->status,
	    v->reply != NULL ? v->reply : "");
	if ((st = db_stmt(db, Q_NOTIFY)) == NULL ||
	    bind_text(db, st, 1, msg) == -1)
		return -1;
	rc = st_step(st);
	st_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

ssize_t
db_outbox_keep(struct db *db, const struct outbox_verdict *v, size_t nv,
    time_t now, size_t max, struct outbox **out)
{
	struct outbox *o = NULL;
	size_t i, n = 0;

	*out = NULL;
	if (max > 0 && (o = calloc(max, sizeof(*o))) == NULL)
		return -1;
	if (step_simple(db, Q_BEGIN_OUTBOX) != SQLITE_DONE)
		goto fail;
	for (i = 0; i < nv; i++)
		if (verdict_in(db, &v[i]) == -1)
			goto rollback;
	if (max > 0 && claim_in(db, now, max, o, &n) == -1)
		goto rollback;
	if (step_simple(db, Q_COMMIT) != SQLITE_DONE)
		goto rollback;
	if (n == 0)
		free(o);
	else
		*out = o;
	return (ssize_t)n;
rollback:
	step_simple(db, Q_ROLLBACK);
fail:
	db_outbox_free(o, n);
	return -1;
}

ssize_t
db_outbox_claim(struct db *db, time_t now, size_t max, struct outbox **out)
{
	return db_outbox_keep(db, NULL, 0, now, max, out);
}

int
db_outbox_mark(struct db *db, const char *id, const char *status,
    const char *reply, time_t next)
{
	struct stmt *st;
	char ts[21], nx[21];
	int rc;

	util_isotime(time(NULL), ts);
	util_isotime(next, nx);
	if ((st = db_stmt(db, Q_MARK)) == NULL ||
	    BIND_TEXTS(db, st, id, status, reply, nx, ts) == -1)
		return -1;
	rc = st_step(st);
	st_reset(st);
	return db_res_of(db, rc) == DB_OK ? 0 : -1;
}

int
db_suppress_bounce(struct db *db, const char *app, const char *email_norm)
{
	struct stmt *st;
	char ts[21];
	int rc;

	util_isotime(time(NULL), ts);
	if ((st = db_stmt(db, Q_SUPPRESS_BOUNCE)) == NULL ||
	    BIND_TEXTS(db, st, app, email_norm, ts) == -1)
		return -1;
	rc = st_step(st);
	st_reset(st);
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
	struct stmt *st;
	char t[32];

	if ((st = db_stmt(db, Q_NEXT_DUE)) == NULL ||
	    query_text(db, st, t, sizeof(t)) == -1 || t[0] == '\0')
		return 0;
	return parse_iso(t);
}
