/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Idempotency-Key on the POST routes: the same key with the same request
 * within 24 hours replays the first answer byte for byte instead of acting
 * twice; with a different request it is a 409.  Keys are per app and
 * credential, and bind only requests that got past the checks of their
 * headers and body (a 415 or 400 is not stored: the fixed request acts).
 * A claim is taken before acting, so two racing requests with one key
 * cannot both act; an invite turns the claim into "stored" in its own
 * transaction (db_invite_add), so a request that dies after that commit
 * leaves a key that answers for the invite, and one that dies before it
 * leaves a claim that lapses (IDEM_HOLD) and lets a retry act once.
 * The same request while the first is under way waits for its answer,
 * parked (worker.c), as long as the claim holds: then it gets that answer
 * too, or the 409 "in progress" if none comes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "db.h"
#include "api.h"
#include "auth.h"
#include "idem.h"
#include "park.h"
#include "worker.h"

/*
 * Seconds beyond delivery_wait that the first request of a key may still
 * be under way: the writer's patience (10 s) and a margin.
 */
#define IDEM_HOLD	12
#define IDEM_BUSY	"A request with this Idempotency-Key is in progress"
#define IDEM_OTHER	"Idempotency-Key was used for a different request"

static int
key_ok(const char *k)
{
	size_t n = strlen(k), i;

	if (n == 0 || n > 255)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e)
			return 0;
	return 1;
}

/* SHA-256 over method, path and body: what "the same request" means. */
static void
request_hash(struct req *r, const char *body, size_t len, char out[65])
{
	struct buf b = { 0 };
	const char *m = r->method, *p = r->uri;

	if (buf_printf(&b, "%s %s\n", m ? m : "", p ? p : "") == -1 ||
	    buf_add(&b, body, len) == -1)
		fatalx("out of memory");
	util_sha256_hex(b.p, b.len, out);
	buf_free(&b);
}

static void
replay(struct req *r, const struct idem *id)
{
	const char *body = id->body ? id->body : "";

	req_respond(r, id->status, CTYPE_JSON, id->headers, body,
	    strlen(body));
}

void
idem_busy(struct req *r)
{
	api_fail_hdr(r, 409, IDEM_BUSY, "Retry-After: 1\r\n");
}

/*
 * A parked duplicate looks for its first answer (worker.c): replays it,
 * or answers 409 when the key was released (its first request failed:
 * a retry acts) or retaken by another request; 409 "in progress" on its
 * last look.  0 answered, 1 to look again.
 */
static int
idem_resumed(struct ctx *ctx, struct parked *p, const struct wake *w)
{
	const struct idem_state *st = &p->is;
	struct idem id;
	enum db_res res;
	int rc = 0;

	res = db_idem_peek(ctx->db, st->app, st->cred, st->key, st->hash,
	    &id);
	if (res == DB_OK && id.found && !id.same)
		api_fail(p->r, 409, IDEM_OTHER);
	else if (res == DB_OK && id.found && id.body != NULL)
		replay(p->r, &id);
	else if (res == DB_OK && !id.found)
		idem_busy(p->r);
	else if (res != DB_OK && res != DB_BUSY)
		api_db_fail(p->r, 0);
	else if (w->kind == WAKE_CHECK)
		rc = 1;		/* not yet, or the database busy */
	else
		idem_busy(p->r);
	free(id.body);
	free(id.headers);
	return rc;
}

/* Park r to wait ms for the first answer of the key in st. */
static int
idem_wait(struct req *r, const struct idem_state *st, int ms)
{
	struct idem_state ws = *st;

	ws.active = 0;		/* it waits on another's claim */
	if (worker_idem_wait(r, &ws, ms, idem_resumed) == -1)
		idem_busy(r);
	return 1;
}

int
idem_begin(struct ctx *ctx, struct req *r, const struct principal *p,
    struct idem_state *st)
{
	const char *k = r->idempotency_key, *body;
	struct idem id;
	char hash[65];
	enum db_res res;
	size_t len;
	int rc = 0, hold;

	memset(st, 0, sizeof(*st));
	if (k == NULL)
		return 0;
	if (!key_ok(k)) {
		api_fail(r, 400, "Idempotency-Key is not valid");
		return -1;
	}
	/* A body we cannot read is answered by the route itself. */
	if (req_body(r, &body, &len) != BODY_OK)
		return 0;
	request_hash(r, body, len, hash);
	hold = IDEM_HOLD + ctx->conf->delivery_wait;
	if ((res = db_idem_begin(ctx->db, p->app, p->cred, k, hash, hold,
	    &id)) != DB_OK) {
		api_db_fail(r, res == DB_BUSY);
		return -1;
	}
	memcpy(st->app, p->app, sizeof(st->app));
	memcpy(st->cred, p->cred, sizeof(st->cred));
	snprintf(st->key, sizeof(st->key), "%s", k);
	memcpy(st->hash, hash, sizeof(st->hash));
	if (!id.found)
		st->active = 1;
	else if (!id.same) {
		api_fail(r, 409, IDEM_OTHER);
		rc = -1;
	} else if (id.body == NULL && (id.status == 0 || id.age < hold)) {
		/* A claim is found only within its hold: age < hold. */
		rc = idem_wait(r, st, (int)(hold - (id.age > 0 ? id.age : 0)) *
		    1000);
	} else if (id.body == NULL) {
		/* Its request died after storing the invite. */
		api_ok(r, id.status, "Invite queued", NULL, NULL);
		rc = 1;
	} else {
		replay(r, &id);
		rc = 1;
	}
	free(id.body);
	free(id.headers);
	return rc;
}

void
idem_end(struct ctx *ctx, struct req *r, struct idem_state *st)
{
	int status;

	if (!st->active)
		return;
	status = r->status;
	/*
	 * Faults, "busy" and rate limits are worth retrying later: release
	 * the key instead of replaying them.
	 */
	if (status >= 500 || status == 429 || status == 401)
		status = 0;
	if (db_idem_end(ctx->db, st->app, st->cred, st->key, st->hash, status,
	    r->answer ? r->answer : "", r->headers) != DB_OK)
		log_warnx("request %s: cannot record the Idempotency-Key",
		    r->id);
}
