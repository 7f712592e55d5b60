/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl: apps, their API keys and users, and the HS256
 * tokens it mints for them.  Secrets it creates are printed once and
 * stored only hashed or derived.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>

#include "extern.h"
#include "util.h"
#include "valid.h"
#include "jwt.h"
#include "mail.h"
#include "token.h"
#include "db.h"
#include "ctl.h"

static void
check_url(const char *u)
{
	if (u == NULL || (strncmp(u, "https://", LIT_LEN("https://")) != 0 &&
	    strncmp(u, "http://", LIT_LEN("http://")) != 0) ||
	    strpbrk(u, " \t\r\n\"<>") != NULL)
		ctl_refuse("invite URL must be an http(s) URL");
}

/* A name shown in mail and pages: UTF-8, no control characters. */
static void
check_name(const char *s)
{
	const unsigned char *p;

	if (s == NULL)
		return;
	if (*s == '\0' || strlen(s) > 200 || !valid_utf8(s, strlen(s)))
		ctl_refuse("a name must be 1 to 200 bytes of UTF-8");
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			ctl_refuse("a name must not contain control "
			    "characters");
}

static void
check_sender(const char *s)
{
	char a[EMAIL_MAX + 1];

	if (s == NULL)
		return;
	check_name(s);
	if (mail_addr_of(s, a) == -1)
		ctl_refuse("%s: not a sender address", s);
}

static const char *
norm_lang(const char *s, char out[LANG_MAX])
{
	if (s == NULL)
		return NULL;
	if (valid_language(s, out) != NULL)
		ctl_refuse("%s: not a language tag", s);
	return out;
}

static void
check_num(const char *s, const char *what)
{
	long long n;

	if (s != NULL && util_strtonum(s, 0, 1000000000, &n) == -1)
		ctl_refuse("%s: not a number for %s", s, what);
}

/* ---------------------------------------------------------------- apps */

int
cmd_app_add(const struct cmd_args *a)
{
	struct opts *o = a->o;
	char id[UUID_LEN + 1], ts[21], lang[LANG_MAX];

	if (o->name == NULL || o->invite_url == NULL)
		ctl_usage("app add needs --name and --invite-url");
	check_name(o->name);
	check_url(o->invite_url);
	check_sender(o->sender);
	util_uuid(id);
	ctl_now(ts);
	ctl_exec("INSERT INTO apps (id, name, invite_url, sender, language, "
	    "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)", 6,
	    id, o->name, o->invite_url, o->sender, norm_lang(o->language,
	    lang), ts);
	ctl_created("clientId", id);
	return 0;
}

int
cmd_app_list(const struct cmd_args *a)
{
	(void)a;
	ctl_rows("SELECT id, name, invite_url, sender, language, jwt_alg, "
	    "created_at FROM apps ORDER BY created_at, id", 0, 0);
	return 0;
}

#define APP_COLUMNS "id, name, invite_url, sender, language, jwt_alg, " \
	"jwt_issuer, accept_ttl, limit_per_hour, limit_per_day, " \
	"limit_per_minute, cooldown, created_at, updated_at, redirect_allow, " \
	"webhook_url"

/* The rows of an app (or the app itself): app show, key list, user list. */
int
cmd_of_app(const struct cmd_args *a)
{
	static const struct {
		const char	*noun;
		const char	*sql;
		int		 single;
	} q[] = {
		{ "app", "SELECT " APP_COLUMNS " FROM apps WHERE id = ?1", 1 },
		{ "key", "SELECT id, type, created_at, revoked_at FROM "
		    "api_keys WHERE app_id = ?1 ORDER BY created_at, id", 0 },
		{ "user", "SELECT id, email, name, active, created_at FROM "
		    "users WHERE app_id = ?1 ORDER BY created_at, id", 0 },
	};
	char id[UUID_LEN + 1];
	size_t i;

	ctl_need_app(a->pos[0], id);
	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		if (strcmp(q[i].noun, a->noun) == 0)
			ctl_rows(q[i].sql, q[i].single, 1, id);
	return 0;
}

/* --redirect-allow PREFIX[,PREFIX]: each as valid_redirect_prefix says. */
static void
check_prefixes(const char *list)
{
	char p[REDIRECT_MAX + 1];
	const char *s, *why;
	size_t n;

	for (s = list; s != NULL && *s != '\0'; s += n + (s[n] == ',')) {
		n = strcspn(s, ",");
		if (n > REDIRECT_MAX)
			ctl_refuse("--redirect-allow: a prefix is too long");
		memcpy(p, s, n);
		p[n] = '\0';
		if ((why = valid_redirect_prefix(p)) != NULL)
			ctl_refuse("%s: --redirect-allow: %s", p, why);
	}
	if (list != NULL && *list != '\0' && (list[0] == ',' ||
	    strstr(list, ",,") != NULL || list[strlen(list) - 1] == ','))
		ctl_refuse("--redirect-allow: an empty prefix");
}

int
cmd_app_set(const struct cmd_args *a)
{
	const char *idarg = a->pos[0];
	struct opts *o = a->o;
	char id[UUID_LEN + 1], ts[21], lang[LANG_MAX];

	ctl_need_app(idarg, id);
	if (o->nset == 0)
		ctl_usage("app set needs at least one option");
	check_name(o->name);
	if (o->invite_url)
		check_url(o->invite_url);
	check_sender(o->sender);
	check_num(o->accept_ttl, "--accept-ttl");
	check_num(o->per_hour, "--limit-per-hour");
	check_num(o->per_day, "--limit-per-day");
	check_num(o->per_minute, "--limit-per-minute");
	check_num(o->cooldown, "--cooldown");
	check_prefixes(o->redirect_allow);
	if (o->webhook_url != NULL)
		ctl_webhook_check(o->webhook_url);
	ctl_now(ts);
	ctl_exec("UPDATE apps SET name = coalesce(?2, name), "
	    "invite_url = coalesce(?3, invite_url), "
	    "sender = coalesce(?4, sender), "
	    "language = coalesce(?5, language), "
	    "accept_ttl = coalesce(CAST(?6 AS INTEGER), accept_ttl), "
	    "limit_per_hour = coalesce(CAST(?7 AS INTEGER), limit_per_hour), "
	    "limit_per_day = coalesce(CAST(?8 AS INTEGER), limit_per_day), "
	    "limit_per_minute = coalesce(CAST(?9 AS INTEGER), "
	    "limit_per_minute), "
	    "cooldown = coalesce(CAST(?10 AS INTEGER), cooldown), "
	    "updated_at = ?11 WHERE id = ?1", 11, id, o->name, o->invite_url,
	    o->sender, norm_lang(o->language, lang), o->accept_ttl,
	    o->per_hour, o->per_day, o->per_minute, o->cooldown, ts);
	/* "" takes every prefix away. */
	if (o->redirect_allow != NULL)
		ctl_exec("UPDATE apps SET redirect_allow = nullif(?2, '') "
		    "WHERE id = ?1", 2, id, o->redirect_allow);
	if (o->webhook_url != NULL)
		ctl_webhook_url(id, o->webhook_url);
	return 0;
}

static char *
read_file(const char *path)
{
	FILE *f;
	char *s;
	long n;

	if ((f = fopen(path, "r")) == NULL)
		ctl_refuse("%s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) == -1 || (n = ftell(f)) <= 0 ||
	    n > 65536 || fseek(f, 0, SEEK_SET) == -1 ||
	    (s = calloc(1, (size_t)n + 1)) == NULL ||
	    fread(s, 1, (size_t)n, f) != (size_t)n)
		ctl_refuse("%s: cannot read", path);
	fclose(f);
	return s;
}

/* Refuse now a key that could never verify a token of alg. */
static void
check_public_key(const char *pem, enum jwt_alg alg, const char *path)
{
	BIO *bio;
	EVP_PKEY *pk = NULL;
	int ok;

	if ((bio = BIO_new_mem_buf(pem, -1)) != NULL)
		pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk == NULL)
		ctl_refuse("%s: not a PEM public key", path);
	if (alg == JWT_RS256)
		ok = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA &&
		    EVP_PKEY_get_bits(pk) >= 2048;
	else
		ok = EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
		    EVP_PKEY_get_bits(pk) == 256;
	EVP_PKEY_free(pk);
	if (!ok)
		ctl_refuse("%s: not an %s key (RSA of 2048 bits or more, or EC "
		    "P-256)", path, jwt_alg_name(alg));
}

int
cmd_app_jwt_key(const struct cmd_args *a)
{
	const char *idarg = a->pos[0];
	struct opts *o = a->o;
	char id[UUID_LEN + 1], ts[21], *pem = NULL, enc[64];
	unsigned char server[32], secret[32];
	char err[512];
	enum jwt_alg alg = jwt_alg_parse(o->alg);
	char gen[24];

	ctl_need_app(idarg, id);
	ctl_now(ts);
	if (alg == JWT_HS256) {
		/* A new generation: the previous secret stops working. */
		ctl_exec("UPDATE apps SET jwt_alg = 'HS256', "
		    "jwt_public_key = NULL, "
		    "jwt_generation = jwt_generation + 1, jwt_issuer = ?2, "
		    "updated_at = ?3 WHERE id = ?1", 3, id, o->issuer, ts);
		if (token_secret_load(ctl_node, 0, server, err,
		    sizeof(err)) == -1)
			ctl_refuse("%s", err);
		ctl_value("SELECT jwt_generation FROM apps WHERE id = ?1", gen,
		    sizeof(gen), 1, id);
		jwt_app_secret(server, 32, id, atoi(gen), secret);
		util_b64url_enc(secret, 32, enc, sizeof(enc));
		ctl_created("secret", enc);
		OPENSSL_cleanse(secret, 32);
		OPENSSL_cleanse(server, 32);
		OPENSSL_cleanse(enc, sizeof(enc));
		return 0;
	}
	if (alg != JWT_RS256 && alg != JWT_ES256)
		ctl_usage("--alg must be RS256, ES256 or HS256");
	if (o->public_key == NULL)
		ctl_usage("--public-key FILE is required");
	pem = read_file(o->public_key);
	check_public_key(pem, alg, o->public_key);
	ctl_exec("UPDATE apps SET jwt_alg = ?2, jwt_public_key = ?3, "
	    "jwt_issuer = ?4, updated_at = ?5 WHERE id = ?1", 5, id,
	    jwt_alg_name(alg), pem, o->issuer, ts);
	free(pem);
	return 0;
}

/* ---------------------------------------------------------------- keys */

int
cmd_key_add(const struct cmd_args *a)
{
	const char *idarg = a->pos[0];
	struct opts *o = a->o;
	char id[UUID_LEN + 1], kid[20], key[64], hash[65], ts[21];
	unsigned char raw[32], kraw[6];

	ctl_need_app(idarg, id);
	if (o->type == NULL ||
	    (strcmp(o->type, "read") != 0 && strcmp(o->type, "write") != 0))
		ctl_usage("key add needs --type read|write");
	util_random(raw, sizeof(raw));
	util_random(kraw, sizeof(kraw));
	strcpy(kid, "key_");
	util_hex(kraw, sizeof(kraw), kid + 4);
	util_b64url_enc(raw, sizeof(raw), key, sizeof(key));
	util_sha256_hex(key, strlen(key), hash);
	ctl_now(ts);
	ctl_exec("INSERT INTO api_keys (id, app_id, type, key_hash, created_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)", 5, kid, id, o->type, hash, ts);
	if (ctl_json)
		printf("{\"id\":\"%s\",\"type\":\"%s\",\"key\":\"%s\"}\n", kid,
		    o->type, key);
	else
		printf("%s\n", key);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int
cmd_key_revoke(const struct cmd_args *a)
{
	char ts[21];

	ctl_now(ts);
	if (ctl_exec("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND "
	    "revoked_at IS NULL", 2, a->pos[0], ts) == 0)
		ctl_refuse("%s: no such active key", a->pos[0]);
	return 0;
}

/* --------------------------------------------------------------- users */

int
cmd_user_add(const struct cmd_args *a)
{
	const char *idarg = a->pos[0];
	struct opts *o = a->o;
	char app[UUID_LEN + 1], uid[UUID_LEN + 1], ts[21];
	char email[EMAIL_MAX + 1], lower[EMAIL_MAX + 1];

	ctl_need_app(idarg, app);
	if (o->email == NULL)
		ctl_usage("user add needs --email");
	check_name(o->name);
	if (valid_email(o->email, email, lower) != NULL)
		ctl_refuse("%s: not a valid address", o->email);
	if (o->id != NULL) {
		if (valid_uuid(o->id, uid) != NULL)
			ctl_refuse("%s: not a UUID", o->id);
	} else
		util_uuid(uid);
	if (ctl_exists("SELECT 1 FROM users WHERE id = ?1", 1, uid))
		ctl_refuse("user %s exists", uid);
	ctl_now(ts);
	ctl_exec("INSERT INTO users (id, app_id, email, name, created_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)", 5, uid, app, lower, o->name, ts);
	ctl_created("userId", uid);
	return 0;
}

/* user disable, user enable. */
int
cmd_user_active(const struct cmd_args *a)
{
	char id[UUID_LEN + 1];

	if (valid_uuid(a->pos[0], id) != NULL)
		ctl_refuse("%s: not a user id", a->pos[0]);
	if (ctl_exec("UPDATE users SET active = CAST(?2 AS INTEGER) "
	    "WHERE id = ?1", 2, id,
	    strcmp(a->verb, "enable") == 0 ? "1" : "0") == 0)
		ctl_refuse("%s: no such user", id);
	return 0;
}

/* What a token of app needs: its algorithm, generation and issuer. */
static void
token_app(const char *app, enum jwt_alg *alg, int *gen, char *iss,
    size_t isssz)
{
	char v[24];

	ctl_value("SELECT jwt_alg FROM apps WHERE id = ?1", v, sizeof(v), 1,
	    app);
	*alg = jwt_alg_parse(v);
	ctl_value("SELECT jwt_generation FROM apps WHERE id = ?1", v,
	    sizeof(v), 1, app);
	*gen = atoi(v);
	ctl_value("SELECT coalesce(jwt_issuer, 'referral-invites') FROM apps "
	    "WHERE id = ?1", iss, isssz, 1, app);
}

int
cmd_token(const struct cmd_args *args)
{
	const char *apparg = args->pos[0], *userarg = args->pos[1];
	struct opts *o = args->o;
	char app[UUID_LEN + 1], uid[UUID_LEN + 1], err[512], *tok;
	char iss[1024];
	unsigned char server[32], secret[32];
	long long ttl = 3600;
	enum jwt_alg alg;
	time_t now = time(NULL);
	int gen;

	ctl_need_app(apparg, app);
	if (valid_uuid(userarg, uid) != NULL)
		ctl_refuse("%s: not a user id", userarg);
	if (o->ttl != NULL && util_strtonum(o->ttl, 1, 31536000, &ttl) == -1)
		ctl_refuse("%s: not a TTL in seconds", o->ttl);
	token_app(app, &alg, &gen, iss, sizeof(iss));
	if (alg != JWT_HS256)
		ctl_refuse("app %s verifies %s tokens from its own identity "
		    "provider", app, jwt_alg_name(alg));
	if (!ctl_exists("SELECT 1 FROM users WHERE id = ?1 AND app_id = ?2", 2,
	    uid, app))
		ctl_refuse("%s: no such user in app %s", uid, app);
	if (!ctl_exists("SELECT 1 FROM users WHERE id = ?1 AND active = 1", 1,
	    uid))
		ctl_refuse("%s: the user is disabled", uid);
	if (token_secret_load(ctl_node, 0, server, err, sizeof(err)) == -1)
		ctl_refuse("%s", err);
	jwt_app_secret(server, 32, app, gen, secret);
	tok = jwt_sign_hs256(secret, 32, iss, app, uid, now, now + ttl);
	OPENSSL_cleanse(secret, 32);
	OPENSSL_cleanse(server, 32);
	if (tok == NULL)
		ctl_refuse("cannot sign the token");
	ctl_created("token", tok);
	free(tok);
	return 0;
}
