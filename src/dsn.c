/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Delivery reports (RFC 3464) and complaints (RFC 5965) to a verdict.
 * GMime parses the MIME structure; the status fields inside a report's
 * body are read here, each value copied into a bounded buffer first, so
 * that nothing after that point trusts a length it did not check.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "extern.h"
#include "valid.h"
#include "token.h"
#include "dsn.h"

#define VALUE_MAX	2048	/* bytes of a field value kept */

/* A report's body (decoded), or a group of fields in one. */
struct body {
	const char	*p;
	size_t		 len;
};

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
static int
group_next(const struct body *b, size_t *off, struct body *g)
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
static void
append(char *out, size_t outsz, size_t *used, const char *s, size_t n)
{
	for (; n > 0 && *used + 1 < outsz; n--, s++)
		out[(*used)++] = *s == '\0' ? ' ' : *s;
	out[*used] = '\0';
}

/*
 * The first field called name in group g, unfolded (a continuation
 * line joins with one space), into out: 0, or -1 when there is none.
 */
static int
field_get(const struct body *g, const char *name, char *out, size_t outsz)
{
	const char *p = g->p, *end = g->p + g->len, *e, *next, *c, *n;
	size_t used = 0, nlen = strlen(name);
	int found = 0;

	out[0] = '\0';
	for (; p < end; p = next) {
		e = line_end(p, end, &next);
		if (*p == ' ' || *p == '\t') {
			if (found) {
				append(out, outsz, &used, " ", 1);
				append(out, outsz, &used, p, (size_t)(e - p));
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
		append(out, outsz, &used, c + 1, (size_t)(e - c - 1));
	}
	return found ? 0 : -1;
}

/* s without surrounding white space, in place. */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
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
		if (strcasecmp(trim(v), "rfc822") != 0)
			return NULL;
		v = semi + 1;
	} else if (need_type)
		return NULL;
	s = trim(v);
	n = strlen(s);
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s[n - 1] = '\0';
		s++;
	}
	return s;
}

/* A recipient field's address into rcpt: 0, or -1 when not valid. */
static int
rcpt_of(char *v, int need_type, char rcpt[EMAIL_MAX + 1])
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
static void
tag_from(char *v, const char *bounce_local, struct dsn *d)
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
static int
status_of(char *v, char out[DSN_STATUS_MAX + 1])
{
	const char *s = trim(v), *p;
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
static void
diag_clean(const char *v, char out[DSN_DIAG_MAX + 1])
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

/* The decoded content of a leaf part, in a GByteArray of the caller's. */
static GByteArray *
part_bytes(GMimeObject *o)
{
	GMimeDataWrapper *w;
	GMimeStream *s;
	GByteArray *a;

	if (!GMIME_IS_PART(o) ||
	    (w = g_mime_part_get_content(GMIME_PART(o))) == NULL)
		return NULL;
	a = g_byte_array_new();
	s = g_mime_stream_mem_new_with_byte_array(a);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
	if (g_mime_data_wrapper_write_to_stream(w, s) == -1) {
		g_object_unref(s);
		g_byte_array_free(a, TRUE);
		return NULL;
	}
	g_object_unref(s);
	return a;
}

/* The bytes of a as a body (an empty array has no data at all). */
static void
body_of(const GByteArray *a, struct body *b)
{
	b->p = a->data != NULL ? (const char *)a->data : "";
	b->len = a->data != NULL ? a->len : 0;
}

/* A header of o, copied into out (NUL as space): 0, or -1. */
static int
header_get(GMimeObject *o, const char *name, char *out, size_t outsz)
{
	const char *h;
	size_t used = 0;

	out[0] = '\0';
	if ((h = g_mime_object_get_header(o, name)) == NULL)
		return -1;
	append(out, outsz, &used, h, strlen(h));
	return 0;
}

/* How many MIME levels lie below o, counting no further than past max. */
static int
depth_of(GMimeObject *o, int d)
{
	GMimeMessage *m;
	int i, n, max = d, k;

	if (d > DSN_MAX_DEPTH)
		return d;
	if (GMIME_IS_MULTIPART(o)) {
		n = g_mime_multipart_get_count(GMIME_MULTIPART(o));
		for (i = 0; i < n && max <= DSN_MAX_DEPTH; i++) {
			k = depth_of(g_mime_multipart_get_part(
			    GMIME_MULTIPART(o), i), d + 1);
			if (k > max)
				max = k;
		}
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
		if (m != NULL && g_mime_message_get_mime_part(m) != NULL)
			max = depth_of(g_mime_message_get_mime_part(m), d + 1);
	}
	return max;
}

/* The first direct part of the report of type type/subtype, or NULL. */
static GMimeObject *
report_part(GMimeObject *report, const char *type, const char *subtype)
{
	GMimeMultipart *mp = GMIME_MULTIPART(report);
	GMimeContentType *ct;
	GMimeObject *o;
	int i, n;

	n = g_mime_multipart_get_count(mp);
	for (i = 0; i < n; i++) {
		o = g_mime_multipart_get_part(mp, i);
		ct = g_mime_object_get_content_type(o);
		if (ct != NULL && g_mime_content_type_is_type(ct, type, subtype))
			return o;
	}
	return NULL;
}

/* The tag in the Return-Path of the enclosed message or headers. */
static void
enclosed_tag(GMimeObject *report, const char *bounce_local, struct dsn *d)
{
	char v[VALUE_MAX];
	GMimeObject *o;
	GMimeMessage *m;
	GByteArray *a;
	struct body b, g;
	size_t off = 0;

	if ((o = report_part(report, "message", "rfc822")) != NULL ||
	    (o = report_part(report, "message", "global")) != NULL) {
		if (GMIME_IS_MESSAGE_PART(o) && (m =
		    g_mime_message_part_get_message(GMIME_MESSAGE_PART(o))) !=
		    NULL && header_get(GMIME_OBJECT(m), "Return-Path", v,
		    sizeof(v)) == 0)
			tag_from(v, bounce_local, d);
		return;
	}
	if ((o = report_part(report, "text", "rfc822-headers")) == NULL ||
	    (a = part_bytes(o)) == NULL)
		return;
	body_of(a, &b);
	if (group_next(&b, &off, &g) == 0 &&
	    field_get(&g, "Return-Path", v, sizeof(v)) == 0)
		tag_from(v, bounce_local, d);
	g_byte_array_free(a, TRUE);
}

/*
 * An Action with its Status class: '5' failed, '4' delayed, 0 neither
 * (delivered, relayed, expanded, or failed with a 2.x.x), -1 an Action
 * RFC 3464 does not know or delayed with a class other than 4.
 */
static int
action_class(const char *a, int cls)
{
	if (strcasecmp(a, "failed") == 0)
		return cls == '2' ? 0 : cls;
	if (strcasecmp(a, "delayed") == 0)
		return cls == '4' ? cls : -1;
	if (strcasecmp(a, "delivered") == 0 || strcasecmp(a, "relayed") == 0 ||
	    strcasecmp(a, "expanded") == 0)
		return 0;
	return -1;
}

/*
 * One recipient group: its class ('5' failed, '4' delayed, 0 neither)
 * with d's rcpt, status and diag filled; -1 when it is malformed (no
 * Action, no valid Status, no usable recipient).
 */
static int
rcpt_group(const struct body *g, struct dsn *d)
{
	char action[64], v[VALUE_MAX];
	int cls;

	if (field_get(g, "Action", action, sizeof(action)) == -1 ||
	    field_get(g, "Status", v, sizeof(v)) == -1 ||
	    (cls = status_of(v, d->status)) == 0)
		return -1;
	if ((cls = action_class(trim(action), cls)) <= 0)
		return cls;
	if ((field_get(g, "Original-Recipient", v, sizeof(v)) == -1 ||
	    rcpt_of(v, 1, d->rcpt) == -1) &&
	    (field_get(g, "Final-Recipient", v, sizeof(v)) == -1 ||
	    rcpt_of(v, 1, d->rcpt) == -1))
		return -2;
	d->diag[0] = '\0';
	if (field_get(g, "Diagnostic-Code", v, sizeof(v)) == 0)
		diag_clean(v, d->diag);
	return cls;
}

/* The groups of a delivery-status body to a verdict. */
static enum dsn_verdict
status_groups(const struct body *b, const char *bounce_local, struct dsn *d)
{
	struct dsn delayed = { 0 };
	char v[VALUE_MAX];
	struct body g;
	size_t off = 0;
	int i, cls, any = 0, norcpt = 0, have_delay = 0;

	if (group_next(b, &off, &g) == -1) {
		d->reason = DSN_R_MALFORMED;
		return DSN_IGNORED;
	}
	if (d->tag[0] == '\0' &&
	    field_get(&g, "X-Postfix-Sender", v, sizeof(v)) == 0)
		tag_from(v, bounce_local, d);
	/* No per-message group (not RFC 3464): read it as a recipient's. */
	if (field_get(&g, "Action", v, sizeof(v)) == 0)
		off = (size_t)(g.p - b->p);
	for (i = 0; i < DSN_MAX_RCPTS && group_next(b, &off, &g) == 0; i++) {
		cls = rcpt_group(&g, d);
		if (cls == '5')
			return DSN_FAILED;
		if (cls == -2)
			norcpt = 1;
		if (cls >= 0)
			any = 1;
		if (cls == '4' && !have_delay) {
			delayed = *d;
			have_delay = 1;
		}
	}
	if (have_delay) {
		*d = delayed;
		return DSN_DELAYED;
	}
	d->rcpt[0] = d->status[0] = d->diag[0] = '\0';
	d->reason = any ? DSN_R_NOFAIL : i == 0 || norcpt ? DSN_R_NORCPT :
	    DSN_R_MALFORMED;
	return DSN_IGNORED;
}

static enum dsn_verdict
delivery_status(GMimeObject *report, const char *bounce_local,
    struct dsn *d)
{
	GMimeObject *o;
	GByteArray *a;
	struct body b;
	enum dsn_verdict v;

	if ((o = report_part(report, "message", "delivery-status")) == NULL &&
	    (o = report_part(report, "message",
	    "global-delivery-status")) == NULL) {
		d->reason = DSN_R_NOPART;
		return DSN_IGNORED;
	}
	if ((a = part_bytes(o)) == NULL) {
		d->reason = DSN_R_MALFORMED;
		return DSN_IGNORED;
	}
	enclosed_tag(report, bounce_local, d);
	body_of(a, &b);
	v = status_groups(&b, bounce_local, d);
	g_byte_array_free(a, TRUE);
	return v;
}

/* The enclosed message of a complaint: its To and its Return-Path. */
static void
complaint_enclosed(GMimeObject *report, const char *bounce_local,
    struct dsn *d)
{
	char v[VALUE_MAX], lower[EMAIL_MAX + 1];
	InternetAddressList *to;
	InternetAddress *ia;
	GMimeObject *o;
	GMimeMessage *m;
	const char *addr;

	if ((o = report_part(report, "message", "rfc822")) == NULL ||
	    !GMIME_IS_MESSAGE_PART(o) || (m =
	    g_mime_message_part_get_message(GMIME_MESSAGE_PART(o))) == NULL)
		return;
	if (header_get(GMIME_OBJECT(m), "Return-Path", v, sizeof(v)) == 0)
		tag_from(v, bounce_local, d);
	if (d->rcpt[0] != '\0' || (to = g_mime_message_get_to(m)) == NULL ||
	    internet_address_list_length(to) < 1)
		return;
	ia = internet_address_list_get_address(to, 0);
	if (!INTERNET_ADDRESS_IS_MAILBOX(ia) || (addr =
	    internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia))) ==
	    NULL || strlen(addr) > EMAIL_MAX ||
	    valid_email(addr, d->rcpt, lower) != NULL)
		d->rcpt[0] = '\0';
}

/* The fields of a feedback-report to a verdict. */
static enum dsn_verdict
feedback_fields(const struct body *g, GMimeObject *report,
    const char *bounce_local, struct dsn *d)
{
	char v[VALUE_MAX];
	char *t, *c;

	if (field_get(g, "Feedback-Type", v, sizeof(v)) == -1) {
		d->reason = DSN_R_MALFORMED;
		return DSN_IGNORED;
	}
	t = trim(v);
	if (strcasecmp(t, "abuse") != 0 && strcasecmp(t, "fraud") != 0) {
		d->reason = DSN_R_NOABUSE;
		return DSN_IGNORED;
	}
	for (c = t; *c != '\0'; c++)
		*c = (char)(*c | 0x20);
	(void)snprintf(d->diag, sizeof(d->diag), "%s", t);
	if (field_get(g, "Original-Rcpt-To", v, sizeof(v)) == 0)
		(void)rcpt_of(v, 0, d->rcpt);
	if (field_get(g, "Original-Mail-From", v, sizeof(v)) == 0)
		tag_from(v, bounce_local, d);
	complaint_enclosed(report, bounce_local, d);
	if (d->rcpt[0] == '\0' && d->tag[0] == '\0') {
		d->diag[0] = '\0';
		d->reason = DSN_R_NORCPT;
		return DSN_IGNORED;
	}
	return DSN_COMPLAINT;
}

static enum dsn_verdict
feedback_report(GMimeObject *report, const char *bounce_local,
    struct dsn *d)
{
	GMimeObject *o;
	GByteArray *a;
	struct body b, g;
	size_t off = 0;
	enum dsn_verdict v;

	if ((o = report_part(report, "message", "feedback-report")) == NULL) {
		d->reason = DSN_R_NOPART;
		return DSN_IGNORED;
	}
	if ((a = part_bytes(o)) == NULL) {
		d->reason = DSN_R_MALFORMED;
		return DSN_IGNORED;
	}
	body_of(a, &b);
	if (group_next(&b, &off, &g) == -1) {
		d->reason = DSN_R_MALFORMED;
		v = DSN_IGNORED;
	} else
		v = feedback_fields(&g, report, bounce_local, d);
	g_byte_array_free(a, TRUE);
	return v;
}

/* RFC 3834's Auto-Submitted (other than "no"), or the older X-Autoreply. */
static int
autoreply(GMimeMessage *m)
{
	char v[VALUE_MAX], *s, *semi;

	if (header_get(GMIME_OBJECT(m), "X-Autoreply", v, sizeof(v)) == 0)
		return 1;
	if (header_get(GMIME_OBJECT(m), "Auto-Submitted", v, sizeof(v)) == -1)
		return 0;
	if ((semi = strchr(v, ';')) != NULL)
		*semi = '\0';
	if ((semi = strchr(v, '(')) != NULL)
		*semi = '\0';
	s = trim(v);
	return *s != '\0' && strcasecmp(s, "no") != 0;
}

/* The parsed message m to a verdict. */
static enum dsn_verdict
classify(GMimeMessage *m, const char *bounce_local, struct dsn *d)
{
	GMimeObject *top;
	GMimeContentType *ct;
	const char *rt;

	if ((top = g_mime_message_get_mime_part(m)) == NULL) {
		d->reason = DSN_R_MIME;
		return DSN_IGNORED;
	}
	if (depth_of(top, 0) > DSN_MAX_DEPTH) {
		d->reason = DSN_R_DEEP;
		return DSN_IGNORED;
	}
	ct = g_mime_object_get_content_type(top);
	/* Exim's classic bounce says auto-replied too; it is no report. */
	if (g_mime_object_get_header(GMIME_OBJECT(m),
	    "X-Failed-Recipients") != NULL && !GMIME_IS_MULTIPART(top)) {
		d->reason = DSN_R_NOTDSN;
		return DSN_IGNORED;
	}
	if (!GMIME_IS_MULTIPART(top) ||
	    !g_mime_content_type_is_type(ct, "multipart", "report")) {
		d->reason = autoreply(m) ? DSN_R_AUTO : DSN_R_NOTDSN;
		return DSN_IGNORED;
	}
	if ((rt = g_mime_content_type_get_parameter(ct, "report-type")) ==
	    NULL) {
		d->reason = DSN_R_TYPE;
		return DSN_IGNORED;
	}
	if (g_ascii_strcasecmp(rt, "delivery-status") == 0)
		return delivery_status(top, bounce_local, d);
	if (g_ascii_strcasecmp(rt, "feedback-report") == 0)
		return feedback_report(top, bounce_local, d);
	d->reason = autoreply(m) ? DSN_R_AUTO : DSN_R_TYPE;
	return DSN_IGNORED;
}

/* GMime, set up the first time a message is read. */
static void
init_once(void)
{
	static int inited;

	if (!inited) {
		g_mime_init();
		inited = 1;
	}
}

static enum dsn_verdict
parse(const char *msg, size_t len, const char *bounce_local, struct dsn *d)
{
	GMimeStream *s;
	GMimeParser *p;
	GMimeMessage *m;
	enum dsn_verdict v;

	if (len > DSN_MAX_SIZE) {
		d->reason = DSN_R_LARGE;
		return DSN_IGNORED;
	}
	init_once();
	s = g_mime_stream_mem_new_with_buffer(msg, len);
	p = g_mime_parser_new_with_stream(s);
	g_mime_parser_set_format(p, GMIME_FORMAT_MESSAGE);
	if ((m = g_mime_parser_construct_message(p, NULL)) == NULL) {
		d->reason = DSN_R_MIME;
		v = DSN_IGNORED;
	} else {
		v = classify(m, bounce_local, d);
		g_object_unref(m);
	}
	g_object_unref(p);
	g_object_unref(s);
	return v;
}

enum dsn_verdict
dsn_parse(const char *msg, size_t len, const char *bounce_local,
    struct dsn *out)
{
	memset(out, 0, sizeof(*out));
	out->verdict = parse(msg, len, bounce_local, out);
	if (out->verdict != DSN_IGNORED)
		out->reason = NULL;
	else {
		out->rcpt[0] = out->status[0] = out->diag[0] = '\0';
		out->tag[0] = '\0';
		if (out->reason == NULL)
			out->reason = DSN_R_MALFORMED;
	}
	return out->verdict;
}

int
dsn_delivered_to(const char *msg, size_t len, char out[EMAIL_MAX + 1])
{
	static const char *const names[] = { "Delivered-To", "X-Original-To" };
	GMimeStream *s;
	GMimeParser *p;
	GMimeMessage *m;
	InternetAddressList *l;
	InternetAddress *a;
	const char *v, *addr;
	char lower[EMAIL_MAX + 1];
	size_t i;
	int rc = -1;

	out[0] = '\0';
	if (len > DSN_MAX_SIZE)
		return -1;
	init_once();
	s = g_mime_stream_mem_new_with_buffer(msg, len);
	p = g_mime_parser_new_with_stream(s);
	g_mime_parser_set_format(p, GMIME_FORMAT_MESSAGE);
	if ((m = g_mime_parser_construct_message(p, NULL)) != NULL) {
		for (i = 0; rc == -1 && i < 2; i++) {
			if ((v = g_mime_object_get_header(GMIME_OBJECT(m),
			    names[i])) == NULL ||
			    (l = internet_address_list_parse(NULL, v)) == NULL)
				continue;
			if (internet_address_list_length(l) > 0 &&
			    INTERNET_ADDRESS_IS_MAILBOX(a =
			    internet_address_list_get_address(l, 0)) &&
			    (addr = internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(a))) != NULL &&
			    valid_email(addr, out, lower) == NULL)
				rc = 0;
			g_object_unref(l);
		}
		g_object_unref(m);
	}
	g_object_unref(p);
	g_object_unref(s);
	if (rc == -1)
		out[0] = '\0';
	return rc;
}
