/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * libFuzzer harness for dsn.c: any bytes go through dsn_parse, and what
 * comes out must keep dsn.h's promises (a reason exactly when ignored,
 * nothing else set then; a valid recipient; a status of the RFC 3464
 * shape and class; a diagnostic of one line of valid UTF-8 without
 * controls, within DSN_DIAG_MAX; a tag of 48 lower-case hex digits).
 * The input is also tried as an address for dsn_tag_of.  Seeds: the
 * unit tests' corpus, tests/unit/dsn/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "extern.h"
#include "valid.h"
#include "token.h"
#include "dsn.h"

#define ASSERT(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "%s:%d: ASSERT(%s) failed\n",		\
		    __FILE__, __LINE__, #c);				\
		abort();						\
	}								\
} while (0)

int	 LLVMFuzzerInitialize(int *, char ***);
int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

/* "C.S.D", 1 to 3 digits for S and D, C one of 2 4 5. */
static int
status_shape(const char *s)
{
	int part, n;

	if (*s != '2' && *s != '4' && *s != '5')
		return 0;
	for (s++, part = 0; part < 2; part++) {
		if (*s++ != '.')
			return 0;
		for (n = 0; *s >= '0' && *s <= '9'; s++)
			n++;
		if (n < 1 || n > 3)
			return 0;
	}
	return *s == '\0';
}

static int
terminated(const char *s, size_t sz)
{
	return memchr(s, '\0', sz) != NULL;
}

static void
check_dsn(const struct dsn *d)
{
	char out[EMAIL_MAX + 1], lower[EMAIL_MAX + 1];
	size_t i, n;

	ASSERT(d->verdict >= DSN_IGNORED && d->verdict < DSN__MAX);
	ASSERT(terminated(d->rcpt, sizeof(d->rcpt)));
	ASSERT(terminated(d->status, sizeof(d->status)));
	ASSERT(terminated(d->diag, sizeof(d->diag)));
	ASSERT(terminated(d->tag, sizeof(d->tag)));
	ASSERT(strcmp(dsn_verdict_name(d->verdict), "") != 0);
	if (d->verdict == DSN_IGNORED) {
		ASSERT(d->reason != NULL && d->reason[0] != '\0');
		ASSERT(d->rcpt[0] == '\0' && d->status[0] == '\0');
		ASSERT(d->diag[0] == '\0' && d->tag[0] == '\0');
		return;
	}
	ASSERT(d->reason == NULL);
	if (d->rcpt[0] != '\0') {
		ASSERT(valid_email(d->rcpt, out, lower) == NULL);
		ASSERT(strcmp(out, d->rcpt) == 0);
	} else
		ASSERT(d->verdict == DSN_COMPLAINT && d->tag[0] != '\0');
	if (d->tag[0] != '\0')
		ASSERT(strlen(d->tag) == BOUNCE_TAG_LEN &&
		    lower_hex(d->tag, BOUNCE_TAG_LEN));
	n = strlen(d->diag);
	ASSERT(n <= DSN_DIAG_MAX && valid_utf8(d->diag, n));
	for (i = 0; i < n; i++)
		ASSERT((unsigned char)d->diag[i] >= ' ' &&
		    d->diag[i] != 0x7f);
	ASSERT(n == 0 || (d->diag[0] != ' ' && d->diag[n - 1] != ' '));
	ASSERT(strstr(d->diag, "  ") == NULL);
	switch (d->verdict) {
	case DSN_FAILED:
		ASSERT(status_shape(d->status) && d->status[0] == '5');
		break;
	case DSN_DELAYED:
		ASSERT(status_shape(d->status) && d->status[0] == '4');
		break;
	default:
		ASSERT(d->status[0] == '\0');
		ASSERT(strcmp(d->diag, "abuse") == 0 ||
		    strcmp(d->diag, "fraud") == 0);
		break;
	}
}

static void
check_tag_of(const uint8_t *data, size_t size)
{
	char *s, tag[BOUNCE_TAG_LEN + 1];
	const char *at;

	if ((s = malloc(size + 1)) == NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (dsn_tag_of(s, "bounces", tag) == 0) {
		ASSERT(lower_hex(tag, BOUNCE_TAG_LEN));
		ASSERT(strncasecmp(s, "bounces+", 8) == 0);
		ASSERT(strncasecmp(s + 8, tag, BOUNCE_TAG_LEN) == 0);
		at = strrchr(s, '@');
		ASSERT(at == s + 8 + BOUNCE_TAG_LEN && at[1] != '\0');
	} else
		ASSERT(tag[0] == '\0');
	free(s);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct dsn d;

	/* GMime's one-time set-up, so that no input is charged with it. */
	(void)dsn_parse("", 0, "bounces", &d);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsn d, again;

	dsn_parse((const char *)data, size, "bounces", &d);
	check_dsn(&d);
	dsn_parse((const char *)data, size, "bounces", &again);
	ASSERT(again.verdict == d.verdict && again.reason == d.reason);
	ASSERT(strcmp(again.rcpt, d.rcpt) == 0 &&
	    strcmp(again.status, d.status) == 0 &&
	    strcmp(again.diag, d.diag) == 0 && strcmp(again.tag, d.tag) == 0);
	dsn_parse((const char *)data, size, NULL, &again);
	ASSERT(again.verdict == d.verdict || (d.verdict == DSN_COMPLAINT &&
	    d.rcpt[0] == '\0' && again.verdict == DSN_IGNORED));
	ASSERT(again.tag[0] == '\0');
	check_tag_of(data, size);
	return 0;
}
