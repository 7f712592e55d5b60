/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Credentials: exactly one of the two ways, an API key with its type and
 * client id, or an access token (Authorization or its alias
 * Authentication).  Failures never say which part was wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "extern.h"
#include "util.h"
#include "valid.h"
#include "jwt.h"
#include "db.h"
#include "api.h"
#include "auth.h"

#define KEY_MAX		256

/* The token after "Bearer " (scheme case-insensitive), or NULL. */
static const char *
bearer(const char *h)
{
	if (strncasecmp(h, "Bearer ", LIT_LEN("Bearer ")) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return *h != '\0' ? h : NULL;
}

static enum auth_res
auth_key(struct ctx *ctx, const char *key, const char *type,
    const char *client, struct principal *p)
{
	char hash[65], app[UUID_LEN + 1], ktype[8], cid[UUID_LEN + 1];
	size_t n = strlen(key);

	if (n < 16 || n > KEY_MAX || type == NULL || client == NULL ||
	    valid_uuid(client, cid) != NULL)
		return AUTH_BAD;
	util_sha256_hex(key, n, hash);
	switch (db_key_find(ctx->db, hash, app, ktype)) {
	case DB_OK:
		break;
	case DB_NOTFOUND:
		return AUTH_BAD;
	case DB_BUSY:
		return AUTH_BUSY;
	default:
		return AUTH_ERR;
	}
	if (strcmp(app, cid) != 0 || strcmp(ktype, type) != 0)
		return AUTH_BAD;
	p->token = 0;
	snprintf(p->cred, sizeof(p->cred), "key:%.16s", hash);
	memcpy(p->app, app, sizeof(p->app));
	memcpy(p->key_type, ktype, sizeof(p->key_type));
	return AUTH_OK;
}

/* Verify tok with the key of the app app_id; 0, -1 bad, -2 db trouble. */
static int
auth_token_app(struct ctx *ctx, const char *tok, const struct jwt *j,
    const char *app_id, struct principal *p)
{
	struct app a;
	struct jwt_key key;
	struct jwt_claims cl;
	unsigned char secret[32];
	enum db_res res;
	int rc;

	if ((res = db_app_get(ctx->db, app_id, &a)) != DB_OK)
		return res == DB_NOTFOUND ? -1 : -2;
	memset(&key, 0, sizeof(key));
	key.alg = a.jwt_alg;
	key.pem = a.jwt_key;
	key.issuer = a.jwt_issuer;
	key.audience = a.id;
	if (a.jwt_alg == JWT_HS256) {
		jwt_app_secret(ctx->secret, sizeof(ctx->secret), a.id,
		    a.jwt_generation, secret);
		key.secret = secret;
		key.secretlen = sizeof(secret);
	}
	rc = jwt_verify(tok, j, &key, time(NULL), &cl);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (rc == 0) {
		p->token = 1;
		memcpy(p->app, a.id, sizeof(p->app));
		memcpy(p->sub, cl.sub, sizeof(p->sub));
		snprintf(p->cred, sizeof(p->cred), "user:%s", cl.sub);
	}
	db_app_free(&a);
	return rc;
}

static enum auth_res
auth_token(struct ctx *ctx, const char *tok, struct principal *p)
{
	struct jwt j;
	char aud[UUID_LEN + 1];
	size_t i;
	int rc = -1;

	if (jwt_decode(tok, strlen(tok), &j) == -1)
		return AUTH_BADTOKEN;
	/* The audience names the app; the app's key decides. */
	for (i = 0; i < j.naud && rc == -1; i++)
		if (valid_uuid(j.aud[i], aud) == NULL)
			rc = auth_token_app(ctx, tok, &j, aud, p);
	jwt_free(&j);
	if (rc == -2)
		return AUTH_ERR;
	return rc == 0 ? AUTH_OK : AUTH_BADTOKEN;
}

enum auth_res
auth_request(struct ctx *ctx, struct req *r, struct principal *p)
{
	const char *authz = r->authorization, *key = r->api_key;
	const char *type = r->api_key_type, *client = r->client_id;
	const char *tok;

	memset(p, 0, sizeof(*p));
	if (authz != NULL && (key != NULL || type != NULL || client != NULL))
		return AUTH_BOTH;
	if (authz != NULL) {
		if ((tok = bearer(authz)) == NULL)
			return AUTH_BAD;
		return auth_token(ctx, tok, p);
	}
	if (key == NULL && type == NULL && client == NULL)
		return AUTH_NONE;
	if (key == NULL)
		return AUTH_BAD;
	return auth_key(ctx, key, type, client, p);
}

#define WWW_AUTH	"WWW-Authenticate: Bearer realm=\"referral-invites\""

void
auth_fail(struct req *r, enum auth_res res)
{
	switch (res) {
	case AUTH_BOTH:
		api_fail(r, 400,
		    "Use either an access token or an API key, not both");
		break;
	case AUTH_NONE:
		api_fail_hdr(r, 401, "Authentication required",
		    WWW_AUTH "\r\n");
		break;
	case AUTH_BADTOKEN:
		api_fail_hdr(r, 401, "Invalid credentials",
		    WWW_AUTH ", error=\"invalid_token\"\r\n");
		break;
	case AUTH_BAD:
		api_fail_hdr(r, 401, "Invalid credentials", WWW_AUTH "\r\n");
		break;
	default:
		api_db_fail(r, res == AUTH_BUSY);
		break;
	}
}
