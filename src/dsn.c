/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Delivery reports (RFC 3464) and complaints (RFC 5965) to a verdict.
 * GMime parses the MIME structure here; the status fields inside a
 * report's body are read by dsn_field.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "extern.h"
#include "util.h"
#include "valid.h"
#include "token.h"
#include "dsn.h"
#include "dsn_int.h"

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
	dsn_append(out, outsz, &used, h, strlen(h));
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
			dsn_tag_from(v, bounce_local, d);
		return;
	}
	if ((o = report_part(report, "text", "rfc822-headers")) == NULL ||
	    (a = part_bytes(o)) == NULL)
		return;
	body_of(a, &b);
	if (dsn_group_next(&b, &off, &g) == 0 &&
	    dsn_field_get(&g, "Return-Path", v, sizeof(v)) == 0)
		dsn_tag_from(v, bounce_local, d);
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

	if (dsn_field_get(g, "Action", action, sizeof(action)) == -1 ||
	    dsn_field_get(g, "Status", v, sizeof(v)) == -1 ||
	    (cls = dsn_status_of(v, d->status)) == 0)
		return -1;
	if ((cls = action_class(util_trim(action), cls)) <= 0)
		return cls;
	if ((dsn_field_get(g, "Original-Recipient", v, sizeof(v)) == -1 ||
	    dsn_rcpt_of(v, 1, d->rcpt) == -1) &&
	    (dsn_field_get(g, "Final-Recipient", v, sizeof(v)) == -1 ||
	    dsn_rcpt_of(v, 1, d->rcpt) == -1))
		return -2;
	d->diag[0] = '\0';
	if (dsn_field_get(g, "Diagnostic-Code", v, sizeof(v)) == 0)
		dsn_diag_clean(v, d->diag);
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

	if (dsn_group_next(b, &off, &g) == -1) {
		d->reason = DSN_R_MALFORMED;
		return DSN_IGNORED;
	}
	if (d->tag[0] == '\0' &&
	    dsn_field_get(&g, "X-Postfix-Sender", v, sizeof(v)) == 0)
		dsn_tag_from(v, bounce_local, d);
	/* No per-message group (not RFC 3464): read it as a recipient's. */
	if (dsn_field_get(&g, "Action", v, sizeof(v)) == 0)
		off = (size_t)(g.p - b->p);
	for (i = 0; i < DSN_MAX_RCPTS && dsn_group_next(b, &off, &g) == 0; i++) {
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
		dsn_tag_from(v, bounce_local, d);
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

	if (dsn_field_get(g, "Feedback-Type", v, sizeof(v)) == -1) {
		d->reason = DSN_R_MALFORMED;
		return DSN_IGNORED;
	}
	t = util_trim(v);
	if (strcasecmp(t, "abuse") != 0 && strcasecmp(t, "fraud") != 0) {
		d->reason = DSN_R_NOABUSE;
		return DSN_IGNORED;
	}
	for (c = t; *c != '\0'; c++)
		*c = (char)(*c | 0x20);
	(void)snprintf(d->diag, sizeof(d->diag), "%s", t);
	if (dsn_field_get(g, "Original-Rcpt-To", v, sizeof(v)) == 0)
		(void)dsn_rcpt_of(v, 0, d->rcpt);
	if (dsn_field_get(g, "Original-Mail-From", v, sizeof(v)) == 0)
		dsn_tag_from(v, bounce_local, d);
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
	if (dsn_group_next(&b, &off, &g) == -1) {
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
	s = util_trim(v);
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
