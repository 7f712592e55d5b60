/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * libFuzzer harness for the request body parsers of json.c.  The input
 * goes to json_invite_body and json_token_body as it came (in a buffer of
 * exactly its size, so that ASan sees any read past the end), and to
 * json_add_string as a C string.
 *
 * Beyond "no crash, no leak": what the parsers accept they must return
 * exactly, as valid UTF-8 cut short by no hidden NUL, which a small
 * reference decoder below checks member by member; what a strict reader
 * of RFC 8259 takes as a good body they must accept; every error has a
 * message, valid UTF-8 since it ends up in a JSON answer; and the string
 * writer's output reads back through cJSON to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util.h"
#include "valid.h"
#include "json.h"

#define ASSERT(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "%s:%d: ASSERT(%s) failed\n",		\
		    __FILE__, __LINE__, #c);				\
		abort();						\
	}								\
} while (0)

#define MEMBERS_MAX	8

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* One member of a flat object, both sides decoded (may hold NULs). */
struct member {
	struct buf	 key;
	struct buf	 val;
};

/*
 * JSON white space.  cJSON takes every byte up to 0x20 for white space
 * (not only the four RFC 8259 names); the lenient reader does the same so
 * that it can follow what json.c accepted.
 */
static int
ref_ws(unsigned char c, int lenient)
{
	if (lenient)
		return c <= 0x20;
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t
ref_skip(const unsigned char *p, size_t n, size_t i, int lenient)
{
	while (i < n && ref_ws(p[i], lenient))
		i++;
	return i;
}

static int
ref_hex4(const unsigned char *p, size_t n, size_t i, uint32_t *v)
{
	size_t k;
	int d;

	if (n - i < 4)
		return -1;
	*v = 0;
	for (k = 0; k < 4; k++) {
		if (p[i + k] >= '0' && p[i + k] <= '9')
			d = p[i + k] - '0';
		else if (p[i + k] >= 'a' && p[i + k] <= 'f')
			d = p[i + k] - 'a' + 10;
		else if (p[i + k] >= 'A' && p[i + k] <= 'F')
			d = p[i + k] - 'A' + 10;
		else
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

static void
ref_put_utf8(struct buf *b, uint32_t cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	ASSERT(buf_add(b, u, n) == 0);
}

/* The escape at p[*i] (just past the backslash) into b; 0 or -1. */
static int
ref_escape(const unsigned char *p, size_t n, size_t *i, struct buf *b)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e;
	uint32_t hi, lo;

	if (*i >= n)
		return -1;
	if (p[*i] != 'u') {
		if (p[*i] == '\0' || (e = strchr(from, p[*i])) == NULL)
			return -1;
		ASSERT(buf_add(b, &to[e - from], 1) == 0);
		(*i)++;
		return 0;
	}
	if (ref_hex4(p, n, *i + 1, &hi) == -1)
		return -1;
	*i += 5;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return -1;
	if (hi >= 0xd800 && hi <= 0xdbff) {
		if (n - *i < 2 || p[*i] != '\\' || p[*i + 1] != 'u' ||
		    ref_hex4(p, n, *i + 2, &lo) == -1 ||
		    lo < 0xdc00 || lo > 0xdfff)
			return -1;
		*i += 6;
		hi = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	}
	ref_put_utf8(b, hi);
	return 0;
}

/* The string literal at p[*i] (its opening quote) into b; 0 or -1. */
static int
ref_string(const unsigned char *p, size_t n, size_t *i, struct buf *b)
{
	ASSERT(buf_add(b, "", 0) == 0);
	if (*i >= n || p[*i] != '"')
		return -1;
	for ((*i)++; *i < n; ) {
		if (p[*i] == '"') {
			(*i)++;
			return 0;
		}
		if (p[*i] < 0x20)
			return -1;
		if (p[*i] == '\\') {
			(*i)++;
			if (ref_escape(p, n, i, b) == -1)
				return -1;
			continue;
		}
		ASSERT(buf_add(b, &p[*i], 1) == 0);
		(*i)++;
	}
	return -1;
}

static void
ref_free(struct member *m, size_t nm)
{
	size_t i;

	for (i = 0; i < nm; i++) {
		buf_free(&m[i].key);
		buf_free(&m[i].val);
	}
}

/*
 * Read p as an object whose members all have string values, into m (at
 * most MEMBERS_MAX).  Returns the number of members, or -1 (m freed).
 */
static int
ref_object(const unsigned char *p, size_t n, int lenient, struct member *m)
{
	size_t i, nm = 0;

	memset(m, 0, MEMBERS_MAX * sizeof(*m));
	i = ref_skip(p, n, 0, lenient);
	if (i >= n || p[i++] != '{')
		goto fail;
	i = ref_skip(p, n, i, lenient);
	if (i < n && p[i] == '}') {
		i++;
		goto end;
	}
	for (;;) {
		if (nm == MEMBERS_MAX)
			goto fail;
		nm++;
		if (ref_string(p, n, &i, &m[nm - 1].key) == -1)
			goto fail;
		i = ref_skip(p, n, i, lenient);
		if (i >= n || p[i++] != ':')
			goto fail;
		i = ref_skip(p, n, i, lenient);
		if (ref_string(p, n, &i, &m[nm - 1].val) == -1)
			goto fail;
		i = ref_skip(p, n, i, lenient);
		if (i < n && p[i] == '}') {
			i++;
			break;
		}
		if (i >= n || p[i++] != ',')
			goto fail;
		i = ref_skip(p, n, i, lenient);
	}
end:
	if (ref_skip(p, n, i, lenient) == n)
		return (int)nm;
fail:
	ref_free(m, nm);
	return -1;
}

/* Index of the member called name (exactly, no NUL), or -1. */
static int
ref_find(const struct member *m, int nm, const char *name)
{
	int i;

	for (i = 0; i < nm; i++)
		if (m[i].key.len == strlen(name) &&
		    memcmp(m[i].key.p, name, m[i].key.len) == 0)
			return i;
	return -1;
}

/* Whether m holds each of names exactly once, nothing else, no NUL. */
static int
ref_exactly(const struct member *m, int nm, const char *const names[],
    size_t n)
{
	size_t k;
	int i;

	if (nm < 0 || (size_t)nm != n)
		return 0;
	for (i = 0; i < nm; i++)
		if (memchr(m[i].key.p, '\0', m[i].key.len) != NULL ||
		    memchr(m[i].val.p, '\0', m[i].val.len) != NULL)
			return 0;
	for (k = 0; k < n; k++)
		if (ref_find(m, nm, names[k]) == -1)
			return 0;
	return 1;
}

/*
 * One parser's verdict e on buf against the reference.  On JSON_OK the
 * values (vals[], NUL-terminated) must be exactly what the document says.
 */
static void
check_parse(const char *buf, size_t len, enum json_err e, const char *what,
    const char *const names[], char *const vals[], size_t n)
{
	struct member m[MEMBERS_MAX];
	const char *msg;
	size_t k;
	int nm, i;

	ASSERT(e >= JSON_OK && e < JSON__MAX);
	msg = json_strerror(e, what);
	ASSERT(msg != NULL && *msg != '\0');
	ASSERT(valid_utf8(msg, strlen(msg)));
	if (e == JSON_EUNKNOWN || e == JSON_EDUP || e == JSON_ETYPE ||
	    e == JSON_EMISSING)
		ASSERT(what != NULL);
	if (e != JSON_OK) {
		for (k = 0; k < n; k++)
			ASSERT(vals[k] == NULL);
		nm = ref_object((const unsigned char *)buf, len, 0, m);
		/* Strict RFC 8259, valid UTF-8, the right members: good. */
		ASSERT(!valid_utf8(buf, len) || !ref_exactly(m, nm, names, n));
		if (nm >= 0)
			ref_free(m, (size_t)nm);
		return;
	}
	ASSERT(memchr(buf, '\0', len) == NULL && valid_utf8(buf, len));
	nm = ref_object((const unsigned char *)buf, len, 1, m);
	ASSERT(nm >= 0 && (size_t)nm == n);
	for (k = 0; k < n; k++) {
		ASSERT(vals[k] != NULL);
		ASSERT(valid_utf8(vals[k], strlen(vals[k])));
		ASSERT((i = ref_find(m, nm, names[k])) != -1);
		/* Same length: no NUL cut the value short. */
		ASSERT(m[i].val.len == strlen(vals[k]));
		ASSERT(memcmp(m[i].val.p, vals[k], m[i].val.len) == 0);
	}
	ref_free(m, (size_t)nm);
}

static void
fuzz_bodies(const char *buf, size_t len)
{
	static const char *const inv[] = { "email", "language" };
	static const char *const tok[] = { "token" };
	struct invite_body b;
	const char *what;
	char *vals[2], *token;
	enum json_err e;

	what = NULL;
	e = json_invite_body(buf, len, &b, &what);
	vals[0] = b.email;
	vals[1] = b.language;
	check_parse(buf, len, e, what, inv, vals, 2);
	json_invite_body_free(&b);
	ASSERT(b.email == NULL && b.language == NULL);

	what = NULL;
	e = json_token_body(buf, len, &token, &what);
	check_parse(buf, len, e, what, tok, &token, 1);
	free(token);
}

/* json_add_string(s): a JSON string literal that reads back as s. */
static void
fuzz_writer(const char *s)
{
	struct buf b = { 0 };
	const unsigned char *u;
	cJSON *v;
	const char *end;
	size_t i;

	ASSERT(json_add_string(&b, s) == 0);
	ASSERT(b.len >= 2 && b.p[0] == '"' && b.p[b.len - 1] == '"');
	ASSERT(strlen(b.p) == b.len);
	u = (const unsigned char *)b.p;
	for (i = 0; i < b.len; i++) {
		ASSERT(u[i] >= 0x20 && u[i] != 0x7f);
		ASSERT(i + 2 >= b.len || !(u[i] == 0xe2 && u[i + 1] == 0x80 &&
		    (u[i + 2] == 0xa8 || u[i + 2] == 0xa9)));
	}
	if (valid_utf8(s, strlen(s))) {
		ASSERT(valid_utf8(b.p, b.len));
		end = NULL;
		v = cJSON_ParseWithOpts(b.p, &end, 1);
		ASSERT(v != NULL && cJSON_IsString(v));
		ASSERT(strcmp(v->valuestring, s) == 0);
		cJSON_Delete(v);
	}
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *s;

	/* Exactly size bytes: the parsers must not look for a NUL. */
	if ((buf = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	fuzz_bodies(buf, size);
	free(buf);

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_writer(s);
	/* A prefix that may end inside a UTF-8 sequence. */
	s[size / 2] = '\0';
	fuzz_writer(s);
	free(s);
	return 0;
}
