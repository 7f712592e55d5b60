/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Small helpers shared by every process: randomness, hashing, encodings,
 * times and a growable buffer.
 */
#include <sys/types.h>
#include <sys/random.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "extern.h"
#include "log.h"
#include "util.h"

/* The kernel's random bytes: one system call, no lock, no fork check. */
void
util_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	ssize_t got;

	while (n > 0) {
		if ((got = getrandom(p, n, 0)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("getrandom");
		}
		p += got;
		n -= (size_t)got;
	}
}

/* The canonical text of a UUID's 16 bytes: lower-case, with dashes. */
void
util_uuid_str(const unsigned char b[16], char out[UUID_LEN + 1])
{
	char hex[33];

	util_hex(b, 16, hex);
	snprintf(out, UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s",
	    hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* The 16 bytes of a canonical UUID text; -1 for any other text. */
int
util_uuid_bytes(const char *id, unsigned char b[16])
{
	int i, j, hi, lo;

	if (strlen(id) != UUID_LEN)
		return -1;
	for (i = j = 0; j < 16; i += 2) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (id[i] != '-')
				return -1;
			i++;
		}
		if ((hi = OPENSSL_hexchar2int((unsigned char)id[i])) < 0 ||
		    (lo = OPENSSL_hexchar2int((unsigned char)id[i + 1])) < 0)
			return -1;
		b[j++] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

void
util_uuid(char out[UUID_LEN + 1])
{
	unsigned char b[16];

	util_random(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	util_uuid_str(b, out);
}

/*
 * A version 7 UUID (RFC 9562): the first 48 bits are the Unix time in
 * milliseconds, the rest random.  Invites take these so that each insert
 * lands at the right edge of the primary key's B-tree instead of on a
 * random page; the id reveals no more than createdAt already does.
 */
void
util_uuid7(char out[UUID_LEN + 1])
{
	struct timespec ts;
	unsigned char b[16];
	uint64_t ms;
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	util_random(b, sizeof(b));
	for (i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (b[6] & 0x0f) | 0x70;
	b[8] = (b[8] & 0x3f) | 0x80;
	util_uuid_str(b, out);
}

void
util_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/*
 * SHA-256 with the implementation fetched once and one context reused:
 * OpenSSL 3's one-shot calls look the algorithm up by name every time.
 */
void
util_sha256_hex(const void *s, size_t n, char out[65])
{
	static EVP_MD *md;
	static EVP_MD_CTX *ctx;
	unsigned char h[32];
	unsigned int hlen = sizeof(h);

	if (md == NULL && (md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		fatalx("sha256 unavailable");
	if (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL)
		fatalx("out of memory");
	if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, s, n) != 1 ||
	    EVP_DigestFinal_ex(ctx, h, &hlen) != 1)
		fatalx("sha256 failed");
	util_hex(h, sizeof(h), out);
}

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
util_b64url_enc(const unsigned char *in, size_t n, char *out, size_t outsz)
{
	size_t i, o = 0;
	unsigned long v;

	if (outsz < (n * 4 + 2) / 3 + 1)
		return 0;
	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned long)in[i] << 16 | in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		out[o++] = b64url[v >> 6 & 63];
		out[o++] = b64url[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned long)in[i] << 16;
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
	} else if (n - i == 2) {
		v = (unsigned long)in[i] << 16 | in[i + 1] << 8;
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		out[o++] = b64url[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

static int
b64url_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

ssize_t
util_b64url_dec(const char *in, size_t n, unsigned char *out, size_t outsz)
{
	size_t i, o = 0;
	unsigned long v = 0;
	int bits = 0, d;

	if (n % 4 == 1 || outsz < n * 3 / 4)
		return -1;
	for (i = 0; i < n; i++) {
		if ((d = b64url_val((unsigned char)in[i])) < 0)
			return -1;
		v = (v << 6) | (unsigned long)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
			v &= (1UL << bits) - 1;
		}
	}
	/* Canonical form only: the unused low bits must be zero. */
	if (v != 0)
		return -1;
	return (ssize_t)o;
}

void
util_isotime(time_t t, char out[21])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
util_ct_eq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int
util_strtonum(const char *s, long long min, long long max, long long *out)
{
	long long v;
	char *end;

	if (s == NULL || *s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	size_t ncap;
	char *np;

	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL)
			return -1;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[512], *big;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(tmp))
		return buf_add(b, tmp, (size_t)n);
	if ((big = malloc((size_t)n + 1)) == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = buf_add(b, big, (size_t)n);
	free(big);
	return rc;
}

void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
util_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	    e[-1] == '\r'))
		*--e = '\0';
	return s;
}
