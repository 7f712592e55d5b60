/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * What health and metrics read (ops.c, ctl_metrics.c): the queue, and
 * the counts by status and source that a scrape derives from the tables
 * instead of counting them as they change.  Reads only.
 */
#include <sys/types.h>

#include <stdint.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "db.h"
#include "db_int.h"
#include "metrics.h"

enum db_res
db_ops_queue(struct db *db, time_t now, int64_t *queued, int64_t *oldest)
{
	struct stmt *st;
	time_t t;
	int rc;

	*queued = 0;
	*oldest = -1;
	if ((st = db_stmt(db, Q_OPS_QUEUE)) == NULL)
		return DB_ERR;
	if ((rc = st_step(st)) == SQLITE_ROW) {
		*queued = st_int(st, 0);
		if (!st_null(st, 1) && (t = parse_iso(
		    st_text(st, 1))) > 0)
			*oldest = now > t ? (int64_t)(now - t) : 0;
	}
	st_reset(st);
	return rc == SQLITE_ROW ? DB_OK : db_res_of(db, rc);
}

/* Rows of (name, count) of q into n[] by names[]; others are dropped. */
static enum db_res
ops_group(struct db *db, enum db_query q, const char *const *names,
    int nnames, int64_t *n)
{
	struct stmt *st;
	const char *name;
	int i, rc;

	if ((st = db_stmt(db, q)) == NULL)
		return DB_ERR;
	while ((rc = st_step(st)) == SQLITE_ROW) {
		if ((name = st_text(st, 0)) == NULL)
			continue;
		for (i = 0; i < nnames; i++)
			if (strcmp(name, names[i]) == 0)
				n[i] = st_int(st, 1);
	}
	st_reset(st);
	return rc == SQLITE_DONE ? DB_OK : db_res_of(db, rc);
}

enum db_res
db_ops_counts(struct db *db, time_t now, struct metrics_db *out)
{
	enum db_res res;

	memset(out, 0, sizeof(*out));
	out->oldest = -1;
	if ((res = db_read_begin(db)) != DB_OK)
		return res;
	if ((res = db_ops_queue(db, now, &out->queued, &out->oldest)) ==
	    DB_OK && (res = ops_group(db, Q_OPS_STATUSES, metrics_statuses,
	    METRICS_STATUSES, out->invites)) == DB_OK)
		res = ops_group(db, Q_OPS_SOURCES, metrics_sources,
		    METRICS_SOURCES, out->suppressions);
	if (db_commit(db) != DB_OK && res == DB_OK)
		res = DB_ERR;
	out->ok = res == DB_OK;
	return res;
}
