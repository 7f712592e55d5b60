/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * POST /api/v1/users/:userId/referral-invites: authenticate, authorise,
 * validate, store, wake the mailer, wait for its verdict, answer.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "extern.h"
#include "log.h"
#include "util.h"
#include "conf.h"
#include "valid.h"
#include "json.h"
#include "template.h"
#include "token.h"
#include "db.h"
#include "api.h"
#include "auth.h"
#include "idem.h"
#include "worker.h"
#include "mailer.h"
#include "park.h"

#define JSON_TYPE	"application/json"

/* application/json, optionally with a charset=utf-8 parameter. */
static int
is_json(const char *ct)
{
	const char *p;

	if (ct == NULL || strncasecmp(ct, JSON_TYPE, LIT_LEN(JSON_TYPE)) != 0)
		return 0;
	p = ct + LIT_LEN(JSON_TYPE);
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 1;
	if (*p++ != ';')
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "charset=", LIT_LEN("charset=")) != 0)
		return 0;
	p += LIT_LEN("charset=");
	if (strcasecmp(p, "utf-8") == 0 || strcasecmp(p, "\"utf-8\"") == 0)
		return 1;
	return 0;
}

/* Credentials, then whether they may act for :userId.  0 or answered. */
static int
invite_authorise(struct ctx *ctx, struct req *r, const char *userid,
    struct principal *p, struct invite *inv)
{
	enum auth_res ar;

	if ((ar = auth_request(ctx, r, p)) != AUTH_OK) {
		auth_fail(r, ar);
		return -1;
	}
	if (p->token && strcmp(userid, "me") == 0)
		memcpy(inv->inviter_id, p->sub, sizeof(inv->inviter_id));
	else if (valid_uuid(userid, inv->inviter_id) != NULL) {
		api_fail(r, 400, "userId is not a valid user id");
		return -1;
	}
	if (!p->token && strcmp(p->key_type, "write") != 0) {
		api_fail(r, 403, "This key may not create invites");
		return -1;
	}
	if (p->token && strcmp(inv->inviter_id, p->sub) != 0) {
		api_fail(r, 403, "A token may only act for its own user");
		return -1;
	}
	return 0;
}

int
api_json_body(struct ctx *ctx, struct req *r, const char **body, size_t *len)
{
	if (!is_json(r->content_type)) {
		api_fail(r, 415, "Content-Type must be application/json");
		return -1;
	}
	switch (req_body(r, body, len)) {
	case BODY_OK:
		return 0;
	case BODY_TOOBIG:
		api_fail(r, 413, "Request body is too large");
		return -1;
	default:
		api_fail(r, 400, "Request body is not valid JSON");
		return -1;
	}
}

void
api_db_fail(struct req *r, int busy)
{
	if (busy)
		api_fail_hdr(r, 503, "Service is busy, try again later",
		    "Retry-After: 1\r\n");
	else
		api_fail(r, 500, "Internal error");
}

/*
 * The optional members json.c has checked by themselves; redirectUrl
 * against the app's prefixes once the app is read (invite_redirect).
 */
static void
invite_options(struct invite *inv, const struct invite_body *b)
{
	inv->expires_in = b->expires_days * 86400;
	if (b->metadata != NULL)
		COPY(inv->metadata, b->metadata);
}

/* Content type, size, JSON, address and language.  0 or answered. */
static int
invite_validate(struct ctx *ctx, struct req *r, struct invite *inv,
    char **redirect)
{
	struct invite_body b;
	enum json_err je;
	const char *body, *what = NULL;
	size_t len;
	int rc = -1;

	if (api_json_body(ctx, r, &body, &len) == -1)
		return -1;
	if ((je = json_invite_body(body, len, &b, &what)) != JSON_OK) {
		api_fail(r, 400, json_strerror(je, what));
		return -1;
	}
	if (valid_email(b.email, inv->email, inv->email_norm) != NULL)
		api_fail(r, 400, "email is not a valid address");
	else if (valid_language(b.language, inv->lang_req) != NULL)
		api_fail(r, 400, "language is not a valid language tag");
	else {
		invite_options(inv, &b);
		*redirect = b.redirect_url;
		b.redirect_url = NULL;
		rc = 0;
	}
	json_invite_body_free(&b);
	return rc;
}

/*
 * redirectUrl, when given, under one of the app's prefixes: a check of
 * the body, so before an Idempotency-Key binds (idem.c).  0 or answered.
 */
static int
invite_redirect(struct ctx *ctx, struct req *r, const struct principal *pr,
    struct invite *inv, const char *url)
{
	struct app a;
	enum db_res res;
	int rc = -1;

	if (url == NULL)
		return 0;
	if ((res = db_app_get(ctx->db, pr->app, &a)) != DB_OK)
		api_db_fail(r, res == DB_BUSY);
	else if (valid_redirect(url, a.redirect_allow) != NULL)
		api_fail(r, 400, "redirectUrl is not an allowed URL");
	else {
		COPY(inv->redirect_url, url);
		rc = 0;
	}
	db_app_free(&a);
	return rc;
}

/*
 * The inviter: a user of the app, active, not the invitee.  Read inside
 * the snapshot the credentials were checked in, when there is one.
 */
static int
invite_inviter(struct ctx *ctx, struct req *r, const struct principal *pr,
    struct invite *inv, struct app *a, struct user *u, int *snapshot)
{
	enum db_res res = DB_OK;

	if (*snapshot || (res = db_read_begin(ctx->db)) == DB_OK) {
		*snapshot = 0;
		res = db_app_get(ctx->db, pr->app, a);
		if (res == DB_OK)
			res = db_user_get(ctx->db, a->id, inv->inviter_id, u);
		if (db_commit(ctx->db) != DB_OK && res == DB_OK)
			res = DB_ERR;
	}
	switch (res) {
	case DB_OK:
		break;
	case DB_NOTFOUND:
		api_fail(r, 404, "User not found");
		return -1;
	default:
		api_db_fail(r, res == DB_BUSY);
		return -1;
	}
	if (!u->active) {
		api_fail(r, 403, "The inviting user is disabled");
		return -1;
	}
	if (strcasecmp(u->email, inv->email_norm) == 0) {
		api_fail(r, 400, "You cannot invite yourself");
		return -1;
	}
	return 0;
}

static int
pick(int app_value, int server_value)
{
	return app_value >= 0 ? app_value : server_value;
}

/* The rest of the invite: its id, token, language, limits and key. */
static void
invite_fill(struct ctx *ctx, struct req *r, struct invite *inv,
    const struct app *a, const struct idem_state *is)
{
	const struct conf *c = ctx->conf;
	char tok[ACCEPT_LEN + 1];

	util_uuid7(inv->id);
	token_accept(ctx->secret, inv->id, tok);
	util_sha256_hex(tok, ACCEPT_LEN, inv->token_hash);
	COPY(inv->app_id, a->id);
	COPY(inv->lang_res, tmpl_resolve(inv->lang_req, a->language,
	    c->default_language));
	COPY(inv->request_id, r->id);
	inv->limit_hour = pick(a->limit_per_hour, c->limit_per_hour);
	inv->limit_day = pick(a->limit_per_day, c->limit_per_day);
	inv->limit_minute = pick(a->limit_per_minute, c->app_limit_per_minute);
	inv->cooldown = pick(a->cooldown, c->cooldown);
	if (is->active) {
		COPY(inv->idem_cred, is->cred);
		COPY(inv->idem_key, is->key);
		COPY(inv->idem_hash, is->hash);
	}
}

/* The writer's verdict: 0 when stored, otherwise answered. */
static int
invite_stored(struct req *r, int res, int retry, const struct invite *inv)
{
	char hdr[64];

	switch (res) {
	case INV_OK:
		if (inv->op == INVITE_RESEND)
			log_info("request %s: invite %s queued again (token "
			    "%d)", r->id, inv->id, inv->generation);
		else
			log_info("request %s: invite %s stored (app %s, "
			    "language %s)", r->id, inv->id, inv->app_id,
			    inv->lang_res);
		return 0;
	case INV_NOTFOUND:
		api_fail(r, 404, "Invite not found");
		break;
	case INV_ACCEPTED:
		api_fail(r, 409, "This invite was already accepted");
		break;
	case INV_REVOKED:
		api_fail(r, 409, "This invite was revoked or canceled");
		break;
	case INV_SENDING:
		api_fail_hdr(r, 409, "This invite is being sent, try again "
		    "later", "Retry-After: 1\r\n");
		break;
	case INV_TOOSOON:
		snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", retry);
		api_fail_hdr(r, 429, "This invite was sent recently, try "
		    "again later", hdr);
		break;
	case INV_HIDDEN:
		log_info("request %s: invite %s stored hidden, never to be "
		    "mailed (app %s)", r->id, inv->id, inv->app_id);
		return 0;
	case INV_MEMBER:
		api_fail(r, 409, "This address already belongs to a user");
		break;
	case INV_SUPPRESSED:
		api_fail(r, 409, "This address does not accept invites");
		break;
	case INV_COOLDOWN:
		api_fail(r, 409, "This address was invited recently");
		break;
	case INV_LIMIT:
		snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", retry);
		api_fail_hdr(r, 429, "Too many invites, try again later", hdr);
		break;
	case INV_IDEM:
		idem_busy(r);
		break;
	default:
		api_db_fail(r, res == INV_BUSY);
		break;
	}
	return -1;
}

/*
 * hide_existing_users: a hidden invite gets the answer a real one of this
 * worker got lately, after as long, so that its timing tells as little
 * as its bytes.  The last real outcomes: how long after the writer's
 * answer the verdict came (the relay's round trips, the mailer's
 * commits) and which it was.
 */
#define SEEN_MAX	8
#define SEEN_FIRST_MS	100	/* before this worker has seen one */

static struct {
	int	 ms;
	int	 kind;		/* VERDICT_SENT or VERDICT_DEFERRED */
} seen[SEEN_MAX];
static int nseen, seen_next;

/* Note how long real invite p waited for verdict kind. */
static void
seen_add(const struct ctx *ctx, const struct parked *p, int kind)
{
	int64_t wait = ctx->conf->delivery_wait * 1000;
	int64_t ms = wait - (p->deadline - util_now_ms());

	/* A refusal is not copied; a stop cuts waits short. */
	if (p->inv.hide == HIDE_DONE || kind == VERDICT_FAILED ||
	    *ctx->stopping)
		return;
	seen[seen_next].ms = (int)(ms < 0 ? 0 : ms > wait ? wait : ms);
	seen[seen_next].kind = kind;
	seen_next = (seen_next + 1) % SEEN_MAX;
	if (nseen < SEEN_MAX)
		nseen++;
}

/*
 * What a hidden invite will mimic, should the writer hide it: one of the
 * real outcomes seen, drawn at random, its round trip varied by up to a
 * fifth (the end of the wait stays exact, as it is for a real one).
 */
static void
seen_mimic(const struct ctx *ctx, struct invite *inv)
{
	int wait = ctx->conf->delivery_wait * 1000, ms = SEEN_FIRST_MS;
	int kind = VERDICT_SENT;
	uint32_t rnd;

	util_random(&rnd, sizeof(rnd));
	if (nseen > 0) {
		ms = seen[rnd % (uint32_t)nseen].ms;
		kind = seen[rnd % (uint32_t)nseen].kind;
	}
	if (wait == 0 || ms < wait)
		ms = ms * (80 + (int)((rnd >> 16) % 41)) / 100;
	if (wait > 0 && ms >= wait)
		ms = kind == VERDICT_SENT ? wait - 1 : wait;
	inv->hide_ms = ms > 0 ? ms : 1;
	inv->hide_queued = kind != VERDICT_SENT;
}

void
invite_hide_ask(const struct ctx *ctx, const struct principal *pr,
    struct invite *inv)
{
	/* Server keys are trusted with the truth: only tokens. */
	if (pr->token && ctx->conf->hide_existing_users) {
		inv->hide = HIDE_ASK;
		seen_mimic(ctx, inv);
	}
}

/* The answer for a verdict: sent, refused (400) or queued. */
static void
invite_verdict(struct req *r, int ok, int kind, const char *reply)
{
	if (kind == VERDICT_SENT)
		api_ok(r, ok, "Invite sent", NULL, NULL);
	else if (kind == VERDICT_FAILED)
		api_fail(r, 400, reply[0] ? reply :
		    "The mail server refused the address");
	else
		api_ok(r, ok, "Invite queued", NULL, NULL);
}

/*
 * A parked invite wakes (worker.c): the writer has answered, then with
 * delivery_wait the mailer's verdict or the wait's end.  "Invite sent"
 * when the server took it within the wait, 400 with its permanent
 * refusal, "Invite queued" otherwise; the key's answer stored with it.
 * 201 for a new invite, 200 for a resend.  A hidden invite waits as
 * seen_mimic said and answers as a real one (no verdict comes for an
 * invite the mailer never sees).
 */
int
invite_resumed(struct ctx *ctx, struct parked *p, const struct wake *w)
{
	const struct verdict_msg *v = w->v;
	struct req *r = p->r;
	int ok = p->inv.op == INVITE_RESEND ? 200 : 201;

	switch (w->kind) {
	case WAKE_STORED:
		if (w->res == INV_IDEM)
			p->is.active = 0;	/* the key is another's now */
		if (invite_stored(r, w->res, w->retry, &p->inv) == -1)
			break;
		if (w->res == INV_HIDDEN)
			p->inv.hide = HIDE_DONE;
		if (ctx->conf->delivery_wait > 0 && !*ctx->stopping)
			return w->res == INV_HIDDEN ? p->inv.hide_ms :
			    ctx->conf->delivery_wait * 1000;
		api_ok(r, ok, "Invite queued", NULL, NULL);
		break;
	case WAKE_VERDICT:
		seen_add(ctx, p, v->kind);
		invite_verdict(r, ok, v->kind, v->reply);
		break;
	case WAKE_LATE:
	case WAKE_CHECK:	/* (only for PARK_IDEM, never an invite's) */
		/* Past delivery_wait, or stopping: queued, and sent later. */
		seen_add(ctx, p, VERDICT_DEFERRED);
		if (p->inv.hide == HIDE_DONE && !*ctx->stopping)
			invite_verdict(r, ok, p->inv.hide_queued ?
			    VERDICT_DEFERRED : VERDICT_SENT, "");
		else
			api_ok(r, ok, "Invite queued", NULL, NULL);
		break;
	}
	idem_end(ctx, r, &p->is);
	return 0;
}

void
invite_post(struct ctx *ctx, struct req *r, const char *userid)
{
	struct principal pr;
	struct invite inv;
	struct idem_state is;
	struct app a;
	struct user u;
	char *redirect = NULL;
	int snapshot;

	memset(&pr, 0, sizeof(pr));
	memset(&inv, 0, sizeof(inv));
	memset(&is, 0, sizeof(is));
	memset(&a, 0, sizeof(a));
	memset(&u, 0, sizeof(u));
	/*
	 * Credentials, app and inviter from one snapshot: one WAL read lock
	 * instead of two.  Not across an Idempotency-Key, whose claim
	 * writes (a write cannot start from an older snapshot).
	 */
	snapshot = db_read_begin(ctx->db) == DB_OK;
	if (invite_authorise(ctx, r, userid, &pr, &inv) == -1)
		goto out;
	if (snapshot && r->idempotency_key != NULL) {
		snapshot = 0;
		db_rollback(ctx->db);
	}
	if (invite_validate(ctx, r, &inv, &redirect) == -1 ||
	    invite_redirect(ctx, r, &pr, &inv, redirect) == -1 ||
	    idem_begin(ctx, r, &pr, &is) != 0)
		goto out;
	if (invite_inviter(ctx, r, &pr, &inv, &a, &u, &snapshot) == 0) {
		/* The rest waits for the writer and the mailer: parked. */
		invite_fill(ctx, r, &inv, &a, &is);
		invite_hide_ask(ctx, &pr, &inv);
		if (worker_store(ctx, r, &inv, &is, invite_resumed) == 0)
			goto out;
	}
	idem_end(ctx, r, &is);
out:
	if (snapshot)
		db_rollback(ctx->db);
	free(redirect);
	db_user_free(&u);
	db_app_free(&a);
}
