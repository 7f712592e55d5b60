/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The writer process: group commit.  With synchronous = FULL every commit
 * costs an fsync, and workers that each commit their own invite queue up
 * behind one another for the write lock.  Instead the writer takes the
 * invites of all workers that are waiting (commit.c sends them), checks
 * and inserts each inside one BEGIN IMMEDIATE transaction and commits
 * them with one fsync, then answers each worker.  The limit checks stay
 * exact (one writer, one transaction, in order) and every 201 still
 * follows a durable commit.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "util.h"
#include "db.h"
#include "mailer.h"
#include "writer.h"
#include "daemon.h"
#include "metrics.h"


/*
 * Checkpoints.  SQLite starts the WAL again from its beginning at a commit
 * that finds it all copied back and no reader in it; under steady load
 * that does not happen by itself, and the WAL and its index, resident
 * in every process of the pool, would grow without end.  So a thread
 * of the writer, with its own connection, copies the WAL back once a
 * second, without blocking anyone.  Once a commit leaves the WAL longer
 * than WAL_MAX_FRAMES, the thread copies at once and every
 * RESTART_EVERY_MS while it stays that long, and after each copy
 * leaves the writer, between two batches, to copy the few pages left and
 * make sure no reader is in the WAL (little work), so that its next batch
 * starts the WAL again.  Nothing waits for a lock or a reader with the
 * write lock held; a reader in the WAL only delays the restart, and one
 * that stays (an open sqlite3 shell) lets the WAL grow until it leaves.
 * Copying back more often costs: every hot page is written again each
 * time, as at SQLite's default of 1,000 pages, which multiplies the
 * disk writes and slows the commits.
 */
#define BATCH_MAX	512	/* invites a transaction at most */
#define CKPT_EVERY_MS	1000
#define RESTART_EVERY_MS 100
#define WAL_MAX_FRAMES	16384		/* of 4 KiB: 64 MiB */

#define PURGE_EVERY	60	/* seconds between db_counts_purge */
static time_t last_purge;

/* One batch: every waiting invite, one transaction, one fsync. */
static int
commit_batch(struct db *db, const int *fds, struct commit_msg *m,
    const int *from, struct commit_reply *rep, int n)
{
	enum db_res dr;
	time_t now = time(NULL);
	int64_t start = util_now_ms();
	int i, ok = 0;

	if ((dr = db_begin(db)) != DB_OK) {
		for (i = 0; i < n; i++)
			rep[i].res = dr == DB_BUSY ? INV_BUSY : INV_ERR;
	} else {
		for (i = 0; i < n; i++) {
			rep[i].retry = 0;
			if (start >= m[i].deadline) {
				log_warnx("commit: invite %s came too late; its "
				    "worker has given up", m[i].inv.id);
				rep[i].res = INV_BUSY;
				continue;
			}
			rep[i].res = db_invite_add(db, &m[i].inv, now,
			    &rep[i].retry);
			ok += rep[i].res == INV_OK ||
			    rep[i].res == INV_HIDDEN;
		}
		/* Now and then, the limit counters no window reads. */
		if (ok > 0 && now - last_purge >= PURGE_EVERY) {
			last_purge = now;
			if (db_counts_purge(db, now) == -1)
				log_warnx("commit: cannot purge the counters");
		}
		if (ok > 0 && (dr = db_commit(db)) != DB_OK) {
			for (i = 0; i < n; i++)
				if (rep[i].res == INV_OK ||
				    rep[i].res == INV_HIDDEN)
					rep[i].res = dr == DB_BUSY ? INV_BUSY :
					    INV_ERR;
		} else if (ok == 0)
			db_rollback(db);
	}
	for (i = 0; i < n; i++) {
		/* An error of a lost server is busy: 503, and try again. */
		if (rep[i].res == INV_ERR && db_lost(db))
			rep[i].res = INV_BUSY;
		rep[i].seq = m[i].seq;
		if (send(fds[from[i]], &rep[i], sizeof(rep[i]),
		    MSG_DONTWAIT) == -1)
			log_warn("commit: answer");
	}
	log_debug("commit: %d invites, %d stored", n, ok);
	return dr == DB_OK ? ok : 0;
}

/* The checkpoint thread, and what it and the writer tell each other. */
struct ckpt {
	pthread_t	 th;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;		/* on CLOCK_MONOTONIC */
	struct db	*db;
	int		 long_wal;	/* past WAL_MAX_FRAMES */
	int		 copied;	/* just copied it back: restart now */
	int		 kick;		/* the WAL just got long: start now */
	int		 stop;
};

static void *
ckpt_main(void *arg)
{
	struct ckpt *ck = arg;
	struct timespec until;
	int ms, restart;

	pthread_mutex_lock(&ck->mu);
	while (!ck->stop) {
		/* Quick rounds only while the writer takes up each one. */
		ms = ck->long_wal && !ck->copied ? RESTART_EVERY_MS :
		    CKPT_EVERY_MS;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += ms / 1000;
		until.tv_nsec += (ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!ck->stop && !ck->kick && pthread_cond_timedwait(&ck->cv,
		    &ck->mu, &until) == 0)
			;
		if (ck->stop)
			break;
		ck->kick = 0;
		restart = ck->long_wal;
		pthread_mutex_unlock(&ck->mu);
		/*
		 * Twice, the second pass taking what came during the first,
		 * and to disk: the restart then has little left to do.
		 */
		(void)db_checkpoint(ck->db, 0);
		if (restart && (db_checkpoint(ck->db, 0) == -1 ||
		    db_sync(ck->db) == -1))
			restart = 0;
		pthread_mutex_lock(&ck->mu);
		ck->copied = restart;
	}
	pthread_mutex_unlock(&ck->mu);
	return NULL;
}

static void
ckpt_start(struct ckpt *ck, struct db *db)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int e;

	memset(ck, 0, sizeof(*ck));
	ck->db = db;
	pthread_mutex_init(&ck->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ck->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals stay with the writer's own thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if ((e = pthread_create(&ck->th, NULL, ckpt_main, ck)) != 0) {
		errno = e;
		fatal("commit: checkpoint thread");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Between batches: say how long the WAL is; restart it when it is time. */
static void
ckpt_between(struct ckpt *ck, struct db *db)
{
	int restart, was;

	pthread_mutex_lock(&ck->mu);
	was = ck->long_wal;
	ck->long_wal = db_wal_frames(db) > WAL_MAX_FRAMES;
	if (ck->long_wal && !was) {
		ck->kick = 1;
		pthread_cond_signal(&ck->cv);
	}
	restart = ck->long_wal && ck->copied;
	ck->copied = 0;
	pthread_mutex_unlock(&ck->mu);
	if (!restart)
		return;
	if (db_checkpoint(db, 1) == -1) {
		log_debug("commit: the WAL cannot start again yet");
		return;
	}
	/* The next commit starts it again, however long the wait for it. */
	pthread_mutex_lock(&ck->mu);
	ck->long_wal = 0;
	pthread_mutex_unlock(&ck->mu);
}

static void
ckpt_stop(struct ckpt *ck)
{
	pthread_mutex_lock(&ck->mu);
	ck->stop = 1;
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	pthread_join(ck->th, NULL);
	pthread_cond_destroy(&ck->cv);
	pthread_mutex_destroy(&ck->mu);
}

static void
wake_send(int fd, const struct wake_rec *w, int k)
{
	/* Full: the mailer has wake-ups to read already. */
	if (send(fd, w, (size_t)k * sizeof(*w), MSG_DONTWAIT) == -1 &&
	    errno != EAGAIN)
		log_warn("commit: wake the mailer");
}

/* Wake the mailer with each invite stored and the slot that waits for it. */
static void
wake_mailer(int fd, const struct commit_msg *m, const int *from,
    const struct commit_reply *rep, int n)
{
	struct wake_rec w[WAKE_MAX];
	int i, k = 0;

	for (i = 0; i < n; i++) {
		if (rep[i].res != INV_OK)
			continue;
		memcpy(w[k].id, m[i].inv.id, sizeof(w[k].id));
		w[k].slot = from[i];
		if (++k == WAKE_MAX) {
			wake_send(fd, w, k);
			k = 0;
		}
	}
	if (k > 0)
		wake_send(fd, w, k);
}

void
commit_run(struct db *db, struct db *ckdb, const int *fds, int nfds,
    int wake_fd, volatile sig_atomic_t *stopping)
{
	struct ckpt ck;
	struct pollfd *pfd;
	struct commit_msg *m;
	struct commit_reply *rep;
	int *from, i, k, n, first = 0, open_channels = nfds;
	ssize_t got;
	sigset_t none;
	const struct timespec beat = { METRICS_BEAT_MS / 1000,
	    METRICS_BEAT_MS % 1000 * 1000000L };

	pfd = calloc((size_t)nfds, sizeof(*pfd));
	m = calloc(BATCH_MAX, sizeof(*m));
	rep = calloc(BATCH_MAX, sizeof(*rep));
	from = calloc(BATCH_MAX, sizeof(*from));
	if (pfd == NULL || m == NULL || rep == NULL || from == NULL)
		fatal("commit: calloc");
	for (i = 0; i < nfds; i++) {
		pfd[i].fd = fds[i];
		pfd[i].events = POLLIN;
	}
	sigemptyset(&none);
	db_wal_watch(db);
	ckpt_start(&ck, ckdb);
	while (!*stopping && !child_term_pending()) {
		/* Alive (health, metrics.h): beat at least once a second. */
		metrics_beat(PART_WRITER);
		if (ppoll(pfd, (nfds_t)nfds, &beat, &none) <= 0)
			continue;
		/*
		 * Every invite waiting on each channel (a worker may have
		 * several), up to BATCH_MAX, starting one channel further
		 * each batch so that none waits behind the others.
		 */
		for (k = n = 0, first = (first + 1) % nfds; k < nfds; k++) {
			i = (first + k) % nfds;
			if (!(pfd[i].revents & POLLIN))
				continue;
			got = -1;
			while (n < BATCH_MAX && (got = recv(fds[i], &m[n],
			    sizeof(m[n]), MSG_DONTWAIT)) == (ssize_t)sizeof(m[n]))
				from[n++] = i;
			/*
			 * The end of a channel: its worker and the supervisor
			 * (which keeps every channel open) are gone.
			 */
			if (got == 0 && pfd[i].fd != -1) {
				pfd[i].fd = -1;
				open_channels--;
			}
		}
		/* One wake-up of the mailer a batch, not one an invite. */
		if (n > 0 && commit_batch(db, fds, m, from, rep, n) > 0)
			wake_mailer(wake_fd, m, from, rep, n);
		ckpt_between(&ck, db);
		if (open_channels == 0) {
			log_warnx("commit: the supervisor is gone; stopping");
			break;
		}
	}
	ckpt_stop(&ck);
	free(pfd);
	free(m);
	free(rep);
	free(from);
}

void
writer_main(struct daemon *d)
{
	struct db *db, *ckdb;
	int *fds, i;

	child_signals();
	close(d->sock);
	close(d->wake[0]);
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	if ((fds = calloc((size_t)d->conf.workers, sizeof(int))) == NULL)
		fatal("calloc");
	child_channels(d, ROLE_WRITER, -1);
	for (i = 0; i < d->conf.workers; i++)
		fds[i] = d->chan[i][0];
	child_confine(d, "writer", NULL);
	db = child_db(d, "writer", d->conf.synchronous);
	ckdb = child_db(d, "writer", d->conf.synchronous);
	commit_run(db, ckdb, fds, d->conf.workers, d->wake[1], &got_term);
	db_close(ckdb);
	db_close(db);
	free(fds);
	_exit(0);
}
