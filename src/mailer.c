/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The mailer process: smtp_sessions session threads claim due invites and
 * send them (relay.c), each verdict recorded here and told to the
 * workers.  Only this process talks SMTP, so a slow or dead relay never
 * holds up a worker.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <auth-client.h>

#include "extern.h"
#include "log.h"
#include "conf.h"
#include "db.h"
#include "mailer.h"
#include "relay.h"
#include "daemon.h"

#define IDLE_POLL	10	/* seconds between looks for due retries */
#define MAILER_NICE	10	/* the mailer's nice value above the pool's */

/*
 * The sessions' writes to the database, one at a time: SQLite lets one
 * writer in, and sessions that waited for each other in its busy handler
 * (sleeps of up to a millisecond) sent at a fifth of one session's rate.
 */
pthread_mutex_t db_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t build_mu = PTHREAD_MUTEX_INITIALIZER;


/*
 * A verdict the database would not take (its disk full, an I/O error) is
 * kept here and written again before anything new is claimed.  Its row
 * stays "sending" meanwhile; the mail is never sent again for it, which
 * it would be if the row were left for the next mailer's recovery.
 */
struct unrecorded {
	char	 id[UUID_LEN + 1];
	char	 app[UUID_LEN + 1];
	char	 email_norm[EMAIL_MAX + 1];
	char	 status[8];
	char	 reply[256];
	time_t	 next;
	int	 bounce;		/* also list the address */
};

/*
 * Which worker waits for which invite, as the writer said (wake_recs):
 * the mailer's thread puts, the sessions take.  A small open table; an
 * entry a verdict never took is overwritten in time.
 */
#define OWNERS		4096	/* a power of two */
#define OWNER_PROBE	8
static struct {
	char	 id[UUID_LEN + 1];
	int	 slot;
} owners[OWNERS];
static pthread_mutex_t owners_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t
owner_hash(const char *id)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	while (*id != '\0')
		h = (h ^ (unsigned char)*id++) * 16777619u;
	return h & (OWNERS - 1);
}

static void
owner_put(const struct wake_rec *w)
{
	size_t h = owner_hash(w->id), i, k;

	pthread_mutex_lock(&owners_mu);
	for (k = 0, i = h; k < OWNER_PROBE; k++, i = (i + 1) & (OWNERS - 1))
		if (owners[i].id[0] == '\0' ||
		    strcmp(owners[i].id, w->id) == 0)
			break;
	if (k == OWNER_PROBE)
		i = h;
	memcpy(owners[i].id, w->id, sizeof(owners[i].id));
	owners[i].id[UUID_LEN] = '\0';
	owners[i].slot = w->slot;
	pthread_mutex_unlock(&owners_mu);
}

/* The slot waiting for invite id, forgotten now; -1 when not known. */
static int
owner_take(const char *id)
{
	size_t i, k;
	int slot = -1;

	pthread_mutex_lock(&owners_mu);
	for (k = 0, i = owner_hash(id); k < OWNER_PROBE;
	    k++, i = (i + 1) & (OWNERS - 1))
		if (strcmp(owners[i].id, id) == 0) {
			slot = owners[i].slot;
			owners[i].id[0] = '\0';
			break;
		}
	pthread_mutex_unlock(&owners_mu);
	return slot;
}

/*
 * Tell the waiting worker a recorded verdict (every worker when that is
 * not known), without waiting: one whose channel is full answers its
 * request "Invite queued" at the deadline.
 */
static void
tell_workers(struct mailer *ml, const struct unrecorded *u)
{
	struct verdict_msg v;
	int i, slot;

	if (ml->conf->delivery_wait == 0)
		return;			/* no request waits for a verdict */
	memset(&v, 0, sizeof(v));
	snprintf(v.id, sizeof(v.id), "%s", u->id);
	v.kind = strcmp(u->status, "sent") == 0 ? VERDICT_SENT :
	    strcmp(u->status, "failed") == 0 ? VERDICT_FAILED :
	    VERDICT_DEFERRED;
	snprintf(v.reply, sizeof(v.reply), "%s", u->reply);
	if ((slot = owner_take(u->id)) >= 0 && slot < ml->nverdict) {
		(void)send(ml->verdict_fds[slot], &v, sizeof(v), MSG_DONTWAIT);
		return;
	}
	for (i = 0; i < ml->nverdict; i++)
		(void)send(ml->verdict_fds[i], &v, sizeof(v), MSG_DONTWAIT);
}

static int
store_verdict(struct session *ss, const struct unrecorded *u)
{
	struct mailer *ml = ss->ml;
	int rc;

	pthread_mutex_lock(&db_mu);
	if (u->bounce)
		rc = db_outbox_bounce(ss->db, u->id, u->reply, u->app,
		    u->email_norm);
	else
		rc = db_outbox_mark(ss->db, u->id, u->status, u->reply,
		    u->next);
	pthread_mutex_unlock(&db_mu);
	/* The worker's answer never runs ahead of the row. */
	if (rc == 0)
		tell_workers(ml, u);
	return rc;
}

/* Record a claimed row's verdict now, or keep it to record later. */
void
session_record(struct session *ss, const struct outbox *ob, const char *status,
    const char *reply, time_t next, int bounce)
{
	struct unrecorded u, *k;

	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", ob->id);
	snprintf(u.app, sizeof(u.app), "%s", ob->app_id);
	snprintf(u.email_norm, sizeof(u.email_norm), "%s", ob->email_norm);
	snprintf(u.status, sizeof(u.status), "%s", status);
	snprintf(u.reply, sizeof(u.reply), "%s", reply);
	u.next = next;
	u.bounce = bounce;
	if (store_verdict(ss, &u) == 0)
		return;
	/* At most one batch is ever kept: none is claimed meanwhile. */
	if (ss->nunrec == SESSION_BATCH) {
		log_errx("invite %s: cannot record \"%s\", and too many "
		    "verdicts wait already; it may be sent again", u.id,
		    status);
		return;
	}
	k = &ss->unrec[ss->nunrec++];
	*k = u;
	log_errx("invite %s: cannot record \"%s\" in the database; kept "
	    "to record again, not sent again", u.id, status);
}

/* Store the verdicts kept by session_record(); how many are still waiting. */
static size_t
record_kept(struct session *ss)
{
	size_t i, n = 0;
	time_t now;

	for (i = 0; i < ss->nunrec; i++)
		if (store_verdict(ss, &ss->unrec[i]) == -1)
			ss->unrec[n++] = ss->unrec[i];
		else
			log_info("invite %s: \"%s\" recorded at last",
			    ss->unrec[i].id, ss->unrec[i].status);
	ss->nunrec = n;
	now = time(NULL);
	if (n > 0 && now - ss->unrec_said >= 10) {
		ss->unrec_said = now;
		log_errx("mailer: %zu verdicts wait for the database (is its "
		    "disk full?); nothing new is sent until they are "
		    "recorded", n);
	}
	return n;
}

/* Requeue with backoff, or give up when the invite is too old. */
void
session_defer(struct session *ss, struct outbox *ob, const char *reply)
{
	struct mailer *ml = ss->ml;
	const struct conf *c = ml->conf;
	struct tm tm;
	time_t now = time(NULL), created, delay;
	int i;

	memset(&tm, 0, sizeof(tm));
	strptime(ob->created_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
	created = timegm(&tm);
	if (now - created >= c->retry_give_up) {
		log_warnx("invite %s: giving up after %d attempts: %s", ob->id,
		    ob->attempts, reply);
		session_record(ss, ob, "failed", reply, now, 0);
		return;
	}
	delay = c->retry_initial;
	for (i = 1; i < ob->attempts && delay < c->retry_max; i++)
		delay *= 2;
	if (delay > c->retry_max)
		delay = c->retry_max;
	log_info("invite %s: deferred %lds: %s", ob->id, (long)delay, reply);
	session_record(ss, ob, "queued", reply, now + delay, 0);
}

/*
 * What the sessions and the mailer's own thread share: a round number
 * that each wake-up moves on, and the order to stop.
 */
static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	unsigned long	 round;
	int		 stop;
	int		 busy;		/* sessions sending */
	int		 poke[2];	/* a session done: look at the clock */
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0,
    { -1, -1 } };

int
pool_stopping(void)
{
	int stop;

	pthread_mutex_lock(&pool.mu);
	stop = pool.stop;
	pthread_mutex_unlock(&pool.mu);
	return stop;
}

/*
 * This session's share of what is due: a burst spreads over every
 * session instead of going to the first to look (a slow relay would then
 * send it at one message a round trip).
 */
size_t
pool_share(struct session *ss)
{
	int k = ss->ml->nsessions;
	ssize_t due = db_outbox_due(ss->db, time(NULL),
	    (size_t)SESSION_BATCH * (size_t)k);

	if (due <= 0)
		return SESSION_BATCH;
	due = (due + k - 1) / k;
	return due < SESSION_BATCH ? (size_t)due : SESSION_BATCH;
}

/*
 * Wait up to until (CLOCK_REALTIME) for a new round: more invites
 * committed.  0 on a stop or when the time is up.
 */
int
pool_wait_round(struct session *ss, const struct timespec *until)
{
	int got, rc = 0;

	pthread_mutex_lock(&pool.mu);
	while (!pool.stop && pool.round == ss->seen && rc == 0)
		rc = pthread_cond_timedwait(&pool.cv, &pool.mu, until);
	got = !pool.stop && pool.round != ss->seen;
	ss->seen = pool.round;
	pthread_mutex_unlock(&pool.mu);
	return got;
}

/* SIGTERM stays blocked during a session: look for it between batches. */
static int
term_pending(void)
{
	sigset_t set;

	return sigpending(&set) == 0 && (sigismember(&set, SIGTERM) == 1 ||
	    sigismember(&set, SIGINT) == 1);
}

/* Send what is due until nothing is left (or a stop). */
static void
session_drain(struct session *ss)
{
	struct outbox *ob;
	ssize_t n;

	while (!pool_stopping()) {
		if (record_kept(ss) > 0) {
			sleep(1);
			continue;
		}
		pthread_mutex_lock(&db_mu);
		n = db_outbox_claim(ss->db, time(NULL), pool_share(ss), &ob);
		pthread_mutex_unlock(&db_mu);
		if (n <= 0) {
			if (n < 0)
				sleep(1);
			return;
		}
		relay_send(ss, ob, (size_t)n);
	}
}

static void *
session_main(void *arg)
{
	struct session *ss = arg;

	for (;;) {
		pthread_mutex_lock(&pool.mu);
		while (!pool.stop && pool.round == ss->seen)
			pthread_cond_wait(&pool.cv, &pool.mu);
		ss->seen = pool.round;
		if (pool.stop) {
			pthread_mutex_unlock(&pool.mu);
			break;
		}
		pool.busy++;
		pthread_mutex_unlock(&pool.mu);
		session_drain(ss);
		pthread_mutex_lock(&pool.mu);
		pool.busy--;
		pthread_mutex_unlock(&pool.mu);
		if (write(pool.poke[1], "p", 1) == -1 && errno != EAGAIN)
			log_warn("mailer: poke");
	}
	/*
	 * Left to the next mailer, a kept verdict's row would be sent
	 * again: wait for the database (the supervisor's grace period is
	 * the limit).
	 */
	while (record_kept(ss) > 0)
		sleep(1);
	return NULL;
}

static void
pool_tell(int stop)
{
	pthread_mutex_lock(&pool.mu);
	pool.round++;
	pool.stop |= stop;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
}

/* Start the sessions, signals blocked in them: they stay this thread's. */
static struct session *
sessions_start(struct mailer *ml)
{
	struct session *ss;
	sigset_t all, old;
	int i, e;

	if ((ss = calloc((size_t)ml->nsessions, sizeof(*ss))) == NULL)
		fatal("mailer: calloc");
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < ml->nsessions; i++) {
		ss[i].ml = ml;
		ss[i].db = ml->session_db[i];
		if ((ss[i].unrec = calloc(SESSION_BATCH,
		    sizeof(*ss[i].unrec))) == NULL)
			fatal("mailer: calloc");
		if ((e = pthread_create(&ss[i].th, NULL, session_main,
		    &ss[i])) != 0) {
			errno = e;
			fatal("mailer: session thread");
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ss;
}

/*
 * Wait for a wake-up (an invite committed), the next due retry, or a
 * session that finished (then only the clock is looked at again).  The
 * retry's time counts only while no session sends: a busy one claims
 * what comes due itself.  1 when a round should start.
 */
static int
idle(struct mailer *ml)
{
	struct wake_rec w[WAKE_MAX];
	struct pollfd pfd[2];
	struct timespec ts;
	sigset_t none;
	char drain[64];
	time_t due, now;
	ssize_t got;
	size_t i;
	int timeout = IDLE_POLL, busy, n;

	pthread_mutex_lock(&pool.mu);
	busy = pool.busy;
	pthread_mutex_unlock(&pool.mu);
	if (!busy && (due = db_outbox_next_due(ml->db)) != 0) {
		now = time(NULL);
		if (due - now < timeout)
			timeout = due > now ? (int)(due - now) : 0;
	}
	pfd[0].fd = ml->wake_fd;
	pfd[1].fd = pool.poke[0];
	pfd[0].events = pfd[1].events = POLLIN;
	sigemptyset(&none);
	/* Due now: a moment for the round just started to take it. */
	ts.tv_sec = timeout;
	ts.tv_nsec = timeout == 0 ? 100 * 1000000L : 0;
	if ((n = ppoll(pfd, 2, &ts, &none)) == 0)
		return 1;
	if (n < 0)
		return 0;
	if (pfd[1].revents & POLLIN)
		while (read(pool.poke[0], drain, sizeof(drain)) > 0)
			;
	if (!(pfd[0].revents & POLLIN))
		return 0;
	while ((got = recv(ml->wake_fd, w, sizeof(w), 0)) > 0)
		for (i = 0; i < (size_t)got / sizeof(w[0]); i++)
			if (ml->conf->delivery_wait > 0)
				owner_put(&w[i]);
	return 1;
}

void
mailer_run(struct mailer *ml)
{
	struct session *ss;
	sigset_t set;
	int i, r, start;

	/* Signals only interrupt the idle wait, never an SMTP session. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	auth_client_init();
	if ((ml->tls = relay_tls_ctx()) == NULL)
		fatalx("mailer: cannot create a TLS context");
	if ((r = db_outbox_recover(ml->db)) > 0)
		log_warnx("mailer: %d invites left sending by a crash are "
		    "queued again", r);
	if (pipe2(pool.poke, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("mailer: pipe");
	ss = sessions_start(ml);
	/* Each wake-up (a batch committed, a retry due) starts a round. */
	start = 1;
	while (!*ml->stopping && !term_pending()) {
		if (start)
			pool_tell(0);
		start = idle(ml);
	}
	pool_tell(1);
	for (i = 0; i < ml->nsessions; i++) {
		pthread_join(ss[i].th, NULL);
		free(ss[i].unrec);
	}
	free(ss);
	close(pool.poke[0]);
	close(pool.poke[1]);
	SSL_CTX_free(ml->tls);
	auth_client_exit();
}

void
mailer_main(struct daemon *d)
{
	struct mailer ml;
	int i, prio;

	child_signals();
	close(d->sock);
	close(d->wake[1]);
	child_channels(d, ROLE_MAILER, -1);
	memset(&ml, 0, sizeof(ml));
	ml.conf = &d->conf;
	/*
	 * With delivery_wait 0 sending yields to answering: when the
	 * workers and the writer need both cores, the mailer (and the SMTP
	 * server it feeds, when that is on this host) takes what they leave,
	 * and catches up once the burst is over.  With a wait, the verdict
	 * is part of the answer: the mailer runs as the pool does.
	 */
	errno = 0;
	prio = getpriority(PRIO_PROCESS, 0);
	if (d->conf.delivery_wait == 0 && (errno != 0 ||
	    setpriority(PRIO_PROCESS, 0, prio + MAILER_NICE > 19 ? 19 :
	    prio + MAILER_NICE) == -1))
		log_warn("mailer: cannot lower its priority");
	child_confine(d, "mailer", 1);
	/*
	 * The mailer's commits only move stored invites along (claimed,
	 * sent, retried, failed); none of them is a promise to a client.
	 * Without an fsync each, a power cut can at worst roll a mark back
	 * and send that mail again, never lose an invite; a process crash
	 * loses nothing either way.  The writer's next fsync makes them
	 * durable with its own.
	 */
	ml.db = child_db(d, "mailer", SYNC_NORMAL);
	/* One connection a session thread, each opened here, after fork. */
	ml.nsessions = d->conf.smtp_sessions;
	if ((ml.session_db = calloc((size_t)ml.nsessions,
	    sizeof(*ml.session_db))) == NULL)
		fatal("mailer: calloc");
	for (i = 0; i < ml.nsessions; i++)
		ml.session_db[i] = child_db(d, "mailer", SYNC_NORMAL);
	ml.secret = d->secret;
	ml.smtp_password = d->smtp_password;
	ml.wake_fd = d->wake[0];
	ml.verdict_fds = d->verdict_fds;
	ml.nverdict = d->conf.workers;
	ml.stopping = &got_term;
	mailer_run(&ml);
	for (i = 0; i < ml.nsessions; i++)
		db_close(ml.session_db[i]);
	free(ml.session_db);
	db_close(ml.db);
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	_exit(0);
}
