/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The invite's life after the POST, for apps:
 * DELETE /api/v1/users/:userId/referral-invites/:inviteId revokes it (a
 * single-row change, written from the worker as accept and opt-out are),
 * and POST .../:inviteId/resend mails it again with a new accept token,
 * through the writer and the mailer exactly as the POST does (limits,
 * Idempotency-Key, delivery_wait).
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "log.h"
#include "util.h"
#include "conf.h"
#include "valid.h"
#include "json.h"
#include "token.h"
#include "db.h"
#include "api.h"
#include "auth.h"
#include "idem.h"
#include "worker.h"

/*
 * The POST's rules: a write key of the app, or the inviter's own token
 * (":userId" then may be "me"); then a well-formed inviteId.  Fills the
 * inviter's and the invite's ids; 0 or answered.
 */
static int
life_authorise(struct ctx *ctx, struct req *r, const char *ids,
    struct principal *p, char uid[UUID_LEN + 1], char iid[UUID_LEN + 1])
{
	char user[128];
	const char *slash;
	enum auth_res ar;

	if ((ar = auth_request(ctx, r, p)) != AUTH_OK) {
		auth_fail(r, ar);
		return -1;
	}
	/* route.c: "userId/inviteId", each non-empty and without '/'. */
	if ((slash = strchr(ids, '/')) == NULL ||
	    (size_t)(slash - ids) >= sizeof(user)) {
		api_fail(r, 404, "Not found");
		return -1;
	}
	memcpy(user, ids, (size_t)(slash - ids));
	user[slash - ids] = '\0';
	if (p->token && strcmp(user, "me") == 0)
		memcpy(uid, p->sub, UUID_LEN + 1);
	else if (valid_uuid(user, uid) != NULL) {
		api_fail(r, 400, "userId is not a valid user id");
		return -1;
	}
	if (!p->token && strcmp(p->key_type, "write") != 0) {
		api_fail(r, 403, "This key may not change invites");
		return -1;
	}
	if (p->token && strcmp(uid, p->sub) != 0) {
		api_fail(r, 403, "A token may only act for its own user");
		return -1;
	}
	if (valid_uuid(slash + 1, iid) != NULL) {
		api_fail(r, 400, "inviteId is not a valid invite id");
		return -1;
	}
	return 0;
}

/* The inviter, a user of the app (active, with need_active); 0 or answered. */
static int
life_inviter(struct ctx *ctx, struct req *r, const char *app,
    const char *uid, int need_active)
{
	struct user u;
	enum db_res res;
	int rc = -1;

	if ((res = db_user_get(ctx->db, app, uid, &u)) == DB_NOTFOUND)
		api_fail(r, 404, "User not found");
	else if (res != DB_OK)
		api_db_fail(r, res == DB_BUSY);
	else if (need_active && !u.active)
		api_fail(r, 403, "The inviting user is disabled");
	else
		rc = 0;
	db_user_free(&u);
	return rc;
}

void
invite_revoke(struct ctx *ctx, struct req *r, const char *ids)
{
	struct principal p;
	char uid[UUID_LEN + 1], iid[UUID_LEN + 1];
	enum db_res res;

	if (life_authorise(ctx, r, ids, &p, uid, iid) == -1 ||
	    life_inviter(ctx, r, p.app, uid, 0) == -1)
		return;
	switch ((res = db_invite_revoke(ctx->db, p.app, uid, iid))) {
	case DB_OK:
		log_info("request %s: invite %s revoked", r->id, iid);
		api_ok(r, 200, "Invite revoked", NULL, NULL);
		break;
	case DB_NOTFOUND:
		api_fail(r, 404, "Invite not found");
		break;
	case DB_CONFLICT:
		api_fail(r, 409, "This invite was already accepted");
		break;
	default:
		api_db_fail(r, res == DB_BUSY);
		break;
	}
}

/*
 * A resend takes no body: none, or an empty JSON object (what clients
 * that always send one send).  0 or answered.
 */
static int
resend_body(struct ctx *ctx, struct req *r)
{
	enum json_err je;
	const char *body, *what = NULL;
	size_t len;

	if (req_body(r, &body, &len) == BODY_OK && len == 0)
		return 0;
	if (api_json_body(ctx, r, &body, &len) == -1)
		return -1;
	if ((je = json_empty_body(body, len, &what)) != JSON_OK) {
		api_fail(r, 400, json_strerror(je, what));
		return -1;
	}
	return 0;
}

/* The invite's state as the worker reads it: 0, or answered (404, 409). */
static int
resend_state(struct ctx *ctx, struct req *r, const char *app,
    const char *uid, const char *iid, struct invite_life *l)
{
	enum db_res res;

	if ((res = db_invite_life(ctx->db, app, uid, iid, l)) == DB_NOTFOUND)
		api_fail(r, 404, "Invite not found");
	else if (res != DB_OK)
		api_db_fail(r, res == DB_BUSY);
	else if (l->accepted)
		api_fail(r, 409, "This invite was already accepted");
	else if (strcmp(l->status, "revoked") == 0)
		api_fail(r, 409, "This invite was revoked");
	else if (strcmp(l->status, "canceled") == 0)
		api_fail(r, 409, "This invite was canceled");
	else
		return 0;
	return -1;
}

static int
life_pick(int app_value, int server_value)
{
	return app_value >= 0 ? app_value : server_value;
}

/* The resend the writer checks again and stores: the next token. */
static void
resend_fill(struct ctx *ctx, struct req *r, struct invite *inv,
    const struct app *a, const struct invite_life *l,
    const struct idem_state *is)
{
	const struct conf *c = ctx->conf;
	char tok[ACCEPT_LEN + 1];

	inv->op = INVITE_RESEND;
	inv->generation = l->resends + 1;
	token_accept_gen(ctx->secret, inv->id, inv->generation, tok);
	util_sha256_hex(tok, ACCEPT_LEN, inv->token_hash);
	COPY(inv->app_id, a->id);
	COPY(inv->email_norm, l->email_norm);
	COPY(inv->request_id, r->id);
	inv->limit_hour = life_pick(a->limit_per_hour, c->limit_per_hour);
	inv->limit_day = life_pick(a->limit_per_day, c->limit_per_day);
	inv->limit_minute = life_pick(a->limit_per_minute,
	    c->app_limit_per_minute);
	inv->resend_interval = c->resend_interval;
	if (is->active) {
		COPY(inv->idem_cred, is->cred);
		COPY(inv->idem_key, is->key);
		COPY(inv->idem_hash, is->hash);
	}
}

void
invite_resend(struct ctx *ctx, struct req *r, const char *ids)
{
	struct principal p;
	struct invite inv;
	struct invite_life l;
	struct idem_state is;
	struct app a;
	enum db_res res;

	memset(&inv, 0, sizeof(inv));
	memset(&is, 0, sizeof(is));
	memset(&a, 0, sizeof(a));
	if (life_authorise(ctx, r, ids, &p, inv.inviter_id, inv.id) == -1 ||
	    resend_body(ctx, r) == -1 || idem_begin(ctx, r, &p, &is) != 0)
		goto out;
	if ((res = db_app_get(ctx->db, p.app, &a)) != DB_OK)
		api_db_fail(r, res == DB_BUSY);
	else if (life_inviter(ctx, r, p.app, inv.inviter_id, 1) == 0 &&
	    resend_state(ctx, r, p.app, inv.inviter_id, inv.id, &l) == 0) {
		/* As the POST: parked for the writer, then the mailer. */
		resend_fill(ctx, r, &inv, &a, &l, &is);
		invite_hide_ask(ctx, &p, &inv);
		if (worker_store(ctx, r, &inv, &is, invite_resumed) == 0)
			goto out;
	}
	idem_end(ctx, r, &is);
out:
	db_app_free(&a);
}
