/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * PostgreSQL connection URIs (issue 21): what the database key accepts
 * besides a path, checked by libpq's own parser so that what passes is
 * what libpq will connect with, and redacted wherever one is shown: a
 * password never reaches a terminal or a log.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pg_uri.h"

#define PASSWORDS_MAX	8

/* A password's place in a URI. */
struct span {
	const char	*p;
	size_t		 len;
};

int
pg_uri_is(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 ||
	    strncmp(s, "postgres://", 11) == 0;
}

/* The password= parameters after the '?' at q into sp[n..max); how many. */
static int
query_passwords(const char *q, struct span sp[], int n, int max)
{
	const char *end;

	if (q == NULL)
		return n;
	for (q++; *q != '\0' && n < max; q = *end == '&' ? end + 1 : end) {
		end = q + strcspn(q, "&");
		if (strncmp(q, "password=", 9) == 0 && end > q + 9) {
			sp[n].p = q + 9;
			sp[n++].len = (size_t)(end - q - 9);
		}
	}
	return n;
}

/*
 * The passwords of uri, at most max of them; how many.  The user
 * information ends at the last '@' (libpq's at the first '@' or '/'):
 * a malformed URI has more taken for its password, never less.  The
 * query is read from the first '?' as well as from the first after that
 * '@', since a query may hold an '@' of its own ("?user=a@b&password=").
 */
static int
passwords(const char *uri, struct span sp[], int max)
{
	const char *p, *at, *colon, *q0, *q1;
	int n = 0;

	if ((p = strstr(uri, "://")) == NULL)
		return 0;
	p += 3;
	q0 = strchr(p, '?');
	if ((at = strrchr(p, '@')) != NULL) {
		if ((colon = memchr(p, ':', (size_t)(at - p))) != NULL &&
		    at > colon + 1) {
			sp[n].p = colon + 1;
			sp[n++].len = (size_t)(at - colon - 1);
		}
		p = at + 1;
	}
	q1 = strchr(p, '?');
	n = query_passwords(q0, sp, n, max);
	return q1 == q0 ? n : query_passwords(q1, sp, n, max);
}

/*
 * The password of sp[0..n) found at text: there (in_uri, text walking
 * the URI itself), or anywhere its characters recur (a message).
 */
static const struct span *
password_at(const char *text, int in_uri, const struct span sp[], int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (in_uri ? text == sp[i].p :
		    strncmp(text, sp[i].p, sp[i].len) == 0)
			return &sp[i];
	return NULL;
}

/* text into out with the passwords of uri replaced (pg_uri.h). */
static void
redact(const char *uri, const char *text, int in_uri, char *out,
    size_t outsz)
{
	struct span sp[PASSWORDS_MAX];
	const struct span *s;
	size_t o = 0, r = strlen(PG_URI_REDACTED);
	int n;

	if (outsz == 0)
		return;
	n = passwords(uri, sp, PASSWORDS_MAX);
	while (*text != '\0' && o + 1 < outsz) {
		if ((s = password_at(text, in_uri, sp, n)) != NULL) {
			if (o + r >= outsz)
				break;
			memcpy(out + o, PG_URI_REDACTED, r);
			o += r;
			text += s->len;
		} else
			out[o++] = *text++;
	}
	out[o] = '\0';
}

void
pg_uri_redact(const char *uri, char *out, size_t outsz)
{
	redact(uri, uri, 1, out, outsz);
}

void
pg_uri_redact_text(const char *uri, const char *text, char *out,
    size_t outsz)
{
	redact(uri, text, 0, out, outsz);
}

/*
 * Whether len bytes at tok, wherever they occur in uri, cover part of
 * one of its passwords: libpq's messages quote a URI's bad part, which
 * may be a password's piece where the URI is malformed.
 */
static int
covers_password(const char *uri, const char *tok, size_t len)
{
	struct span sp[PASSWORDS_MAX];
	const char *at, *end = uri + strlen(uri);
	int i, n = passwords(uri, sp, PASSWORDS_MAX);

	for (at = uri; len > 0 && (at = memmem(at, (size_t)(end - at), tok,
	    len)) != NULL; at++)
		for (i = 0; i < n; i++)
			if (at < sp[i].p + sp[i].len && sp[i].p < at + len)
				return 1;
	return 0;
}

/* msg into out with each quoted part that covers a password replaced. */
static void
redact_quoted(const char *uri, const char *msg, char *out, size_t outsz)
{
	const char *q, *close;
	size_t o = 0, len;

	while (*msg != '\0' && o + 1 < outsz) {
		if (*msg == '"' && (close = strchr(msg + 1, '"')) != NULL) {
			q = msg + 1;
			len = (size_t)(close - q);
			if (covers_password(uri, q, len)) {
				q = PG_URI_REDACTED;
				len = strlen(q);
			}
			o += (size_t)snprintf(out + o, outsz - o, "\"%.*s\"",
			    (int)len, q);
			msg = close + 1;
		} else
			out[o++] = *msg++;
	}
	if (o >= outsz)
		o = outsz - 1;
	out[o] = '\0';
}

/* The i-th of a comma-separated list, or its only one; "" past it. */
static void
list_item(const char *list, int i, char *out, size_t outsz)
{
	const char *p = list, *e;
	int k;

	for (k = 0; k < i && (e = strchr(p, ',')) != NULL; k++)
		p = e + 1;
	if (k < i && strchr(list, ',') != NULL) {
		out[0] = '\0';
		return;
	}
	snprintf(out, outsz, "%.*s", (int)strcspn(p, ","), p);
}

int
pg_uri_ports(const char *uri, int out[PG_URI_PORTS_MAX + 1])
{
	PQconninfoOption *opts, *o;
	const char *host = "", *addr = "", *port = "";
	char h[256], pt[16];
	int i, n = 0, nhosts, v;

	out[0] = 0;
	if ((opts = PQconninfoParse(uri, NULL)) == NULL)
		return 0;
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			addr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
	}
	nhosts = 1;
	for (i = 0; (*addr ? addr : host)[i] != '\0'; i++)
		if ((*addr ? addr : host)[i] == ',')
			nhosts++;
	for (i = 0; i < nhosts && n < PG_URI_PORTS_MAX; i++) {
		list_item(*addr ? addr : host, i, h, sizeof(h));
		/* No host: libpq's default, the unix socket. */
		if (*addr == '\0' && (h[0] == '\0' || h[0] == '/' ||
		    h[0] == '@'))
			continue;
		list_item(port, i, pt, sizeof(pt));
		v = pt[0] != '\0' ? atoi(pt) : 5432;
		if (v > 0 && v <= 65535)
			out[n++] = v;
	}
	out[n] = 0;
	PQconninfoFree(opts);
	return n;
}

int
pg_uri_check(const char *uri, char *why, size_t whysz)
{
	PQconninfoOption *opts;
	char *msg = NULL, *text = NULL, *quoted = NULL;
	size_t len, sz;

	if (!pg_uri_is(uri)) {
		snprintf(why, whysz, "expected postgresql:// or postgres://");
		return -1;
	}
	if ((opts = PQconninfoParse(uri, &msg)) != NULL) {
		PQconninfoFree(opts);
		return 0;
	}
	/*
	 * Redacted whole, cut only in why: a cut inside a password would
	 * leave its first part unmatched.  A quoted part may grow to the
	 * redaction's length.
	 */
	sz = 64 + (msg != NULL ? strlen(msg) : 0) * (1 + strlen(PG_URI_REDACTED));
	if (msg == NULL || (text = malloc(sz)) == NULL ||
	    (quoted = malloc(sz)) == NULL)
		snprintf(why, whysz, "not a PostgreSQL connection URI");
	else {
		snprintf(text, sz, "not a PostgreSQL connection URI: %s", msg);
		len = strcspn(text, "\n");
		text[len] = '\0';
		redact_quoted(uri, text, quoted, sz);
		pg_uri_redact_text(uri, quoted, why, whysz);
	}
	PQfreemem(msg);
	free(text);
	free(quoted);
	return -1;
}
