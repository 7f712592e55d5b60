/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * What a request reads and writes: apps, users and keys (through the
 * cache), an invite's status, the list, accept, opt-out and
 * Idempotency-Keys.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "extern.h"
#include "util.h"
#include "jwt.h"
#include "db.h"
#include "db_int.h"

void
db_app_free(struct app *a)
{
	free(a->name);
	free(a->invite_url);
	free(a->sender);
	free(a->language);
	free(a->jwt_key);
	free(a->jwt_issuer);
	free(a->redirect_allow);
	memset(a, 0, sizeof(*a));
}

enum db_res
db_app_get(struct db *db, const char *id, struct app *a)
{
	struct stmt *st;
	int rc;

	memset(a, 0, sizeof(*a));
	if (cached(db) && cache_app_get(db->cache, id, a))
		return DB_OK;
	if ((st = db_stmt(db, Q_APP_GET)) == NULL ||
	    bind_text(db, st, 1, id) == -1)
		return DB_ERR;
	if ((rc = st_step(st)) != SQLITE_ROW) {
		st_reset(st);
		return rc == SQLITE_DONE ? DB_NOTFOUND : db_res_of(db, rc);
	}
	col_copy(st, 0, a->id, sizeof(a->id));
	a->name = col_strdup(st, 1);
	a->invite_url = col_strdup(st, 2);
	a->sender = col_strdup(st, 3);
	a->language = col_strdup(st, 4);
	a->jwt_alg = jwt_alg_parse(st_text(st, 5));
	a->jwt_key = col_strdup(st, 6);
	a->jwt_issuer = col_strdup(st, 7);
	a->jwt_generation = (int)st_int(st, 8);
	a->accept_ttl = (int)st_int(st, 9);
	a->limit_per_hour = (int)st_int(st, 10);
	a->limit_per_day = (int)st_int(st, 11);
	a->limit_per_minute = (int)st_int(st, 12);
	a->cooldown = (int)st_int(st, 13);
	a->redirect_allow = col_strdup(st, 14);
	st_reset(st);
	if (a->name == NULL || a->invite_url == NULL) {
		db_app_free(a);
		return DB_ERR;
	}
	if (cached(db))
		cache_app_put(db->cache, a);
	return DB_OK;
}

void
db_user_free(struct user *u)
{
	free(u->email);
	free(u->name);
	memset(u, 0, sizeof(*u));
}

enum db_res
db_user_get(struct db *db, const char *app, const char *id, struct user *u)
{
	struct stmt *st;
	int rc;

	memset(u, 0, sizeof(*u));
	if (cached(db) && cache_user_get(db->cache, app, id, u))
		return DB_OK;
	if ((st = db_stmt(db, Q_USER_GET)) == NULL ||
	    BIND_TEXTS(db, st, id, app) == -1)
		return DB_ERR;
	if ((rc = st_step(st)) != SQLITE_ROW) {
		st_reset(st);
		return rc == SQLITE_DONE ? DB_NOTFOUND : db_res_of(db, rc);
	}
	col_copy(st, 0, u->id, sizeof(u->id));
	u->email = col_strdup(st, 1);
	u->name = col_strdup(st, 2);
	u->active = (int)st_int(st, 3);
	st_reset(st);
	if (u->email == NULL)
		return DB_ERR;
	if (cached(db))
		cache_user_put(db->cache, app, u);
	return DB_OK;
}

enum db_res
db_key_find(struct db *db, const char *hash_hex, char app[UUID_LEN + 1],
    char type[8])
{
	struct stmt *st;
	const char *h;
	int rc;
	enum db_res res = DB_NOTFOUND;

	if (cached(db) && cache_key_get(db->cache, hash_hex, app, type))
		return DB_OK;
	if ((st = db_stmt(db, Q_KEY_FIND)) == NULL ||
	    bind_text(db, st, 1, hash_hex) == -1)
		return DB_ERR;
	if ((rc = st_step(st)) == SQLITE_ROW) {
		h = st_text(st, 2);
		/* The index found it; compare anyway, in constant time. */
		if (h != NULL && strlen(h) == 64 &&
		    util_ct_eq(h, hash_hex, 64)) {
			col_copy(st, 0, app, UUID_LEN + 1);
			col_copy(st, 1, type, 8);
			res = DB_OK;
			if (cached(db))
				cache_key_put(db->cache, hash_hex, app, type);
		}
	} else if (rc != SQLITE_DONE)
		res = db_res_of(db, rc);
	st_reset(st);
	return res;
}

enum db_res
db_invite_status(struct db *db, const char *id, char status[16],
    char *reply, size_t replysz)
{
	struct stmt *st;
	int rc;

	if ((st = db_stmt(db, Q_STATUS)) == NULL ||
	    bind_text(db, st, 1, id) == -1)
		return DB_ERR;
	if ((rc = st_step(st)) != SQLITE_ROW) {
		st_reset(st);
		return rc == SQLITE_DONE ? DB_NOTFOUND : db_res_of(db, rc);
	}
	col_copy(st, 0, status, 16);
	col_copy(st, 1, reply, replysz);
	st_reset(st);
	return DB_OK;
}

/* --------------------------------------------------- the other routes */

enum db_res
db_invites_list(struct db *db, const char *app, const char *user,
    const char *before_time, int64_t before, int limit, int ttl,
    db_row_fn fn, void *arg)
{
	struct stmt *st;
	const char *cols[LIST_COLS];
	int rc, i;

	if ((st = db_stmt(db, Q_LIST)) == NULL)
		return DB_ERR;
	/* Without before_time, ?3 is NULL and ?4 unused. */
	if (BIND_TEXTS(db, st, app, user, before_time) == -1 ||
	    (before_time != NULL && bind_int(db, st, 4, before) == -1) ||
	    bind_int(db, st, 5, limit) == -1 || bind_int(db, st, 6, ttl) == -1)
		return DB_ERR;
	while ((rc = st_step(st)) == SQLITE_ROW) {
		for (i = 0; i < LIST_COLS; i++)
			cols[i] = st_text(st, i);
		if (fn(arg, cols, st_int(st, LIST_COLS)) == -1) {
			st_reset(st);
			return DB_ERR;
		}
	}
	st_reset(st);
	return rc == SQLITE_DONE ? DB_OK : db_res_of(db, rc);
}

/* Whether hash is that of a token a resend of invite id replaced. */
static int
accept_replaced(struct db *db, const char *id, const char *hash)
{
	struct stmt *st;
	const char *h;
	int rc, found = 0;

	if ((st = db_stmt(db, Q_ACCEPT_REPLACED)) == NULL ||
	    bind_text(db, st, 1, id) == -1)
		return -1;
	while ((rc = st_step(st)) == SQLITE_ROW)
		if ((h = st_text(st, 0)) != NULL &&
		    strlen(h) == 64 && util_ct_eq(h, hash, 64))
			found = 1;
	st_reset(st);
	return rc == SQLITE_DONE ? found : -1;
}

static enum db_res
accept_step(struct db *db, const char *app, const char *id,
    const char *hash, int ttl, struct accepted *out)
{
	struct stmt *st;
	char status[16], ts[21], stored[65];
	time_t now = time(NULL);
	int rc, r;

	st = db_stmt(db, id ? Q_ACCEPT_FIND : Q_ACCEPT_FIND_OLD);
	if (st == NULL || BIND_TEXTS(db, st, id ? id : hash, app) == -1)
		return DB_ERR;
	if ((rc = st_step(st)) != SQLITE_ROW) {
		st_reset(st);
		return rc == SQLITE_DONE ? DB_NOTFOUND : db_res_of(db, rc);
	}
	col_copy(st, 0, out->id, sizeof(out->id));
	col_copy(st, 1, out->inviter, sizeof(out->inviter));
	col_copy(st, 2, out->email, sizeof(out->email));
	col_copy(st, 3, status, sizeof(status));
	col_copy(st, 4, ts, sizeof(ts));
	col_copy(st, 5, out->accepted_at, sizeof(out->accepted_at));
	col_copy(st, 6, stored, sizeof(stored));
	if (!st_null(st, 7))
		ttl = (int)st_int(st, 7);
	col_copy(st, 8, out->metadata, sizeof(out->metadata));
	col_copy(st, 9, out->redirect_url, sizeof(out->redirect_url));
	st_reset(st);
	/* The id is public; the token's hash is what proves it. */
	if (strlen(stored) != 64 || !util_ct_eq(stored, hash, 64)) {
		r = id ? accept_replaced(db, out->id, hash) : 0;
		if (r == 1) {
			out->why = ACCEPT_REPLACED;
			return DB_OK;
		}
		memset(out, 0, sizeof(*out));
		return r == -1 ? DB_ERR : DB_NOTFOUND;
	}
	if (out->accepted_at[0] != '\0') {
		out->why = ACCEPT_USED;
		return DB_OK;
	}
	/* A hidden invite's token was never mailed: none can hold it. */
	if (strcmp(status, "canceled") == 0 ||
	    strcmp(status, "revoked") == 0 ||
	    strcmp(status, "hidden") == 0) {
		out->why = ACCEPT_CANCELED;
		return DB_OK;
	}
	if (parse_iso(ts) + ttl < now) {
		out->why = ACCEPT_EXPIRED;
		return DB_OK;
	}
	util_isotime(now, out->accepted_at);
	if ((st = db_stmt(db, Q_ACCEPT_SET)) == NULL ||
	    BIND_TEXTS(db, st, out->id, out->accepted_at) == -1)
		return DB_ERR;
	rc = st_step(st);
	st_reset(st);
	if (rc != SQLITE_DONE)
		return db_res_of(db, rc);
	out->why = db_changes(db) == 1 ? ACCEPT_OK : ACCEPT_USED;
	return DB_OK;
}

struct accept_args {
	const char	*app, *id, *hash;
	int		 ttl;
	struct accepted	*out;
};

static enum db_res
accept_fn(struct db *db, void *arg)
{
	struct accept_args *a = arg;

	return accept_step(db, a->app, a->id, a->hash, a->ttl, a->out);
}

enum db_res
db_invite_accept(struct db *db, const char *app, const char *id,
    const char *hash, int ttl, struct accepted *out)
{
	struct accept_args a = { app, id, hash, ttl, out };

	memset(out, 0, sizeof(*out));
	return in_tx(db, accept_fn, &a);
}

enum db_res
db_invite_life(struct db *db, const char *app, const char *inviter,
    const char *id, struct invite_life *out)
{
	struct stmt *st;
	char t[32];
	int rc;

	memset(out, 0, sizeof(*out));
	if ((st = db_stmt(db, Q_LIFE_FIND)) == NULL ||
	    BIND_TEXTS(db, st, id, app, inviter) == -1)
		return DB_ERR;
	if ((rc = st_step(st)) != SQLITE_ROW) {
		st_reset(st);
		return rc == SQLITE_DONE ? DB_NOTFOUND : db_res_of(db, rc);
	}
	col_copy(st, 0, out->status, sizeof(out->status));
	out->accepted = !st_null(st, 1);
	col_copy(st, 2, out->email_norm, sizeof(out->email_norm));
	col_copy(st, 3, t, sizeof(t));
	out->last_mail = parse_iso(t);
	out->resends = (int)st_int(st, 4);
	col_copy(st, 5, out->token_hash, sizeof(out->token_hash));
	st_reset(st);
	return DB_OK;
}

struct revoke_args {
	const char	*app, *inviter, *id;
};

/*
 * The mailer records a verdict only on a row still 'sending' (Q_MARK):
 * a revoke that lands while it sends wins, and its verdict is dropped.
 */
static enum db_res
revoke_fn(struct db *db, void *arg)
{
	struct revoke_args *a = arg;
	struct invite_life l;
	struct stmt *st;
	enum db_res res;
	char ts[21];
	int rc;

	if ((res = db_invite_life(db, a->app, a->inviter, a->id, &l)) != DB_OK)
		return res;
	if (l.accepted)
		return DB_CONFLICT;
	if (strcmp(l.status, "revoked") == 0)
		return DB_OK;
	util_isotime(time(NULL), ts);
	if ((st = db_stmt(db, Q_REVOKE)) == NULL ||
	    BIND_TEXTS(db, st, a->id, ts) == -1)
		return DB_ERR;
	rc = st_step(st);
	st_reset(st);
	return db_res_of(db, rc);
}

enum db_res
db_invite_revoke(struct db *db, const char *app, const char *inviter,
    const char *id)
{
	struct revoke_args a = { app, inviter, id };

	return in_tx(db, revoke_fn, &a);
}

struct optout_args {
	const char	*app, *email;
	int		 canceled;
};

static enum db_res
optout_fn(struct db *db, void *arg)
{
	struct optout_args *a = arg;
	struct stmt *st;
	char ts[21];
	int rc;
	enum db_query q[2] = { Q_OPTOUT_ADD, Q_OPTOUT_CANCEL };

	util_isotime(time(NULL), ts);
	for (int i = 0; i < 2; i++) {
		if ((st = db_stmt(db, q[i])) == NULL ||
		    BIND_TEXTS(db, st, a->app, a->email, ts) == -1)
			return DB_ERR;
		rc = st_step(st);
		st_reset(st);
		if (rc != SQLITE_DONE)
			return db_res_of(db, rc);
	}
	a->canceled = db_changes(db);
	return DB_OK;
}

enum db_res
db_optout(struct db *db, const char *app, const char *email, int *canceled)
{
	struct optout_args a = { app, email, 0 };
	enum db_res res = in_tx(db, optout_fn, &a);

	*canceled = a.canceled;
	return res;
}

/* ------------------------------------------------------- idempotency */

struct idem_args {
	const char	*app, *cred, *key, *hash;
	int		 stale;
	struct idem	*out;
};

#define IDEM_TTL	86400

static enum db_res
idem_fn(struct db *db, void *arg)
{
	struct idem_args *a = arg;
	struct stmt *st;
	char ts[21], created[32];
	time_t now = time(NULL), t;
	int rc;

	if ((st = db_stmt(db, Q_IDEM_GET)) == NULL ||
	    BIND_TEXTS(db, st, a->app, a->cred, a->key) == -1)
		return DB_ERR;
	rc = st_step(st);
	if (rc == SQLITE_ROW) {
		col_copy(st, 4, created, sizeof(created));
		t = parse_iso(created);
		a->out->status = (int)st_int(st, 1);
		a->out->age = (long)(now - t);
		if (t + IDEM_TTL > now && (a->out->status != 0 ||
		    t + a->stale > now)) {
			a->out->same = strcmp((const char *)
			    st_text(st, 0), a->hash) == 0;
			a->out->body = col_strdup(st, 2);
			a->out->headers = col_strdup(st, 3);
			a->out->found = 1;
			st_reset(st);
			return DB_OK;
		}
		a->out->status = 0;
	} else if (rc != SQLITE_DONE) {
		st_reset(st);
		return db_res_of(db, rc);
	}
	st_reset(st);
	util_isotime(now, ts);
	if ((st = db_stmt(db, Q_IDEM_CLAIM)) == NULL ||
	    BIND_TEXTS(db, st, a->app, a->cred, a->key, a->hash, ts) == -1)
		return DB_ERR;
	rc = st_step(st);
	st_reset(st);
	return rc == SQLITE_DONE ? DB_OK : db_res_of(db, rc);
}

enum db_res
db_idem_begin(struct db *db, const char *app, const char *cred,
    const char *key, const char *hash, int stale, struct idem *out)
{
	struct idem_args a = { app, cred, key, hash, stale, out };

	memset(out, 0, sizeof(*out));
	return in_tx(db, idem_fn, &a);
}

enum db_res
db_idem_peek(struct db *db, const char *app, const char *cred,
    const char *key, const char *hash, struct idem *out)
{
	struct stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((st = db_stmt(db, Q_IDEM_GET)) == NULL ||
	    BIND_TEXTS(db, st, app, cred, key) == -1)
		return DB_ERR;
	if ((rc = st_step(st)) == SQLITE_ROW) {
		out->found = 1;
		out->same = strcmp(st_text(st, 0),
		    hash) == 0;
		out->status = (int)st_int(st, 1);
		out->body = col_strdup(st, 2);
		out->headers = col_strdup(st, 3);
	}
	st_reset(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return DB_OK;
	return db_res_of(db, rc);
}

enum db_res
db_idem_end(struct db *db, const char *app, const char *cred,
    const char *key, const char *hash, int status, const char *body,
    const char *headers)
{
	struct stmt *st;
	int rc;

	if ((st = db_stmt(db, status ? Q_IDEM_SET : Q_IDEM_DEL)) == NULL)
		return DB_ERR;
	/* Only this request's claim: it may have lapsed and been retaken. */
	if (BIND_TEXTS(db, st, app, cred, key) == -1 ||
	    bind_text(db, st, 7, hash) == -1)
		return DB_ERR;
	if (status && (bind_int(db, st, 4, status) == -1 ||
	    bind_text(db, st, 5, body) == -1 ||
	    bind_text(db, st, 6, headers) == -1))
		return DB_ERR;
	rc = st_step(st);
	st_reset(st);
	return rc == SQLITE_DONE ? DB_OK : db_res_of(db, rc);
}

int
db_idem_purge(struct db *db)
{
	struct stmt *st;
	char ts[21];
	int rc;

	util_isotime(time(NULL) - IDEM_TTL, ts);
	if ((st = db_stmt(db, Q_IDEM_PURGE)) == NULL ||
	    bind_text(db, st, 1, ts) == -1)
		return -1;
	rc = st_step(st);
	st_reset(st);
	return rc == SQLITE_DONE ? db_changes(db) : -1;
}
