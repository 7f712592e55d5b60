/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Tokens derived from the server secret, so that none is ever stored in
 * clear: accept tokens (HMAC of the invite id; only their hash is in the
 * database) and opt-out tokens (an HMAC over app and address; no row).
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "extern.h"
#include "log.h"
#include "util.h"
#include "valid.h"
#include "token.h"

static int
hexval(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

/*
 * HMAC-SHA-256 over "label\na\nb".  The keyed context is made once per
 * secret and re-initialised per call: the one-shot HMAC() fetches the
 * algorithm and schedules the key every time.
 */
static void
mac(const unsigned char secret[32], const char *label, const char *a,
    const char *b, unsigned char out[32])
{
	static EVP_MAC_CTX *ctx;
	static unsigned char keyed[32];
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
		    (char *)"SHA256", 0),
		OSSL_PARAM_construct_end()
	};
	EVP_MAC *m;
	size_t n = 32;
	int ok;

	if (ctx == NULL) {
		if ((m = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
		    (ctx = EVP_MAC_CTX_new(m)) == NULL)
			fatalx("HMAC unavailable");
		EVP_MAC_free(m);
		ok = EVP_MAC_init(ctx, secret, 32, params);
		memcpy(keyed, secret, sizeof(keyed));
	} else if (CRYPTO_memcmp(keyed, secret, sizeof(keyed)) != 0) {
		ok = EVP_MAC_init(ctx, secret, 32, NULL);
		memcpy(keyed, secret, sizeof(keyed));
	} else
		ok = EVP_MAC_init(ctx, NULL, 0, NULL);
	if (ok != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)label,
	    strlen(label)) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)"\n",
	    LIT_LEN("\n")) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)a, strlen(a)) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)"\n",
	    LIT_LEN("\n")) != 1 ||
	    (b != NULL && EVP_MAC_update(ctx, (const unsigned char *)b,
	    strlen(b)) != 1) ||
	    EVP_MAC_final(ctx, out, &n, 32) != 1 || n != 32)
		fatalx("HMAC failed");
}

void
token_accept_gen(const unsigned char secret[32], const char *id, int gen,
    char out[ACCEPT_LEN + 1])
{
	unsigned char b[16], h[32];
	char g[16];

	if (util_uuid_bytes(id, b) == -1)
		fatalx("token_accept: not an id");
	util_b64url_enc(b, sizeof(b), out, ACCEPT_ID_LEN + 1);
	snprintf(g, sizeof(g), "%d", gen);
	mac(secret, "accept", id, gen > 0 ? g : NULL, h);
	util_b64url_enc(h, sizeof(h), out + ACCEPT_ID_LEN, TOKEN_LEN + 1);
}

void
token_secret_check(const unsigned char secret[32], char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[32];
	size_t i;

	mac(secret, "node secret check", "", NULL, h);
	for (i = 0; i < sizeof(h); i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[64] = '\0';
}

void
token_accept(const unsigned char secret[32], const char *id,
    char out[ACCEPT_LEN + 1])
{
	token_accept_gen(secret, id, 0, out);
}

int
token_accept_id(const char *tok, char id[UUID_LEN + 1])
{
	unsigned char b[16];

	if (strlen(tok) != ACCEPT_LEN ||
	    util_b64url_dec(tok, ACCEPT_ID_LEN, b, sizeof(b)) != sizeof(b))
		return -1;
	util_uuid_str(b, id);
	return 0;
}

void
token_bounce(const unsigned char secret[32], const char *id,
    char out[BOUNCE_TAG_LEN + 1])
{
	unsigned char b[16], h[32];

	if (util_uuid_bytes(id, b) == -1)
		fatalx("token_bounce: not an id");
	mac(secret, "bounce", id, NULL, h);
	util_hex(b, sizeof(b), out);
	util_hex(h, 8, out + 32);
}

int
token_bounce_check(const unsigned char secret[32], const char *tag,
    char id[UUID_LEN + 1])
{
	unsigned char b[16];
	char lower[BOUNCE_TAG_LEN + 1], want[BOUNCE_TAG_LEN + 1];
	size_t i;

	if (strlen(tag) != BOUNCE_TAG_LEN)
		return -1;
	for (i = 0; i < BOUNCE_TAG_LEN; i++) {
		lower[i] = (char)tolower((unsigned char)tag[i]);
		if (!isxdigit((unsigned char)lower[i]))
			return -1;
	}
	lower[BOUNCE_TAG_LEN] = '\0';
	for (i = 0; i < sizeof(b); i++)
		b[i] = (unsigned char)(hexval(lower[2 * i]) << 4 |
		    hexval(lower[2 * i + 1]));
	util_uuid_str(b, id);
	token_bounce(secret, id, want);
	return util_ct_eq(want, lower, BOUNCE_TAG_LEN) ? 0 : -1;
}

char *
token_optout(const unsigned char secret[32], const char *app,
    const char *email_norm)
{
	unsigned char h[32];
	char sig[TOKEN_LEN + 1], *addr, *out = NULL;
	size_t n = strlen(email_norm);

	if ((addr = malloc(n * 4 / 3 + 4)) == NULL)
		return NULL;
	util_b64url_enc((const unsigned char *)email_norm, n, addr,
	    n * 4 / 3 + 4);
	mac(secret, "opt-out", app, email_norm, h);
	util_b64url_enc(h, sizeof(h), sig, sizeof(sig));
	if (asprintf(&out, "%s.%s.%s", app, addr, sig) == -1)
		out = NULL;
	free(addr);
	return out;
}

int
token_optout_check(const unsigned char secret[32], const char *tok,
    char app[UUID_LEN + 1], char email[EMAIL_MAX + 1])
{
	const char *d1, *d2;
	unsigned char h[32];
	char sig[TOKEN_LEN + 1], lower[EMAIL_MAX + 1];
	ssize_t n;

	if ((d1 = strchr(tok, '.')) == NULL || d1 - tok != UUID_LEN ||
	    (d2 = strchr(d1 + 1, '.')) == NULL ||
	    strlen(d2 + 1) != TOKEN_LEN)
		return -1;
	memcpy(app, tok, UUID_LEN);
	app[UUID_LEN] = '\0';
	if (valid_uuid(app, app) != NULL || d2 - d1 - 1 > EMAIL_MAX * 4 / 3 + 4)
		return -1;
	n = util_b64url_dec(d1 + 1, (size_t)(d2 - d1 - 1),
	    (unsigned char *)email, EMAIL_MAX);
	if (n <= 0)
		return -1;
	email[n] = '\0';
	if (valid_email(email, email, lower) != NULL ||
	    strcmp(email, lower) != 0)
		return -1;
	mac(secret, "opt-out", app, email, h);
	util_b64url_enc(h, sizeof(h), sig, sizeof(sig));
	return util_ct_eq(sig, d2 + 1, TOKEN_LEN) ? 0 : -1;
}

static int
secret_path(const char *dbpath, char *out, size_t outsz)
{
	char *copy, *dir;
	int n;

	if ((copy = strdup(dbpath)) == NULL)
		return -1;
	dir = dirname(copy);
	n = snprintf(out, outsz, "%s/secret.key", dir);
	free(copy);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

static int
secret_create(const char *path, char *err, size_t errsz)
{
	unsigned char s[32];
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (fd == -1) {
		if (errno == EEXIST)
			return 0;
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	util_random(s, sizeof(s));
	if (write(fd, s, sizeof(s)) != (ssize_t)sizeof(s) || fsync(fd) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		OPENSSL_cleanse(s, sizeof(s));
		return -1;
	}
	OPENSSL_cleanse(s, sizeof(s));
	return close(fd);
}

int
token_secret_load(const char *dbpath, int create, unsigned char out[32],
    char *err, size_t errsz)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	if (secret_path(dbpath, path, sizeof(path)) == -1) {
		snprintf(err, errsz, "%s: path too long", dbpath);
		return -1;
	}
	if (create && secret_create(path, err, errsz) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW)) == -1) {
		snprintf(err, errsz, "%s: %s (run referral-invitesctl init)",
		    path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || (st.st_mode & 077) != 0 ||
	    read(fd, out, 32) != 32) {
		snprintf(err, errsz, "%s: must be 32 bytes, mode 0600 or "
		    "stricter", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}
