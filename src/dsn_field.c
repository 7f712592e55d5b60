/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The fields of a report's status part (dsn_field.c): RFC 822-style
 * fields in a body that GMime has decoded, read by a small bounded
 * reader, each value copied into a bounded buffer first so that nothing
 * after that point trusts a length it did not check; the tag of an
 * address, the verdict's name.  Pure: no GMime, no state.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "extern.h"
#include "util.h"
#include "valid.h"
#include "token.h"
#include "dsn.h"
#include "dsn_int.h"

static int
is_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

int
dsn_tag_of(const char *addr, const char *bounce_local,
    char tag[BOUNCE_TAG_LEN + 1])
{
	const char *at, *plus;
	size_t n, i;

	tag[0] = '\0';
	if (addr == NULL || bounce_local == NULL ||
	    (n = strlen(bounce_local)) == 0 ||
	    (at = strrchr(addr, '@')) == NULL || at[1] == '\0')
		return -1;
	plus = addr + n;
	if ((size_t)(at - addr) != n + 1 + BOUNCE_TAG_LEN ||
	    strncasecmp(addr, bounce_local, n) != 0 || *plus != '+')
		return -1;
	for (i = 0; i < BOUNCE_TAG_LEN; i++)
		if (!is_hex((unsigned char)plus[1 + i]))
			return -1;
	for (i = 0; i < BOUNCE_TAG_LEN; i++) {
		tag[i] = plus[1 + i];
		if (tag[i] >= 'A' && tag[i] <= 'F')
			tag[i] = (char)(tag[i] - 'A' + 'a');
	}
	tag[BOUNCE_TAG_LEN] = '\0';
	return 0;
}

const char *
dsn_verdict_name(enum dsn_verdict v)
{
	switch (v) {
	case DSN_FAILED:
		return "failed";
	case DSN_DELAYED:
		return "delayed";
	case DSN_COMPLAINT:
		return "complaint";
	default:
		return "ignored";
	}
}

/* The end of the line at p (its '\n' or end), and the next line. */
static const char *
line_end(const char *p, const char *end, const char **next)
{
	const char *nl;

	if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
		*next = end;
		return end;
	}
	*next = nl + 1;
	if (nl > p && nl[-1] == '\r')
		nl--;
	return nl;
}

static int
blank(const char *p, const char *e)
{
	for (; p < e; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return 0;
	return 1;
}

/*
 * The next group of fields after *off in b (blank lines skipped): 0 and
 * g, or -1 at the end.
 */
int
dsn_group_next(const struct body *b, size_t *off, struct body *g)
{
	const char *p = b->p + *off, *end = b->p + b->len, *e, *next;

	while (p < end) {
		e = line_end(p, end, &next);
		if (!blank(p, e))
			break;
		p = next;
	}
	if (p >= end)
		return -1;
	g->p = p;
	while (p < end) {
		e = line_end(p, end, &next);
		if (blank(p, e))
			break;
		p = next;
	}
	g->len = (size_t)(p - g->p);
	*off = (size_t)(p - b->p);
	return 0;
}

/* Append n bytes at s to out (of outsz, used *used), NUL as space. */
void
dsn_append(char *out, size_t outsz, size_t *used, const char *s, size_t n)
{
	for (; n > 0 && *used + 1 < outsz; n--, s++)
		out[(*used)++] = *s == '\0' ? ' ' : *s;
	out[*used] = '\0';
}

/*
 * The first field called name in group g, unfolded (a continuation
 * line joins with one space), into out: 0, or -1 when there is none.
 */
int
dsn_field_get(const struct body *g, const char *name, char *out,
    size_t outsz)
{
	const char *p = g->p, *end = g->p + g->len, *e, *next, *c, *n;
	size_t used = 0, nlen = strlen(name);
	int found = 0;

	out[0] = '\0';
	for (; p < end; p = next) {
		e = line_end(p, end, &next);
		if (*p == ' ' || *p == '\t') {
			if (found) {
				dsn_append(out, outsz, &used, " ", 1);
				dsn_append(out, outsz, &used, p, (size_t)(e - p));
			}
			continue;
		}
		if (found)
			break;
		if ((c = memchr(p, ':', (size_t)(e - p))) == NULL)
			continue;
		for (n = c; n > p && (n[-1] == ' ' || n[-1] == '\t'); n--)
			continue;
		if ((size_t)(n - p) != nlen || strncasecmp(p, name, nlen) != 0)
			continue;
		found = 1;
		dsn_append(out, outsz, &used, c + 1, (size_t)(e - c - 1));
	}
	return found ? 0 : -1;
}

/*
 * The address in a field value: "rfc822; <a@b>" (the type is required
 * when need_type), "<a@b>" or "a@b".  Returns it in place, or NULL.
 */
static char *
addr_part(char *v, int need_type)
{
	char *semi, *s;
	size_t n;

	if ((semi = strchr(v, ';')) != NULL) {
		*semi = '\0';
		if (strcasecmp(util_trim(v), "rfc822") != 0)
			return NULL;
		v = semi + 1;
	} else if (need_type)
		return NULL;
	s = util_trim(v);
	n = strlen(s);
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s[n - 1] = '\0';
		s++;
	}
	return s;
}

/* A recipient field's address into rcpt: 0, or -1 when not valid. */
int
dsn_rcpt_of(char *v, int need_type, char rcpt[EMAIL_MAX + 1])
{
	char lower[EMAIL_MAX + 1];
	const char *a;

	if ((a = addr_part(v, need_type)) != NULL &&
	    valid_email(a, rcpt, lower) == NULL)
		return 0;
	rcpt[0] = '\0';
	return -1;
}

/* A field value naming an envelope sender: its tag into d->tag. */
void
dsn_tag_from(char *v, const char *bounce_local, struct dsn *d)
{
	const char *a;

	if (d->tag[0] == '\0' && (a = addr_part(v, 0)) != NULL)
		(void)dsn_tag_of(a, bounce_local, d->tag);
}

/*
 * A Status value: its class ('2', '4' or '5') and the code in out, or 0.
 * RFC 3464: class "." subject "." detail, 1 to 3 digits each, then an
 * optional comment.
 */
int
dsn_status_of(char *v, char out[DSN_STATUS_MAX + 1])
{
	const char *s = util_trim(v), *p;
	int part, n;

	out[0] = '\0';
	if (*s != '2' && *s != '4' && *s != '5')
		return 0;
	for (p = s + 1, part = 0; part < 2; part++) {
		if (*p++ != '.')
			return 0;
		for (n = 0; *p >= '0' && *p <= '9'; p++)
			if (++n > 3)
				return 0;
		if (n == 0)
			return 0;
	}
	if (*p != '\0' && *p != ' ' && *p != '\t' && *p != '(')
		return 0;
	memcpy(out, s, (size_t)(p - s));
	out[p - s] = '\0';
	return *s;
}

/* Bytes of the valid, non-C1 UTF-8 character at p (n left), or 0. */
static size_t
utf8_char(const unsigned char *p, size_t n)
{
	size_t need, k;
	uint32_t cp, min;

	if ((p[0] & 0xe0) == 0xc0)
		need = 1, cp = p[0] & 0x1f, min = 0x80;
	else if ((p[0] & 0xf0) == 0xe0)
		need = 2, cp = p[0] & 0x0f, min = 0x800;
	else if ((p[0] & 0xf8) == 0xf0)
		need = 3, cp = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (n - 1 < need)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    cp <= 0x9f)
		return 0;
	return need + 1;
}

/*
 * A Diagnostic-Code for display: the type ("smtp;") dropped, one line,
 * white space and control characters one space, invalid bytes '?', at
 * most DSN_DIAG_MAX bytes ending on a whole character.
 */
void
dsn_diag_clean(const char *v, char out[DSN_DIAG_MAX + 1])
{
	const unsigned char *p = (const unsigned char *)v, *t;
	size_t n = strlen(v), used = 0, k;
	int space = 0;

	for (t = p; t < p + n && (*t == ' ' || *t == '\t'); t++)
		continue;
	while (t < p + n && (*t == '-' || (*t >= '0' && *t <= '9') ||
	    ((*t | 0x20) >= 'a' && (*t | 0x20) <= 'z')))
		t++;
	if (t < p + n && *t == ';' && t > p)
		p = t + 1;
	n = strlen((const char *)p);
	for (; n > 0; p += k, n -= k) {
		k = 1;
		if (*p <= ' ' || *p == 0x7f) {
			space = used > 0;
			continue;
		}
		if (*p >= 0x80 && (k = utf8_char(p, n)) == 0) {
			k = 1;
			if (p[0] == 0xc2 && n > 1 && p[1] >= 0x80 &&
			    p[1] <= 0x9f) {		/* a C1 control */
				k = 2;
				space = used > 0;
				continue;
			}
		}
		if (used + space + (*p >= 0x80 && k == 1 ? 1 : k) >
		    DSN_DIAG_MAX)
			break;
		if (space)
			out[used++] = ' ';
		space = 0;
		if (*p >= 0x80 && k == 1)
			out[used++] = '?';
		else {
			memcpy(out + used, p, k);
			used += k;
		}
	}
	out[used] = '\0';
}
