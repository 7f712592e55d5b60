/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * POST /api/v1/users/:userId/referral-invites: authenticate, authorise,
 * validate, store, wake the mailer, wait for its verdict, answer.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"
#include "api.h"
#include "db.h"
#include "mailer.h"

#define JSON_TYPE	"application/json"

/* What a request resolved to before it is stored. */
struct invite_req {
	struct principal p;
	char		 userid[UUID_LEN + 1];
	char		 email[EMAIL_MAX + 1];
	char		 lower[EMAIL_MAX + 1];
	char		 lang[LANG_MAX];
};

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
    struct invite_req *ir)
{
	enum auth_res ar;

	if ((ar = auth_request(ctx, r, &ir->p)) != AUTH_OK) {
		auth_fail(r, ar);
		return -1;
	}
	if (ir->p.token && strcmp(userid, "me") == 0)
		memcpy(ir->userid, ir->p.sub, sizeof(ir->userid));
	else if (valid_uuid(userid, ir->userid) != NULL) {
		api_fail(r, 400, "userId is not a valid user id");
		return -1;
	}
	if (!ir->p.token && strcmp(ir->p.key_type, "write") != 0) {
		api_fail(r, 403, "This key may not create invites");
		return -1;
	}
	if (ir->p.token && strcmp(ir->userid, ir->p.sub) != 0) {
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

/* Content type, size, JSON, address and language.  0 or answered. */
static int
invite_validate(struct ctx *ctx, struct req *r, struct invite_req *ir)
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
	if (valid_email(b.email, ir->email, ir->lower) != NULL)
		api_fail(r, 400, "email is not a valid address");
	else if (valid_language(b.language, ir->lang) != NULL)
		api_fail(r, 400, "language is not a valid language tag");
	else
		rc = 0;
	json_invite_body_free(&b);
	return rc;
}

/*
 * The inviter: a user of the app, active, not the invitee.  Read inside
 * the snapshot the credentials were checked in, when there is one.
 */
static int
invite_inviter(struct ctx *ctx, struct req *r, struct invite_req *ir,
    struct app *a, struct user *u, int *snapshot)
{
	enum db_res res = DB_OK;

	if (*snapshot || (res = db_read_begin(ctx->db)) == DB_OK) {
		*snapshot = 0;
		res = db_app_get(ctx->db, ir->p.app, a);
		if (res == DB_OK)
			res = db_user_get(ctx->db, a->id, ir->userid, u);
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
	if (strcasecmp(u->email, ir->lower) == 0) {
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

/* The invite to store, in in; its id, token and hash in the buffers. */
static void
invite_new_of(struct ctx *ctx, struct req *r, const struct invite_req *ir,
    const struct app *a, const struct idem_state *is, struct invite_new *in,
    char id[UUID_LEN + 1], char hash[65])
{
	const struct conf *c = ctx->conf;
	char tok[ACCEPT_LEN + 1];

	util_uuid7(id);
	token_accept(ctx->secret, id, tok);
	util_sha256_hex(tok, ACCEPT_LEN, hash);
	memset(in, 0, sizeof(*in));
	in->id = id;
	in->app_id = a->id;
	in->inviter_id = ir->userid;
	in->email = ir->email;
	in->email_norm = ir->lower;
	in->lang_req = ir->lang;
	in->lang_res = tmpl_resolve(ir->lang, a->language, c->default_language);
	in->request_id = r->id;
	in->token_hash = hash;
	in->limit_hour = pick(a->limit_per_hour, c->limit_per_hour);
	in->limit_day = pick(a->limit_per_day, c->limit_per_day);
	in->limit_minute = pick(a->limit_per_minute, c->app_limit_per_minute);
	in->cooldown = pick(a->cooldown, c->cooldown);
	if (is != NULL && is->active) {
		in->idem_cred = is->cred;
		in->idem_key = is->key;
		in->idem_hash = is->hash;
	}
}

/* The writer's verdict: 0 when stored, otherwise answered. */
static int
invite_stored(struct req *r, int res, int retry, const char *id,
    const char *app, const char *lang)
{
	char hdr[64];

	switch (res) {
	case INV_OK:
		log_info("request %s: invite %s stored (app %s, language %s)",
		    r->id, id, app, lang);
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

/* Store the invite; INV_OK when stored, otherwise answered. */
static int
invite_store(struct ctx *ctx, struct req *r, const struct invite_req *ir,
    const struct app *a, const struct idem_state *is, char id[UUID_LEN + 1])
{
	struct invite_new in;
	char hash[65];
	int retry = 0, res;

	invite_new_of(ctx, r, ir, a, is, &in, id, hash);
	/* Storing waits for the writer: requests behind this one move on. */
	worker_share(0);
	res = ctx->commit_fd >= 0 ? commit_invite(ctx->commit_fd, &in,
	    &retry) : (int)db_invite_create(ctx->db, &in, &retry);
	(void)invite_stored(r, res, retry, id, a->id, in.lang_res);
	return res;
}

/*
 * A request waiting for the writer's commit and then, with delivery_wait,
 * for the mailer's verdict is parked instead of waited for: the worker
 * serves its other connections meanwhile, and invite_resume answers it
 * when the writer's answer, the verdict or the deadline comes.  This
 * table is the one owner of a parked invite; commit.c keeps only the
 * writer's side of it (sequence numbers, its deadline).
 */
enum park_phase { PARK_FREE, PARK_WRITER, PARK_VERDICT };

static struct parked_invite {
	struct req	*r;
	enum park_phase	 phase;
	int64_t		 deadline;	/* PARK_VERDICT: CLOCK_MONOTONIC ms */
	char		 id[UUID_LEN + 1];
	char		 app[UUID_LEN + 1];
	char		 lang[LANG_MAX];
	struct idem_state is;		/* its key's claim, if any */
	/* A verdict that came before the writer's answer: kept for it. */
	int		 early;
	struct verdict_msg v;
} parked[PARK_MAX];

static int
invite_park(struct ctx *ctx, struct req *r, const struct invite_req *ir,
    const struct app *a, const struct idem_state *is)
{
	struct parked_invite *p = parked;
	struct invite_new in;
	char hash[65];

	while (p < parked + PARK_MAX && p->phase != PARK_FREE)
		p++;
	if (p == parked + PARK_MAX)
		return -1;
	p->is = *is;
	invite_new_of(ctx, r, ir, a, &p->is, &in, p->id, hash);
	snprintf(p->app, sizeof(p->app), "%s", a->id);
	snprintf(p->lang, sizeof(p->lang), "%s", in.lang_res);
	if (commit_park(ctx->commit_fd, &in, p) == -1)
		return -1;
	p->r = r;
	p->phase = PARK_WRITER;
	p->early = 0;
	worker_park(r);
	return 0;
}

static void park_done(struct ctx *, struct parked_invite *);

/* The verdict's answer for p (parked in its verdict phase). */
static void
park_answer(struct ctx *ctx, struct parked_invite *p,
    const struct verdict_msg *v)
{
	if (v->kind == VERDICT_SENT)
		api_ok(p->r, 201, "Invite sent", NULL, NULL);
	else if (v->kind == VERDICT_FAILED)
		api_fail(p->r, 400, v->reply[0] ? v->reply :
		    "The mail server refused the address");
	else
		api_ok(p->r, 201, "Invite queued", NULL, NULL);
	park_done(ctx, p);
}

/* Answer a parked invite's request (already answered: just finish). */
static void
park_done(struct ctx *ctx, struct parked_invite *p)
{
	idem_end(ctx, p->r, &p->is);
	worker_done(p->r);
	p->r = NULL;
	p->phase = PARK_FREE;
}

/* The writer has answered: 201 now, or wait for the mailer's verdict. */
static void
park_stored(struct ctx *ctx, struct parked_invite *p, int res, int retry)
{
	if (res == INV_IDEM)
		p->is.active = 0;	/* the key is another request's */
	if (invite_stored(p->r, res, retry, p->id, p->app, p->lang) == -1) {
		park_done(ctx, p);
		return;
	}
	if (ctx->conf->delivery_wait == 0 || *ctx->stopping) {
		api_ok(p->r, 201, "Invite queued", NULL, NULL);
		park_done(ctx, p);
		return;
	}
	p->phase = PARK_VERDICT;
	p->deadline = util_now_ms() + ctx->conf->delivery_wait * 1000L;
	if (p->early)
		park_answer(ctx, p, &p->v);
}

/*
 * The mailer's verdict on one of ours, as invite_await answers it.  The
 * writer answers after its commit, and a busy mailer may send the mail
 * before the worker has read that answer: such a verdict is kept.
 */
static void
park_verdict(struct ctx *ctx, const struct verdict_msg *v)
{
	struct parked_invite *p;

	for (p = parked; p < parked + PARK_MAX; p++)
		if (p->phase != PARK_FREE && strcmp(p->id, v->id) == 0)
			break;
	if (p == parked + PARK_MAX)
		return;		/* another worker's, or past its deadline */
	if (p->phase == PARK_WRITER) {
		p->early = 1;
		p->v = *v;
		return;
	}
	park_answer(ctx, p, v);
}

void
invite_resume(struct ctx *ctx)
{
	struct parked_invite *p;
	struct verdict_msg v;
	int64_t now;
	int res, retry;

	while ((p = commit_ready(ctx->commit_fd, &res, &retry)) != NULL)
		park_stored(ctx, p, res, retry);
	while (ctx->verdict_fd != -1 && recv(ctx->verdict_fd, &v, sizeof(v),
	    MSG_DONTWAIT) == (ssize_t)sizeof(v)) {
		v.id[sizeof(v.id) - 1] = '\0';
		v.reply[sizeof(v.reply) - 1] = '\0';
		park_verdict(ctx, &v);
	}
	/* Past delivery_wait, or stopping: it is queued and will be sent. */
	now = util_now_ms();
	for (p = parked; p < parked + PARK_MAX; p++)
		if (p->phase == PARK_VERDICT && (now >= p->deadline ||
		    *ctx->stopping)) {
			api_ok(p->r, 201, "Invite queued", NULL, NULL);
			park_done(ctx, p);
		}
}

int
invite_parked(void)
{
	struct parked_invite *p;
	int n = 0;

	for (p = parked; p < parked + PARK_MAX; p++)
		n += p->phase != PARK_FREE;
	return n;
}

int
invite_next_ms(void)
{
	struct parked_invite *p;
	int64_t first = INT64_MAX, now = util_now_ms();
	int ms = commit_next_ms();

	for (p = parked; p < parked + PARK_MAX; p++)
		if (p->phase == PARK_VERDICT && p->deadline < first)
			first = p->deadline;
	if (first == INT64_MAX)
		return ms;
	first = first <= now ? 0 : first - now;
	return ms == -1 || first < ms ? (int)first : ms;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Wake the mailer and wait up to delivery_wait for its verdict on id.
 * Answers 201 sent/queued, or 400 with the server's permanent refusal.
 */
static void
invite_await(struct ctx *ctx, struct req *r, const char *id)
{
	char status[16], reply[512];
	struct timespec t0, t;
	long waited;
	int step = 2;

	/* Requests on this worker's other connections go elsewhere. */
	if (ctx->conf->delivery_wait > 0)
		worker_share(1);
	/* The writer wakes the mailer after each batch it commits. */
	if (ctx->commit_fd < 0 && write(ctx->wake_fd, "w", 1) == -1 &&
	    errno != EAGAIN)
		log_warn("wake mailer");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (waited >= ctx->conf->delivery_wait * 1000L ||
		    *ctx->stopping)
			break;
		sleep_ms(step);
		if (step < 50)
			step *= 2;
		if (db_invite_status(ctx->db, id, status, reply,
		    sizeof(reply)) != DB_OK)
			continue;
		if (strcmp(status, "sent") == 0) {
			api_ok(r, 201, "Invite sent", NULL, NULL);
			return;
		}
		if (strcmp(status, "failed") == 0) {
			api_fail(r, 400, reply[0] ? reply :
			    "The mail server refused the address");
			return;
		}
		/* Tried and deferred (4xx, relay down): no need to wait on. */
		if (strcmp(status, "queued") == 0 && reply[0] != '\0')
			break;
	}
	api_ok(r, 201, "Invite queued", NULL, NULL);
}

void
invite_post(struct ctx *ctx, struct req *r, const char *userid)
{
	struct invite_req ir;
	struct idem_state is;
	struct app a;
	struct user u;
	char id[UUID_LEN + 1];
	int snapshot;

	memset(&ir, 0, sizeof(ir));
	memset(&is, 0, sizeof(is));
	memset(&a, 0, sizeof(a));
	memset(&u, 0, sizeof(u));
	/*
	 * Credentials, app and inviter from one snapshot: one WAL read lock
	 * instead of two.  Not across an Idempotency-Key, whose claim
	 * writes (a write cannot start from an older snapshot).
	 */
	snapshot = db_read_begin(ctx->db) == DB_OK;
	if (invite_authorise(ctx, r, userid, &ir) == -1)
		goto out;
	if (snapshot && r->idempotency_key != NULL) {
		snapshot = 0;
		db_rollback(ctx->db);
	}
	if (invite_validate(ctx, r, &ir) == -1 ||
	    idem_begin(ctx, r, &ir.p, &is) != 0)
		goto out;
	if (invite_inviter(ctx, r, &ir, &a, &u, &snapshot) == 0) {
		/*
		 * What is left waits for the writer and the mailer: park it
		 * (it is answered in invite_resume, its key's answer stored
		 * there too).  Waited for here only when no entry is free.
		 */
		if (ctx->commit_fd >= 0 && invite_park(ctx, r, &ir, &a,
		    &is) == 0)
			goto out;
		switch (invite_store(ctx, r, &ir, &a, &is, id)) {
		case INV_OK:
			invite_await(ctx, r, id);
			break;
		case INV_IDEM:
			/* The key is another request's now: leave it be. */
			is.active = 0;
			break;
		}
	}
	idem_end(ctx, r, &is);
out:
	if (snapshot)
		db_rollback(ctx->db);
	db_user_free(&u);
	db_app_free(&a);
}
