/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl metrics: what GET .../metrics answers, for the
 * node_exporter textfile collector.  The counters come from the running
 * pool's DATABASE.metrics, mapped read-only (all 0 when there is none),
 * the rest from the database.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <sqlite3.h>

#include "extern.h"
#include "util.h"
#include "db.h"
#include "metrics.h"
#include "ctl.h"

int
cmd_metrics(const struct cmd_args *a)
{
	const struct metrics *m;
	struct metrics_db dbm;
	struct buf b = { 0 };

	(void)a;
	m = metrics_map(ctl_dbpath);
	(void)db_ops_counts(ctl_db, time(NULL), &dbm);
	if (metrics_format(&b, m, &dbm, metrics_mono()) == -1)
		ctl_refuse("out of memory");
	metrics_unmap(m);
	if (fwrite(b.p, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
		ctl_refuse("cannot write the metrics");
	buf_free(&b);
	return 0;
}
