/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl metrics: what GET .../metrics answers, for the
 * node_exporter textfile collector.  The counters come from the running
 * pool's DATABASE.metrics, mapped read-only (all 0 when there is none),
 * the rest from the database: db_ops.c's reads on SQLite, the same
 * queries here on PostgreSQL.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "extern.h"
#include "util.h"
#include "db.h"
#include "metrics.h"
#include "ctl.h"

/* Rows of (name, count) of sql into n[] by names[]; others dropped. */
static void
pg_group(const char *sql, const char *const *names, int nnames, int64_t *n)
{
	struct ctl_res *res = ctl_query(sql, 0, NULL);
	int i;

	while (ctl_next(res))
		for (i = 0; i < nnames; i++)
			if (ctl_text(res, 0) != NULL &&
			    strcmp(ctl_text(res, 0), names[i]) == 0)
				n[i] = strtoll(ctl_text(res, 1), NULL, 10);
	ctl_free(res);
}

/* db_ops_counts on PostgreSQL, in one snapshot; a failure refuses. */
static void
pg_counts(time_t now, struct metrics_db *out)
{
	struct ctl_res *res;
	struct tm tm;
	time_t t;

	memset(out, 0, sizeof(*out));
	out->oldest = -1;
	ctl_exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0);
	res = ctl_query("SELECT count(*), min(created_at) FROM invites "
	    "WHERE status = 'queued'", 0, NULL);
	if (ctl_next(res)) {
		out->queued = strtoll(ctl_text(res, 0), NULL, 10);
		memset(&tm, 0, sizeof(tm));
		if (ctl_text(res, 1) != NULL && strptime(ctl_text(res, 1),
		    "%Y-%m-%dT%H:%M:%SZ", &tm) != NULL &&
		    (t = timegm(&tm)) > 0)
			out->oldest = now > t ? (int64_t)(now - t) : 0;
	}
	ctl_free(res);
	pg_group("SELECT status, count(*) FROM invites GROUP BY status",
	    metrics_statuses, METRICS_STATUSES, out->invites);
	pg_group("SELECT source, count(*) FROM suppressions GROUP BY source",
	    metrics_sources, METRICS_SOURCES, out->suppressions);
	ctl_exec("COMMIT", 0);
	out->ok = 1;
}

int
cmd_metrics(const struct cmd_args *a)
{
	const struct metrics *m;
	struct metrics_db dbm;
	struct buf b = { 0 };

	(void)a;
	m = metrics_map(ctl_node);
	if (ctl_is_pg())
		pg_counts(time(NULL), &dbm);
	else
		(void)db_ops_counts(ctl_db, time(NULL), &dbm);
	if (metrics_format(&b, m, &dbm, metrics_mono()) == -1)
		ctl_refuse("out of memory");
	metrics_unmap(m);
	if (fwrite(b.p, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
		ctl_refuse("cannot write the metrics");
	buf_free(&b);
	return 0;
}
