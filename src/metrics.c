/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The pool's counters and liveness in shared memory (metrics.h), and
 * their Prometheus text exposition, which the metrics route (ops.c) and
 * referral-invitesctl metrics both print.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "api.h"
#include "metrics.h"

#define MAGIC	"rimetr1"

struct metrics *metrics;

const char *const metrics_statuses[METRICS_STATUSES] = {
	"queued", "sending", "sent", "failed", "canceled"
};
const char *const metrics_sources[METRICS_SOURCES] = {
	"admin", "opt-out", "bounce", "complaint"
};

static int
metrics_path(const char *database, char *out, size_t outsz)
{
	if ((size_t)snprintf(out, outsz, "%s.metrics", database) >= outsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
metrics_create(const char *database)
{
	char path[4096];
	void *p;
	int fd;

	if (metrics_path(database, path, sizeof(path)) == -1 ||
	    (fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0640)) == -1)
		return -1;
	/* Never shorter than a reader's map: ctl may be reading it. */
	if (ftruncate(fd, sizeof(struct metrics)) == -1) {
		close(fd);
		return -1;
	}
	p = mmap(NULL, sizeof(struct metrics), PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	metrics = p;
	memset(metrics, 0, sizeof(*metrics));
	metrics->size = sizeof(*metrics);
	metrics->started = (int64_t)time(NULL);
	memcpy(metrics->magic, MAGIC, sizeof(MAGIC));
	return 0;
}

const struct metrics *
metrics_map(const char *database)
{
	struct metrics *m;
	struct stat st;
	char path[4096];
	void *p;
	int fd;

	if (metrics_path(database, path, sizeof(path)) == -1 ||
	    (fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 ||
	    st.st_size != (off_t)sizeof(struct metrics)) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, sizeof(struct metrics), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return NULL;
	m = p;
	if (memcmp(m->magic, MAGIC, sizeof(MAGIC)) != 0 ||
	    m->size != sizeof(*m)) {
		munmap(p, sizeof(struct metrics));
		return NULL;
	}
	return m;
}

void
metrics_unmap(const struct metrics *m)
{
	if (m != NULL)
		munmap((void *)m, sizeof(*m));
}

int64_t
metrics_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

void
metrics_child(enum part p, pid_t pid)
{
	if (metrics != NULL)
		__atomic_store_n(&metrics->pid[p], (int64_t)pid,
		    __ATOMIC_RELAXED);
}

void
metrics_beat(enum part p)
{
	if (metrics != NULL)
		__atomic_store_n(&metrics->beat[p], metrics_mono(),
		    __ATOMIC_RELAXED);
}

int
metrics_alive(const struct metrics *m, enum part p, int64_t mono)
{
	if (m == NULL || __atomic_load_n(&m->pid[p], __ATOMIC_RELAXED) == 0)
		return 0;
	return mono - __atomic_load_n(&m->beat[p], __ATOMIC_RELAXED) <=
	    METRICS_STALE;
}

void
metrics_request(int route, int status)
{
	if (metrics == NULL || route < 0 || route >= METRICS_ROUTES ||
	    status < METRICS_STATUS_MIN || status > METRICS_STATUS_MAX)
		return;
	__atomic_fetch_add(&metrics->requests[route][status -
	    METRICS_STATUS_MIN], 1, __ATOMIC_RELAXED);
}

void
metrics_smtp(int code)
{
	switch (code / 100) {
	case 2:
		metrics_add(M_SMTP_2XX);
		break;
	case 4:
		metrics_add(M_SMTP_4XX);
		break;
	case 5:
		metrics_add(M_SMTP_5XX);
		break;
	}
}

void
metrics_verdict(const char *status)
{
	if (strcmp(status, "sent") == 0)
		metrics_add(M_SENT);
	else if (strcmp(status, "failed") == 0)
		metrics_add(M_FAILED);
	else if (strcmp(status, "queued") == 0)
		metrics_add(M_RETRIES);
}

/* ------------------------------------------------------------ format */

#define P	"referral_invites_"

/* One family's HELP and TYPE lines. */
static int
family(struct buf *b, const char *name, const char *type, const char *help)
{
	return buf_printf(b, "# HELP " P "%s %s\n# TYPE " P "%s %s\n", name,
	    help, name, type);
}

static uint64_t
get(const struct metrics *m, enum metric i)
{
	return m == NULL ? 0 : __atomic_load_n(&m->count[i], __ATOMIC_RELAXED);
}

/* A family of counters with one label, one sample per value. */
static int
labelled(struct buf *b, const struct metrics *m, const char *name,
    const char *help, const char *label, const char *const *values,
    enum metric first, int n)
{
	int i;

	if (family(b, name, "counter", help) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (buf_printf(b, P "%s{%s=\"%s\"} %llu\n", name, label,
		    values[i], (unsigned long long)get(m, first + i)) == -1)
			return -1;
	return 0;
}

static int
format_up(struct buf *b, const struct metrics *m,
    const struct metrics_db *dbm, int64_t mono)
{
	if (family(b, "up", "gauge", "Whether a part of the service is up "
	    "(1) or down (0); health answers 503 when the database, the "
	    "writer or the mailer is down.") == -1 ||
	    buf_printf(b, P "up{part=\"database\"} %d\n" P "up{part=\"writer\"}"
	    " %d\n" P "up{part=\"mailer\"} %d\n" P "up{part=\"webhooks\"}"
	    " %d\n", dbm->ok != 0, metrics_alive(m, PART_WRITER, mono),
	    metrics_alive(m, PART_MAILER, mono),
	    metrics_alive(m, PART_WEBHOOKS, mono)) == -1 ||
	    family(b, "start_time_seconds", "gauge", "When the daemon "
	    "started, in seconds since the epoch (0: not known); the "
	    "counters count from then.") == -1 ||
	    buf_printf(b, P "start_time_seconds %lld\n",
	    m == NULL ? 0LL : (long long)m->started) == -1)
		return -1;
	return 0;
}

static int
format_requests(struct buf *b, const struct metrics *m)
{
	const char *method, *route;
	uint64_t n;
	int i, s, nroutes = route_count();

	if (family(b, "http_requests_total", "counter", "Requests the "
	    "daemon answered, by route and status (route \"other\": no "
	    "route of the table, 404 or 405).") == -1)
		return -1;
	for (i = 0; m != NULL && i <= nroutes && i < METRICS_ROUTES; i++) {
		method = route = "other";
		if (i < nroutes)
			route_name(i, &method, &route);
		for (s = METRICS_STATUS_MIN; s <= METRICS_STATUS_MAX; s++) {
			n = __atomic_load_n(&m->requests[i][s -
			    METRICS_STATUS_MIN], __ATOMIC_RELAXED);
			if (n > 0 && buf_printf(b, P "http_requests_total{"
			    "method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
			    method, route, s, (unsigned long long)n) == -1)
				return -1;
		}
	}
	return 0;
}

static int
format_db(struct buf *b, const struct metrics_db *dbm)
{
	int i;

	if (!dbm->ok)
		return 0;
	if (family(b, "invites", "gauge", "Invites in the database, by "
	    "status.") == -1)
		return -1;
	for (i = 0; i < METRICS_STATUSES; i++)
		if (buf_printf(b, P "invites{status=\"%s\"} %lld\n",
		    metrics_statuses[i], (long long)dbm->invites[i]) == -1)
			return -1;
	if (family(b, "queue_depth", "gauge", "Invites queued for the "
	    "mailer, due or waiting for a retry.") == -1 ||
	    buf_printf(b, P "queue_depth %lld\n",
	    (long long)dbm->queued) == -1 ||
	    family(b, "queue_oldest_age_seconds", "gauge", "Age of the "
	    "oldest queued invite (0: none queued).") == -1 ||
	    buf_printf(b, P "queue_oldest_age_seconds %lld\n",
	    (long long)(dbm->oldest < 0 ? 0 : dbm->oldest)) == -1 ||
	    family(b, "suppressions", "gauge", "Addresses on the apps' "
	    "do-not-invite lists, by source.") == -1)
		return -1;
	for (i = 0; i < METRICS_SOURCES; i++)
		if (buf_printf(b, P "suppressions{source=\"%s\"} %lld\n",
		    metrics_sources[i], (long long)dbm->suppressions[i]) == -1)
			return -1;
	return 0;
}

int
metrics_format(struct buf *b, const struct metrics *m,
    const struct metrics_db *dbm, int64_t mono)
{
	static const char *const classes[] = { "2xx", "4xx", "5xx" };
	static const char *const results[] = { "sent", "failed" };
	static const char *const limits[] = { "inviter_hour", "inviter_day",
	    "app_minute" };
	static const char *const procs[] = { "worker", "mailer", "writer",
	    "webhooks" };
	static const char *const hooks[] = { "delivered", "failed",
	    "retried" };

	if (format_up(b, m, dbm, mono) == -1 ||
	    format_requests(b, m) == -1 || format_db(b, dbm) == -1 ||
	    labelled(b, m, "smtp_replies_total", "SMTP replies that decided "
	    "a delivery attempt, by class.", "class", classes, M_SMTP_2XX,
	    3) == -1 ||
	    labelled(b, m, "deliveries_total", "Delivery verdicts recorded: "
	    "sent, or failed for good.", "result", results, M_SENT, 2) == -1 ||
	    family(b, "retries_total", "counter", "Delivery attempts "
	    "deferred to a retry.") == -1 ||
	    buf_printf(b, P "retries_total %llu\n",
	    (unsigned long long)get(m, M_RETRIES)) == -1 ||
	    labelled(b, m, "rate_limited_total", "Invites refused with 429, "
	    "by the first limit found exhausted.", "limit", limits,
	    M_LIMIT_HOUR, 3) == -1 ||
	    labelled(b, m, "restarts_total", "Children of the pool that died "
	    "and were started again, by process.", "process", procs,
	    M_RESTART_WORKER, 4) == -1 ||
	    labelled(b, m, "webhook_attempts_total", "Webhook deliveries "
	    "tried, by result: delivered, failed for good, or retried.",
	    "result", hooks, M_HOOK_DELIVERED, 3) == -1 ||
	    family(b, "db_busy_waits_total", "counter", "Times a process "
	    "waited for a lock another held on the database.") == -1 ||
	    buf_printf(b, P "db_busy_waits_total %llu\n",
	    (unsigned long long)get(m, M_BUSY_WAITS)) == -1 ||
	    family(b, "db_busy_timeouts_total", "counter", "Busy waits that "
	    "ended in SQLITE_BUSY (the busy timeout passed).") == -1 ||
	    buf_printf(b, P "db_busy_timeouts_total %llu\n",
	    (unsigned long long)get(m, M_BUSY_TIMEOUTS)) == -1)
		return -1;
	return 0;
}
