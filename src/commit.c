/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * A worker's side of the group commit (writer.c): it sends an invite to
 * the writer over its slot's channel and waits for the answer, or parks
 * the request and takes the answer when it comes.  Each worker slot has
 * its own SOCK_SEQPACKET pair, made by the supervisor, so a restarted
 * worker or writer finds its channel again; a sequence number matches
 * each answer to its invite and discards one meant for a worker that
 * died.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"
#include "api.h"
#include "db.h"
#include "writer.h"

#define REPLY_WAIT_MS	10000	/* a worker's patience with the writer */
#define REPLY_SLOW_MS	50	/* then its other connections move on */
#define REPLY_MARGIN_MS	1000	/* what a batch may take after its start */
#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src))

static void
msg_from(struct commit_msg *m, const struct invite_new *in, uint64_t seq)
{
	memset(m, 0, sizeof(*m));
	m->seq = seq;
	COPY(m->id, in->id);
	COPY(m->app, in->app_id);
	COPY(m->inviter, in->inviter_id);
	COPY(m->email, in->email);
	COPY(m->email_norm, in->email_norm);
	COPY(m->lang_req, in->lang_req);
	COPY(m->lang_res, in->lang_res);
	COPY(m->request_id, in->request_id);
	COPY(m->token_hash, in->token_hash);
	if (in->idem_key != NULL) {
		COPY(m->idem_cred, in->idem_cred);
		COPY(m->idem_key, in->idem_key);
		COPY(m->idem_hash, in->idem_hash);
	}
	m->limit_hour = in->limit_hour;
	m->limit_day = in->limit_day;
	m->limit_minute = in->limit_minute;
	m->cooldown = in->cooldown;
}

int
commit_channel(int fd)
{
	struct timeval tv = { 0, REPLY_SLOW_MS * 1000 };

	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/*
 * Invites a worker has sent and not yet had answered: those of parked
 * requests (commit_park), whose answers may also come while the worker
 * waits for one of its own (commit_invite).
 */
static struct parked {
	uint64_t	 seq;		/* 0: a free entry */
	int64_t		 give_up;	/* CLOCK_MONOTONIC ms */
	void		*arg;
	int		 done, res, retry;
} parked[PARK_MAX];
static int nparked;
static uint64_t last_seq;

static int
send_invite(int fd, const struct invite_new *in, uint64_t *seq,
    int64_t *give_up, int flags)
{
	struct commit_msg m;

	last_seq = last_seq == 0 ? (uint64_t)getpid() << 32 : last_seq + 1;
	msg_from(&m, in, last_seq);
	/*
	 * The writer skips an invite it reaches this late, so that the 503
	 * a worker answers after REPLY_WAIT_MS never stores it afterwards.
	 */
	m.deadline = util_now_ms() + REPLY_WAIT_MS - REPLY_MARGIN_MS;
	if (send(fd, &m, sizeof(m), flags) != (ssize_t)sizeof(m)) {
		if (flags == 0)
			log_warn("commit: send");
		return -1;
	}
	*seq = last_seq;
	*give_up = m.deadline + REPLY_MARGIN_MS;
	return 0;
}

/* An answer for a parked invite: keep it for commit_ready. */
static void
park_answer(const struct commit_reply *rep)
{
	int i;

	for (i = 0; i < PARK_MAX; i++)
		if (parked[i].seq == rep->seq && !parked[i].done) {
			parked[i].done = 1;
			parked[i].res = rep->res;
			parked[i].retry = rep->retry;
			return;
		}
	/* Else one left over for a predecessor in this slot: dropped. */
}

int
commit_invite(int fd, const struct invite_new *in, int *retry)
{
	struct commit_reply rep;
	int64_t give_up;
	uint64_t seq;
	ssize_t n;

	if (send_invite(fd, in, &seq, &give_up, 0) == -1)
		return INV_ERR;
	/*
	 * Blocking receives of REPLY_SLOW_MS each (SO_RCVTIMEO,
	 * commit_channel); after the first, requests on this worker's other
	 * connections go to idle workers rather than wait for this one.
	 * Answers for this worker's parked invites are kept for them.
	 */
	for (;;) {
		n = recv(fd, &rep, sizeof(rep), 0);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (util_now_ms() < give_up) {
				worker_share(1);
				continue;
			}
			log_warnx("commit: no answer from the writer");
			return INV_BUSY;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(rep))
			return INV_ERR;
		if (rep.seq == seq)
			break;
		park_answer(&rep);
	}
	*retry = rep.retry;
	return rep.res;
}

int
commit_park(int fd, const struct invite_new *in, void *arg)
{
	int i;

	if (nparked == PARK_MAX)
		return -1;
	for (i = 0; parked[i].seq != 0; i++)
		;
	/* A full channel (a stalled writer): the caller waits instead. */
	if (send_invite(fd, in, &parked[i].seq, &parked[i].give_up,
	    MSG_DONTWAIT) == -1) {
		parked[i].seq = 0;
		return -1;
	}
	parked[i].arg = arg;
	parked[i].done = 0;
	nparked++;
	return 0;
}

void *
commit_ready(int fd, int *res, int *retry)
{
	struct commit_reply rep;
	int64_t now;
	void *arg;
	int i;

	/* All of them: the loop's epoll set watches fd for more. */
	while (recv(fd, &rep, sizeof(rep), MSG_DONTWAIT) ==
	    (ssize_t)sizeof(rep))
		park_answer(&rep);
	if (nparked == 0)
		return NULL;
	now = util_now_ms();
	for (i = 0; i < PARK_MAX; i++) {
		if (parked[i].seq == 0)
			continue;
		if (parked[i].done) {
			*res = parked[i].res;
			*retry = parked[i].retry;
		} else if (now >= parked[i].give_up) {
			log_warnx("commit: no answer from the writer");
			*res = INV_BUSY;
			*retry = 0;
		} else
			continue;
		arg = parked[i].arg;
		parked[i].seq = 0;
		nparked--;
		return arg;
	}
	return NULL;
}

int
commit_parked(void)
{
	return nparked;
}

int
commit_next_ms(void)
{
	int64_t first = INT64_MAX, now;
	int i;

	if (nparked == 0)
		return -1;
	for (i = 0; i < PARK_MAX; i++)
		if (parked[i].seq != 0 && parked[i].give_up < first)
			first = parked[i].give_up;
	now = util_now_ms();
	return first <= now ? 0 : (int)(first - now);
}
