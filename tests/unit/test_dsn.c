/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Unit tests: delivery reports and complaints (dsn.c) on the corpus in
 * tests/unit/dsn/, written for the project in the shapes Postfix, Exim,
 * Exchange, Gmail and feedback loops send, and on messages built here
 * (too large, too deep, diagnostics to clean).  Each gets its exact
 * verdict, reason, recipient, status, diagnostic and tag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "token.h"
#include "dsn.h"
#include "unit.h"

#define T1	"0190a1b2c3d47e5f8a9b0c1d2e3f4a5b0426dffffec5fe5f"
#define T2	"0190a1b2c3d47e5f8a9b0c1d2e3f4a5cf67793f4022236ee"
#define ID1	"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
#define ID2	"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"

/* The server secret the corpus's tags were made with (token_bounce). */
static const unsigned char s1[32] = { 1, 2, 3 }, s2[32] = { 9, 8, 7 };

/* tests/unit/dsn/name, malloc'd, its length in *len; NULL on error. */
static char *
slurp(const char *name, size_t *len)
{
	char path[1024], *buf = NULL;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/tests/unit/dsn/%s", TOP_SRCDIR, name);
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) !=
	    NULL) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

/* Parse a corpus file with bounce_local "bounces". */
static int
parse_file(const char *name, struct dsn *d)
{
	char *m;
	size_t len;

	if ((m = slurp(name, &len)) == NULL) {
		fprintf(stderr, "cannot read %s\n", name);
		return -1;
	}
	dsn_parse(m, len, "bounces", d);
	free(m);
	return 0;
}

#define CHECK_DSN(d, v, r, rc, st, dg, tg) do {				\
	CHECK((d)->verdict == (v));					\
	CHECK_STR((d)->reason, (r));					\
	CHECK_STR((d)->rcpt, (rc));					\
	CHECK_STR((d)->status, (st));					\
	CHECK_STR((d)->diag, (dg));					\
	CHECK_STR((d)->tag, (tg));					\
} while (0)

#define CHECK_IGNORED(d, r)	CHECK_DSN(d, DSN_IGNORED, r, "", "", "", "")

static void
postfix_failed(void)
{
	struct dsn d;
	char id[UUID_LEN + 1];

	CHECK(parse_file("postfix-failed.eml", &d) == 0);
	/* Original-Recipient wins over Final-Recipient; the tag comes from
	 * X-Postfix-Sender, the headers part has no Return-Path. */
	CHECK_DSN(&d, DSN_FAILED, NULL, "Nobody@example.net", "5.1.1",
	    "550 5.1.1 <nobody@example.net>: Recipient address rejected: "
	    "User unknown in virtual mailbox table", T1);
	CHECK(token_bounce_check(s1, d.tag, id) == 0);
	CHECK_STR(id, ID1);
	CHECK(token_bounce_check(s2, d.tag, id) == -1);
	CHECK_STR(dsn_verdict_name(d.verdict), "failed");
}

/* Without bounce_local no tag is looked for; the verdict stays. */
static void
postfix_no_local(void)
{
	struct dsn d;
	char *m;
	size_t len;

	CHECK((m = slurp("postfix-failed.eml", &len)) != NULL);
	CHECK(dsn_parse(m, len, NULL, &d) == DSN_FAILED);
	free(m);
	CHECK_STR(d.tag, "");
	CHECK_STR(d.rcpt, "Nobody@example.net");
}

static void
postfix_delayed(void)
{
	struct dsn d;
	char id[UUID_LEN + 1];

	CHECK(parse_file("postfix-delayed.eml", &d) == 0);
	CHECK_DSN(&d, DSN_DELAYED, NULL, "slow@example.net", "4.4.7",
	    "delivery temporarily suspended: connect to "
	    "mx.example.net[192.0.2.26]:25: Connection timed out", T2);
	CHECK(token_bounce_check(s1, d.tag, id) == 0);
	CHECK_STR(id, ID2);
	CHECK_STR(dsn_verdict_name(d.verdict), "delayed");
}

/* Exim's classic bounce is prose: never read as a failure. */
static void
exim_classic(void)
{
	struct dsn d;

	CHECK(parse_file("exim-classic.eml", &d) == 0);
	CHECK_IGNORED(&d, DSN_R_NOTDSN);
	CHECK_STR(dsn_verdict_name(d.verdict), "ignored");
}

static void
exim_dsn(void)
{
	struct dsn d;

	CHECK(parse_file("exim-dsn.eml", &d) == 0);
	CHECK_DSN(&d, DSN_FAILED, NULL, "gone@example.net", "5.0.0",
	    "550 Unrouteable address", T1);
}

/*
 * CRLF, a folded diagnostic cut at DSN_DIAG_MAX, and a tag in upper case
 * in the returned headers' Return-Path.
 */
static void
exchange_ndr(void)
{
	struct dsn d;

	CHECK(parse_file("exchange-ndr.eml", &d) == 0);
	CHECK_DSN(&d, DSN_FAILED, NULL, "Ghost@contoso.example", "5.1.10",
	    "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found "
	    "by SMTP address lookup "
	    "[BN8PR11MB3602.namprd11.prod.outlook.example "
	    "2026-12-07T08:02:33.123Z 08DBF1C2D3E4F5A6] "
	    "[Hostname=BN8PR11MB3602.namprd11.prod.outlook.example] "
	    "[ServerIp=2603:10b6:408:8c::20] [LocalIp=2603:10b6:408:8c::21] "
	    "[RemoteI", T1);
	CHECK(strlen(d.diag) == DSN_DIAG_MAX);
}

static void
gmail_failed(void)
{
	struct dsn d;

	CHECK(parse_file("gmail-failed.eml", &d) == 0);
	CHECK_DSN(&d, DSN_FAILED, NULL, "no.such.user@gmail.example", "5.1.1",
	    "550-5.1.1 The email account that you tried to reach does not "
	    "exist. Please try 550-5.1.1 double-checking the recipient's "
	    "email address for typos or 550-5.1.1 unnecessary spaces. For "
	    "more information, go to 550 5.1.1 "
	    "https://support.google.example/mail/?p=NoSuchUser "
	    "a1-20020a17090 - gsmtp", T1);
}

/* Several recipients: the first failed one, not the delayed before it. */
static void
multi_rcpt(void)
{
	struct dsn d;

	CHECK(parse_file("multi-rcpt.eml", &d) == 0);
	CHECK_DSN(&d, DSN_FAILED, NULL, "first@example.net", "5.2.1",
	    "550 5.2.1 mailbox disabled", T2);
}

static void
arf_abuse(void)
{
	struct dsn d;

	CHECK(parse_file("arf-abuse.eml", &d) == 0);
	CHECK_DSN(&d, DSN_COMPLAINT, NULL, "complainer@isp.example", "",
	    "abuse", T1);
	CHECK_STR(dsn_verdict_name(d.verdict), "complaint");
}

/* A feedback loop that redacts the recipient: the envelope's tag names it. */
static void
arf_redacted(void)
{
	struct dsn d;

	CHECK(parse_file("arf-redacted.eml", &d) == 0);
	CHECK_DSN(&d, DSN_COMPLAINT, NULL, "", "", "fraud", T2);
}

static void
arf_virus(void)
{
	struct dsn d;

	CHECK(parse_file("arf-virus.eml", &d) == 0);
	CHECK_IGNORED(&d, DSN_R_NOABUSE);
}

static void
autoreply(void)
{
	struct dsn d;

	CHECK(parse_file("autoreply.eml", &d) == 0);
	CHECK_IGNORED(&d, DSN_R_AUTO);
}

/* Status-like lines in a plain message do not make it a report. */
static void
spam(void)
{
	struct dsn d;

	CHECK(parse_file("spam.eml", &d) == 0);
	CHECK_IGNORED(&d, DSN_R_NOTDSN);
}

static void
malformed_no_action(void)
{
	struct dsn d;

	CHECK(parse_file("malformed-no-action.eml", &d) == 0);
	CHECK_IGNORED(&d, DSN_R_MALFORMED);
}

static void
no_recipient(void)
{
	struct dsn d;

	CHECK(parse_file("no-recipient.eml", &d) == 0);
	CHECK_IGNORED(&d, DSN_R_NORCPT);
}

/* A forged tag is returned as found: token_bounce_check refuses it. */
static void
forged_tag(void)
{
	struct dsn d;
	char id[UUID_LEN + 1];

	CHECK(parse_file("forged-tag.eml", &d) == 0);
	CHECK_DSN(&d, DSN_FAILED, NULL, "target@example.net", "5.1.1",
	    "550 5.1.1 no such user",
	    "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b0426dffffec5fe5e");
	CHECK(token_bounce_check(s1, d.tag, id) == -1);
}

/* A tag under another local part ("returns", "bounces.old") is not ours. */
static void
other_local(void)
{
	struct dsn d;

	CHECK(parse_file("other-local.eml", &d) == 0);
	CHECK_DSN(&d, DSN_FAILED, NULL, "target@example.net", "5.1.1", "", "");
}

/* A report built here around one delivery-status body. */
static char *
report(const char *ctype, const char *status)
{
	static const char fmt[] =
	    "From: MAILER-DAEMON@relay.example.net\n"
	    "To: bounces@example.org\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: %s; boundary=\"b\"\n"
	    "\n"
	    "--b\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "Delivery failed.\n"
	    "--b\n"
	    "Content-Type: message/delivery-status\n"
	    "\n"
	    "Reporting-MTA: dns; relay.example.net\n"
	    "\n"
	    "%s\n"
	    "--b--\n";
	size_t n = sizeof(fmt) + strlen(ctype) + strlen(status);
	char *m;

	if ((m = malloc(n)) != NULL)
		snprintf(m, n, fmt, ctype, status);
	return m;
}

static void
parse_report(const char *ctype, const char *status, struct dsn *d)
{
	char *m;

	if ((m = report(ctype, status)) == NULL)
		abort();
	dsn_parse(m, strlen(m), "bounces", d);
	free(m);
}

#define DS	"multipart/report; report-type=delivery-status"

/* One line, controls and white space as one space, bad bytes '?'. */
static void
diag_cleaned(void)
{
	struct dsn d;

	parse_report(DS, "Final-Recipient: rfc822; a@example.net\n"
	    "Action: failed\nStatus: 5.1.1\n"
	    "Diagnostic-Code: smtp;  550 caf\xc3\xa9\x01\x7f \xff\t ok"
	    "\xc2\x85" "end\xed\xa0\x80\n \x1b[31m red  \n", &d);
	CHECK_DSN(&d, DSN_FAILED, NULL, "a@example.net", "5.1.1",
	    "550 caf\xc3\xa9 ? ok end??? [31m red", "");
}

/* The cut never splits a character. */
static void
diag_cut_utf8(void)
{
	struct dsn d;
	char status[600], want[DSN_DIAG_MAX + 1];
	int n;

	memset(want, 'a', DSN_DIAG_MAX - 1);
	want[DSN_DIAG_MAX - 1] = '\0';
	n = snprintf(status, sizeof(status), "Final-Recipient: rfc822; "
	    "a@example.net\nAction: failed\nStatus: 5.1.1\n"
	    "Diagnostic-Code: smtp; %s\xc3\xa9tail\n", want);
	CHECK(n > 0 && (size_t)n < sizeof(status));
	parse_report(DS, status, &d);
	CHECK(d.verdict == DSN_FAILED);
	CHECK_STR(d.diag, want);
}

/*
 * Status and Action shapes: 4.x.x on failed is a delay, delayed needs
 * 4.x.x, a code of another shape makes the group malformed.
 */
static void
status_shapes(void)
{
	struct dsn d;

	parse_report(DS, "Final-Recipient: rfc822; a@example.net\n"
	    "Action: failed\nStatus: 4.2.2\n", &d);
	CHECK_DSN(&d, DSN_DELAYED, NULL, "a@example.net", "4.2.2", "", "");
	parse_report(DS, "Final-Recipient: rfc822; a@example.net\n"
	    "Action: FAILED\nStatus: 5.1234.1\n", &d);
	CHECK_IGNORED(&d, DSN_R_MALFORMED);
	parse_report(DS, "Final-Recipient: rfc822; a@example.net\n"
	    "Action: failed\nStatus: 3.1.1\n", &d);
	CHECK_IGNORED(&d, DSN_R_MALFORMED);
	parse_report(DS, "Final-Recipient: rfc822; a@example.net\n"
	    "Action: failed\nStatus: 2.0.0\n", &d);
	CHECK_IGNORED(&d, DSN_R_NOFAIL);
	parse_report(DS, "Final-Recipient: rfc822; a@example.net\n"
	    "Action: delivered\nStatus: 2.0.0\n", &d);
	CHECK_IGNORED(&d, DSN_R_NOFAIL);
	parse_report(DS, "Final-Recipient: rfc822; a@example.net\n"
	    "Action: delayed\nStatus: 5.1.1\n", &d);
	CHECK_IGNORED(&d, DSN_R_MALFORMED);
	parse_report(DS, "Final-Recipient: rfc822; a@example.net\n"
	    "Action: delayed\nStatus: 2.0.0\n", &d);
	CHECK_IGNORED(&d, DSN_R_MALFORMED);
	parse_report(DS, "Final-Recipient: rfc822; a@example.net\n"
	    "Action: exploded\nStatus: 5.1.1\n", &d);
	CHECK_IGNORED(&d, DSN_R_MALFORMED);
	parse_report(DS, "Final-Recipient: rfc822; a@example.net\n"
	    "action :  Failed  \nSTATUS: 5.7.1\n", &d);
	CHECK_DSN(&d, DSN_FAILED, NULL, "a@example.net", "5.7.1", "", "");
}

/* A failure without a usable recipient: "no recipient", never "failed". */
static void
recipient_shapes(void)
{
	struct dsn d;

	parse_report(DS, "Final-Recipient: x400; /C=ZZ/\n"
	    "Action: failed\nStatus: 5.1.1\n", &d);
	CHECK_IGNORED(&d, DSN_R_NORCPT);
	parse_report(DS, "Final-Recipient: rfc822; not an address\n"
	    "Action: failed\nStatus: 5.1.1\n", &d);
	CHECK_IGNORED(&d, DSN_R_NORCPT);
	parse_report(DS, "Action: failed\nStatus: 5.1.1\n", &d);
	CHECK_IGNORED(&d, DSN_R_NORCPT);
	/* An unusable Original-Recipient falls back on Final-Recipient. */
	parse_report(DS, "Original-Recipient: rfc822; @@\n"
	    "Final-Recipient: RFC822; <b@example.net>\n"
	    "Action: failed\nStatus: 5.1.1\n", &d);
	CHECK_DSN(&d, DSN_FAILED, NULL, "b@example.net", "5.1.1", "", "");
}

static void
report_types(void)
{
	struct dsn d;

	parse_report("multipart/report; report-type=disposition-notification",
	    "Final-Recipient: rfc822; a@example.net\n"
	    "Action: failed\nStatus: 5.1.1\n", &d);
	CHECK_IGNORED(&d, DSN_R_TYPE);
	parse_report("multipart/report", "Final-Recipient: rfc822; "
	    "a@example.net\nAction: failed\nStatus: 5.1.1\n", &d);
	CHECK_IGNORED(&d, DSN_R_TYPE);
	parse_report("multipart/mixed; report-type=delivery-status",
	    "Final-Recipient: rfc822; a@example.net\n"
	    "Action: failed\nStatus: 5.1.1\n", &d);
	CHECK_IGNORED(&d, DSN_R_NOTDSN);
	parse_report("multipart/report; report-type=feedback-report",
	    "Feedback-Type: abuse\n", &d);
	CHECK_IGNORED(&d, DSN_R_NOPART);
}

/* The status part is decoded first (base64 here) and may use CRLF. */
static void
status_base64(void)
{
	static const char m[] =
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    " boundary=\"b\"\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    /* "Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822;
	     * c@example.net\r\nAction: failed\r\nStatus: 5.1.2\r\n" */
	    "UmVwb3J0aW5nLU1UQTogZG5zOyB4DQoNCkZpbmFsLVJlY2lwaWVudDogcmZj\r\n"
	    "ODIyOyBjQGV4YW1wbGUubmV0DQpBY3Rpb246IGZhaWxlZA0KU3RhdHVzOiA1\r\n"
	    "LjEuMg0K\r\n"
	    "--b--\r\n";
	struct dsn d;

	CHECK(dsn_parse(m, sizeof(m) - 1, "bounces", &d) == DSN_FAILED);
	CHECK_DSN(&d, DSN_FAILED, NULL, "c@example.net", "5.1.2", "", "");
}

static void
odd_inputs(void)
{
	struct dsn d;

	CHECK(dsn_parse("", 0, "bounces", &d) == DSN_IGNORED);
	CHECK(d.reason != NULL);
	CHECK(dsn_parse("\0\0\0", 3, "bounces", &d) == DSN_IGNORED);
	CHECK(d.reason != NULL);
	CHECK(dsn_parse("Content-Type: multipart/report; report-type="
	    "delivery-status; boundary=x\n\n--x\nContent-Type: message/"
	    "delivery-status\n\n", 90, "bounces", &d) == DSN_IGNORED);
	CHECK(d.reason != NULL);
}

/*
 * postfix-failed.eml with pad bytes of text in its notification, or
 * with its notification part nested in levels of multipart/mixed.
 */
static char *
postfix_grown(size_t pad, int levels, size_t *len)
{
	static const char mark[] = "This is the mail system at host "
	    "mx.example.org.\n";
	char *m, *out, *at, *p;
	size_t n, i, extra;
	int k;

	if ((m = slurp("postfix-failed.eml", &n)) == NULL ||
	    (at = strstr(m, "Content-Description: Notification\n")) == NULL ||
	    strstr(at, mark) == NULL)
		abort();
	extra = pad + (size_t)levels * 80 + 1;
	if ((out = malloc(n + extra)) == NULL)
		abort();
	p = out;
	memcpy(p, m, (size_t)(at - m));
	p += at - m;
	for (k = 0; k < levels; k++)
		p += sprintf(p, "Content-Type: multipart/mixed; "
		    "boundary=\"n%d\"\n\n--n%d\n", k, k);
	at = strstr(at, mark) + sizeof(mark) - 1;
	memcpy(p, strstr(m, "Content-Description: Notification\n"),
	    (size_t)(at - strstr(m, "Content-Description: Notification\n")));
	p += at - strstr(m, "Content-Description: Notification\n");
	for (i = 0; i < pad; i++)
		*p++ = (i + 1) % 76 == 0 ? '\n' : 'x';
	for (k = levels - 1; k >= 0; k--)
		p += sprintf(p, "\n--n%d--\n", k);
	memcpy(p, at, n - (size_t)(at - m));
	p += n - (size_t)(at - m);
	*len = (size_t)(p - out);
	free(m);
	return out;
}

/* Over DSN_MAX_SIZE: not parsed; just under it: parsed as usual. */
static void
too_large(void)
{
	struct dsn d;
	char *m;
	size_t len;

	m = postfix_grown(DSN_MAX_SIZE, 0, &len);
	CHECK(len > DSN_MAX_SIZE);
	dsn_parse(m, len, "bounces", &d);
	free(m);
	CHECK_IGNORED(&d, DSN_R_LARGE);
	m = postfix_grown(DSN_MAX_SIZE - 4096, 0, &len);
	CHECK(len <= DSN_MAX_SIZE);
	dsn_parse(m, len, "bounces", &d);
	free(m);
	CHECK(d.verdict == DSN_FAILED);
	CHECK_STR(d.rcpt, "Nobody@example.net");
	CHECK_STR(d.tag, T1);
}

/*
 * The notification sits one level below the report: 7 more levels put
 * its text at DSN_MAX_DEPTH (read), 8 one past it (too deep), and
 * thousands are refused the same way, without a crash.
 */
static void
too_deep(void)
{
	struct dsn d;
	char *m;
	size_t len;

	m = postfix_grown(0, DSN_MAX_DEPTH - 1, &len);
	dsn_parse(m, len, "bounces", &d);
	free(m);
	CHECK(d.verdict == DSN_FAILED);
	CHECK_STR(d.tag, T1);
	m = postfix_grown(0, DSN_MAX_DEPTH, &len);
	dsn_parse(m, len, "bounces", &d);
	free(m);
	CHECK_IGNORED(&d, DSN_R_DEEP);
	m = postfix_grown(0, 20000, &len);
	dsn_parse(m, len, "bounces", &d);
	free(m);
	CHECK_IGNORED(&d, DSN_R_DEEP);
}

static void
tag_of(void)
{
	char tag[BOUNCE_TAG_LEN + 1];
	char up[] = "BOUNCES+0190A1B2C3D47E5F8A9B0C1D2E3F4A5B0426DFFFFEC5FE5F"
	    "@EXAMPLE.ORG";

	CHECK(dsn_tag_of("bounces+" T1 "@example.org", "bounces", tag) == 0);
	CHECK_STR(tag, T1);
	CHECK(dsn_tag_of(up, "bounces", tag) == 0);
	CHECK_STR(tag, T1);
	CHECK(dsn_tag_of("bounces+" T1 "@example.org", "Bounces", tag) == 0);
	CHECK_STR(tag, T1);
	CHECK(dsn_tag_of("bounce+" T1 "@example.org", "bounces", tag) == -1);
	CHECK_STR(tag, "");
	CHECK(dsn_tag_of("xbounces+" T1 "@example.org", "bounces", tag) == -1);
	CHECK(dsn_tag_of("bounces+" T1 "@example.org", "bounce", tag) == -1);
	CHECK(dsn_tag_of("bounces-" T1 "@example.org", "bounces", tag) == -1);
	CHECK(dsn_tag_of("bounces+" T1 "0@example.org", "bounces", tag) == -1);
	CHECK(dsn_tag_of("bounces+0190a1b2c3d47e5f8a9b0c1d2e3f4a5b0426dffffec5"
	    "fe5@example.org", "bounces", tag) == -1);
	CHECK(dsn_tag_of("bounces+0190a1b2c3d47e5f8a9b0c1d2e3f4a5b0426dffffec5"
	    "fe5g@example.org", "bounces", tag) == -1);
	CHECK(dsn_tag_of("bounces+" T1 "@", "bounces", tag) == -1);
	CHECK(dsn_tag_of("bounces+" T1, "bounces", tag) == -1);
	CHECK(dsn_tag_of("bounces+" T1 "@a@b", "bounces", tag) == -1);
	CHECK(dsn_tag_of("bounces+" T1 "@example.org", "", tag) == -1);
	CHECK(dsn_tag_of("bounces+" T1 "@example.org", NULL, tag) == -1);
	CHECK(dsn_tag_of(NULL, "bounces", tag) == -1);
	CHECK_STR(tag, "");
}

const struct unit_test dsn_tests[] = {
	{ "dsn_postfix_failed", postfix_failed },
	{ "dsn_postfix_no_local", postfix_no_local },
	{ "dsn_postfix_delayed", postfix_delayed },
	{ "dsn_exim_classic", exim_classic },
	{ "dsn_exim_dsn", exim_dsn },
	{ "dsn_exchange_ndr", exchange_ndr },
	{ "dsn_gmail_failed", gmail_failed },
	{ "dsn_multi_rcpt", multi_rcpt },
	{ "dsn_arf_abuse", arf_abuse },
	{ "dsn_arf_redacted", arf_redacted },
	{ "dsn_arf_virus", arf_virus },
	{ "dsn_autoreply", autoreply },
	{ "dsn_spam", spam },
	{ "dsn_malformed_no_action", malformed_no_action },
	{ "dsn_no_recipient", no_recipient },
	{ "dsn_forged_tag", forged_tag },
	{ "dsn_other_local", other_local },
	{ "dsn_diag_cleaned", diag_cleaned },
	{ "dsn_diag_cut_utf8", diag_cut_utf8 },
	{ "dsn_status_shapes", status_shapes },
	{ "dsn_recipient_shapes", recipient_shapes },
	{ "dsn_report_types", report_types },
	{ "dsn_status_base64", status_base64 },
	{ "dsn_odd_inputs", odd_inputs },
	{ "dsn_too_large", too_large },
	{ "dsn_too_deep", too_deep },
	{ "dsn_tag_of", tag_of },
	{ NULL, NULL }
};
