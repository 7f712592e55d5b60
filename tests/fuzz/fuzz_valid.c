/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * libFuzzer harness for valid.c: every input goes through all five
 * validators, and what they accept must keep its promises (normal forms
 * that validate again to themselves, case-insensitivity, lengths, language
 * tags of SPEC 2's forms only).
 * valid_utf8 is checked against a slow reference decoder.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "extern.h"
#include "valid.h"

#define ASSERT(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "%s:%d: ASSERT(%s) failed\n",		\
		    __FILE__, __LINE__, #c);				\
		abort();						\
	}								\
} while (0)

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Decode code points one by one and judge them by value. */
static int
ref_utf8(const uint8_t *p, size_t n)
{
	uint32_t cp, min;
	size_t i = 0, k, need;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			need = 1, cp = p[i] & 0x1f, min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			need = 2, cp = p[i] & 0x0f, min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			need = 3, cp = p[i] & 0x07, min = 0x10000;
		} else
			return 0;
		if (n - i - 1 < need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

/* s with every ASCII letter's case flipped, into a buffer of strlen + 1. */
static char *
flip(const char *s, size_t len)
{
	char *t;
	size_t i;

	ASSERT((t = malloc(len + 1)) != NULL);
	for (i = 0; i <= len; i++) {
		t[i] = s[i];
		if (s[i] >= 'a' && s[i] <= 'z')
			t[i] = (char)(s[i] - 'a' + 'A');
		else if (s[i] >= 'A' && s[i] <= 'Z')
			t[i] = (char)(s[i] - 'A' + 'a');
	}
	return t;
}

static int
has_upper(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			return 1;
	return 0;
}

static void
check_uuid(const char *s, size_t len)
{
	char out[UUID_LEN + 1], again[UUID_LEN + 1], *f;
	const char *why;

	why = valid_uuid(s, out);
	f = flip(s, len);
	ASSERT((valid_uuid(f, again) == NULL) == (why == NULL));
	free(f);
	if (why != NULL) {
		ASSERT(out[0] == '\0');
		return;
	}
	ASSERT(len == UUID_LEN && strlen(out) == UUID_LEN);
	ASSERT(strcasecmp(out, s) == 0 && !has_upper(out));
	ASSERT(strcmp(out, again) == 0);
	ASSERT(valid_uuid(out, again) == NULL && strcmp(out, again) == 0);
}

static void
check_email(const char *s, size_t len)
{
	char out[EMAIL_MAX + 1], lower[EMAIL_MAX + 1];
	char out2[EMAIL_MAX + 1], lower2[EMAIL_MAX + 1], *f;
	const char *why, *at;
	size_t n;

	why = valid_email(s, out, lower);
	f = flip(s, len);
	ASSERT((valid_email(f, out2, lower2) == NULL) == (why == NULL));
	free(f);
	if (why != NULL) {
		ASSERT(out[0] == '\0' && lower[0] == '\0');
		return;
	}
	n = strlen(out);
	ASSERT(n >= 5 && n <= EMAIL_MAX && strlen(lower) == n);
	ASSERT(strcmp(lower, lower2) == 0 && strcasecmp(out, lower) == 0);
	ASSERT(strstr(s, out) != NULL && !has_upper(lower));
	ASSERT(valid_utf8(out, n) && strspn(out, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.@") == n);
	ASSERT((at = strchr(out, '@')) != NULL && strchr(at + 1, '@') == NULL);
	ASSERT(at - out <= 64 && strchr(at, '.') != NULL);
	ASSERT(strstr(out, "..") == NULL && out[0] != '.' && out[n - 1] != '.');
	ASSERT(valid_email(out, out2, lower2) == NULL);
	ASSERT(strcmp(out, out2) == 0 && strcmp(lower, lower2) == 0);
	ASSERT(valid_email(lower, out2, lower2) == NULL);
	ASSERT(strcmp(lower, out2) == 0 && strcmp(lower, lower2) == 0);
}

/*
 * Whether tag, as valid_language writes it, has one of SPEC 2's forms:
 * l a lower-case letter, U an upper-case one, 9 a digit.
 */
static int
lang_form(const char *tag)
{
	static const char *const forms[] = { "ll", "lll", "ll-UU",
	    "ll-Ulll", "ll-Ulll-UU", "ll-999" };
	char shape[LANG_MAX];
	size_t i;

	for (i = 0; tag[i] != '\0' && i < sizeof(shape) - 1; i++) {
		if (tag[i] >= 'a' && tag[i] <= 'z')
			shape[i] = 'l';
		else if (tag[i] >= 'A' && tag[i] <= 'Z')
			shape[i] = 'U';
		else if (tag[i] >= '0' && tag[i] <= '9')
			shape[i] = '9';
		else
			shape[i] = tag[i];
	}
	shape[i] = '\0';
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (strcmp(shape, forms[i]) == 0)
			return 1;
	return 0;
}

static void
check_language(const char *s, size_t len)
{
	char out[LANG_MAX], again[LANG_MAX], *f;
	const char *why;

	why = valid_language(s, out);
	f = flip(s, len);
	ASSERT((valid_language(f, again) == NULL) == (why == NULL));
	free(f);
	if (why != NULL) {
		ASSERT(out[0] == '\0');
		return;
	}
	ASSERT(strcmp(out, again) == 0);
	ASSERT(strlen(out) == len && len >= 2 && len < LANG_MAX);
	ASSERT(strcasecmp(out, s) == 0 && lang_form(out));
	ASSERT(valid_language(out, again) == NULL && strcmp(out, again) == 0);
}

static void
check_country(const char *s, size_t len)
{
	const char *l, *l2;
	char out[LANG_MAX], *f;

	l = lang_of_country(s);
	f = flip(s, len);
	l2 = lang_of_country(f);
	free(f);
	ASSERT(l == l2);
	if (l == NULL)
		return;
	ASSERT(len == 2 && strlen(l) == 2 && !has_upper(l));
	ASSERT(valid_language(l, out) == NULL && strcmp(out, l) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	size_t len;

	ASSERT(valid_utf8((const char *)data, size) == ref_utf8(data, size));
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	len = strlen(s);
	check_uuid(s, len);
	check_email(s, len);
	check_language(s, len);
	check_country(s, len);
	free(s);
	return 0;
}
