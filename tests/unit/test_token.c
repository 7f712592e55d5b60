/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Unit tests: hashes and tokens against OpenSSL's one-shot functions, so
 * that tokens mailed by any release keep verifying.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "extern.h"
#include "util.h"
#include "token.h"
#include "unit.h"

static const unsigned char s1[32] = { 1, 2, 3 }, s2[32] = { 9, 8, 7 };

/* The reference: HMAC-SHA-256 of msg, base64url without padding. */
static void
ref_mac(const unsigned char secret[32], const char *msg, char out[44])
{
	unsigned char h[32];
	unsigned int n = sizeof(h);

	HMAC(EVP_sha256(), secret, 32, (const unsigned char *)msg,
	    strlen(msg), h, &n);
	util_b64url_enc(h, sizeof(h), out, 44);
}

static void
sha256_vector(void)
{
	char out[65];

	util_sha256_hex("abc", 3, out);
	CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	util_sha256_hex("", 0, out);
	CHECK_STR(out, "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
	util_sha256_hex("abc", 3, out);
	CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
}

/* Alternating secrets: the keyed context follows the secret it is given. */
static void
accept_token_mac(void)
{
	const char *id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
	char tok[ACCEPT_LEN + 1], want[44], got_id[UUID_LEN + 1];
	int i;

	for (i = 0; i < 4; i++) {
		const unsigned char *s = i % 2 ? s2 : s1;

		token_accept(s, id, tok);
		CHECK(strlen(tok) == ACCEPT_LEN);
		ref_mac(s, "accept\n0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\n",
		    want);
		CHECK_STR(tok + ACCEPT_ID_LEN, want);
		CHECK(token_accept_id(tok, got_id) == 0);
		CHECK_STR(got_id, id);
	}
}

static void
optout_token_mac(void)
{
	const char *app = "6472c342-72bc-46ad-afe2-796a761c182c";
	char *tok, want[44], a[UUID_LEN + 1], e[EMAIL_MAX + 1];

	CHECK((tok = token_optout(s1, app, "friend@b.example")) != NULL);
	ref_mac(s1, "opt-out\n6472c342-72bc-46ad-afe2-796a761c182c\n"
	    "friend@b.example", want);
	CHECK(strlen(tok) > 43);
	CHECK_STR(tok + strlen(tok) - 43, want);
	CHECK(token_optout_check(s1, tok, a, e) == 0);
	CHECK_STR(a, app);
	CHECK_STR(e, "friend@b.example");
	CHECK(token_optout_check(s2, tok, a, e) == -1);
	free(tok);
}

/* The VERP tag: hex of the id, then of the HMAC's first 8 bytes. */
static void
bounce_tag_mac(void)
{
	const char *id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
	const char *msg = "bounce\n0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\n";
	char tag[BOUNCE_TAG_LEN + 1], up[BOUNCE_TAG_LEN + 1];
	char got[UUID_LEN + 1], hex[17];
	unsigned char h[32];
	unsigned int n = sizeof(h);
	size_t i;

	token_bounce(s1, id, tag);
	CHECK(strlen(tag) == BOUNCE_TAG_LEN);
	CHECK(strncmp(tag, "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b", 32) == 0);
	HMAC(EVP_sha256(), s1, 32, (const unsigned char *)msg, strlen(msg),
	    h, &n);
	util_hex(h, 8, hex);
	CHECK_STR(tag + 32, hex);
	CHECK(token_bounce_check(s1, tag, got) == 0);
	CHECK_STR(got, id);
	/* A relay that upper-cases the local part changes nothing. */
	for (i = 0; i <= BOUNCE_TAG_LEN; i++)
		up[i] = (char)toupper((unsigned char)tag[i]);
	CHECK(token_bounce_check(s1, up, got) == 0);
	CHECK_STR(got, id);
	/* Another secret, a changed digit, a short or long tag, not hex. */
	CHECK(token_bounce_check(s2, tag, got) == -1);
	memcpy(up, tag, sizeof(up));
	up[40] = up[40] == '0' ? '1' : '0';
	CHECK(token_bounce_check(s1, up, got) == -1);
	memcpy(up, tag, sizeof(up));
	up[3] = up[3] == '0' ? '1' : '0';
	CHECK(token_bounce_check(s1, up, got) == -1);
	CHECK(token_bounce_check(s1, "", got) == -1);
	up[BOUNCE_TAG_LEN - 1] = '\0';
	CHECK(token_bounce_check(s1, up, got) == -1);
	memcpy(up, tag, sizeof(up));
	up[10] = 'g';
	CHECK(token_bounce_check(s1, up, got) == -1);
}

const struct unit_test token_tests[] = {
	{ "token_sha256_vector", sha256_vector },
	{ "token_accept_mac", accept_token_mac },
	{ "token_optout_mac", optout_token_mac },
	{ "token_bounce_tag", bounce_tag_mac },
	{ NULL, NULL }
};
