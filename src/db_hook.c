/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The webhook outbox, for the webhook process (hook.c): events due
 * taken, each try recorded.  The triggers of schema 7 write the events.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "util.h"
#include "db.h"
#include "db_int.h"

/* The strings of e[0] to e[n - 1]; the array stays. */
static void
events_clear(struct event *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(e[i].payload);
		free(e[i].url);
		e[i].payload = e[i].url = NULL;
	}
}

void
db_events_free(struct event *e, size_t n)
{
	events_clear(e, n);
	free(e);
}

/* The due rows of Q_EVENTS_DUE into e (at most max); count or -1. */
static ssize_t
events_due(struct db *db, const char *ts, size_t max, struct event *e)
{
	struct stmt *st;
	size_t n = 0;
	int rc = SQLITE_DONE;

	if ((st = db_stmt(db, Q_EVENTS_DUE)) == NULL ||
	    bind_text(db, st, 1, ts) == -1 ||
	    bind_int(db, st, 2, (int64_t)max) == -1)
		return -1;
	while (n < max && (rc = st_step(st)) == SQLITE_ROW) {
		col_copy(st, 0, e[n].id, sizeof(e[n].id));
		col_copy(st, 1, e[n].app, sizeof(e[n].app));
		e[n].payload = col_strdup(st, 2);
		e[n].attempts = (int)st_int(st, 3) + 1;
		e[n].give_up = parse_iso((const char *)
		    st_text(st, 4));
		e[n].url = col_strdup(st, 5);
		e[n].generation = (int)st_int(st, 6);
		/* NULL from a column that is not NULL: out of memory. */
		if (e[n++].payload == NULL || (e[n - 1].url == NULL &&
		    !st_null(st, 5))) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	st_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		events_clear(e, n);
		return -1;
	}
	return (ssize_t)n;
}

/* Take each of the n due events; keep those taken first; count or -1. */
static ssize_t
events_take(struct db *db, struct event *e, size_t n, const char *until,
    const char *ts)
{
	struct stmt *st;
	size_t i, k = 0;
	int rc;

	for (i = 0; i < n; i++) {
		if ((st = db_stmt(db, Q_EVENT_TAKE)) == NULL ||
		    BIND_TEXTS(db, st, e[i].id, until, ts) == -1) {
			events_clear(e, n);
			return -1;
		}
		rc = st_step(st);
		st_reset(st);
		if (rc != SQLITE_DONE) {
			events_clear(e, n);
			return -1;
		}
		/* Another node's process took it first: not ours to send. */
		if (db_changes(db) == 0) {
			events_clear(e + i, 1);
			continue;
		}
		e[k++] = e[i];
		if (k - 1 != i)
			e[i].payload = e[i].url = NULL;
	}
	return (ssize_t)k;
}

ssize_t
db_events_take(struct db *db, time_t now, int lease, size_t max,
    struct event **out)
{
	struct event *e;
	char ts[21], until[21];
	ssize_t n;

	*out = NULL;
	if (max == 0)
		return 0;
	if ((e = calloc(max, sizeof(*e))) == NULL)
		return -1;
	util_isotime(now, ts);
	util_isotime(now + lease, until);
	if (step_simple(db, Q_BEGIN) != SQLITE_DONE) {
		free(e);
		return -1;
	}
	if ((n = events_due(db, ts, max, e)) == -1 ||
	    (n = events_take(db, e, (size_t)n, until, ts)) == -1)
		goto fail;
	if (step_simple(db, Q_COMMIT) != SQLITE_DONE) {
		events_clear(e, (size_t)n);
		goto fail;
	}
	*out = e;
	return n;
fail:
	step_simple(db, Q_ROLLBACK);
	free(e);
	return -1;
}

int
db_event_done(struct db *db, const struct event *e, const char *status,
    const char *reply, time_t next, time_t now)
{
	struct stmt *st;
	char nts[21], ts[21];
	int rc;

	util_isotime(next, nts);
	util_isotime(now, ts);
	if ((st = db_stmt(db, Q_EVENT_DONE)) == NULL ||
	    BIND_TEXTS(db, st, e->id, status, reply, nts, ts) == -1 ||
	    bind_int(db, st, 6, e->attempts) == -1)
		return -1;
	rc = st_step(st);
	st_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

time_t
db_events_next(struct db *db)
{
	struct stmt *st;
	char t[32];

	if ((st = db_stmt(db, Q_EVENTS_NEXT)) == NULL ||
	    query_text(db, st, t, sizeof(t)) == -1 || t[0] == '\0')
		return 0;
	return parse_iso(t);
}

int
db_events_purge(struct db *db, time_t before)
{
	struct stmt *st;
	char ts[21];
	int rc;

	util_isotime(before, ts);
	if ((st = db_stmt(db, Q_EVENTS_PURGE)) == NULL ||
	    bind_text(db, st, 1, ts) == -1)
		return -1;
	rc = st_step(st);
	st_reset(st);
	return rc == SQLITE_DONE ? db_changes(db) : -1;
}
