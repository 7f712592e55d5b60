/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * A worker process's loop: the next request of any connection it holds,
 * read whole by fcgi.c, dispatched by route.c and answered (or parked,
 * and answered when what it waits for comes); on a stop, parked invites
 * are answered before the connections go to the successor.  Handlers
 * park and finish requests here, never in fcgi.c.
 */
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "extern.h"
#include "api.h"
#include "db.h"
#include "daemon.h"

/* The request route_dispatch is serving; NULL once it is parked. */
static struct req *serving;

void
worker_park(struct req *r)
{
	fcgi_park(r);
	if (r == serving)
		serving = NULL;
}

void
worker_done(struct req *r)
{
	if (r->status == 0)
		api_fail(r, 500, "Internal error");
	else if (r->nanswers > 1)
		log_warnx("request %s: answered %d times", r->id, r->nanswers);
	fcgi_finish(r);
}

void
worker_share(int all)
{
	if (all)
		fcgi_share();
	else
		fcgi_share_waiting();
}

void
worker_run(struct ctx *ctx)
{
	struct pollfd pfd[2];
	int answers, i;

	for (;;) {
		serving = fcgi_accept(ctx->stopping, &answers,
		    ctx->conf->max_body);
		if (serving != NULL) {
			route_dispatch(ctx, serving);
			if (serving != NULL)
				worker_done(serving);
		} else if (answers)
			invite_resume(ctx);
		else
			break;
	}
	/*
	 * Those waiting for a verdict at once ("Invite queued"), those with
	 * the writer once it has answered.
	 */
	invite_resume(ctx);
	pfd[0].fd = ctx->commit_fd;
	pfd[1].fd = ctx->verdict_fd;
	pfd[0].events = pfd[1].events = POLLIN;
	while (invite_parked() > 0) {
		/*
		 * The loop may also end on an error, not a stop: verdicts
		 * and deadlines still come.  A channel whose other end is
		 * gone is watched no longer (it would return at once).
		 */
		if (poll(pfd, 2, invite_next_ms()) > 0)
			for (i = 0; i < 2; i++)
				if (pfd[i].revents & (POLLHUP | POLLERR))
					pfd[i].fd = -1;
		invite_resume(ctx);
	}
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
	close(d->wake[0]);
	child_channels(d, ROLE_WORKER, slot);
	memset(&ctx, 0, sizeof(ctx));
	ctx.conf = &d->conf;
	child_confine(d, "worker", 0);
	ctx.db = child_db(d, "worker", d->conf.synchronous);
	/*
	 * Every invite the writer commits empties a worker's page cache, so
	 * a big one buys nothing: 1 MiB keeps a worker small.
	 */
	if (db_exec(ctx.db, "PRAGMA cache_size = -1024") == -1)
		fatalx("worker: cannot size the page cache");
	/* Keys, apps and inviters: rows nearly every request reads. */
	if (db_cache_enable(ctx.db) == -1)
		fatalx("worker: out of memory");
	memcpy(ctx.secret, d->secret, sizeof(ctx.secret));
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	ctx.wake_fd = d->wake[1];
	ctx.commit_fd = d->chan[slot][1];
	if (commit_channel(ctx.commit_fd) == -1)
		fatal("worker: SO_RCVTIMEO");
	ctx.stopping = &got_term;
	ctx.verdict_fd = d->verdict[slot][1];
	if (fcgi_init(d->sock, d->hand[slot][0], d->shared,
	    ctx.commit_fd, invite_next_ms) != 0 ||
	    fcgi_watch(ctx.verdict_fd) != 0)
		fatal("worker: FastCGI");
	worker_run(&ctx);
	fcgi_handover(d->hand[slot][1]);
	db_close(ctx.db);
	OPENSSL_cleanse(ctx.secret, sizeof(ctx.secret));
	_exit(0);
}
