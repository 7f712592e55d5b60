/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/* Unit tests: access token decoding and verification. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "util.h"
#include "jwt.h"
#include "unit.h"

#define APP	"6472c342-72bc-46ad-afe2-796a761c182c"
#define USER	"15c70661-3eff-41cd-bd90-435cabe71f3f"

static const unsigned char secret[32] = "0123456789abcdef0123456789abcdef";

static int
verify(const char *tok, const struct jwt_key *k, time_t now,
    struct jwt_claims *cl)
{
	struct jwt j;
	int rc;

	if (jwt_decode(tok, strlen(tok), &j) == -1)
		return -2;
	rc = jwt_verify(tok, &j, k, now, cl);
	jwt_free(&j);
	return rc;
}

static struct jwt_key
hs_key(void)
{
	struct jwt_key k;

	memset(&k, 0, sizeof(k));
	k.alg = JWT_HS256;
	k.secret = secret;
	k.secretlen = sizeof(secret);
	k.audience = APP;
	return k;
}

/* A token with any header and payload, signed by sign() or not at all. */
static char *
make(const char *hdr, const char *payload, EVP_PKEY *pk, int es)
{
	char h[1024], p[2048], sig[1024], *out;
	unsigned char mac[512], der[512];
	const unsigned char *dp;
	unsigned int n = 32;
	size_t dl = sizeof(der);
	EVP_MD_CTX *ctx;
	ECDSA_SIG *s;
	const BIGNUM *r, *ss;
	struct buf in = { 0 };

	util_b64url_enc((const unsigned char *)hdr, strlen(hdr), h, sizeof(h));
	util_b64url_enc((const unsigned char *)payload, strlen(payload), p,
	    sizeof(p));
	buf_printf(&in, "%s.%s", h, p);
	if (pk == NULL) {
		HMAC(EVP_sha256(), secret, 32, (unsigned char *)in.p, in.len,
		    mac, &n);
	} else {
		ctx = EVP_MD_CTX_new();
		EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pk);
		EVP_DigestSign(ctx, der, &dl, (unsigned char *)in.p, in.len);
		EVP_MD_CTX_free(ctx);
		if (es) {
			dp = der;
			s = d2i_ECDSA_SIG(NULL, &dp, (long)dl);
			ECDSA_SIG_get0(s, &r, &ss);
			BN_bn2binpad(r, mac, 32);
			BN_bn2binpad(ss, mac + 32, 32);
			ECDSA_SIG_free(s);
			n = 64;
		} else {
			memcpy(mac, der, dl);
			n = (unsigned int)dl;
		}
	}
	util_b64url_enc(mac, n, sig, sizeof(sig));
	buf_printf(&in, ".%s", sig);
	out = in.p;
	return out;
}

static char *
payload(time_t now, const char *extra)
{
	static char p[1024];

	snprintf(p, sizeof(p), "{\"sub\":\"%s\",\"aud\":\"%s\",\"exp\":%lld"
	    "%s}", USER, APP, (long long)now + 600, extra);
	return p;
}

static void
hs256_round_trip(void)
{
	struct jwt_key k = hs_key();
	struct jwt_claims cl;
	time_t now = time(NULL);
	char *t = jwt_sign_hs256(secret, 32, "iss", APP, USER, now, now + 60);

	CHECK(t != NULL);
	CHECK(verify(t, &k, now, &cl) == 0);
	CHECK_STR(cl.sub, USER);
	free(t);
}

static void
hs256_tampered(void)
{
	struct jwt_key k = hs_key();
	struct jwt_claims cl;
	time_t now = time(NULL);
	char *t = jwt_sign_hs256(secret, 32, "iss", APP, USER, now, now + 60);
	size_t n = strlen(t);

	t[n - 2] = t[n - 2] == 'A' ? 'B' : 'A';
	CHECK(verify(t, &k, now, &cl) != 0);
	free(t);
}

static void
expiry_and_leeway(void)
{
	struct jwt_key k = hs_key();
	struct jwt_claims cl;
	time_t now = time(NULL);
	char *t = jwt_sign_hs256(secret, 32, "iss", APP, USER, now - 100,
	    now - 30);

	/* Expired 30 s ago: inside the 60 s leeway. */
	CHECK(verify(t, &k, now, &cl) == 0);
	CHECK(verify(t, &k, now + 31, &cl) == -1);
	free(t);
}

static void
exp_required(void)
{
	struct jwt_key k = hs_key();
	struct jwt_claims cl;
	char p[256], *t;

	snprintf(p, sizeof(p), "{\"sub\":\"%s\",\"aud\":\"%s\"}", USER, APP);
	t = make("{\"alg\":\"HS256\"}", p, NULL, 0);
	CHECK(verify(t, &k, time(NULL), &cl) == -1);
	free(t);
}

static void
nbf_iat_future(void)
{
	struct jwt_key k = hs_key();
	struct jwt_claims cl;
	time_t now = time(NULL);
	char extra[64], *t;

	snprintf(extra, sizeof(extra), ",\"nbf\":%lld", (long long)now + 120);
	t = make("{\"alg\":\"HS256\"}", payload(now, extra), NULL, 0);
	CHECK(verify(t, &k, now, &cl) == -1);
	free(t);
	snprintf(extra, sizeof(extra), ",\"iat\":%lld", (long long)now + 120);
	t = make("{\"alg\":\"HS256\"}", payload(now, extra), NULL, 0);
	CHECK(verify(t, &k, now, &cl) == -1);
	free(t);
}

static void
alg_none_and_mismatch(void)
{
	struct jwt_key k = hs_key();
	struct jwt_claims cl;
	time_t now = time(NULL);
	char *t = make("{\"alg\":\"none\"}", payload(now, ""), NULL, 0);

	CHECK(verify(t, &k, now, &cl) == -1);
	free(t);
	t = make("{\"alg\":\"RS256\"}", payload(now, ""), NULL, 0);
	CHECK(verify(t, &k, now, &cl) == -1);
	free(t);
	/* Unsigned "none" token with an empty signature never decodes. */
	CHECK(verify("eyJhbGciOiJub25lIn0.e30.", &k, now, &cl) == -2);
}

static void
audience_array_and_issuer(void)
{
	struct jwt_key k = hs_key();
	struct jwt_claims cl;
	time_t now = time(NULL);
	char p[512], *t;

	snprintf(p, sizeof(p), "{\"sub\":\"%s\",\"aud\":[\"other\",\"%s\"],"
	    "\"exp\":%lld,\"iss\":\"https://auth.example\"}", USER, APP,
	    (long long)now + 60);
	t = make("{\"alg\":\"HS256\"}", p, NULL, 0);
	CHECK(verify(t, &k, now, &cl) == 0);
	k.issuer = "https://auth.example";
	CHECK(verify(t, &k, now, &cl) == 0);
	k.issuer = "https://evil.example";
	CHECK(verify(t, &k, now, &cl) == -1);
	k.issuer = NULL;
	k.audience = "4472c342-72bc-46ad-afe2-796a761c182c";
	CHECK(verify(t, &k, now, &cl) == -1);
	free(t);
}

static void
sub_must_be_uuid(void)
{
	struct jwt_key k = hs_key();
	struct jwt_claims cl;
	time_t now = time(NULL);
	char *t = jwt_sign_hs256(secret, 32, "iss", APP, "../admin", now,
	    now + 60);

	CHECK(verify(t, &k, now, &cl) == -1);
	free(t);
}

static char *
pem_of(EVP_PKEY *pk)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	PEM_write_bio_PUBKEY(b, pk);
	n = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

static void
rs256_and_confusion(void)
{
	EVP_PKEY *pk = EVP_RSA_gen(2048);
	struct jwt_key k;
	struct jwt_claims cl;
	time_t now = time(NULL);
	char *pem = pem_of(pk), *t;

	memset(&k, 0, sizeof(k));
	k.alg = JWT_RS256;
	k.pem = pem;
	k.audience = APP;
	t = make("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", payload(now, ""), pk,
	    0);
	CHECK(verify(t, &k, now, &cl) == 0);
	free(t);
	/* HS256 signed with the public key as the secret: refused. */
	t = make("{\"alg\":\"HS256\"}", payload(now, ""), NULL, 0);
	CHECK(verify(t, &k, now, &cl) == -1);
	free(t);
	free(pem);
	EVP_PKEY_free(pk);
}

static void
es256(void)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	struct jwt_key k;
	struct jwt_claims cl;
	time_t now = time(NULL);
	char *pem = pem_of(pk), *t;

	memset(&k, 0, sizeof(k));
	k.alg = JWT_ES256;
	k.pem = pem;
	k.audience = APP;
	t = make("{\"alg\":\"ES256\"}", payload(now, ""), pk, 1);
	CHECK(verify(t, &k, now, &cl) == 0);
	t[strlen(t) - 3] ^= 1;
	CHECK(verify(t, &k, now, &cl) != 0);
	free(t);
	free(pem);
	EVP_PKEY_free(pk);
}

static void
duplicate_members(void)
{
	struct jwt_key k = hs_key();
	struct jwt_claims cl;
	time_t now = time(NULL);
	char p[512], *t;

	t = make("{\"alg\":\"HS256\",\"alg\":\"none\"}", payload(now, ""),
	    NULL, 0);
	CHECK(verify(t, &k, now, &cl) == -2);
	free(t);
	snprintf(p, sizeof(p), "{\"sub\":\"%s\",\"sub\":\"%s\",\"aud\":"
	    "\"%s\",\"exp\":%lld}", USER, APP, APP, (long long)now + 60);
	t = make("{\"alg\":\"HS256\"}", p, NULL, 0);
	CHECK(verify(t, &k, now, &cl) == -2);
	free(t);
}

static void
malformed(void)
{
	struct jwt j;

	CHECK(jwt_decode("a.b", 3, &j) == -1);
	CHECK(jwt_decode("a.b.c.d", 7, &j) == -1);
	CHECK(jwt_decode("", 0, &j) == -1);
	CHECK(jwt_decode("!!.!!.!!", 8, &j) == -1);
}

const struct unit_test jwt_tests[] = {
	{ "jwt_hs256_round_trip", hs256_round_trip },
	{ "jwt_hs256_tampered", hs256_tampered },
	{ "jwt_expiry_and_leeway", expiry_and_leeway },
	{ "jwt_exp_required", exp_required },
	{ "jwt_nbf_iat_future", nbf_iat_future },
	{ "jwt_alg_none_and_mismatch", alg_none_and_mismatch },
	{ "jwt_audience_array_and_issuer", audience_array_and_issuer },
	{ "jwt_sub_must_be_uuid", sub_must_be_uuid },
	{ "jwt_rs256_and_confusion", rs256_and_confusion },
	{ "jwt_es256", es256 },
	{ "jwt_duplicate_members", duplicate_members },
	{ "jwt_malformed", malformed },
	{ NULL, NULL }
};
