/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * libFuzzer harness for jwt.c (and the JWT half of json.c).  The first
 * byte of the input holds flags; bit 0 picks the mode.
 *
 * Mode 0: the rest is a token.  It is decoded and verified against fixed
 * HS256, RS256 and ES256 keys (and misconfigured ones); the fuzzer cannot
 * sign, so nothing may verify.  (The seed tokens that are properly signed
 * all expired before NOW.)
 *
 * Mode 1: the rest is a header and a payload, separated by a NUL byte.
 * The harness encodes and HMAC-signs them with the HS256 secret, so the
 * claim checks run.  A small reference built on cJSON says whether the
 * token must verify, must not, or cannot tell (then only the invariants
 * hold): sub a lower-case UUID, exp + 60 > NOW, nbf and iat no later
 * than NOW + 60, aud naming the app (in any case: it is a UUID), iss
 * the issuer when set.  Other flag bits spoil the signature or the key,
 * and then nothing may verify.
 *
 * Both modes: a decoded token keeps what the header and claims say, and
 * where a member it reads is repeated, the value it keeps is the last
 * one (RFC 7515 section 4 and RFC 7519 section 4: reject duplicates or
 * take the lexically last); and no string in them hides a NUL (cJSON
 * reads a bad \u escape as U+0000).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util.h"
#include "jwt.h"
#include "valid.h"

#define ASSERT(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "%s:%d: ASSERT(%s) failed\n",		\
		    __FILE__, __LINE__, #c);				\
		abort();						\
	}								\
} while (0)

#define APP	"6472c342-72bc-46ad-afe2-796a761c182c"
#define ISSUER	"https://issuer.example"
#define NOW	((time_t)1700000000)
#define LEEWAY	60

#define F_BUILD		0x01	/* mode 1 */
#define F_ISSUER	0x02	/* the key wants ISSUER */
#define F_TAMPER	0x04	/* flip a bit of the MAC */
#define F_OTHER		0x08	/* sign with another secret */
#define F_SHORT		0x10	/* key and MAC with 16 bytes of it */
#define F_NOAUD		0x20	/* key without an audience */
#define F_SPOILED	(F_TAMPER | F_OTHER | F_SHORT | F_NOAUD)

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const unsigned char secret[32] = "fuzz-hs256-secret-0123456789abcd";
static const unsigned char other[32] = "fuzz-hs256-wrong!-0123456789abcd";

/* Generated once with openssl genpkey; the private halves are gone. */
static const char rsa_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAym4tPTLUIeAcQ5yo8Vku\n"
    "k324HG97fd9lukIp/I6pzKH5jZlLkOmHaAENjAoXuKLheiFkUWT0z2JXDaCQETLJ\n"
    "S5lEN+TfnBPlz3I8KNVUqxmnR84EXpm6WDszUuoE/vOTN1era4xNi/TMa3cd3734\n"
    "2XZl8JHuHgwAw5d6T6n0ub/ce+A3ixRK6ctQMchSzuq3DrhiHI30EFPEywwSRdFq\n"
    "pLSOKDHSlHPboXaIg1TFQLZ01cvfJMAZKFm3kSEM3dzTZrt7ZZ5rKtUS9XIFe8K/\n"
    "aZou6Zl0xXyeV1qk6GRokfIXmm0v1KDHzAUSM+FDnqPsDxRqm7Qls52sJqylydpi\n"
    "/QIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
static const char ec_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAESYjrxvq4BD4WnMiCZyF0Qxgg0zVt\n"
    "jSdyeklVjM++iHKJhPahZVVnGlvXeelYIFCpnti6QlINKNG0iw5/kHSsww==\n"
    "-----END PUBLIC KEY-----\n";

/* The last member called name in o, and how many there are. */
static const cJSON *
last_of(const cJSON *o, const char *name, int *count)
{
	const cJSON *it, *last = NULL;

	*count = 0;
	for (it = o->child; it != NULL; it = it->next)
		if (it->string != NULL && strcmp(it->string, name) == 0) {
			last = it;
			(*count)++;
		}
	return last;
}

/* A repeated time claim: what the token keeps is the last value. */
static void
dup_time(const cJSON *pl, const char *name, int has, double v)
{
	const cJSON *it;
	int n;

	if ((it = last_of(pl, name, &n)) == NULL || n < 2)
		return;
	ASSERT(cJSON_IsNumber(it) && has && v == it->valuedouble);
}

static void
dup_string(const cJSON *o, const char *name, const char *v)
{
	const cJSON *it;
	int n;

	if ((it = last_of(o, name, &n)) == NULL || n < 2)
		return;
	ASSERT(cJSON_IsString(it) && v != NULL &&
	    strcmp(v, it->valuestring) == 0);
}

static void
dup_aud(const cJSON *pl, const struct jwt *j)
{
	const cJSON *it, *a;
	size_t i = 0;
	int n;

	if ((it = last_of(pl, "aud", &n)) == NULL || n < 2)
		return;
	if (cJSON_IsString(it)) {
		ASSERT(j->naud == 1 && strcmp(j->aud[0], it->valuestring) == 0);
		return;
	}
	ASSERT(cJSON_IsArray(it) &&
	    (size_t)cJSON_GetArraySize(it) == j->naud);
	cJSON_ArrayForEach(a, it) {
		ASSERT(cJSON_IsString(a) &&
		    strcmp(j->aud[i], a->valuestring) == 0);
		i++;
	}
}

/*
 * Whether a string literal in the JSON text s has a \u escape that is
 * not four hex digits, or is \u0000: either would cut a value short.
 */
static int
bad_escape(const char *s)
{
	size_t k;
	int instr = 0;

	for (; *s != '\0'; s++) {
		if (*s == '"')
			instr = !instr;
		if (!instr || *s != '\\')
			continue;
		if (*++s == '\0')
			return 0;
		if (*s != 'u')
			continue;
		for (k = 1; k <= 4; k++)
			if (!isxdigit((unsigned char)s[k]))
				return 1;
		if (strncmp(s + 1, "0000", 4) == 0)
			return 1;
	}
	return 0;
}

/* The segment s (n bytes of base64url) decoded into a C string. */
static char *
unb64(const char *s, size_t n, size_t *len)
{
	char *out;
	ssize_t r;

	ASSERT((out = malloc(n + 1)) != NULL);
	r = util_b64url_dec(s, n, (unsigned char *)out, n + 1);
	ASSERT(r >= 0);
	out[r] = '\0';
	*len = (size_t)r;
	return out;
}

/* What a successful jwt_decode promises about j. */
static void
check_decoded(const char *tok, size_t len, const struct jwt *j)
{
	const char *d1, *d2;
	const cJSON *it;
	cJSON *hdr, *pl;
	char *h, *p;
	size_t hlen, plen, i;
	int n;

	ASSERT(len > 0 && len <= 8192 && memchr(tok, '\0', len) == NULL);
	ASSERT(j->signed_len < len && tok[j->signed_len] == '.');
	ASSERT(j->siglen > 0 && j->siglen <= sizeof(j->sig));
	ASSERT(j->sub != NULL && j->naud >= 1 && j->naud <= 16);
	for (i = 0; i < j->naud; i++)
		ASSERT(j->aud[i] != NULL);
	ASSERT(!j->has_exp || (j->exp >= 0 && j->exp <= 1e13));
	ASSERT(!j->has_nbf || (j->nbf >= 0 && j->nbf <= 1e13));
	ASSERT(!j->has_iat || (j->iat >= 0 && j->iat <= 1e13));

	ASSERT((d1 = memchr(tok, '.', len)) != NULL);
	d2 = tok + j->signed_len;
	h = unb64(tok, (size_t)(d1 - tok), &hlen);
	p = unb64(d1 + 1, (size_t)(d2 - d1 - 1), &plen);
	ASSERT(strlen(h) == hlen && strlen(p) == plen);
	ASSERT(!bad_escape(h) && !bad_escape(p));
	ASSERT((hdr = cJSON_Parse(h)) != NULL && cJSON_IsObject(hdr));
	ASSERT((pl = cJSON_Parse(p)) != NULL && cJSON_IsObject(pl));
	/* crit names extensions nobody here understands: never accepted. */
	ASSERT(last_of(hdr, "crit", &n) == NULL);
	it = last_of(hdr, "alg", &n);
	ASSERT(cJSON_IsString(it) && j->alg == jwt_alg_parse(it->valuestring));
	dup_string(pl, "sub", j->sub);
	dup_string(pl, "iss", j->iss);
	dup_time(pl, "exp", j->has_exp, j->exp);
	dup_time(pl, "nbf", j->has_nbf, j->nbf);
	dup_time(pl, "iat", j->has_iat, j->iat);
	dup_aud(pl, j);
	cJSON_Delete(hdr);
	cJSON_Delete(pl);
	free(h);
	free(p);
}

/* What a successful jwt_verify promises, for a key with audience APP. */
static void
check_verified(const struct jwt *j, const struct jwt_claims *cl,
    const char *issuer)
{
	char u[UUID_LEN + 1];
	size_t i;
	int aud = 0;

	ASSERT(strlen(cl->sub) == UUID_LEN);
	ASSERT(valid_uuid(cl->sub, u) == NULL && strcmp(u, cl->sub) == 0);
	ASSERT(valid_uuid(j->sub, u) == NULL && strcmp(u, cl->sub) == 0);
	ASSERT(j->has_exp && j->exp + LEEWAY > (double)NOW);
	ASSERT(cl->exp == (time_t)j->exp && cl->exp + LEEWAY >= NOW);
	ASSERT(!j->has_nbf || j->nbf - LEEWAY <= (double)NOW);
	ASSERT(!j->has_iat || j->iat - LEEWAY <= (double)NOW);
	for (i = 0; i < j->naud; i++)
		if (strcasecmp(j->aud[i], APP) == 0)
			aud = 1;
	ASSERT(aud);
	ASSERT(issuer == NULL || (j->iss != NULL &&
	    strcmp(j->iss, issuer) == 0));
}

/* ------------------------------------------------------------ mode 0 */

static void
fuzz_token(const char *tok, size_t len, int flags)
{
	struct jwt_key keys[8];
	struct jwt_claims cl;
	struct jwt j;
	size_t i;

	if (jwt_decode(tok, len, &j) == -1) {
		ASSERT(j.sub == NULL && j.aud == NULL && j.iss == NULL);
		return;
	}
	check_decoded(tok, len, &j);
	memset(keys, 0, sizeof(keys));
	for (i = 0; i < 8; i++) {
		keys[i].audience = APP;
		keys[i].issuer = flags & F_ISSUER ? ISSUER : NULL;
	}
	keys[0].alg = JWT_HS256;
	keys[0].secret = secret;
	keys[0].secretlen = sizeof(secret);
	keys[1].alg = JWT_RS256;
	keys[1].pem = rsa_pem;
	keys[2].alg = JWT_ES256;
	keys[2].pem = ec_pem;
	keys[3].alg = JWT_NONE;
	keys[4].alg = JWT_RS256;	/* the wrong kind of key */
	keys[4].pem = ec_pem;
	keys[5].alg = JWT_ES256;
	keys[5].pem = rsa_pem;
	keys[6].alg = JWT_HS256;	/* no secret */
	keys[7].alg = JWT_RS256;	/* a PEM that is not one */
	keys[7].pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n";
	for (i = 0; i < 8; i++)
		ASSERT(jwt_verify(tok, &j, &keys[i], NOW, &cl) == -1);
	jwt_free(&j);
	ASSERT(j.sub == NULL && j.aud == NULL && j.naud == 0);
}

/* ------------------------------------------------------------ mode 1 */

/* Whether a text is one json.c surely parses just as cJSON does. */
static int
plain_json(const char *s, size_t n)
{
	size_t i, open = 0;

	if (!valid_utf8(s, n) || strstr(s, "\\u0000") != NULL ||
	    (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0))
		return 0;
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20)
			return 0;
		if (s[i] == '{' || s[i] == '[')
			open++;
	}
	return open <= JSON_DEPTH_MAX;
}

static int
no_dups(const cJSON *o)
{
	const cJSON *a, *b;

	for (a = o->child; a != NULL; a = a->next)
		for (b = a->next; b != NULL; b = b->next)
			if (strcmp(a->string, b->string) == 0)
				return 0;
	return 1;
}

/* A time claim: 1 absent or good, 0 malformed. */
static int
ref_time(const cJSON *pl, const char *name, int *has, double *v)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(pl, name);

	*has = it != NULL;
	if (it == NULL)
		return 1;
	if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
	    it->valuedouble > 1e13)
		return 0;
	*v = it->valuedouble;
	return 1;
}

static int
ref_aud(const cJSON *pl)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(pl, "aud"), *a;
	int n, ok = 0;

	if (cJSON_IsString(it))
		return strcasecmp(it->valuestring, APP) == 0;
	if (!cJSON_IsArray(it) || (n = cJSON_GetArraySize(it)) < 1 || n > 16)
		return 0;
	cJSON_ArrayForEach(a, it) {
		if (!cJSON_IsString(a))
			return 0;
		if (strcasecmp(a->valuestring, APP) == 0)
			ok = 1;
	}
	return ok;
}

static int
ref_claims(const cJSON *pl, const char *issuer)
{
	const cJSON *sub, *iss;
	char u[UUID_LEN + 1];
	double exp = 0, nbf = 0, iat = 0;
	int hexp, hnbf, hiat;

	sub = cJSON_GetObjectItemCaseSensitive(pl, "sub");
	iss = cJSON_GetObjectItemCaseSensitive(pl, "iss");
	if (!cJSON_IsString(sub) || valid_uuid(sub->valuestring, u) != NULL)
		return 0;
	if (iss != NULL && !cJSON_IsString(iss))
		return 0;
	if (issuer != NULL && (iss == NULL ||
	    strcmp(iss->valuestring, issuer) != 0))
		return 0;
	if (!ref_time(pl, "exp", &hexp, &exp) ||
	    !ref_time(pl, "nbf", &hnbf, &nbf) ||
	    !ref_time(pl, "iat", &hiat, &iat))
		return 0;
	if (!hexp || exp + LEEWAY <= (double)NOW)
		return 0;
	if ((hnbf && nbf - LEEWAY > (double)NOW) ||
	    (hiat && iat - LEEWAY > (double)NOW))
		return 0;
	return ref_aud(pl);
}

/* 1: must verify, 0: must not, -1: cannot tell. */
static int
ref_verdict(const char *h, size_t hlen, const char *p, size_t plen,
    const char *issuer)
{
	const cJSON *alg;
	cJSON *hdr = NULL, *pl = NULL;
	int v = -1;

	/* Not JSON (RFC 8259 section 7), though cJSON takes it. */
	if (bad_escape(h) || bad_escape(p))
		return 0;
	if (!plain_json(h, hlen) || !plain_json(p, plen))
		return -1;
	hdr = cJSON_ParseWithOpts(h, NULL, 1);
	pl = cJSON_ParseWithOpts(p, NULL, 1);
	if (!cJSON_IsObject(hdr) || !cJSON_IsObject(pl))
		v = 0;
	else if (!no_dups(hdr) || !no_dups(pl))
		v = -1;
	else {
		alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
		v = cJSON_IsString(alg) && strcmp(alg->valuestring,
		    "HS256") == 0 && cJSON_GetObjectItemCaseSensitive(hdr,
		    "crit") == NULL && ref_claims(pl, issuer);
	}
	cJSON_Delete(hdr);
	cJSON_Delete(pl);
	return v;
}

static void
add_b64(struct buf *b, const void *p, size_t n)
{
	size_t cap = (n * 4 + 2) / 3 + 1;
	char *enc;

	ASSERT((enc = malloc(cap)) != NULL);
	ASSERT(util_b64url_enc(p, n, enc, cap) == cap - 1);
	ASSERT(buf_add(b, enc, cap - 1) == 0);
	free(enc);
}

static void
fuzz_build(const char *h, size_t hlen, const char *p, size_t plen,
    int flags)
{
	struct buf b = { 0 };
	struct jwt_key key;
	struct jwt_claims cl;
	struct jwt j;
	unsigned char mac[32];
	unsigned int maclen = sizeof(mac);
	const unsigned char *s = flags & F_OTHER ? other : secret;
	size_t slen = flags & F_SHORT ? 16 : 32;
	char *tok;
	int want, rc;

	add_b64(&b, h, hlen);
	ASSERT(buf_add(&b, ".", 1) == 0);
	add_b64(&b, p, plen);
	ASSERT(HMAC(EVP_sha256(), s, (int)slen, (unsigned char *)b.p, b.len,
	    mac, &maclen) != NULL && maclen == 32);
	if (flags & F_TAMPER)
		mac[h[0] & 31] ^= (unsigned char)(1 << (p[0] & 7));
	ASSERT(buf_add(&b, ".", 1) == 0);
	add_b64(&b, mac, sizeof(mac));

	/* Exactly its bytes, no NUL after them. */
	ASSERT((tok = malloc(b.len)) != NULL);
	memcpy(tok, b.p, b.len);
	memset(&key, 0, sizeof(key));
	key.alg = JWT_HS256;
	key.secret = secret;
	key.secretlen = slen;
	key.issuer = flags & F_ISSUER ? ISSUER : NULL;
	key.audience = flags & F_NOAUD ? NULL : APP;
	want = b.len > 8192 ? 0 : ref_verdict(h, hlen, p, plen, key.issuer);
	if (jwt_decode(tok, b.len, &j) == -1) {
		ASSERT(want != 1);
		goto out;
	}
	check_decoded(tok, b.len, &j);
	rc = jwt_verify(tok, &j, &key, NOW, &cl);
	if (flags & F_SPOILED)
		ASSERT(rc == -1);
	else if (want != -1)
		ASSERT(rc == (want ? 0 : -1));
	if (rc == 0)
		check_verified(&j, &cl, key.issuer);
	jwt_free(&j);
out:
	free(tok);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul;
	char *in, *p;
	size_t n, hlen;
	int flags;

	if (size == 0)
		return 0;
	flags = data[0];
	n = size - 1;
	if (!(flags & F_BUILD)) {
		/* Exactly the token's bytes: no NUL for a parser to lean on. */
		if ((in = malloc(n ? n : 1)) == NULL)
			return 0;
		memcpy(in, data + 1, n);
		fuzz_token(in, n, flags);
		free(in);
		return 0;
	}
	if ((in = malloc(n + 1)) == NULL)
		return 0;
	memcpy(in, data + 1, n);
	in[n] = '\0';
	if ((nul = memchr(in, '\0', n)) != NULL) {
		hlen = (size_t)(nul - in);
		p = in + hlen + 1;
	} else {
		hlen = n;
		p = in + n;
	}
	fuzz_build(in, hlen, p, strlen(p), flags);
	free(in);
	return 0;
}
