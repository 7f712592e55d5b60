/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * libFuzzer harness for the request handling that needs no socket: route
 * matching, query strings, list cursors, the Content-Type check, the
 * Authorization header and opt-out tokens, and then a whole dispatch of
 * the request through route.c, loop.c, invite.c and auth.c.
 *
 * Those functions are static, so their files are included whole; what
 * they call below them is real (util.c, valid.c, json.c, jwt.c, log.c are
 * linked), except the socket, the database, idempotency, templates and
 * the opt-out pages, which are the stubs at the end of this file.
 *
 * The input is ten '\n'-terminated fields, empty meaning absent, then the
 * body: REQUEST_METHOD, DOCUMENT_URI, REQUEST_URI, QUERY_STRING,
 * CONTENT_TYPE, HTTP_AUTHORIZATION, HTTP_AUTHENTICATION, HTTP_X_API_KEY,
 * HTTP_X_API_KEY_TYPE, HTTP_X_CLIENT_ID.
 *
 * Each static function is checked against a small reference or its own
 * round trip; the dispatch must answer exactly once, with a known status,
 * a JSON envelope in valid UTF-8 and well-formed header lines, and 404,
 * 405 (with the right Allow) or 401 exactly when the reference says so.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "../../src/auth.c"
#include "../../src/invite.c"
#include "../../src/loop.c"
#include "../../src/life.c"
#include "../../src/route.c"
#include "../../src/token.c"

#define ASSERT(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "%s:%d: ASSERT(%s) failed\n",		\
		    __FILE__, __LINE__, #c);				\
		abort();						\
	}								\
} while (0)

#define APP		"6472c342-72bc-46ad-afe2-796a761c182c"
#define MAX_BODY	256

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

enum {
	P_METHOD, P_DOCUMENT_URI, P_REQUEST_URI, P_QUERY, P_CTYPE, P_AUTHZ,
	P_AUTHN, P_KEY, P_KEY_TYPE, P_CLIENT, P__MAX
};

/* The input's fields, as fcgi.c would have read them into a struct req. */
static const char *field[P__MAX];
/* Which opt-out stub ran, 1 or 2. */
static int optout_ran;

static void
req_fill(struct req *r)
{
	r->method = field[P_METHOD];
	r->uri = field[P_REQUEST_URI];
	r->query = field[P_QUERY];
	r->content_type = field[P_CTYPE];
	r->authorization = field[P_AUTHZ] ? field[P_AUTHZ] : field[P_AUTHN];
	r->api_key = field[P_KEY];
	r->api_key_type = field[P_KEY_TYPE];
	r->client_id = field[P_CLIENT];
	snprintf(r->id, sizeof(r->id), "fuzz");
}

static const unsigned char fuzz_secret[32] =
    "fuzz-server-secret-0123456789abc";

/* ------------------------------------------------- route_match, 404/405 */

/* The path route_dispatch routes on. */
static const char *
ref_path(char *buf, size_t bufsz)
{
	const char *p;
	size_t n;

	if (field[P_DOCUMENT_URI] != NULL)
		return field[P_DOCUMENT_URI];
	if ((p = field[P_REQUEST_URI]) == NULL)
		return "";
	n = strcspn(p, "?");
	if (n >= bufsz)
		n = bufsz - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

/*
 * Segment by segment: ":x" takes any non-empty one, the ones taken joined
 * by '/' under 128 bytes.
 */
static int
ref_match(const char *pattern, const char *path, char param[128])
{
	size_t pn, sn, used = 0;

	param[0] = '\0';
	for (;;) {
		pn = strcspn(pattern, "/");
		sn = strcspn(path, "/");
		if (pattern[0] == ':') {
			if (sn == 0 || used + (used > 0) + sn >= 128)
				return 0;
			if (used > 0)
				param[used++] = '/';
			memcpy(param + used, path, sn);
			param[used += sn] = '\0';
		} else if (pn != sn || memcmp(pattern, path, pn) != 0)
			return 0;
		if (pattern[pn] == '\0' || path[sn] == '\0')
			return pattern[pn] == path[sn];
		pattern += pn + 1;
		path += sn + 1;
	}
}

static void
check_route(const char *path)
{
	char p1[128], p2[128];
	size_t i;
	int m;

	for (i = 0; i < NROUTES; i++) {
		m = route_match(routes[i].pattern, path, p1, sizeof(p1));
		ASSERT(m == ref_match(routes[i].pattern, path, p2));
		if (m)
			ASSERT(strcmp(p1, p2) == 0);
	}
}

/* ---------------------------------------------------------- query_get */

/* The value of name in q: 1 and copied, 0 absent, -1 too long. */
static int
ref_query(const char *q, const char *name, char *out, size_t outsz)
{
	const char *seg, *amp;
	size_t n = strlen(name), l;

	for (seg = q; seg != NULL; seg = amp ? amp + 1 : NULL) {
		amp = strchr(seg, '&');
		l = amp ? (size_t)(amp - seg) : strlen(seg);
		if (l <= n || memcmp(seg, name, n) != 0 || seg[n] != '=')
			continue;
		if (l - n - 1 >= outsz)
			return -1;
		memcpy(out, seg + n + 1, l - n - 1);
		out[l - n - 1] = '\0';
		return 1;
	}
	return 0;
}

static int
check_query(const char *q, const char *name, char *out, size_t outsz)
{
	char *ref;
	int rc;

	ASSERT((ref = malloc(outsz)) != NULL);
	rc = query_get(q, name, out, outsz);
	if (q == NULL)
		ASSERT(rc == 0);
	else
		ASSERT(rc == ref_query(q, name, ref, outsz));
	if (rc == 1)
		ASSERT(strcmp(out, ref) == 0 && strchr(out, '&') == NULL);
	free(ref);
	return rc;
}

/* -------------------------------------------------------- cursor_parse */

static void
check_cursor(const char *c)
{
	char t[21], t2[21], again[80];
	int64_t pos, pos2;

	if (cursor_parse(c, t, &pos) == -1)
		return;
	ASSERT(pos >= 1 && strlen(t) == 20);
	ASSERT(strspn(t, "0123456789-:TZ") == 20);
	cursor_make(t, pos, again, sizeof(again));
	ASSERT(cursor_parse(again, t2, &pos2) == 0);
	ASSERT(pos2 == pos && strcmp(t2, t) == 0);
}

static void
check_cursor_make(int64_t pos)
{
	static const char t[] = "2026-11-26T04:00:00Z";
	char c[80], back_t[21];
	int64_t back;

	if (pos < 1)
		return;
	cursor_make(t, pos, c, sizeof(c));
	ASSERT(strlen(c) > 0 && strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(c));
	/* What invite_list sends back must fit what list_params reads. */
	ASSERT(strlen(c) < 64);
	ASSERT(cursor_parse(c, back_t, &back) == 0);
	ASSERT(back == pos && strcmp(back_t, t) == 0);
}

/* ------------------------------------------------------------ is_json */

/* Whether s is the sequence pat: literals (any case), " " for [ \t]*. */
static int
ref_seq(const char *s, const char *const *pat)
{
	size_t n;

	for (; *pat != NULL; pat++) {
		if (strcmp(*pat, " ") == 0) {
			s += strspn(s, " \t");
			continue;
		}
		n = strlen(*pat);
		if (strncasecmp(s, *pat, n) != 0)
			return 0;
		s += n;
	}
	return *s == '\0';
}

static void
check_ctype(const char *ct)
{
	static const char *const p1[] = { "application/json", " ", NULL };
	static const char *const p2[] = { "application/json", " ", ";", " ",
	    "charset=", "utf-8", NULL };
	static const char *const p3[] = { "application/json", " ", ";", " ",
	    "charset=", "\"utf-8\"", NULL };
	char *f;
	size_t i;
	int ok;

	ok = is_json(ct);
	if (ct == NULL) {
		ASSERT(!ok);
		return;
	}
	ASSERT(ok == (ref_seq(ct, p1) || ref_seq(ct, p2) || ref_seq(ct, p3)));
	ASSERT((f = strdup(ct)) != NULL);
	for (i = 0; f[i] != '\0'; i++)
		if (f[i] >= 'a' && f[i] <= 'z')
			f[i] = (char)(f[i] - 'a' + 'A');
		else if (f[i] >= 'A' && f[i] <= 'Z')
			f[i] = (char)(f[i] - 'A' + 'a');
	ASSERT(is_json(f) == ok);
	free(f);
}

/* ------------------------------------------------------------- bearer */

static void
check_bearer(const char *h)
{
	const char *t;
	size_t sp;

	if (h == NULL)
		return;
	t = bearer(h);
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		ASSERT(t == NULL);
		return;
	}
	sp = strspn(h + 7, " ");
	if (h[7 + sp] == '\0') {
		ASSERT(t == NULL);
		return;
	}
	ASSERT(t == h + 7 + sp && *t != ' ' && *t != '\0');
}

/* ------------------------------------------------- token_optout_check */

/* A token that checks out names a normalised app and address. */
static void
check_optout(const char *tok)
{
	char app[UUID_LEN + 1], email[EMAIL_MAX + 1], u[UUID_LEN + 1];
	char e1[EMAIL_MAX + 1], e2[EMAIL_MAX + 1], *canon;
	size_t n = strlen(tok), m;

	if (token_optout_check(fuzz_secret, tok, app, email) == -1)
		return;
	ASSERT(n > UUID_LEN + TOKEN_LEN + 2);
	ASSERT(valid_uuid(app, u) == NULL && strcmp(u, app) == 0);
	ASSERT(strncasecmp(tok, app, UUID_LEN) == 0);
	ASSERT(valid_email(email, e1, e2) == NULL);
	ASSERT(strcmp(e1, email) == 0 && strcmp(e2, email) == 0);
	/* The MAC is the one minted for exactly this app and address. */
	ASSERT((canon = token_optout(fuzz_secret, app, email)) != NULL);
	m = strlen(canon);
	ASSERT(m > TOKEN_LEN &&
	    strcmp(canon + m - TOKEN_LEN, tok + n - TOKEN_LEN) == 0);
	free(canon);
}

/* Whatever address valid_email takes, its token checks out. */
static void
check_optout_mint(const char *s)
{
	char out[EMAIL_MAX + 1], lower[EMAIL_MAX + 1];
	char app[UUID_LEN + 1], email[EMAIL_MAX + 1], *tok;

	if (valid_email(s, out, lower) != NULL)
		return;
	ASSERT((tok = token_optout(fuzz_secret, APP, lower)) != NULL);
	ASSERT(token_optout_check(fuzz_secret, tok, app, email) == 0);
	ASSERT(strcmp(app, APP) == 0 && strcmp(email, lower) == 0);
	tok[0] = tok[0] == 'a' ? 'b' : 'a';
	ASSERT(token_optout_check(fuzz_secret, tok, app, email) == -1);
	free(tok);
}

/* ------------------------------------------------------- the dispatch */

static int
known_status(int s)
{
	static const int ok[] = { 200, 201, 400, 401, 403, 404, 405, 409,
	    410, 413, 415, 429, 500, 503 };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (ok[i] == s)
			return 1;
	return 0;
}

/* CRLF-terminated "Name: value" lines, no other control characters. */
static void
check_headers(const char *h)
{
	size_t n, name, i;

	if (h == NULL)
		return;
	while (*h != '\0') {
		n = strcspn(h, "\r\n");
		ASSERT(h[n] == '\r' && h[n + 1] == '\n');
		name = strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789-");
		ASSERT(name > 0 && name + 1 < n && h[name] == ':' &&
		    h[name + 1] == ' ');
		for (i = 0; i < n; i++)
			ASSERT((unsigned char)h[i] >= 0x20 && h[i] != 0x7f);
		h += n + 2;
	}
}

/* The JSON envelope; returns its "error" (malloc'd) or NULL. */
static char *
check_envelope(const struct req *r)
{
	const cJSON *ok, *err, *msg, *data;
	cJSON *root;
	char *e = NULL;

	ASSERT(r->answer != NULL && strlen(r->answer) == r->answerlen);
	ASSERT(valid_utf8(r->answer, r->answerlen));
	ASSERT((root = cJSON_ParseWithOpts(r->answer, NULL, 1)) != NULL);
	ok = cJSON_GetObjectItemCaseSensitive(root, "success");
	err = cJSON_GetObjectItemCaseSensitive(root, "error");
	msg = cJSON_GetObjectItemCaseSensitive(root, "message");
	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	ASSERT(cJSON_IsBool(ok) && err != NULL && msg != NULL &&
	    data != NULL);
	if (cJSON_IsTrue(ok)) {
		ASSERT(r->status < 300 && cJSON_IsNull(err));
		ASSERT(cJSON_IsString(msg));
	} else {
		ASSERT(r->status >= 400 && cJSON_IsString(err));
		ASSERT(*err->valuestring != '\0' && cJSON_IsNull(msg) &&
		    cJSON_IsNull(data));
		ASSERT((e = strdup(err->valuestring)) != NULL);
	}
	cJSON_Delete(root);
	return e;
}

static void
check_dispatch(struct req *r)
{
	struct ctx ctx;
	struct conf conf;
	volatile sig_atomic_t stopping = 0;
	const char *method = field[P_METHOD], *path;
	static char public_url[] = "https://invites.example";
	char pathbuf[1024], seg[128], allow[64] = "", want[96], *err;
	size_t i;
	int matched = 0, ran = 0;

	memset(&conf, 0, sizeof(conf));
	conf.max_body = MAX_BODY;
	conf.public_url = public_url;
	memset(&ctx, 0, sizeof(ctx));
	ctx.conf = &conf;
	memcpy(ctx.secret, fuzz_secret, sizeof(ctx.secret));
	ctx.stopping = &stopping;

	route_dispatch(&ctx, r);
	ASSERT(r->nanswers == 1);
	ASSERT(known_status(r->status));
	ASSERT(r->ctype != NULL && strcmp(r->ctype, CTYPE_JSON) == 0);
	check_headers(r->headers);
	err = check_envelope(r);

	path = ref_path(pathbuf, sizeof(pathbuf));
	for (i = 0; i < NROUTES; i++) {
		if (!ref_match(routes[i].pattern, path, seg))
			continue;
		matched = 1;
		if (method != NULL && strcmp(method, routes[i].method) == 0) {
			ran = 1;
			break;
		}
		snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow),
		    "%s%s", allow[0] ? ", " : "", routes[i].method);
	}
	if (!matched)
		ASSERT(r->status == 404 && strcmp(err, "Not found") == 0);
	else if (!ran) {
		snprintf(want, sizeof(want), "Allow: %s\r\n", allow);
		ASSERT(r->status == 405 && r->headers != NULL &&
		    strcmp(r->headers, want) == 0);
	} else {
		ASSERT(r->status != 405);
		ASSERT(err == NULL || strcmp(err, "Not found") != 0);
		if (strstr(routes[i].pattern, "opt-out") != NULL)
			ASSERT(optout_ran == (routes[i].fn == optout_get ?
			    1 : 2));
		else if (routes[i].fn == ops_health ||
		    routes[i].fn == ops_metrics)
			/* No credentials: the stub's answer. */
			ASSERT(r->status == 200 && err == NULL);
		else if (field[P_AUTHZ] == NULL &&
		    field[P_AUTHN] == NULL && field[P_KEY] == NULL &&
		    field[P_KEY_TYPE] == NULL && field[P_CLIENT] == NULL)
			ASSERT(r->status == 401 && r->headers != NULL &&
			    strncmp(r->headers, "WWW-Authenticate: Bearer",
			    24) == 0);
	}
	free(err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct req r;
	char *copy, *f, *nl, *body, *end, lim[16], cur[64], tok[512];
	char tiny[1], pathbuf[1024];
	int64_t pos = 0;
	int i;

	memset(&r, 0, sizeof(r));
	memset(field, 0, sizeof(field));
	optout_ran = 0;
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	end = copy + size;
	for (f = copy, i = 0; i < P__MAX; i++) {
		if ((nl = memchr(f, '\n', (size_t)(end - f))) == NULL) {
			f = end;
			break;
		}
		*nl = '\0';
		field[i] = *f != '\0' ? f : NULL;
		f = nl + 1;
	}
	/* The body in a buffer of exactly its size. */
	r.bodylen = (size_t)(end - f);
	if ((body = malloc(r.bodylen ? r.bodylen : 1)) == NULL) {
		free(copy);
		return 0;
	}
	memcpy(body, f, r.bodylen);
	r.body = body;
	r.body_res = r.bodylen > MAX_BODY ? BODY_TOOBIG : BODY_OK;
	req_fill(&r);
	r.path = ref_path(pathbuf, sizeof(pathbuf));

	check_route(r.path);
	check_route(field[P_REQUEST_URI] ? field[P_REQUEST_URI] : "");
	check_query(field[P_QUERY], "limit", lim, sizeof(lim));
	if (check_query(field[P_QUERY], "cursor", cur, sizeof(cur)) == 1)
		check_cursor(cur);
	check_query(field[P_QUERY], "", tiny, sizeof(tiny));
	if (check_query(field[P_QUERY], "token", tok, sizeof(tok)) == 1)
		check_optout(tok);
	if (field[P_QUERY] != NULL) {
		check_cursor(field[P_QUERY]);
		check_optout(field[P_QUERY]);
	}
	memcpy(&pos, data, size < sizeof(pos) ? size : sizeof(pos));
	check_cursor_make(pos);
	check_ctype(field[P_CTYPE]);
	check_bearer(field[P_AUTHZ]);
	check_bearer(field[P_AUTHN]);
	if (memchr(f, '\0', r.bodylen) == NULL)
		check_optout_mint(f);

	check_dispatch(&r);

	free(r.headers);
	buf_free(&r.out);
	free(body);
	free(copy);
	return 0;
}

/*
 * ------------------------------------------------------------- STUBS
 * Stand-ins for worker.c (the socket), db.c, idem.c, commit.c, template.c,
 * optout.c and ops.c, so that the files above link without the daemon.
 * The database knows every API key (app APP, "read" or "write" by the key's
 * hash) and nothing else, so requests stop at the first lookup.
 */

void
optout_get(struct ctx *ctx, struct req *r, const char *unused)
{
	optout_ran = 1;
	api_ok(r, 200, "stub", NULL, NULL);
}

void
optout_post(struct ctx *ctx, struct req *r, const char *unused)
{
	optout_ran = 2;
	api_ok(r, 200, "stub", NULL, NULL);
}

void
ops_health(struct ctx *ctx, struct req *r, const char *unused)
{
	api_ok(r, 200, "stub", NULL, NULL);
}

void
ops_metrics(struct ctx *ctx, struct req *r, const char *unused)
{
	api_ok(r, 200, "stub", NULL, NULL);
}

int
idem_begin(struct ctx *ctx, struct req *r, const struct principal *p,
    struct idem_state *st)
{
	memset(st, 0, sizeof(*st));
	return 0;
}

void
idem_end(struct ctx *ctx, struct req *r, struct idem_state *st)
{
}

void
idem_busy(struct req *r)
{
	api_fail(r, 409, "stub");
}

const char *
tmpl_resolve(const char *requested, const char *app_default,
    const char *server_default)
{
	return "en";
}

enum db_res
db_key_find(struct db *db, const char *hash_hex, char app[UUID_LEN + 1],
    char type[8])
{
	memcpy(app, APP, UUID_LEN + 1);
	strcpy(type, hash_hex[0] < '8' ? "read" : "write");
	return DB_OK;
}

enum db_res
db_app_get(struct db *db, const char *id, struct app *out)
{
	memset(out, 0, sizeof(*out));
	return DB_NOTFOUND;
}

void
db_app_free(struct app *a)
{
}

enum db_res
db_read_begin(struct db *db)
{
	return DB_OK;
}

enum db_res
db_commit(struct db *db)
{
	return DB_OK;
}

void
db_rollback(struct db *db)
{
}

enum db_res
db_user_get(struct db *db, const char *app, const char *id,
    struct user *out)
{
	memset(out, 0, sizeof(*out));
	return DB_NOTFOUND;
}

void
db_user_free(struct user *u)
{
}

enum db_res
db_invites_list(struct db *db, const char *app, const char *user,
    const char *before_time, int64_t before, int limit, int ttl,
    db_row_fn fn, void *arg)
{
	return DB_ERR;
}

enum db_res
db_invite_life(struct db *db, const char *app, const char *inviter,
    const char *id, struct invite_life *out)
{
	memset(out, 0, sizeof(*out));
	return DB_NOTFOUND;
}

enum db_res
db_invite_revoke(struct db *db, const char *app, const char *inviter,
    const char *id)
{
	return DB_NOTFOUND;
}

enum db_res
db_invite_accept(struct db *db, const char *app, const char *id,
    const char *hash, int ttl, struct accepted *out)
{
	return DB_ERR;
}

/* No inviter is ever found here (db_user_get): nothing is parked. */
int
worker_store(struct ctx *ctx, struct req *r, const struct invite *inv,
    const struct idem_state *is, park_fn *fn)
{
	abort();
}

enum invite_res
db_invite_create(struct db *db, const struct invite *in, int *retry)
{
	return INV_ERR;
}

enum db_res
db_invite_status(struct db *db, const char *id, char status[16],
    char *reply, size_t replysz)
{
	return DB_ERR;
}
