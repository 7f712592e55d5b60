/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * metrics.c: the counters as the hot path adds to them, liveness, and
 * the exact Prometheus text (version 0.0.4) metrics_format writes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "api.h"
#include "metrics.h"
#include "unit.h"

/* Where route.c has POST .../referral-invites (after the GET). */
#define ROUTE_POST	1

static struct metrics *
fresh(void)
{
	struct metrics *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		abort();
	m->started = 1700000000;
	return m;
}

/* Counting goes to this process's region, and nowhere without one. */
static void
test_metrics_counting(void)
{
	struct metrics *m = fresh();

	metrics = NULL;
	metrics_add(M_SENT);
	metrics_request(ROUTE_POST, 201);
	metrics = m;
	metrics_add(M_SENT);
	metrics_add(M_SENT);
	metrics_request(ROUTE_POST, 201);
	metrics_request(ROUTE_POST, 99);	/* out of range: dropped */
	metrics_request(ROUTE_POST, 600);
	metrics_request(METRICS_ROUTES, 201);
	metrics_smtp(250);
	metrics_smtp(451);
	metrics_smtp(550);
	metrics_smtp(354);			/* no class of ours */
	metrics_smtp(0);
	metrics_verdict("queued");
	metrics_verdict("sent");
	metrics_verdict("sending");
	metrics = NULL;
	CHECK(m->count[M_SENT] == 3);
	CHECK(m->count[M_RETRIES] == 1);
	CHECK(m->count[M_FAILED] == 0);
	CHECK(m->count[M_SMTP_2XX] == 1 && m->count[M_SMTP_4XX] == 1 &&
	    m->count[M_SMTP_5XX] == 1);
	CHECK(m->requests[ROUTE_POST][201 - METRICS_STATUS_MIN] == 1);
	free(m);
}

/* Alive: a process the supervisor knows, beating within the limit. */
static void
test_metrics_alive(void)
{
	struct metrics *m = fresh();

	CHECK(!metrics_alive(NULL, PART_WRITER, 100));
	m->beat[PART_WRITER] = 100;
	CHECK(!metrics_alive(m, PART_WRITER, 100));	/* no pid: none */
	m->pid[PART_WRITER] = 42;
	CHECK(metrics_alive(m, PART_WRITER, 100));
	CHECK(metrics_alive(m, PART_WRITER, 100 + METRICS_STALE));
	CHECK(!metrics_alive(m, PART_WRITER, 101 + METRICS_STALE));
	CHECK(!metrics_alive(m, PART_MAILER, 100));
	free(m);
}

static const char expect_head[] =
    "# HELP referral_invites_up Whether a part of the service is up (1) or "
    "down (0); health answers 503 when the database, the writer or the "
    "mailer is down.\n"
    "# TYPE referral_invites_up gauge\n"
    "referral_invites_up{part=\"database\"} 1\n"
    "referral_invites_up{part=\"writer\"} 1\n"
    "referral_invites_up{part=\"mailer\"} 0\n"
    "referral_invites_up{part=\"webhooks\"} 0\n"
    "# HELP referral_invites_start_time_seconds When the daemon started, "
    "in seconds since the epoch (0: not known); the counters count from "
    "then.\n"
    "# TYPE referral_invites_start_time_seconds gauge\n"
    "referral_invites_start_time_seconds 1700000000\n"
    "# HELP referral_invites_http_requests_total Requests the daemon "
    "answered, by route and status (route \"other\": no route of the "
    "table, 404 or 405).\n"
    "# TYPE referral_invites_http_requests_total counter\n"
    "referral_invites_http_requests_total{method=\"POST\",route=\"/api/v1/"
    "users/:userId/referral-invites\",status=\"201\"} 3\n"
    "referral_invites_http_requests_total{method=\"POST\",route=\"/api/v1/"
    "users/:userId/referral-invites\",status=\"429\"} 1\n"
    "referral_invites_http_requests_total{method=\"other\",route=\"other\","
    "status=\"404\"} 2\n";

static const char expect_db[] =
    "# HELP referral_invites_invites Invites in the database, by status.\n"
    "# TYPE referral_invites_invites gauge\n"
    "referral_invites_invites{status=\"queued\"} 2\n"
    "referral_invites_invites{status=\"sending\"} 0\n"
    "referral_invites_invites{status=\"sent\"} 7\n"
    "referral_invites_invites{status=\"failed\"} 1\n"
    "referral_invites_invites{status=\"canceled\"} 0\n"
    "# HELP referral_invites_queue_depth Invites queued for the mailer, due "
    "or waiting for a retry.\n"
    "# TYPE referral_invites_queue_depth gauge\n"
    "referral_invites_queue_depth 2\n"
    "# HELP referral_invites_queue_oldest_age_seconds Age of the oldest "
    "queued invite (0: none queued).\n"
    "# TYPE referral_invites_queue_oldest_age_seconds gauge\n"
    "referral_invites_queue_oldest_age_seconds 65\n"
    "# HELP referral_invites_suppressions Addresses on the apps' "
    "do-not-invite lists, by source.\n"
    "# TYPE referral_invites_suppressions gauge\n"
    "referral_invites_suppressions{source=\"admin\"} 0\n"
    "referral_invites_suppressions{source=\"opt-out\"} 4\n"
    "referral_invites_suppressions{source=\"bounce\"} 1\n"
    "referral_invites_suppressions{source=\"complaint\"} 0\n";

static const char expect_tail[] =
    "# HELP referral_invites_smtp_replies_total SMTP replies that decided "
    "a delivery attempt, by class.\n"
    "# TYPE referral_invites_smtp_replies_total counter\n"
    "referral_invites_smtp_replies_total{class=\"2xx\"} 7\n"
    "referral_invites_smtp_replies_total{class=\"4xx\"} 0\n"
    "referral_invites_smtp_replies_total{class=\"5xx\"} 1\n"
    "# HELP referral_invites_deliveries_total Delivery verdicts recorded: "
    "sent, or failed for good.\n"
    "# TYPE referral_invites_deliveries_total counter\n"
    "referral_invites_deliveries_total{result=\"sent\"} 7\n"
    "referral_invites_deliveries_total{result=\"failed\"} 1\n"
    "# HELP referral_invites_retries_total Delivery attempts deferred to a "
    "retry.\n"
    "# TYPE referral_invites_retries_total counter\n"
    "referral_invites_retries_total 0\n"
    "# HELP referral_invites_rate_limited_total Invites refused with 429, "
    "by the first limit found exhausted.\n"
    "# TYPE referral_invites_rate_limited_total counter\n"
    "referral_invites_rate_limited_total{limit=\"inviter_hour\"} 1\n"
    "referral_invites_rate_limited_total{limit=\"inviter_day\"} 0\n"
    "referral_invites_rate_limited_total{limit=\"app_minute\"} 0\n"
    "# HELP referral_invites_restarts_total Children of the pool that died "
    "and were started again, by process.\n"
    "# TYPE referral_invites_restarts_total counter\n"
    "referral_invites_restarts_total{process=\"worker\"} 2\n"
    "referral_invites_restarts_total{process=\"mailer\"} 0\n"
    "referral_invites_restarts_total{process=\"writer\"} 0\n"
    "referral_invites_restarts_total{process=\"webhooks\"} 0\n"
    "# HELP referral_invites_webhook_attempts_total Webhook deliveries "
    "tried, by result: delivered, failed for good, or retried.\n"
    "# TYPE referral_invites_webhook_attempts_total counter\n"
    "referral_invites_webhook_attempts_total{result=\"delivered\"} 0\n"
    "referral_invites_webhook_attempts_total{result=\"failed\"} 0\n"
    "referral_invites_webhook_attempts_total{result=\"retried\"} 0\n"
    "# HELP referral_invites_db_busy_waits_total Times a process waited "
    "for a lock another held on the database.\n"
    "# TYPE referral_invites_db_busy_waits_total counter\n"
    "referral_invites_db_busy_waits_total 5\n"
    "# HELP referral_invites_db_busy_timeouts_total Busy waits that ended "
    "in SQLITE_BUSY (the busy timeout passed).\n"
    "# TYPE referral_invites_db_busy_timeouts_total counter\n"
    "referral_invites_db_busy_timeouts_total 0\n";

static void
sample_db(struct metrics_db *d)
{
	memset(d, 0, sizeof(*d));
	d->ok = 1;
	d->invites[0] = 2;
	d->invites[2] = 7;
	d->invites[3] = 1;
	d->queued = 2;
	d->oldest = 65;
	d->suppressions[1] = 4;
	d->suppressions[2] = 1;
}

/* Every family, HELP and TYPE first, zero requests left out. */
static void
test_metrics_format_exact(void)
{
	struct metrics *m = fresh();
	struct metrics_db d;
	struct buf b = { 0 }, want = { 0 };

	sample_db(&d);
	m->pid[PART_WRITER] = m->pid[PART_MAILER] = 7;
	m->beat[PART_WRITER] = 50;
	m->beat[PART_MAILER] = 30;	/* stale at 50 */
	m->requests[ROUTE_POST][201 - METRICS_STATUS_MIN] = 3;
	m->requests[ROUTE_POST][429 - METRICS_STATUS_MIN] = 1;
	m->requests[route_count()][404 - METRICS_STATUS_MIN] = 2;
	m->count[M_SMTP_2XX] = 7;
	m->count[M_SMTP_5XX] = 1;
	m->count[M_SENT] = 7;
	m->count[M_FAILED] = 1;
	m->count[M_LIMIT_HOUR] = 1;
	m->count[M_RESTART_WORKER] = 2;
	m->count[M_BUSY_WAITS] = 5;
	CHECK(buf_adds(&want, expect_head) == 0 &&
	    buf_adds(&want, expect_db) == 0 &&
	    buf_adds(&want, expect_tail) == 0);
	CHECK(metrics_format(&b, m, &d, 50) == 0);
	CHECK_STR(b.p, want.p);
	buf_free(&b);
	buf_free(&want);
	free(m);
}

/* No region and no database: every counter 0, no database families. */
static void
test_metrics_format_nothing(void)
{
	struct metrics_db d;
	struct buf b = { 0 };

	memset(&d, 0, sizeof(d));
	CHECK(metrics_format(&b, NULL, &d, 50) == 0);
	CHECK(strstr(b.p, "referral_invites_up{part=\"database\"} 0\n"
	    "referral_invites_up{part=\"writer\"} 0\n"
	    "referral_invites_up{part=\"mailer\"} 0\n") != NULL);
	CHECK(strstr(b.p, "referral_invites_start_time_seconds 0\n") != NULL);
	CHECK(strstr(b.p, "http_requests_total{") == NULL);
	CHECK(strstr(b.p, "referral_invites_invites") == NULL);
	CHECK(strstr(b.p, "# TYPE referral_invites_http_requests_total "
	    "counter\n# HELP referral_invites_smtp_replies_total") != NULL);
	CHECK(strstr(b.p, "referral_invites_db_busy_timeouts_total 0\n") !=
	    NULL);
	buf_free(&b);
}

const struct unit_test metrics_tests[] = {
	{ "metrics_counting", test_metrics_counting },
	{ "metrics_alive", test_metrics_alive },
	{ "metrics_format_exact", test_metrics_format_exact },
	{ "metrics_format_nothing", test_metrics_format_nothing },
	{ NULL, NULL }
};
