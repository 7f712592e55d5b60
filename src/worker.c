/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * A worker process and its loop, the one owner of what a worker waits
 * for.  conn.c finds the connection with a request, fcgi.c reads it,
 * route.c dispatches it to a handler, which answers it at once or parks
 * it with worker_store: the invite goes to the writer and the request
 * waits in the parked table (park.h) while the loop serves the other
 * connections.  The writer's answer (on the slot's channel), the
 * mailer's verdict (on its datagram channel) or the deadline wakes it:
 * its park_fn answers it, or asks to wait on for the verdict.  A request
 * whose Idempotency-Key's first request is still under way, maybe in
 * another worker, parks with worker_idem_wait: the first answer shows
 * only in the database, so it looks there every IDEM_CHECK_MS until the
 * answer is stored or its wait ends (a timer that runs only while such a
 * request waits).  On a stop, those waiting for a verdict or a key's
 * answer are answered at once ("Invite queued", the key's 409), those
 * with the writer once it has answered; then the connections go to the
 * successor.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "util.h"
#include "db.h"
#include "api.h"
#include "idem.h"
#include "worker.h"
#include "fcgi.h"
#include "mailer.h"
#include "park.h"
#include "conn.h"
#include "writer.h"
#include "daemon.h"
#include "metrics.h"

#define REPLY_WAIT_MS	10000	/* a request's patience with the writer */
#define REPLY_MARGIN_MS	1000	/* what a batch may take after its start */
#define IDEM_CHECK_MS	50	/* between looks for a key's first answer */

static struct park_table parked;
/* The request route_dispatch is serving; NULL once it is parked. */
static struct req *serving;
static uint64_t last_seq;
static int want_out;		/* waiting for room on the writer's channel */

void
worker_done(struct req *r)
{
	int fd = r->fd;

	if (r->status == 0)
		api_fail(r, 500, "Internal error");
	else if (r->nanswers > 1)
		log_warnx("request %s: answered %d times", r->id, r->nanswers);
	metrics_request(r->route, r->status);
	if (fcgi_finish(r) == -1)
		conn_gone(fd);
	else
		conn_unpark(fd);
}

/* Hand p what came; finish it unless it waits on for its verdict. */
static void
wake(struct ctx *ctx, struct parked *p, const struct wake *w)
{
	struct wake early = { WAKE_VERDICT, 0, 0, NULL };
	int ms;

	if ((ms = p->resume(ctx, p, w)) > 0 && w->kind == WAKE_STORED) {
		p->wait = PARK_VERDICT;
		p->deadline = util_now_ms() + ms;
		if (!p->early)
			return;
		early.v = &p->v;
		(void)p->resume(ctx, p, &early);
	}
	worker_done(p->r);
	park_free(&parked, p);
}

/* The writer gave no answer in time, or cannot be told. */
static void
wake_busy(struct ctx *ctx, struct parked *p, int res)
{
	struct wake w = { WAKE_STORED, res, 0, NULL };

	wake(ctx, p, &w);
}

/* Send what waits for the writer, as long as its channel has room. */
static void
send_unsent(struct ctx *ctx)
{
	struct commit_msg m;
	struct parked *p;
	int full = 0;

	while ((p = park_unsent(&parked)) != NULL) {
		memset(&m, 0, sizeof(m));
		m.seq = p->seq;
		/*
		 * The writer skips an invite it reaches this late, so that
		 * the 503 answered at the deadline never stores it later.
		 */
		m.deadline = p->deadline - REPLY_MARGIN_MS;
		m.inv = p->inv;
		if (send(ctx->commit_fd, &m, sizeof(m), MSG_DONTWAIT) ==
		    (ssize_t)sizeof(m)) {
			p->wait = PARK_WRITER;
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			full = 1;
			break;
		}
		log_warn("commit: send");
		wake_busy(ctx, p, INV_ERR);
	}
	/* A stalled writer: the loop learns when there is room again. */
	if (full != want_out && conn_want_out(ctx->commit_fd, full) == 0)
		want_out = full;
}

int
worker_store(struct ctx *ctx, struct req *r, const struct invite *inv,
    const struct idem_state *is, park_fn *fn)
{
	struct parked *p;

	last_seq = last_seq == 0 ? (uint64_t)getpid() << 32 : last_seq + 1;
	p = park_add(&parked, r, fn, last_seq, util_now_ms() + REPLY_WAIT_MS);
	if (p == NULL) {
		/* Cannot be: one request a connection, a slot each. */
		log_warnx("request %s: no room to park it", r->id);
		api_db_fail(r, 1);
		return -1;
	}
	p->inv = *inv;
	p->is = *is;
	conn_park(r->fd);
	if (r == serving)
		serving = NULL;
	send_unsent(ctx);
	return 0;
}

int
worker_idem_wait(struct req *r, const struct idem_state *is, int ms,
    park_fn *fn)
{
	struct parked *p;
	int64_t now = util_now_ms();

	if ((p = park_add(&parked, r, fn, 0, now + (ms < IDEM_CHECK_MS ?
	    ms : IDEM_CHECK_MS))) == NULL) {
		log_warnx("request %s: no room to park it", r->id);
		return -1;
	}
	p->wait = PARK_IDEM;
	p->until = now + ms;
	p->is = *is;
	conn_park(r->fd);
	if (r == serving)
		serving = NULL;
	return 0;
}

/* Look again for p's first answer; its last look once its wait is over. */
static void
idem_look(struct ctx *ctx, struct parked *p, int64_t now, int last)
{
	struct wake w = { WAKE_CHECK, 0, 0, NULL };

	if (last || now >= p->until)
		w.kind = WAKE_LATE;
	if (p->resume(ctx, p, &w) != 0 && w.kind == WAKE_CHECK) {
		p->deadline = now + IDEM_CHECK_MS < p->until ?
		    now + IDEM_CHECK_MS : p->until;
		return;
	}
	worker_done(p->r);
	park_free(&parked, p);
}

/* The writer's answers: each to the request that waits for it. */
static void
take_answers(struct ctx *ctx)
{
	struct commit_reply rep;
	struct parked *p;
	struct wake w = { WAKE_STORED, 0, 0, NULL };

	while (recv(ctx->commit_fd, &rep, sizeof(rep), MSG_DONTWAIT) ==
	    (ssize_t)sizeof(rep)) {
		/* Else one for a predecessor in this slot, or given up on. */
		if ((p = park_by_seq(&parked, rep.seq)) == NULL)
			continue;
		w.res = rep.res;
		w.retry = rep.retry;
		wake(ctx, p, &w);
	}
}

/*
 * The mailer's verdicts (it tells every worker): ours wake their
 * requests.  The writer answers after its commit, and a busy mailer may
 * send the mail before this worker has read that answer: such a verdict
 * is kept for it.
 */
static void
take_verdicts(struct ctx *ctx)
{
	struct verdict_msg v;
	struct parked *p;
	struct wake w = { WAKE_VERDICT, 0, 0, &v };

	while (ctx->verdict_fd != -1 && recv(ctx->verdict_fd, &v, sizeof(v),
	    MSG_DONTWAIT) == (ssize_t)sizeof(v)) {
		v.id[sizeof(v.id) - 1] = '\0';
		v.reply[sizeof(v.reply) - 1] = '\0';
		if ((p = park_by_invite(&parked, v.id)) == NULL)
			continue;	/* another worker's, or past its wait */
		if (p->wait == PARK_WRITER) {
			p->early = 1;
			p->v = v;
		} else
			wake(ctx, p, &w);
	}
}

/*
 * Deadlines come: the writer's is a 503, a verdict's "Invite queued", a
 * key's a look for its answer.  all_verdicts (a stop): those waiting for
 * a verdict or a key's answer are answered now.
 */
static void
expire(struct ctx *ctx, int all_verdicts)
{
	struct wake late = { WAKE_LATE, 0, 0, NULL };
	struct parked *p;
	int64_t now = util_now_ms();
	int i;

	while ((p = park_due(&parked, now)) != NULL) {
		if (p->wait == PARK_IDEM) {
			idem_look(ctx, p, now, 0);
			continue;
		}
		if (p->wait == PARK_VERDICT) {
			wake(ctx, p, &late);
			continue;
		}
		log_warnx("commit: no answer from the writer");
		wake_busy(ctx, p, INV_BUSY);
	}
	for (i = 0; all_verdicts && i < PARK_MAX; i++)
		if (parked.e[i].wait == PARK_VERDICT)
			wake(ctx, &parked.e[i], &late);
		else if (parked.e[i].wait == PARK_IDEM)
			idem_look(ctx, &parked.e[i], now, 1);
}

static void
serve(struct ctx *ctx, int fd)
{
	if ((serving = fcgi_read(fd, ctx->conf->max_body)) == NULL) {
		conn_gone(fd);	/* libfcgi closed it */
		return;
	}
	route_dispatch(ctx, serving);
	if (serving != NULL)
		worker_done(serving);
	serving = NULL;
}

/* Once stopping, or on an error: answer what is parked, then return. */
static void
worker_drain(struct ctx *ctx)
{
	struct pollfd pfd[2];
	int i;

	pfd[0].fd = ctx->commit_fd;
	pfd[1].fd = ctx->verdict_fd;
	pfd[1].events = POLLIN;
	for (;;) {
		take_answers(ctx);
		take_verdicts(ctx);
		send_unsent(ctx);
		expire(ctx, 1);
		if (parked.n == 0)
			return;
		pfd[0].events = POLLIN | (want_out ? POLLOUT : 0);
		/*
		 * Verdicts and deadlines still come.  A channel whose
		 * other end is gone is watched no longer (it would return
		 * at once).
		 */
		if (poll(pfd, 2, park_next_ms(&parked, util_now_ms())) > 0)
			for (i = 0; i < 2; i++)
				if (pfd[i].revents & (POLLHUP | POLLERR))
					pfd[i].fd = -1;
	}
}

void
worker_run(struct ctx *ctx)
{
	int fd;

	for (;;) {
		fd = conn_wait(ctx->stopping, park_next_ms(&parked,
		    util_now_ms()));
		if (fd == CONN_STOP)
			break;
		if (fd >= 0)
			serve(ctx, fd);
		else {
			take_answers(ctx);
			take_verdicts(ctx);
			send_unsent(ctx);
		}
		expire(ctx, 0);
	}
	worker_drain(ctx);
}

void
worker_main(struct daemon *d, int slot)
{
	struct ctx ctx;

	child_signals();
	/*
	 * A worker hashes, computes HMACs and verifies signatures; it never
	 * speaks TLS, so openssl.cnf (the system's TLS policy) is not for
	 * it, and loading it would only cost each worker memory.
	 */
	if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1)
		fatalx("worker: cannot initialise OpenSSL");
	/* The writer wakes the mailer, never a worker. */
	close(d->wake[0]);
	close(d->wake[1]);
	child_channels(d, ROLE_WORKER, slot);
	memset(&ctx, 0, sizeof(ctx));
	ctx.conf = &d->conf;
	child_confine(d, "worker", NULL);
	ctx.db = child_db(d, "worker", d->conf.synchronous);
	/*
	 * Every invite the writer commits empties a worker's page cache, so
	 * a big one buys nothing: 1 MiB keeps a worker small.
	 */
	if (!db_shared(ctx.db) &&
	    db_exec(ctx.db, "PRAGMA cache_size = -1024") == -1)
		fatalx("worker: cannot size the page cache");
	/* Keys, apps and inviters: rows nearly every request reads. */
	if (db_cache_enable(ctx.db) == -1)
		fatalx("worker: out of memory");
	memcpy(ctx.secret, d->secret, sizeof(ctx.secret));
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	ctx.commit_fd = d->chan[slot][1];
	ctx.stopping = &got_term;
	ctx.verdict_fd = d->verdict[slot][1];
	if (fcgi_init() != 0 || conn_init(d->sock, d->hand[slot][0]) != 0 ||
	    conn_watch(ctx.commit_fd) != 0 || conn_watch(ctx.verdict_fd) != 0)
		fatal("worker: FastCGI");
	worker_run(&ctx);
	conn_handover(d->hand[slot][1]);
	db_close(ctx.db);
	OPENSSL_cleanse(ctx.secret, sizeof(ctx.secret));
	_exit(0);
}
