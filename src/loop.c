/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Closing the referral loop: GET /api/v1/users/:userId/referral-invites
 * lists a user's invites, newest first, with cursor pagination (RFC 8288
 * Link header); POST /api/v1/referral-invites/accept turns an accept
 * token into a sign-up, once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "log.h"
#include "util.h"
#include "valid.h"
#include "json.h"
#include "token.h"
#include "db.h"
#include "api.h"
#include "auth.h"
#include "idem.h"

#define LIST_DEFAULT	20
#define LIST_MAX	100
#define DAY		86400

struct list_state {
	struct buf	 data;
	int		 n;
	int		 limit;
	int		 more;		/* a row beyond the page exists */
	int64_t		 last;		/* position of the last row shown */
	char		 last_time[21];
};

static int
json_field(struct buf *b, const char *name, const char *v, int first)
{
	if (buf_printf(b, "%s\"%s\":", first ? "" : ",", name) == -1)
		return -1;
	return v ? json_add_string(b, v) : buf_adds(b, "null");
}

/* A member whose value is JSON already (stored as we answer it). */
static int
json_raw(struct buf *b, const char *name, const char *v)
{
	if (buf_printf(b, ",\"%s\":", name) == -1)
		return -1;
	return buf_adds(b, v && *v ? v : "null");
}

static int
list_row(void *arg, const char *c[LIST_COLS], int64_t pos)
{
	static const char *const names[LIST_COLS - 1] = { "id", "email",
	    "language", "status", "createdAt", "sentAt", "acceptedAt",
	    "expiresAt" };
	struct list_state *ls = arg;
	int i;

	if (ls->n == ls->limit) {
		ls->more = 1;
		return 0;
	}
	if (buf_adds(&ls->data, ls->n ? ",{" : "{") == -1)
		return -1;
	for (i = 0; i < LIST_COLS - 1; i++)
		if (json_field(&ls->data, names[i], c[i], i == 0) == -1)
			return -1;
	if (json_raw(&ls->data, "metadata", c[LIST_COLS - 1]) == -1)
		return -1;
	if (buf_adds(&ls->data, "}") == -1)
		return -1;
	ls->last = pos;
	snprintf(ls->last_time, sizeof(ls->last_time), "%s", c[4]);
	ls->n++;
	return 0;
}

/* The value of name in a query string, copied (not decoded) into out. */
static int
query_get(const char *q, const char *name, char *out, size_t outsz)
{
	size_t n = strlen(name), l;

	while (q != NULL && *q != '\0') {
		l = strcspn(q, "&");
		if (l > n && strncmp(q, name, n) == 0 && q[n] == '=') {
			if (l - n - 1 >= outsz)
				return -1;
			memcpy(out, q + n + 1, l - n - 1);
			out[l - n - 1] = '\0';
			return 1;
		}
		q += l;
		if (*q == '&')
			q++;
	}
	return 0;
}

/*
 * The cursor is base64url("<createdAt> <position>") of the last row shown:
 * opaque to clients, checked here.  Invites added while a client pages
 * are newer than every cursor, so pages never shift: no duplicates, no
 * gaps.
 */
static int
cursor_parse(const char *c, char t[21], int64_t *pos)
{
	unsigned char raw[48];
	long long v;
	ssize_t n;

	n = util_b64url_dec(c, strlen(c), raw, sizeof(raw) - 1);
	if (n < 22 || raw[20] != ' ')
		return -1;
	raw[n] = '\0';
	memcpy(t, raw, 20);
	t[20] = '\0';
	if (strspn(t, "0123456789-:TZ") != 20 ||
	    util_strtonum((char *)raw + 21, 1, INT64_MAX, &v) == -1)
		return -1;
	*pos = v;
	return 0;
}

static void
cursor_make(const char *t, int64_t pos, char *out, size_t outsz)
{
	char raw[48];

	snprintf(raw, sizeof(raw), "%.20s %lld", t, (long long)pos);
	util_b64url_enc((unsigned char *)raw, strlen(raw), out, outsz);
}

/* Who may list: a read or write key, or the user's own token. */
static int
list_authorise(struct ctx *ctx, struct req *r, const char *userid,
    struct principal *p, char uid[UUID_LEN + 1])
{
	enum auth_res ar;

	if ((ar = auth_request(ctx, r, p)) != AUTH_OK) {
		auth_fail(r, ar);
		return -1;
	}
	if (p->token && strcmp(userid, "me") == 0)
		memcpy(uid, p->sub, UUID_LEN + 1);
	else if (valid_uuid(userid, uid) != NULL) {
		api_fail(r, 400, "userId is not a valid user id");
		return -1;
	}
	if (p->token && strcmp(uid, p->sub) != 0) {
		api_fail(r, 403, "A token may only act for its own user");
		return -1;
	}
	return 0;
}

static int
list_params(struct req *r, long long *limit, char t[21], int64_t *before)
{
	const char *q = r->query;
	char lim[16], cursor[64];
	int rc;

	*limit = LIST_DEFAULT;
	*before = 0;
	t[0] = '\0';
	if ((rc = query_get(q, "limit", lim, sizeof(lim))) != 0 &&
	    (rc == -1 || util_strtonum(lim, 1, LIST_MAX, limit) == -1 ||
	    lim[0] == '-')) {
		api_fail(r, 400, "limit must be a number from 1 to 100");
		return -1;
	}
	if ((rc = query_get(q, "cursor", cursor, sizeof(cursor))) != 0 &&
	    (rc == -1 || cursor_parse(cursor, t, before) == -1)) {
		api_fail(r, 400, "cursor is not valid");
		return -1;
	}
	return 0;
}

void
invite_list(struct ctx *ctx, struct req *r, const char *userid)
{
	struct principal p;
	struct list_state ls;
	struct user u;
	struct app a;
	char uid[UUID_LEN + 1], next[80], t[21], *hdr = NULL;
	long long limit;
	int64_t before;
	enum db_res res;

	memset(&ls, 0, sizeof(ls));
	memset(&u, 0, sizeof(u));
	memset(&a, 0, sizeof(a));
	if (list_authorise(ctx, r, userid, &p, uid) == -1 ||
	    list_params(r, &limit, t, &before) == -1)
		return;
	ls.limit = (int)limit;
	if ((res = db_app_get(ctx->db, p.app, &a)) != DB_OK ||
	    (res = db_user_get(ctx->db, p.app, uid, &u)) != DB_OK) {
		if (res == DB_NOTFOUND)
			api_fail(r, 404, "User not found");
		else
			api_db_fail(r, res == DB_BUSY);
		goto out;
	}
	/* One more than asked tells whether a next page exists. */
	if (buf_adds(&ls.data, "[") == -1 ||
	    (res = db_invites_list(ctx->db, p.app, uid, t[0] ? t : NULL,
	    before, (int)limit + 1, a.accept_ttl >= 0 ? a.accept_ttl :
	    14 * DAY, list_row, &ls)) != DB_OK) {
		api_db_fail(r, res == DB_BUSY);
		goto out;
	}
	if (ls.more) {
		cursor_make(ls.last_time, ls.last, next, sizeof(next));
		if (asprintf(&hdr, "Link: <%s/api/v1/users/%s/referral-invites"
		    "?limit=%lld&cursor=%s>; rel=\"next\"\r\n",
		    ctx->conf->public_url, userid, limit, next) == -1)
			hdr = NULL;
	}
	if (buf_adds(&ls.data, "]") == -1)
		api_fail(r, 500, "Internal error");
	else
		api_ok(r, 200, "Invites listed", ls.data.p, hdr);
out:
	free(hdr);
	buf_free(&ls.data);
	db_user_free(&u);
	db_app_free(&a);
}

/* The accept route takes a write key of the invite's app, not a token. */
static int
accept_authorise(struct ctx *ctx, struct req *r, struct principal *p)
{
	enum auth_res ar;

	if ((ar = auth_request(ctx, r, p)) != AUTH_OK) {
		auth_fail(r, ar);
		return -1;
	}
	if (p->token) {
		api_fail(r, 403, "This route requires an API key");
		return -1;
	}
	if (strcmp(p->key_type, "write") != 0) {
		api_fail(r, 403, "This key may not accept invites");
		return -1;
	}
	return 0;
}

static void
accept_answer(struct req *r, const struct accepted *a)
{
	struct buf b = { 0 };

	if (buf_adds(&b, "{") == -1 ||
	    json_field(&b, "inviteId", a->id, 1) == -1 ||
	    json_field(&b, "inviterUserId", a->inviter, 0) == -1 ||
	    json_field(&b, "email", a->email, 0) == -1 ||
	    json_field(&b, "acceptedAt", a->accepted_at, 0) == -1 ||
	    json_raw(&b, "metadata", a->metadata) == -1 ||
	    json_field(&b, "redirectUrl", a->redirect_url[0] ?
	    a->redirect_url : NULL, 0) == -1 ||
	    buf_adds(&b, "}") == -1)
		api_fail(r, 500, "Internal error");
	else
		api_ok(r, 200, "Invite accepted", b.p, NULL);
	buf_free(&b);
}

void
invite_accept(struct ctx *ctx, struct req *r, const char *unused)
{
	struct principal p;
	struct idem_state is;
	struct accepted a;
	struct app app;
	enum json_err je;
	enum db_res res;
	const char *body, *what = NULL;
	char *tok = NULL, hash[65], id[UUID_LEN + 1];
	size_t len;

	memset(&app, 0, sizeof(app));
	memset(&is, 0, sizeof(is));
	if (accept_authorise(ctx, r, &p) == -1 ||
	    api_json_body(ctx, r, &body, &len) == -1)
		return;
	if ((je = json_token_body(body, len, &tok, &what)) != JSON_OK) {
		api_fail(r, 400, json_strerror(je, what));
		goto out;
	}
	/* Only a well-formed request binds its Idempotency-Key (idem.c). */
	if (idem_begin(ctx, r, &p, &is) != 0)
		goto out;
	if ((res = db_app_get(ctx->db, p.app, &app)) != DB_OK) {
		api_db_fail(r, res == DB_BUSY);
		goto out;
	}
	util_sha256_hex(tok, strlen(tok), hash);
	if (token_accept_id(tok, id) == 0 || strlen(tok) == TOKEN_LEN)
		res = db_invite_accept(ctx->db, p.app, strlen(tok) ==
		    TOKEN_LEN ? NULL : id, hash, app.accept_ttl >= 0 ?
		    app.accept_ttl : 14 * DAY, &a);
	else
		res = DB_NOTFOUND;
	if (res == DB_NOTFOUND)
		api_fail(r, 404, "Invite not found");
	else if (res != DB_OK)
		api_db_fail(r, res == DB_BUSY);
	else if (a.why != ACCEPT_OK)
		api_fail(r, 410, "This invite has expired or was already used");
	else {
		log_info("request %s: invite %s accepted", r->id, a.id);
		accept_answer(r, &a);
	}
out:
	idem_end(ctx, r, &is);
	free(tok);
	db_app_free(&app);
}
