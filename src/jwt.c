/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Access tokens: compact JWS (RFC 7515) carrying JWT claims (RFC 7519),
 * verified with libcrypto.  The algorithm is the app's, never the token's:
 * a header naming anything else, "none" included, fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "log.h"
#include "util.h"
#include "valid.h"
#include "json.h"
#include "jwt.h"

#define JWT_LEEWAY	60
#define JWT_MAX		8192

enum jwt_alg
jwt_alg_parse(const char *s)
{
	if (s == NULL)
		return JWT_NONE;
	if (strcmp(s, "HS256") == 0)
		return JWT_HS256;
	if (strcmp(s, "RS256") == 0)
		return JWT_RS256;
	if (strcmp(s, "ES256") == 0)
		return JWT_ES256;
	return JWT_NONE;
}

const char *
jwt_alg_name(enum jwt_alg a)
{
	switch (a) {
	case JWT_HS256:
		return "HS256";
	case JWT_RS256:
		return "RS256";
	case JWT_ES256:
		return "ES256";
	default:
		return "none";
	}
}

void
jwt_free(struct jwt *j)
{
	size_t i;

	free(j->sub);
	free(j->iss);
	for (i = 0; i < j->naud; i++)
		free(j->aud[i]);
	free(j->aud);
	memset(j, 0, sizeof(*j));
}

/* Decode one base64url segment into a fresh buffer. */
static unsigned char *
segment(const char *s, size_t n, size_t *outlen)
{
	unsigned char *out;
	ssize_t r;

	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	if ((r = util_b64url_dec(s, n, out, n + 1)) < 0) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)r;
	return out;
}

int
jwt_decode(const char *token, size_t len, struct jwt *j)
{
	const char *d1, *d2;
	unsigned char *hdr = NULL, *pl = NULL;
	size_t hlen, plen;
	ssize_t slen;
	char alg[16];
	int rc = -1;

	memset(j, 0, sizeof(*j));
	if (len == 0 || len > JWT_MAX || memchr(token, '\0', len) != NULL)
		return -1;
	if ((d1 = memchr(token, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token))) == NULL ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
		return -1;
	if ((hdr = segment(token, (size_t)(d1 - token), &hlen)) == NULL ||
	    (pl = segment(d1 + 1, (size_t)(d2 - d1 - 1), &plen)) == NULL)
		goto out;
	slen = util_b64url_dec(d2 + 1, len - (size_t)(d2 + 1 - token),
	    j->sig, sizeof(j->sig));
	if (slen <= 0 || json_jwt_header((char *)hdr, hlen, alg) == -1 ||
	    json_jwt_payload((char *)pl, plen, j) == -1)
		goto out;
	j->siglen = (size_t)slen;
	j->alg = jwt_alg_parse(alg);
	j->signed_len = (size_t)(d2 - token);
	rc = 0;
out:
	if (rc == -1)
		jwt_free(j);
	free(hdr);
	free(pl);
	return rc;
}

static int
verify_hs256(const char *input, size_t n, const struct jwt *j,
    const struct jwt_key *key)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int ok;

	if (key->secret == NULL || key->secretlen < 32 || j->siglen != 32)
		return -1;
	if (HMAC(EVP_sha256(), key->secret, (int)key->secretlen,
	    (const unsigned char *)input, n, mac, &maclen) == NULL)
		return -1;
	ok = maclen == 32 && util_ct_eq(mac, j->sig, 32);
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok ? 0 : -1;
}

/* JWS carries ES256 signatures as r || s; libcrypto wants DER. */
static unsigned char *
es256_der(const struct jwt *j, size_t *derlen)
{
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	unsigned char *der = NULL;
	int n;

	if (j->siglen != 64 || (es = ECDSA_SIG_new()) == NULL)
		return NULL;
	r = BN_bin2bn(j->sig, 32, NULL);
	s = BN_bin2bn(j->sig + 32, 32, NULL);
	if (r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return NULL;
	}
	n = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	if (n <= 0)
		return NULL;
	*derlen = (size_t)n;
	return der;
}

static int
verify_pk(const char *input, size_t n, const struct jwt *j,
    const struct jwt_key *key)
{
	BIO *bio = NULL;
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *ctx = NULL;
	unsigned char *der = NULL;
	const unsigned char *sig = j->sig;
	size_t siglen = j->siglen;
	int want, rc = -1;

	if (key->pem == NULL ||
	    (bio = BIO_new_mem_buf(key->pem, -1)) == NULL ||
	    (pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL)
		goto out;
	want = key->alg == JWT_RS256 ? EVP_PKEY_RSA : EVP_PKEY_EC;
	if (EVP_PKEY_get_base_id(pk) != want)
		goto out;
	if (key->alg == JWT_RS256 && EVP_PKEY_get_bits(pk) < 2048)
		goto out;
	if (key->alg == JWT_ES256) {
		if (EVP_PKEY_get_bits(pk) != 256 ||
		    (der = es256_der(j, &siglen)) == NULL)
			goto out;
		sig = der;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk) != 1)
		goto out;
	if (EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)input,
	    n) == 1)
		rc = 0;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	return rc;
}

static int
check_claims(const struct jwt *j, const struct jwt_key *key, time_t now)
{
	size_t i;
	int aud = 0;

	if (!j->has_exp || j->exp + JWT_LEEWAY <= (double)now) {
		log_debug("token expired or without exp");
		return -1;
	}
	if (j->has_nbf && j->nbf - JWT_LEEWAY > (double)now) {
		log_debug("token not yet valid");
		return -1;
	}
	if (j->has_iat && j->iat - JWT_LEEWAY > (double)now) {
		log_debug("token issued in the future");
		return -1;
	}
	for (i = 0; i < j->naud; i++)
		if (key->audience != NULL &&
		    strcasecmp(j->aud[i], key->audience) == 0)
			aud = 1;
	if (!aud) {
		log_debug("token audience mismatch");
		return -1;
	}
	if (key->issuer != NULL &&
	    (j->iss == NULL || strcmp(j->iss, key->issuer) != 0)) {
		log_debug("token issuer mismatch");
		return -1;
	}
	return 0;
}

int
jwt_verify(const char *token, const struct jwt *j, const struct jwt_key *key,
    time_t now, struct jwt_claims *claims)
{
	int rc;

	if (key->alg == JWT_NONE || j->alg != key->alg) {
		log_debug("token algorithm %s, app wants %s",
		    jwt_alg_name(j->alg), jwt_alg_name(key->alg));
		return -1;
	}
	if (key->alg == JWT_HS256)
		rc = verify_hs256(token, j->signed_len, j, key);
	else
		rc = verify_pk(token, j->signed_len, j, key);
	if (rc == -1) {
		log_debug("token signature does not verify");
		return -1;
	}
	if (check_claims(j, key, now) == -1)
		return -1;
	if (valid_uuid(j->sub, claims->sub) != NULL) {
		log_debug("token subject is not a user id");
		return -1;
	}
	claims->exp = (time_t)j->exp;
	return 0;
}

void
jwt_app_secret(const unsigned char *server, size_t serverlen,
    const char *app_id, int generation, unsigned char out[32])
{
	char label[96];
	unsigned int n = 32;

	snprintf(label, sizeof(label), "referral-invites hs256 %s %d", app_id,
	    generation);
	HMAC(EVP_sha256(), server, (int)serverlen, (unsigned char *)label,
	    strlen(label), out, &n);
}

/* base64url of a JSON text into b. */
static int
add_b64(struct buf *b, const char *s, size_t n)
{
	char *enc;
	size_t cap = (n * 4 + 2) / 3 + 1, m;
	int rc;

	if ((enc = malloc(cap)) == NULL)
		return -1;
	m = util_b64url_enc((const unsigned char *)s, n, enc, cap);
	rc = buf_add(b, enc, m);
	free(enc);
	return rc;
}

char *
jwt_sign_hs256(const unsigned char *secret, size_t secretlen, const char *iss,
    const char *aud, const char *sub, time_t iat, time_t exp)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	struct buf pl = { 0 }, out = { 0 };
	unsigned char mac[32];
	unsigned int n = sizeof(mac);
	char sig[64];

	if (buf_adds(&pl, "{\"iss\":") || json_add_string(&pl, iss) ||
	    buf_adds(&pl, ",\"aud\":") || json_add_string(&pl, aud) ||
	    buf_adds(&pl, ",\"sub\":") || json_add_string(&pl, sub) ||
	    buf_printf(&pl, ",\"iat\":%lld,\"exp\":%lld}", (long long)iat,
	    (long long)exp))
		goto fail;
	if (add_b64(&out, hdr, strlen(hdr)) || buf_adds(&out, ".") ||
	    add_b64(&out, pl.p, pl.len))
		goto fail;
	if (HMAC(EVP_sha256(), secret, (int)secretlen,
	    (unsigned char *)out.p, out.len, mac, &n) == NULL)
		goto fail;
	util_b64url_enc(mac, sizeof(mac), sig, sizeof(sig));
	if (buf_adds(&out, ".") || buf_adds(&out, sig))
		goto fail;
	buf_free(&pl);
	return out.p;
fail:
	buf_free(&pl);
	buf_free(&out);
	return NULL;
}
