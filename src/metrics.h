/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The pool's counters and liveness (metrics.c): one region of shared
 * memory, the file DATABASE.metrics mapped MAP_SHARED, that the
 * supervisor creates and zeroes at start, before it forks, and every
 * child inherits; referral-invitesctl maps it read-only.  A counter is
 * a 64-bit word added to with __atomic builtins: no lock, no syscall.
 * It survives any child's death, since the supervisor holds the region,
 * and starts at 0 with each start of the daemon.
 *
 * One writer for each piece: pid[] the supervisor (spawn, reap), beat[]
 * the process of that part itself, the counters of each family the
 * processes named at its enum below (only ever added to).
 */
#ifndef METRICS_H
#define METRICS_H

#include <sys/types.h>
#include <stdint.h>

struct buf;

/* The parts health and metrics report on, besides the database. */
enum part { PART_WRITER, PART_MAILER, PART_WEBHOOKS, PART__MAX };

/* A part whose last beat is older than this is down (seconds). */
#define METRICS_STALE	10
/* How often the writer and the mailer beat at least (ms). */
#define METRICS_BEAT_MS	1000

enum metric {
	/* The mailer (relay.c, mailer.c). */
	M_SMTP_2XX, M_SMTP_4XX, M_SMTP_5XX,
	M_SENT, M_FAILED, M_RETRIES,
	/* The writer (db_writer.c): a 429 by the first limit found full. */
	M_LIMIT_HOUR, M_LIMIT_DAY, M_LIMIT_MINUTE,
	/* The supervisor (main.c): children that died and are restarted. */
	M_RESTART_WORKER, M_RESTART_MAILER, M_RESTART_WRITER, M_RESTART_HOOKS,
	/* The webhook process (hook.c): tries that delivered, failed for
	 * good, or will be retried. */
	M_HOOK_DELIVERED, M_HOOK_FAILED, M_HOOK_RETRIED,
	/* Every process with a connection (db.c's busy handler). */
	M_BUSY_WAITS, M_BUSY_TIMEOUTS,
	M__MAX
};

/* Requests by route (route.c's index; the last: none) and status. */
#define METRICS_ROUTES	16
#define METRICS_STATUS_MIN 100
#define METRICS_STATUS_MAX 599

struct metrics {
	char		 magic[8];
	uint64_t	 size;			/* sizeof(struct metrics) */
	int64_t		 started;		/* the daemon's start, UTC */
	int64_t		 pid[PART__MAX];	/* 0: none running */
	int64_t		 beat[PART__MAX];	/* CLOCK_MONOTONIC seconds */
	uint64_t	 count[M__MAX];
	uint64_t	 requests[METRICS_ROUTES]
			    [METRICS_STATUS_MAX - METRICS_STATUS_MIN + 1];
};

/* This process's region; NULL counts nothing (ctl, unit tests). */
extern struct metrics *metrics;

static inline void
metrics_add(enum metric m)
{
	if (metrics != NULL)
		__atomic_fetch_add(&metrics->count[m], 1, __ATOMIC_RELAXED);
}

/*
 * The supervisor, once before it forks: create or reuse DATABASE.metrics
 * (mode 0640 under the umask), zero it and map it as this process's
 * region.  0, or -1 with errno.
 */
int	 metrics_create(const char *database);
/*
 * ctl: DATABASE.metrics mapped read-only, or NULL when there is none (no
 * daemon ever ran here) or it is not ours.  metrics_unmap releases it.
 */
const struct metrics *metrics_map(const char *database);
void	 metrics_unmap(const struct metrics *);
/* The supervisor: pid now runs part (0: none does). */
void	 metrics_child(enum part, pid_t pid);
/* The process of part: it is alive now. */
void	 metrics_beat(enum part);
/* A request answered status on route (route.c's index). */
void	 metrics_request(int route, int status);
/* An SMTP reply code that decided a delivery attempt. */
void	 metrics_smtp(int code);
/* A verdict the mailer recorded: "sent", "failed" or "queued" again. */
void	 metrics_verdict(const char *status);
/*
 * Whether part of m (NULL: none) has a process that beat within
 * METRICS_STALE seconds of mono (CLOCK_MONOTONIC seconds).
 */
int	 metrics_alive(const struct metrics *m, enum part, int64_t mono);
/* CLOCK_MONOTONIC in whole seconds. */
int64_t	 metrics_mono(void);

/*
 * What the database says at a scrape (db_ops_counts): invites by status,
 * the queue, suppressions by source.
 */
#define METRICS_STATUSES	5
#define METRICS_SOURCES		4
struct metrics_db {
	int		 ok;			/* 0: the database failed */
	int64_t		 invites[METRICS_STATUSES];	/* metrics_statuses */
	int64_t		 queued;
	int64_t		 oldest;		/* seconds; -1: none queued */
	int64_t		 suppressions[METRICS_SOURCES];	/* metrics_sources */
};
extern const char *const metrics_statuses[METRICS_STATUSES];
extern const char *const metrics_sources[METRICS_SOURCES];

/*
 * Append the Prometheus text exposition (version 0.0.4) of m (NULL: all
 * counters 0) and dbm to b: the parts' liveness at mono, then every
 * family with its HELP and TYPE lines.  0, or -1 when out of memory.
 */
int	 metrics_format(struct buf *b, const struct metrics *m,
	    const struct metrics_db *dbm, int64_t mono);

#define METRICS_CTYPE	"text/plain; version=0.0.4; charset=utf-8"

#endif
