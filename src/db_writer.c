/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The writer's side: the limit checks (counters per slot of each
 * window) and the insert of an invite, in the writer's transaction.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util.h"
#include "db.h"
#include "db_int.h"
#include "metrics.h"

static int
query_exists(struct stmt *st, int *exists)
{
	int rc = st_step(st);

	*exists = rc == SQLITE_ROW;
	st_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/*
 * A limit's window, counted in fixed slots (invite_counts): the check
 * sums the slots, and only near the limit counts the invites of the one
 * slot the window's start cuts, exactly, from the invites table; so its
 * cost is a few dozen rows whatever the limit and however many invites
 * the window holds, and its answer (and Retry-After, to the second) is
 * that of counting every invite of the window.
 */
struct window {
	const char	*kind;
	int		 len;		/* seconds */
	int		 slot;		/* seconds, a divisor of len */
	int		 by_app;	/* else by inviter */
};

static const struct window win_hour = { "hour", HOUR_WINDOW, HOUR_SLOT, 0 };
static const struct window win_day = { "day", DAY_WINDOW, DAY_SLOT, 0 };
static const struct window win_minute = { "minute", MINUTE_WINDOW,
    MINUTE_SLOT, 1 };
#define SLOTS_MAX	64		/* len / slot + 1, for each of them */

/* Invites of id in (lo, hi) (unix seconds, exclusive); -1 on error. */
static long long
count_in(struct db *db, const struct window *w, const char *id, time_t lo,
    time_t hi)
{
	struct stmt *st;
	char a[21], b[21];
	long long n = -1;

	util_isotime(lo, a);
	util_isotime(hi, b);
	if ((st = db_stmt(db, w->by_app ? Q_IN_APP : Q_IN_INVITER)) == NULL ||
	    BIND_TEXTS(db, st, id, a, b) == -1)
		return -1;
	if (st_step(st) == SQLITE_ROW)
		n = st_int(st, 0);
	st_reset(st);
	return n;
}

/* The k-th oldest (from 0) invite of id in (lo, hi); 0 on error. */
static time_t
nth_in(struct db *db, const struct window *w, const char *id, time_t lo,
    time_t hi, long long k)
{
	struct stmt *st;
	char a[21], b[21], t[32];

	util_isotime(lo, a);
	util_isotime(hi, b);
	if ((st = db_stmt(db, w->by_app ? Q_NTH_APP : Q_NTH_INVITER)) == NULL ||
	    BIND_TEXTS(db, st, id, a, b) == -1 ||
	    bind_int(db, st, 4, k) == -1)
		return 0;
	if (query_text(db, st, t, sizeof(t)) == -1 || t[0] == '\0')
		return 0;
	return parse_iso(t);
}

/* The slots of id from first on, oldest first (dropping older ones). */
static int
slots_of(struct db *db, const struct window *w, const char *id,
    time_t first, time_t slot[SLOTS_MAX], long long n[SLOTS_MAX])
{
	struct stmt *st;
	int k = 0, old = 0, rc;

	if ((st = db_stmt(db, Q_COUNTS)) == NULL ||
	    BIND_TEXTS(db, st, w->kind, id) == -1)
		return -1;
	while ((rc = st_step(st)) == SQLITE_ROW) {
		if (st_int(st, 0) < first)
			old = 1;
		else if (k < SLOTS_MAX) {
			slot[k] = (time_t)st_int(st, 0);
			n[k++] = st_int(st, 1);
		} else		/* the clock went back: count them all */
			n[k - 1] += st_int(st, 1);
	}
	st_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (old) {
		if ((st = db_stmt(db, Q_COUNTS_DROP)) == NULL ||
		    BIND_TEXTS(db, st, w->kind, id) == -1 ||
		    bind_int(db, st, 3, (int64_t)first) == -1)
			return -1;
		rc = st_step(st);
		st_reset(st);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return k;
}

/*
 * Whether a window limit is exhausted (a limit of 0 is off): an invite
 * counts while it is younger than the window.  When it is, *retry gets
 * the seconds until a slot frees (the later of two limits).  -1 on error.
 */
static int
limit_check(struct db *db, const struct window *w, const char *id,
    time_t now, int limit, int *retry)
{
	time_t slot[SLOTS_MAX], since = now - w->len, edge, t = 0;
	long long n[SLOTS_MAX], full = 0, part = 0, need;
	int k, i;

	if (limit <= 0)
		return 0;
	/* The slot the window's start cuts: only its later part counts. */
	edge = (since + 1) / w->slot * w->slot;
	if ((k = slots_of(db, w, id, edge, slot, n)) == -1)
		return -1;
	for (i = 0; i < k; i++)
		full += slot[i] == edge ? 0 : n[i];
	if (full + (k > 0 && slot[0] == edge ? n[0] : 0) < limit)
		return 0;
	if (k > 0 && slot[0] == edge && (part = count_in(db, w, id, since,
	    edge + w->slot)) == -1)
		return -1;
	if (full + part < limit)
		return 0;
	/* The need-th oldest of the window must leave it first. */
	need = full + part - limit + 1;
	if (need <= part)
		t = nth_in(db, w, id, since, edge + w->slot, need - 1);
	else
		for (need -= part, i = 0; i < k && t == 0; i++) {
			if (slot[i] == edge)
				continue;
			if (need <= n[i])
				t = nth_in(db, w, id, slot[i] - 1,
				    slot[i] + w->slot, need - 1);
			else
				need -= n[i];
		}
	if (t == 0)
		return -1;
	if (t + w->len - now > *retry)
		*retry = (int)(t + w->len - now);
	if (*retry < 1)
		*retry = 1;
	return 1;
}

/* Count a stored invite in the slots of its limits' windows. */
static int
limit_count(struct db *db, const struct invite *in, time_t now)
{
	const struct window *ws[] = { &win_hour, &win_day, &win_minute };
	struct stmt *st;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
		if ((st = db_stmt(db, Q_COUNTS_ADD)) == NULL ||
		    BIND_TEXTS(db, st, ws[i]->kind, ws[i]->by_app ?
		    in->app_id : in->inviter_id) == -1 ||
		    bind_int(db, st, 3, (int64_t)(now / ws[i]->slot *
		    ws[i]->slot)) == -1)
			return -1;
		rc = st_step(st);
		st_reset(st);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return 0;
}

int
db_counts_purge(struct db *db, time_t now)
{
	struct stmt *st;
	int rc;

	/* Past the longest window: slots no check reads again. */
	if ((st = db_stmt(db, Q_COUNTS_PURGE)) == NULL ||
	    bind_int(db, st, 1, (int64_t)(now - win_day.len -
	    win_day.slot)) == -1)
		return -1;
	rc = st_step(st);
	st_reset(st);
	return rc == SQLITE_DONE ? db_changes(db) : -1;
}

/* The three limits of an invite or a resend. */
static enum invite_res
limit_checks(struct db *db, const struct invite *in, time_t now, int *retry)
{
	int r, hit = 0;

	*retry = 0;
	if ((r = limit_check(db, &win_hour, in->inviter_id, now,
	    in->limit_hour, retry)) < 0)
		return INV_ERR;
	hit |= r;
	if ((r = limit_check(db, &win_day, in->inviter_id, now,
	    in->limit_day, retry)) < 0)
		return INV_ERR;
	hit |= r << 1;
	if ((r = limit_check(db, &win_minute, in->app_id, now,
	    in->limit_minute, retry)) < 0)
		return INV_ERR;
	if (hit || r) {
		/* The first limit found exhausted (metrics.h). */
		metrics_add(hit & 1 ? M_LIMIT_HOUR : hit ? M_LIMIT_DAY :
		    M_LIMIT_MINUTE);
		return INV_LIMIT;
	}
	return INV_OK;
}

/* Whether the address is a user's or on the do-not-invite list. */
static enum invite_res
address_checks(struct db *db, const char *app, const char *email_norm)
{
	struct stmt *st;
	int r;

	if ((st = db_stmt(db, Q_IS_MEMBER)) == NULL ||
	    BIND_TEXTS(db, st, app, email_norm) == -1 ||
	    query_exists(st, &r) == -1)
		return INV_ERR;
	if (r)
		return INV_MEMBER;
	if ((st = db_stmt(db, Q_IS_SUPPRESSED)) == NULL ||
	    BIND_TEXTS(db, st, app, email_norm) == -1 ||
	    query_exists(st, &r) == -1)
		return INV_ERR;
	return r ? INV_SUPPRESSED : INV_OK;
}

/*
 * The limits, then whether email_norm is a user's or listed (*known):
 * with HIDE_ASK that goes on as INV_OK for the caller to hide.
 */
static enum invite_res
limits_then_address(struct db *db, const struct invite *in,
    const char *email_norm, time_t now, int *retry, enum invite_res *known)
{
	enum invite_res res;

	if ((res = limit_checks(db, in, now, retry)) != INV_OK)
		return res;
	if ((*known = address_checks(db, in->app_id, email_norm)) == INV_ERR)
		return INV_ERR;
	return *known != INV_OK && in->hide != HIDE_ASK ? *known : INV_OK;
}

/*
 * The checks of one invite, inside the write transaction.  With HIDE_ASK
 * a member or a listed address goes on to the cooldown as a new address
 * would, so that a second invite to it within the cooldown gets the same
 * 409 a new address gets; *known says which it was (INV_OK: neither).
 */
static enum invite_res
invite_checks(struct db *db, const struct invite *in, time_t now,
    int *retry, enum invite_res *known)
{
	enum invite_res res;
	char since[21], last[32];
	struct stmt *st;

	if ((res = limits_then_address(db, in, in->email_norm, now, retry,
	    known)) != INV_OK)
		return res;
	if (in->cooldown > 0) {
		util_isotime(now - in->cooldown, since);
		if ((st = db_stmt(db, Q_COOLDOWN)) == NULL ||
		    BIND_TEXTS(db, st, in->app_id, in->email_norm,
		    since) == -1 ||
		    query_text(db, st, last, sizeof(last)) == -1)
			return INV_ERR;
		if (last[0] != '\0')
			return INV_COOLDOWN;
	}
	return INV_OK;
}

/*
 * When a hidden invite's answer comes, hide_ms from now (never before
 * now, the second its created_at says), as a real one's sent_at would
 * say: the inviter's list shows it.
 */
static void
hidden_time(const struct invite *in, time_t now, char out[21])
{
	struct timespec ts;
	time_t t;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = (time_t)(((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
	    in->hide_ms) / 1000);
	util_isotime(t > now ? t : now, out);
}

/* The admin's reason for a hidden invite (known: INV_MEMBER or not). */
static const char *
hidden_why(enum invite_res known)
{
	return known == INV_MEMBER ? "not mailed: the address belongs to a "
	    "user of the app" : "not mailed: the address is on the app's "
	    "do-not-invite list";
}

/*
 * Insert the invite: queued for the mailer, or (known is INV_MEMBER or
 * INV_SUPPRESSED) hidden, with the reason for the admin in last_reply.
 */
static enum invite_res
invite_insert(struct db *db, const struct invite *in, time_t now,
    enum invite_res known)
{
	struct stmt *st;
	const char *why;
	char ts[21], sent[21] = "";
	int rc;

	util_isotime(now, ts);
	if (known != INV_OK)
		hidden_time(in, now, sent);
	why = hidden_why(known);
	if ((st = db_stmt(db, known == INV_OK ? Q_INSERT :
	    Q_INSERT_HIDDEN)) == NULL ||
	    BIND_TEXTS(db, st, in->id, in->app_id, in->inviter_id, in->email,
	    in->email_norm, in->lang_req, in->lang_res, in->request_id,
	    in->token_hash, ts) == -1 ||
	    (in->expires_in > 0 &&
	    bind_int(db, st, 11, in->expires_in) == -1) ||
	    bind_text(db, st, 12, in->metadata[0] ? in->metadata :
	    NULL) == -1 || bind_text(db, st, 13, in->redirect_url[0] ?
	    in->redirect_url : NULL) == -1 ||
	    (known != INV_OK && (bind_text(db, st, 14, why) == -1 ||
	    bind_text(db, st, 15, sent) == -1)))
		return INV_ERR;
	rc = st_step(st);
	st_reset(st);
	switch (db_res_of(db, rc)) {
	case DB_OK:
		return INV_OK;
	case DB_BUSY:
		return INV_BUSY;
	default:
		return INV_ERR;
	}
}

/*
 * A resend: the invite's state, then the resend interval, then the
 * limits and the address, as for a new invite (no cooldown: the interval
 * is the resend's).  The token it replaces into old.
 */
static enum invite_res
resend_checks(struct db *db, const struct invite *in, time_t now,
    int *retry, char old[65], enum invite_res *known)
{
	struct invite_life l;
	enum invite_res res;
	enum db_res dr;

	*retry = 0;
	dr = db_invite_life(db, in->app_id, in->inviter_id, in->id, &l);
	if (dr != DB_OK)
		return dr == DB_NOTFOUND ? INV_NOTFOUND : dr == DB_BUSY ?
		    INV_BUSY : INV_ERR;
	if (l.accepted)
		return INV_ACCEPTED;
	if (strcmp(l.status, "revoked") == 0 ||
	    strcmp(l.status, "canceled") == 0)
		return INV_REVOKED;
	if (in->resend_interval > 0 && l.last_mail + in->resend_interval >
	    now) {
		*retry = (int)(l.last_mail + in->resend_interval - now);
		return INV_TOOSOON;
	}
	/* Being sent, or resent since the worker made its token. */
	if (strcmp(l.status, "sending") == 0 ||
	    l.resends + 1 != in->generation)
		return INV_SENDING;
	/* With HIDE_ASK a member or a listed address is resent hidden. */
	if ((res = limits_then_address(db, in, l.email_norm, now, retry,
	    known)) != INV_OK)
		return res;
	memcpy(old, l.token_hash, 65);
	return INV_OK;
}

/*
 * The new token, queued again at once (or, known being INV_MEMBER or
 * INV_SUPPRESSED, hidden again); the old one's hash kept.
 */
static enum invite_res
resend_store(struct db *db, const struct invite *in, const char *old,
    time_t now, enum invite_res known)
{
	struct stmt *st;
	char ts[21], sent[21];
	int rc;

	util_isotime(now, ts);
	if (known != INV_OK)
		hidden_time(in, now, sent);
	if ((st = db_stmt(db, Q_RESEND_SET)) == NULL ||
	    BIND_TEXTS(db, st, in->id, in->token_hash, ts,
	    in->request_id) == -1 ||
	    bind_int(db, st, 5, in->generation - 1) == -1 ||
	    (known != INV_OK && (bind_text(db, st, 6,
	    hidden_why(known)) == -1 || bind_text(db, st, 7, sent) == -1)))
		return INV_ERR;
	rc = st_step(st);
	st_reset(st);
	if (db_res_of(db, rc) != DB_OK)
		return INV_ERR;
	if (db_changes(db) != 1)
		return INV_SENDING;
	if ((st = db_stmt(db, Q_RESEND_LOG)) == NULL ||
	    BIND_TEXTS(db, st, in->id, in->app_id, in->inviter_id, old,
	    in->request_id, ts) == -1)
		return INV_ERR;
	rc = st_step(st);
	st_reset(st);
	return db_res_of(db, rc) == DB_OK ? INV_OK : INV_ERR;
}

/*
 * The invite's Idempotency-Key claim becomes its answer ("stored, answer
 * to come") in the invite's transaction: a request that dies after the
 * commit leaves a key that replays the invite, never one that lets a
 * retry store a second.  INV_IDEM when the claim is not this request's
 * any more (it lapsed and another request took it, or answered it).
 */
static enum invite_res
invite_idem(struct db *db, const struct invite *in)
{
	struct stmt *st;
	int rc;

	if ((st = db_stmt(db, Q_IDEM_STORED)) == NULL ||
	    BIND_TEXTS(db, st, in->app_id, in->idem_cred, in->idem_key,
	    in->idem_hash) == -1 ||
	    bind_int(db, st, 5, in->op == INVITE_RESEND ? 200 : 201) == -1)
		return INV_ERR;
	rc = st_step(st);
	st_reset(st);
	if (db_res_of(db, rc) != DB_OK)
		return INV_ERR;
	return db_changes(db) == 1 ? INV_OK : INV_IDEM;
}

enum invite_res
db_invite_add(struct db *db, const struct invite *in, time_t now,
    int *retry)
{
	enum invite_res res, known = INV_OK;
	char old[65];

	/*
	 * Only inside the caller's transaction: after a failure SQLite may
	 * have rolled it back (a full disk), and a savepoint would then
	 * commit this invite alone, before the batch's answer says 500.
	 */
	if (!db_in_tx(db))
		return INV_ERR;
	if (in->op == INVITE_RESEND)
		res = resend_checks(db, in, now, retry, old, &known);
	else
		res = invite_checks(db, in, now, retry, &known);
	if (res != INV_OK)
		return res;
	/*
	 * The key's answer, the invite and its counts, all or none, inside
	 * a batch that may commit others.  A hidden invite counts against
	 * the limits as any other: the 429s must not tell it apart.
	 */
	if (step_simple(db, Q_SAVEPOINT) != SQLITE_DONE)
		return INV_ERR;
	if (in->idem_key[0] != '\0')
		res = invite_idem(db, in);
	if (res == INV_OK)
		res = in->op == INVITE_RESEND ?
		    resend_store(db, in, old, now, known) :
		    invite_insert(db, in, now, known);
	if (res == INV_OK && limit_count(db, in, now) == -1)
		res = INV_ERR;
	if (res != INV_OK)
		step_simple(db, Q_ROLLBACK_TO);
	if (step_simple(db, Q_RELEASE) != SQLITE_DONE && res == INV_OK)
		res = INV_ERR;
	return res == INV_OK && known != INV_OK ? INV_HIDDEN : res;
}

enum invite_res
db_invite_create(struct db *db, const struct invite *in, int *retry)
{
	enum invite_res res;
	enum db_res dr;

	if ((dr = db_begin(db)) != DB_OK)
		return dr == DB_BUSY ? INV_BUSY : INV_ERR;
	res = db_invite_add(db, in, time(NULL), retry);
	if (res != INV_OK && res != INV_HIDDEN) {
		db_rollback(db);
		return res;
	}
	if ((dr = db_commit(db)) != DB_OK)
		return dr == DB_BUSY ? INV_BUSY : INV_ERR;
	return res;
}
