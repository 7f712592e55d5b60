/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Operating the service: GET /api/v1/referral-invites/health for a load
 * balancer, GET /api/v1/referral-invites/metrics for a Prometheus scrape.
 * Neither takes credentials nor writes.  Health reads the queue through
 * its index on the worker's own connection (the database answers) and
 * the liveness the supervisor and its children keep in shared memory
 * (metrics.h): the writer and the mailer are alive when the supervisor
 * has one running and it beat within METRICS_STALE seconds, so that a
 * stopped or hung process is down as a dead one is.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "util.h"
#include "db.h"
#include "api.h"
#include "metrics.h"

#define HEALTH_RETRY	"Retry-After: 5\r\n"

static const char *
updown(int up)
{
	return up ? "\"up\"" : "\"down\"";
}

/* health's data: each part up or down, the oldest invite's age or null. */
static int
health_data(struct buf *b, int dbok, int writer, int mailer, int64_t oldest)
{
	if (buf_printf(b, "{\"database\":%s,\"writer\":%s,\"mailer\":%s,"
	    "\"oldestQueuedSeconds\":", updown(dbok), updown(writer),
	    updown(mailer)) == -1)
		return -1;
	if (dbok && oldest >= 0)
		return buf_printf(b, "%lld}", (long long)oldest);
	return buf_adds(b, "null}");
}

void
ops_health(struct ctx *ctx, struct req *r, const char *unused)
{
	struct buf data = { 0 }, why = { 0 };
	int64_t queued, oldest = -1, mono = metrics_mono();
	int dbok, writer, mailer;

	dbok = db_ops_queue(ctx->db, time(NULL), &queued, &oldest) == DB_OK;
	writer = metrics_alive(metrics, PART_WRITER, mono);
	mailer = metrics_alive(metrics, PART_MAILER, mono);
	if (health_data(&data, dbok, writer, mailer, oldest) == -1 ||
	    buf_printf(&why, "Unhealthy:%s%s%s", dbok ? "" : " database",
	    writer ? "" : " writer", mailer ? "" : " mailer") == -1)
		api_fail(r, 500, "Internal error");
	else if (dbok && writer && mailer)
		api_ok(r, 200, "Healthy", data.p, NULL);
	else {
		log_debug("request %s: health: %s", r->id, why.p);
		api_fail_data(r, 503, why.p, data.p, HEALTH_RETRY);
	}
	buf_free(&data);
	buf_free(&why);
}

void
ops_metrics(struct ctx *ctx, struct req *r, const char *unused)
{
	struct metrics_db dbm;
	struct buf b = { 0 };

	(void)db_ops_counts(ctx->db, time(NULL), &dbm);
	if (metrics_format(&b, metrics, &dbm, metrics_mono()) == -1)
		api_fail(r, 500, "Internal error");
	else
		req_respond(r, 200, METRICS_CTYPE, NULL, b.p, b.len);
	buf_free(&b);
}
