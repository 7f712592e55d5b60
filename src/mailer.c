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
#include "metrics.h"

#define IDLE_POLL	10	/* seconds between looks for due retries */
#define MAILER_NICE	10	/* a session thread's nice above the pool's */

pthread_mutex_t build_mu = PTHREAD_MUTEX_INITIALIZER;


/*
 * A verdict a session hands in, for the keeper to record.  One the
 * database would not take (its disk full, an I/O error) stays here and
 * is written again before anything new is claimed.  Its row stays
 * "sending" meanwhile; the mail is never sent again for it, which it
 * would be if the row were left for the next mailer's recovery.
 */
struct unrecorded {
	char	 id[UUID_LEN + 1];
	char	 app[UUID_LEN + 1];
	char	 email_norm[EMAIL_MAX + 1];
	char	 status[8];
	char	 reply[256];
	time_t	 next;
	int	 bounce;		/* also list the address */
	int	 said;			/* its refusal is logged */
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
 * Tell the waiting worker a recorded verdict without waiting: one whose
 * channel is full answers its request "Invite queued" at the deadline.
 * One of this mailer's (anyone: every worker when the one waiting is not
 * known), or one another node's mailer recorded (anyone 0: only a worker
 * of this node known to wait for it).
 */
static void
tell_workers(struct mailer *ml, const char *id, const char *status,
    const char *reply, int anyone)
{
	struct verdict_msg v;
	int i, slot;

	if (ml->conf->delivery_wait == 0)
		return;			/* no request waits for a verdict */
	if ((slot = owner_take(id)) < 0 && !anyone)
		return;
	memset(&v, 0, sizeof(v));
	snprintf(v.id, sizeof(v.id), "%s", id);
	v.kind = strcmp(status, "sent") == 0 ? VERDICT_SENT :
	    strcmp(status, "failed") == 0 ? VERDICT_FAILED :
	    VERDICT_DEFERRED;
	snprintf(v.reply, sizeof(v.reply), "%s", reply);
	if (slot >= 0 && slot < ml->nverdict) {
		(void)send(ml->verdict_fds[slot], &v, sizeof(v), MSG_DONTWAIT);
		return;
	}
	for (i = 0; i < ml->nverdict; i++)
		(void)send(ml->verdict_fds[i], &v, sizeof(v), MSG_DONTWAIT);
}

/* PostgreSQL: a verdict another node's mailer recorded (db_verdicts_heard). */
static void
verdict_heard(void *arg, const char *id, const char *status,
    const char *reply)
{
	tell_workers(arg, id, status, reply, 0);
}

/*
 * What the sessions and the keeper (the mailer's own thread, the only
 * one that writes to the database) share: invites claimed and not yet
 * taken by a session (a ring), verdicts handed in and not yet recorded,
 * how many claimed invites wait for their verdict, the order to stop.
 */
#define OUT_MAX		SESSION_BATCH	/* claimed, verdict not yet recorded */

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;		/* invites in q, or stop */
	struct outbox	 q[OUT_MAX];
	size_t		 qhead, qlen;
	struct unrecorded v[OUT_MAX];
	size_t		 nv;
	size_t		 out;		/* claimed, verdict not recorded */
	int		 stop;
	int		 poke[2];	/* a verdict handed in */
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
    .poke = { -1, -1 } };

void
session_record(struct session *ss, const struct outbox *ob, const char *status,
    const char *reply, time_t next, int bounce)
{
	struct unrecorded *u;

	pthread_mutex_lock(&pool.mu);
	/* Cannot be full: one verdict a claimed invite, OUT_MAX claimed. */
	if (pool.nv == OUT_MAX) {
		pthread_mutex_unlock(&pool.mu);
		log_errx("invite %s: no room to record \"%s\"; it may be sent "
		    "again", ob->id, status);
		return;
	}
	u = &pool.v[pool.nv++];
	memset(u, 0, sizeof(*u));
	COPY(u->id, ob->id);
	COPY(u->app, ob->app_id);
	COPY(u->email_norm, ob->email_norm);
	COPY(u->status, status);
	COPY(u->reply, reply);
	u->next = next;
	u->bounce = bounce;
	pthread_mutex_unlock(&pool.mu);
	if (write(pool.poke[1], "v", 1) == -1 && errno != EAGAIN)
		log_warn("mailer: poke");
}

size_t
pool_take(struct session *ss, struct outbox **out, size_t max,
    const struct timespec *until)
{
	size_t k = (size_t)ss->ml->nsessions, n, i;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&pool.mu);
	while (!pool.stop && pool.qlen == 0 && rc == 0)
		rc = until == NULL ? pthread_cond_wait(&pool.cv, &pool.mu) :
		    pthread_cond_timedwait(&pool.cv, &pool.mu, until);
	/*
	 * A share of what waits: a burst spreads over every session instead
	 * of going to the first to look (a slow relay would then send it at
	 * one message a round trip).
	 */
	n = pool.stop ? 0 : (pool.qlen + k - 1) / k;
	if (n > max)
		n = max;
	if (n > 0 && (*out = calloc(n, sizeof(**out))) == NULL)
		n = 0;
	for (i = 0; i < n; i++) {
		(*out)[i] = pool.q[pool.qhead];
		pool.qhead = (pool.qhead + 1) % OUT_MAX;
		pool.qlen--;
	}
	pthread_mutex_unlock(&pool.mu);
	return n;
}

/* The keeper's state: whether the database refuses, since when it said. */
static int failing;
static time_t failing_said;

/* Log each refused verdict once, and every 10 s that they wait. */
static void
keep_refused(size_t nv)
{
	time_t now = time(NULL);
	size_t i;

	pthread_mutex_lock(&pool.mu);
	for (i = 0; i < nv; i++)
		if (!pool.v[i].said) {
			pool.v[i].said = 1;
			log_errx("invite %s: cannot record \"%s\" in the "
			    "database; kept to record again, not sent again",
			    pool.v[i].id, pool.v[i].status);
		}
	pthread_mutex_unlock(&pool.mu);
	failing = 1;
	if (now - failing_said >= 10) {
		failing_said = now;
		log_errx("mailer: %zu verdicts wait for the database (is its "
		    "disk full?); nothing new is sent until they are "
		    "recorded", nv);
	}
}

/*
 * Rows left 'sending' by a mailer that is gone, queued again to be sent
 * once more (the documented crash window): at start every one on
 * SQLite, where this pool is the file's only one; on PostgreSQL, shared
 * by the nodes' mailers, only claims whose lease lapsed (a live mailer
 * renews its own, held_touch), looked for at start and then every
 * claim_lease / 4, so that a dead mailer's claims are sent by the
 * others, or by the one that replaced it.
 */
static int
recover(struct mailer *ml, int start)
{
	static time_t last;
	time_t now = time(NULL);
	int r;

	if (!db_shared(ml->db)) {
		if (start && (r = db_outbox_recover(ml->db, now)) > 0)
			log_warnx("mailer: %d invites left sending by a crash "
			    "are queued again", r);
		return 0;
	}
	if (!start && now - last < ml->conf->claim_lease / 4)
		return 0;
	last = now;
	if ((r = db_outbox_recover(ml->db, now)) > 0)
		log_warnx("mailer: %d claimed invites whose lease lapsed (their "
		    "mailer died or stalled past claim_lease) are queued "
		    "again", r);
	return r > 0;
}

/*
 * PostgreSQL: the claims this mailer holds, their verdict not recorded
 * (the keeper's alone), whose leases it moves on every claim_lease / 4
 * so that only a dead mailer's claims ever lapse.
 */
static char	 held[OUT_MAX][UUID_LEN + 1];
static size_t	 nheld;

static void
held_update(const struct unrecorded *v, size_t nv, const struct outbox *ob,
    size_t n)
{
	size_t i, j;

	for (i = 0; i < nv; i++)
		for (j = 0; j < nheld; j++)
			if (strcmp(held[j], v[i].id) == 0) {
				memcpy(held[j], held[--nheld], sizeof(held[0]));
				break;
			}
	for (i = 0; i < n && nheld < OUT_MAX; i++)
		memcpy(held[nheld++], ob[i].id, sizeof(held[0]));
}

static void
held_touch(struct mailer *ml)
{
	static time_t last;
	time_t now = time(NULL);

	if (now - last < ml->conf->claim_lease / 4)
		return;
	last = now;
	if (db_outbox_touch(ml->db, (const char (*)[UUID_LEN + 1])held, nheld,
	    now) == -1)
		log_warnx("mailer: cannot renew the leases of %zu claims",
		    nheld);
}

/*
 * One round of the keeper: the verdicts handed in recorded and, with
 * claim, due invites claimed as far as there is room, in one
 * transaction; then the waiting workers told (never before the row says
 * so) and the claimed handed to the sessions.  1 when it claimed all it
 * had room for (more may be due).
 */
static int
keep(struct mailer *ml, int claim)
{
	static struct unrecorded v[OUT_MAX];
	static struct outbox_verdict ov[OUT_MAX];
	struct outbox *ob;
	size_t nv, room, i;
	ssize_t n;

	/* PostgreSQL: every round, claiming or not; what lapsed is due. */
	if (db_shared(ml->db)) {
		held_touch(ml);
		if (!failing && recover(ml, 0))
			claim = 1;
	}
	pthread_mutex_lock(&pool.mu);
	nv = pool.nv;
	memcpy(v, pool.v, nv * sizeof(v[0]));
	/* The verdicts recorded free their places. */
	room = claim && !failing ? OUT_MAX - pool.out + nv : 0;
	pthread_mutex_unlock(&pool.mu);
	/* While the database refuses, an empty round tries it again. */
	if (nv == 0 && room == 0 && !failing)
		return 0;
	for (i = 0; i < nv; i++) {
		ov[i].id = v[i].id;
		ov[i].status = v[i].status;
		ov[i].reply = v[i].reply;
		ov[i].app = v[i].app;
		ov[i].email_norm = v[i].email_norm;
		ov[i].next = v[i].next;
		ov[i].bounce = v[i].bounce;
	}
	if ((n = db_outbox_keep(ml->db, ov, nv, time(NULL), room, &ob)) < 0) {
		keep_refused(nv);
		return 0;
	}
	for (i = 0; failing && i < nv; i++)
		log_info("invite %s: \"%s\" recorded at last", v[i].id,
		    v[i].status);
	failing = 0;
	pthread_mutex_lock(&pool.mu);
	memmove(pool.v, pool.v + nv, (pool.nv - nv) * sizeof(pool.v[0]));
	pool.nv -= nv;
	pool.out -= nv;
	for (i = 0; i < (size_t)n; i++)
		pool.q[(pool.qhead + pool.qlen++) % OUT_MAX] = ob[i];
	pool.out += (size_t)n;
	if (n > 0)
		pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	if (db_shared(ml->db))
		held_update(v, nv, ob, (size_t)n);
	free(ob);		/* the strings are the queue's now */
	for (i = 0; i < nv; i++) {
		metrics_verdict(v[i].status);
		tell_workers(ml, v[i].id, v[i].status, v[i].reply, 1);
	}
	return room > 0 && (size_t)n == room;
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
 * With delivery_wait 0 sending yields to answering: when the workers and
 * the writer need both cores, the sessions (and the SMTP server they
 * feed, when that is on this host) take what they leave, and catch up
 * once the burst is over.  Only the sessions' threads: the keeper holds
 * the write lock in its short transactions, and a keeper put off by the
 * scheduler while it holds it would keep the writer waiting (on Linux a
 * thread has a nice value of its own).  With a wait, the verdict is part
 * of the answer: the sessions run as the pool does.
 */
static void
session_yield(void)
{
	pid_t tid = gettid();
	int prio;

	errno = 0;
	prio = getpriority(PRIO_PROCESS, (id_t)tid);
	if (errno != 0 || setpriority(PRIO_PROCESS, (id_t)tid,
	    prio + MAILER_NICE > 19 ? 19 : prio + MAILER_NICE) == -1)
		log_warn("mailer: cannot lower a session's priority");
}

/* SIGTERM stays blocked during a session: look for it between batches. */
static void *
session_main(void *arg)
{
	struct session *ss = arg;
	struct outbox *ob;
	size_t n;

	if (ss->ml->conf->delivery_wait == 0)
		session_yield();
	while ((n = pool_take(ss, &ob, SESSION_BATCH, NULL)) > 0)
		relay_send(ss, ob, n);
	return NULL;
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
 * How long the keeper may wait: not at all with verdicts to record or
 * more due, a second while the database refuses, else until the next
 * due retry, IDLE_POLL at most.
 */
static int
keeper_ms_due(struct mailer *ml, int more)
{
	time_t due, now;
	size_t nv;

	pthread_mutex_lock(&pool.mu);
	nv = pool.nv;
	pthread_mutex_unlock(&pool.mu);
	if (failing)
		return 1000;
	if (nv > 0 || more)
		return 0;
	if ((due = db_outbox_next_due(ml->db)) == 0)
		return IDLE_POLL * 1000;
	now = time(NULL);
	/* Due now: a moment for a round just started to take it. */
	if (due <= now)
		return 100;
	return due - now < IDLE_POLL ? (int)(due - now) * 1000 :
	    IDLE_POLL * 1000;
}

static int
keeper_ms(struct mailer *ml, int more)
{
	int ms, lease;

	ms = keeper_ms_due(ml, more);
	/* PostgreSQL: a round at least every claim_lease / 4 (held_touch). */
	lease = ml->conf->claim_lease * 1000 / 4;
	return db_shared(ml->db) && ms > lease ? lease : ms;
}

/*
 * The writer's wake-ups (invites committed), who waits for each noted;
 * 1 when any came.
 */
static int
take_wakes(struct mailer *ml)
{
	struct wake_rec w[WAKE_MAX];
	ssize_t got;
	size_t i;
	int any = 0;

	while ((got = recv(ml->wake_fd, w, sizeof(w), 0)) > 0) {
		any = 1;
		for (i = 0; i < (size_t)got / sizeof(w[0]); i++)
			if (ml->conf->delivery_wait > 0)
				owner_put(&w[i]);
	}
	return any;
}

/*
 * Wait for a wake-up, a verdict handed in, or ms; on PostgreSQL tell
 * the verdicts other nodes' mailers recorded meanwhile.  1 when the
 * next round should claim.
 */
static int
keeper_wait(struct mailer *ml, int ms)
{
	struct pollfd pfd[3];
	struct timespec ts;
	sigset_t none;
	char drain[64];
	int slice;

	pfd[0].fd = ml->wake_fd;
	pfd[1].fd = pool.poke[0];
	/* PostgreSQL: other nodes' verdicts (-1, never ready, for SQLite). */
	pfd[2].fd = db_verdicts_fd(ml->db);
	pfd[0].events = pfd[1].events = pfd[2].events = POLLIN;
	sigemptyset(&none);
	for (;;) {
		/* The wake-ups first: a verdict heard finds who waits. */
		if (take_wakes(ml))
			return 1;
		/* Those libpq read with the last statement's answer too. */
		if (db_verdicts_heard(ml->db, verdict_heard, ml) == -1)
			pfd[2].fd = -1;	/* lost: the next round reconnects */
		if (ms <= 0)
			return 1;
		/* In slices of METRICS_BEAT_MS: the keeper beats meanwhile. */
		metrics_beat(PART_MAILER);
		slice = ms > METRICS_BEAT_MS ? METRICS_BEAT_MS : ms;
		ms -= slice;
		ts.tv_sec = slice / 1000;
		ts.tv_nsec = (long)(slice % 1000) * 1000000L;
		if (ppoll(pfd, 3, &ts, &none) < 0)
			return 0;	/* a signal: the caller looks */
		if (pfd[2].revents & (POLLERR | POLLHUP | POLLNVAL))
			pfd[2].fd = -1;
		if (pfd[1].revents & POLLIN) {
			while (read(pool.poke[0], drain, sizeof(drain)) > 0)
				;
			return take_wakes(ml);
		}
	}
}

/*
 * Stopping: the sessions end their connections; every verdict they
 * handed in is recorded (waiting for the database as long as the
 * supervisor's grace allows: left to the next mailer, its row would be
 * sent again); what was claimed and not sent goes back in the queue.
 */
static void
keeper_stop(struct mailer *ml, struct session *ss)
{
	struct outbox *one;
	int i, r;

	pthread_mutex_lock(&pool.mu);
	pool.stop = 1;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	for (i = 0; i < ml->nsessions; i++)
		pthread_join(ss[i].th, NULL);
	while (pool.nv > 0) {
		(void)keep(ml, 0);
		if (pool.nv > 0)
			sleep(1);
	}
	/* Those claimed and not tried: SQLite's all, PostgreSQL's ours. */
	if (!db_shared(ml->db) &&
	    (r = db_outbox_recover(ml->db, time(NULL))) > 0)
		log_info("mailer: %d claimed invites back in the queue", r);
	for (r = 0; pool.qlen > 0; pool.qlen--) {
		if (db_shared(ml->db) &&
		    db_outbox_unclaim(ml->db, pool.q[pool.qhead].id) == 1)
			r++;
		if ((one = calloc(1, sizeof(*one))) != NULL) {
			*one = pool.q[pool.qhead];
			db_outbox_free(one, 1);
		}
		pool.qhead = (pool.qhead + 1) % OUT_MAX;
	}
	if (db_shared(ml->db) && r > 0)
		log_info("mailer: %d claimed invites back in the queue", r);
}

void
mailer_run(struct mailer *ml)
{
	struct session *ss;
	sigset_t set;
	int claim = 1, got = 0;

	/* Signals only interrupt the keeper's wait, never an SMTP session. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	auth_client_init();
	if ((ml->tls = relay_tls_ctx()) == NULL)
		fatalx("mailer: cannot create a TLS context");
	(void)recover(ml, 1);
	if (pipe2(pool.poke, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("mailer: pipe");
	ss = sessions_start(ml);
	while (!*ml->stopping && !child_term_pending()) {
		metrics_beat(PART_MAILER);
		got = keep(ml, claim || got == 1);
		claim = keeper_wait(ml, keeper_ms(ml, got == 1));
	}
	keeper_stop(ml, ss);
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
	int ports[] = { d->conf.smtp_port, 0 };

	child_signals();
	close(d->sock);
	close(d->wake[1]);
	child_channels(d, ROLE_MAILER, -1);
	memset(&ml, 0, sizeof(ml));
	ml.conf = &d->conf;
	child_confine(d, "mailer", ports);
	/*
	 * The mailer's commits only move stored invites along (claimed,
	 * sent, retried, failed); none of them is a promise to a client.
	 * Without an fsync each, a power cut can at worst roll a mark back
	 * and send that mail again, never lose an invite; a process crash
	 * loses nothing either way.  The writer's next fsync makes them
	 * durable with its own.
	 */
	ml.db = child_db(d, "mailer", SYNC_NORMAL);
	db_outbox_lease(ml.db, d->conf.claim_lease);
	if (d->conf.delivery_wait > 0 && db_verdicts_listen(ml.db) == -1)
		log_warnx("mailer: cannot hear other nodes' verdicts; their "
		    "invites are answered \"Invite queued\" until a "
		    "reconnection");
	ml.nsessions = d->conf.smtp_sessions;
	ml.secret = d->secret;
	ml.smtp_password = d->smtp_password;
	ml.wake_fd = d->wake[0];
	ml.verdict_fds = d->verdict_fds;
	ml.nverdict = d->conf.workers;
	ml.stopping = &got_term;
	mailer_run(&ml);
	db_close(ml.db);
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	_exit(0);
}
