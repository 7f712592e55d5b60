/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/* mail.c: the message bytes, read back the way a mail reader would. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "extern.h"
#include "util.h"
#include "valid.h"
#include "template.h"
#include "mail.h"
#include "unit.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

#define UNSUB_LONG "https://invites.example.com/api/v1/referral-invites/" \
	"opt-out?token=ZnJpZW5kQGV4YW1wbGUubmV0.Qk9ndXNfdG9rZW5fZm9yX3Rlc3" \
	"RzX29ubHlfMTIzNDU2Nzg5"

static struct mail_msg
std_msg(void)
{
	struct mail_msg m = {
		"Acme <invites@acme.example>", "friend@example.net", "Hello",
		"Hi,\nline two\n", "<p>Hi</p>\n", "3f1c@acme.example",
		"https://invites.example/o?token=abc", 1700000000
	};

	return m;
}

/* Every CR is followed by LF and every LF preceded by CR. */
static int
crlf_only(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return 0;
		if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
			return 0;
	}
	return 1;
}

/*
 * Whether every line is at most max octets; a longer line is allowed only
 * when it starts with allow (and is at most 998).
 */
static int
lines_within(const char *p, size_t max, const char *allow)
{
	const char *e;
	size_t n;

	for (; *p != '\0'; p = e + 2) {
		if ((e = strstr(p, "\r\n")) == NULL)
			e = p + strlen(p);
		n = (size_t)(e - p);
		if (n > max && (allow == NULL ||
		    strncmp(p, allow, strlen(allow)) != 0 || n > 998)) {
			fprintf(stderr, "line of %zu: %.*s\n", n, (int)n, p);
			return 0;
		}
		if (*e == '\0')
			break;
	}
	return 1;
}

/* The unfolded value of the first header called name, or NULL. */
static char *
hdr_get(const char *msg, const char *name)
{
	struct buf b = { NULL, 0, 0 };
	const char *p = msg, *end;
	size_t n = strlen(name);

	end = strstr(msg, "\r\n\r\n");
	while (p != NULL && p < end) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			break;
		if ((p = strstr(p, "\r\n")) != NULL)
			p += 2;
	}
	if (p == NULL || p >= end)
		return NULL;
	for (p += n + 1; p < end + 2; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			if (p[2] != ' ' && p[2] != '\t')
				break;
			p++;
			continue;
		}
		if (b.len > 0 || (*p != ' ' && *p != '\t'))
			buf_add(&b, p, 1);
	}
	if (b.p == NULL)
		buf_add(&b, "", 0);
	return b.p;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One encoded-word's payload; NULL unless its text is whole UTF-8. */
static int
ew_payload(struct buf *out, int q, const char *s, size_t n)
{
	unsigned char tmp[128];
	size_t i, o = 0;
	int len;

	if (n >= sizeof(tmp))
		return -1;
	if (!q) {
		if (n % 4 != 0 || (len = EVP_DecodeBlock(tmp,
		    (const unsigned char *)s, (int)n)) < 0)
			return -1;
		o = (size_t)len;
		for (i = n; i > 0 && s[i - 1] == '='; i--)
			o--;
	} else
		for (i = 0; i < n; i++) {
			if (s[i] == '_')
				tmp[o++] = ' ';
			else if (s[i] != '=')
				tmp[o++] = (unsigned char)s[i];
			else if (i + 2 < n && hexval(s[i + 1]) >= 0 &&
			    hexval(s[i + 2]) >= 0) {
				tmp[o++] = (unsigned char)
				    (hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
				i += 2;
			} else
				return -1;
		}
	if (!valid_utf8((const char *)tmp, o))
		return -1;
	return buf_add(out, tmp, o);
}

/*
 * Decode the encoded-words of an unfolded header value; white space
 * between two of them goes.  NULL when a word is longer than 75
 * characters, broken, or ends inside a UTF-8 character.
 */
static char *
ew_decode(const char *v)
{
	struct buf b = { NULL, 0, 0 };
	const char *p = v, *e, *s;
	int prev = 0;

	buf_add(&b, "", 0);
	while (*p != '\0') {
		if (strncmp(p, "=?UTF-8?", 8) == 0 && (p[8] == 'Q' ||
		    p[8] == 'B') && p[9] == '?') {
			if ((e = strstr(p + 10, "?=")) == NULL ||
			    e + 2 - p > 75 ||
			    ew_payload(&b, p[8] == 'Q', p + 10,
			    (size_t)(e - p - 10)) == -1) {
				buf_free(&b);
				return NULL;
			}
			p = e + 2;
			prev = 1;
			continue;
		}
		if (prev && *p == ' ') {
			for (s = p; *s == ' '; s++)
				continue;
			if (strncmp(s, "=?UTF-8?", 8) == 0) {
				p = s;
				continue;
			}
		}
		prev = 0;
		buf_add(&b, p++, 1);
	}
	return b.p;
}

/* The raw (encoded) body of the part of type, pointing into msg. */
static const char *
part_raw(const char *msg, const char *type, size_t *lenp)
{
	char hdr[160], delim[80];
	const char *bnd, *start, *end;
	char *ct;
	size_t n;

	if ((ct = hdr_get(msg, "Content-Type")) == NULL)
		return NULL;
	bnd = strstr(ct, "boundary=\"");
	n = bnd != NULL ? strcspn(bnd + 10, "\"") : 0;
	if (bnd == NULL || n > 70) {
		free(ct);
		return NULL;
	}
	snprintf(delim, sizeof(delim), "\r\n--%.*s", (int)n, bnd + 10);
	free(ct);
	snprintf(hdr, sizeof(hdr), "Content-Type: %s; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n", type);
	if ((start = strstr(msg, hdr)) == NULL)
		return NULL;
	start += strlen(hdr);
	if ((end = strstr(start, delim)) == NULL)
		return NULL;
	*lenp = (size_t)(end - start);
	return start;
}

/* Quoted-printable back to bytes; NULL for a bad escape. */
static char *
qp_decode(const char *s, size_t n)
{
	struct buf b = { NULL, 0, 0 };
	unsigned char c;
	size_t i = 0;

	buf_add(&b, "", 0);
	while (i < n) {
		if (s[i] != '=') {
			buf_add(&b, &s[i++], 1);
			continue;
		}
		if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n')
			i += 3;
		else if (i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			c = (unsigned char)(hexval(s[i + 1]) << 4 |
			    hexval(s[i + 2]));
			buf_add(&b, &c, 1);
			i += 3;
		} else {
			buf_free(&b);
			return NULL;
		}
	}
	return b.p;
}

/* s with every line end (LF, CR, CRLF) as CRLF. */
static char *
crlf_norm(const char *s)
{
	struct buf b = { NULL, 0, 0 };

	buf_add(&b, "", 0);
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n') {
			buf_adds(&b, "\r\n");
			if (s[0] == '\r' && s[1] == '\n')
				s++;
		} else
			buf_add(&b, s, 1);
	}
	return b.p;
}

/* Whether part type of msg decodes to exactly want (line ends CRLF). */
static int
part_is(const char *msg, const char *type, const char *want)
{
	const char *raw;
	char *dec, *norm;
	size_t n;
	int ok;

	if ((raw = part_raw(msg, type, &n)) == NULL)
		return 0;
	dec = qp_decode(raw, n);
	norm = crlf_norm(want);
	ok = dec != NULL && strcmp(dec, norm) == 0;
	free(dec);
	free(norm);
	return ok;
}

static void
test_mail_headers(void)
{
	static const char want[] =
	    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	    "From: Acme <invites@acme.example>\r\n"
	    "To: friend@example.net\r\n"
	    "Subject: Hello\r\n"
	    "Message-ID: <3f1c@acme.example>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "List-Unsubscribe: <https://invites.example/o?token=abc>\r\n"
	    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
	    "Content-Type: multipart/alternative;\r\n"
	    " boundary=\"=_";
	struct mail_msg m = std_msg();
	char *msg;
	size_t len;
	int ok;

	CHECK((msg = mail_build(&m, &len)) != NULL);
	ok = strlen(msg) == len && strncmp(msg, want, sizeof(want) - 1) == 0;
	free(msg);
	CHECK(ok);
}

static void
test_mail_date_epoch(void)
{
	struct mail_msg m = std_msg();
	char *msg;
	size_t len;
	int ok;

	m.date = 0;
	CHECK((msg = mail_build(&m, &len)) != NULL);
	ok = strncmp(msg, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n", 39) == 0;
	free(msg);
	CHECK(ok);
}

static void
test_mail_no_unsub(void)
{
	struct mail_msg m = std_msg();
	char *msg;
	size_t len;
	int ok;

	m.unsub_url = NULL;
	CHECK((msg = mail_build(&m, &len)) != NULL);
	ok = strstr(msg, "List-Unsubscribe") == NULL;
	free(msg);
	CHECK(ok);
}

static void
test_mail_crlf_only(void)
{
	struct mail_msg m = std_msg();
	char *msg;
	size_t len;
	int ok;

	m.text = "unix\nwindows\r\nold mac\rmixed\n\r\n\nend";
	m.html = "<p>\n</p>\r\r\n";
	CHECK((msg = mail_build(&m, &len)) != NULL);
	ok = crlf_only(msg, len) && len >= 2 &&
	    strcmp(msg + len - 2, "\r\n") == 0 &&
	    part_is(msg, "text/plain", m.text) &&
	    part_is(msg, "text/html", m.html);
	free(msg);
	CHECK(ok);
}

/* n copies of unit, then tail, in b (reset first). */
static const char *
repeat(struct buf *b, const char *unit, int n, const char *tail)
{
	b->len = 0;
	buf_add(b, "", 0);
	while (n-- > 0)
		buf_adds(b, unit);
	buf_adds(b, tail);
	return b->p;
}

static void
test_mail_subject_roundtrip(void)
{
	static const char *const fixed[] = {
		"Hello",
		"",
		"Jane hat dich zu Acme eingeladen \xc3\xbc",
		"=?UTF-8?Q?not_an_encoded_word?=",
		"under_score? equals= question?mark \"quotes\" (paren)",
		"A plain ASCII subject that is far too long to fit on one "
		    "header line of seventy-eight octets, so it gets encoded",
		"  leading and trailing spaces  ",
		NULL
	};
	struct buf gen[3] = { { NULL, 0, 0 }, { NULL, 0, 0 }, { NULL, 0, 0 } };
	const char *subjects[16];
	struct mail_msg m = std_msg();
	char *msg, *raw, *dec;
	size_t len;
	int i, n, ok;

	for (n = 0; fixed[n] != NULL; n++)
		subjects[n] = fixed[n];
	/* Polish (2-byte), Japanese (3-byte), emoji (4-byte) text. */
	subjects[n++] = repeat(&gen[0], "\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87 ",
	    12, "Grze\xc5\xbc\xc3\xb3\xc5\x82ka");
	subjects[n++] = repeat(&gen[1], "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	    21, "");
	subjects[n++] = repeat(&gen[2], "\xf0\x9f\x98\x80", 22, " a");
	subjects[n] = NULL;
	for (i = 0, ok = 1; ok && subjects[i] != NULL; i++) {
		m.subject = subjects[i];
		if ((msg = mail_build(&m, &len)) == NULL) {
			ok = 0;
			break;
		}
		raw = hdr_get(msg, "Subject");
		dec = raw != NULL ? ew_decode(raw) : NULL;
		ok = dec != NULL && strcmp(dec, subjects[i]) == 0 &&
		    lines_within(msg, 78, " <https://") &&
		    (strstr(raw, "=?") == NULL || lines_within(strstr(msg,
		    "Subject:"), 76, NULL)) &&
		    (strcmp(subjects[i], "Hello") != 0 ||
		    strcmp(raw, "Hello") == 0);
		if (!ok)
			fprintf(stderr, "subject %d: %s\n", i,
			    raw ? raw : "(null)");
		free(raw);
		free(dec);
		free(msg);
	}
	for (i = 0; i < 3; i++)
		buf_free(&gen[i]);
	CHECK(ok);
}

static void
test_mail_from_forms(void)
{
	static const char *const from[][2] = {
		{ "invites@acme.example", "From: invites@acme.example\r\n" },
		{ "<invites@acme.example>", "From: invites@acme.example\r\n" },
		{ "Acme Invites <a@acme.example>",
		    "From: Acme Invites <a@acme.example>\r\n" },
		{ "Acme, Inc. <a@acme.example>",
		    "From: \"Acme, Inc.\" <a@acme.example>\r\n" },
		{ "\"Acme, Inc.\" <a@acme.example>",
		    "From: \"Acme, Inc.\" <a@acme.example>\r\n" },
		{ "Say \"hi\" <a@acme.example>",
		    "From: \"Say \\\"hi\\\"\" <a@acme.example>\r\n" },
		{ "=?UTF-8?Q?x?= <a@acme.example>",
		    "From: \"=?UTF-8?Q?x?=\" <a@acme.example>\r\n" },
		/* Q or B, whichever is shorter. */
		{ "Hans M\xc3\xbcller <h@acme.example>",
		    "From: =?UTF-8?Q?Hans_M=C3=BCller?= <h@acme.example>\r\n" },
		{ "J\xc3\xbcrgen M\xc3\xbcller <j@acme.example>",
		    "From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= "
		    "<j@acme.example>\r\n" },
		/* The address goes to the next line when it does not fit. */
		{ "Jos\xc3\xa9 Garc\xc3\xad" "a de la Pe\xc3\xb1" "a y "
		    "Compa\xc3\xb1\xc3\xad" "a <j@acme.example>",
		    "From: =?UTF-8?B?Sm9zw6kgR2FyY8OtYSBkZSBsYSBQZcOxYSB5IEN"
		    "vbXBhw7HDrWE=?=\r\n <j@acme.example>\r\n" },
		{ NULL, NULL }
	};
	struct mail_msg m = std_msg();
	char *msg;
	size_t len;
	int i, ok;

	for (i = 0; from[i][0] != NULL; i++) {
		m.from = from[i][0];
		CHECK((msg = mail_build(&m, &len)) != NULL);
		ok = strstr(msg, from[i][1]) != NULL;
		if (!ok)
			fprintf(stderr, "from %d: %.80s\n", i,
			    strstr(msg, "From:"));
		free(msg);
		CHECK(ok);
	}
}

static void
test_mail_from_long_name(void)
{
	static const char name[] = "\xc5\x81\xc3\xb3" "d\xc5\xba Invites "
	    "\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87 \xc5\xbc\xc3\xb3\xc5\x82\xc4\x87 "
	    "Gr\xc3\xbc\xc3\x9f" "e aus M\xc3\xbcnchen und \xc3\x9c" "berall";
	struct mail_msg m = std_msg();
	char from[256], *msg, *raw, *dec;
	size_t len;
	int ok;

	snprintf(from, sizeof(from), "%s <invites@a-rather-long-domain-"
	    "name.example>", name);
	m.from = from;
	CHECK((msg = mail_build(&m, &len)) != NULL);
	raw = hdr_get(msg, "From");
	dec = raw != NULL ? ew_decode(raw) : NULL;
	ok = dec != NULL && strncmp(dec, name, strlen(name)) == 0 &&
	    strcmp(dec + strlen(name),
	    " <invites@a-rather-long-domain-name.example>") == 0 &&
	    lines_within(msg, 78, " <https://");
	free(raw);
	free(dec);
	free(msg);
	CHECK(ok);
}

static void
test_mail_refuses_injection(void)
{
#define F(f) offsetof(struct mail_msg, f)
	static const struct {
		size_t		 off;
		const char	*value;
	} bad[] = {
		{ F(subject), "Hi\r\nBcc: victim@example.org" },
		{ F(subject), "Hi\n" },
		{ F(subject), "Hi\rthere" },
		{ F(subject), "bell\a" },
		{ F(subject), "del\x7f" },
		{ F(subject), "tab\there" },
		{ F(subject), "bad \xff utf-8" },
		{ F(subject), NULL },
		{ F(from), "A <a@acme.example>\r\nBcc: v@example.org" },
		{ F(from), "A\tB <a@acme.example>" },
		{ F(from), "A <a@acme.example" },
		{ F(from), "A <a b@acme.example>" },
		{ F(from), "A \xff <a@acme.example>" },
		{ F(to), "f@example.net\r\nBcc: v@example.org" },
		{ F(to), "Friend <f@example.net>" },
		{ F(to), "f@example.net>" },
		{ F(to), "f@example.net\n" },
		{ F(message_id), "a@b\r\nBcc: v@example.org" },
		{ F(message_id), "a@b> <c@d" },
		{ F(message_id), "a b@c" },
		{ F(message_id), "" },
		{ F(unsub_url), "https://x/\r\nBcc: v@example.org" },
		{ F(unsub_url), "https://x/> <https://evil/" },
		{ F(unsub_url), "https://x/ y" },
		{ F(text), "bad \xc3 utf-8" },
		{ F(text), NULL },
		{ F(html), "\xed\xa0\x80 surrogate" },
	};
#undef F
	struct mail_msg m;
	char *msg;
	size_t i, len;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = std_msg();
		memcpy((char *)&m + bad[i].off, &bad[i].value,
		    sizeof(bad[i].value));
		if ((msg = mail_build(&m, &len)) != NULL) {
			fprintf(stderr, "case %zu accepted\n", i);
			free(msg);
		}
		CHECK(msg == NULL);
	}
	m = std_msg();
	CHECK(mail_build(&m, NULL) == NULL);
	CHECK(mail_build(NULL, &len) == NULL);
}

static void
test_mail_qp_roundtrip(void)
{
	struct buf text = { NULL, 0, 0 };
	struct mail_msg m = std_msg();
	const char *raw, *p;
	char *msg;
	size_t len, n;
	int i, ok;

	for (i = 0; i < 300; i++)
		buf_add(&text, i % 77 == 76 ? "=" : "a", 1);
	buf_adds(&text, "\na=b and =3D\ntrailing spaces   \ntrailing tab\t\n"
	    ".starts with a dot\n..two\n\n\tindented\r\n"
	    "Gr\xc3\xbc\xc3\x9f" "e aus Z\xc3\xbcrich \xe2\x80\x94 "
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80\n"
	    "==========================================================="
	    "=======================\n"
	    "exactly seventy-six characters on this line, which QP leaves "
	    "as one line, ok\n"
	    "seventy-seven characters on this line, which QP has to break "
	    "with a soft one.\n"
	    "ends without a line end \xc3\xa9");
	m.text = text.p;
	m.html = "<p style=\"a:b\">caf\xc3\xa9 &amp; cr\xc3\xa8me</p>\n \n";
	msg = mail_build(&m, &len);
	ok = msg != NULL && part_is(msg, "text/plain", m.text) &&
	    part_is(msg, "text/html", m.html);
	/* No encoded line is over 76 or ends in white space. */
	raw = ok ? part_raw(msg, "text/plain", &n) : NULL;
	for (p = raw; ok && p < raw + n; p += 2) {
		const char *e = strstr(p, "\r\n");

		if (e == NULL || e > raw + n)
			e = raw + n;
		if (e - p > 76 || (e > p && (e[-1] == ' ' || e[-1] == '\t')) ||
		    (e > p && p[0] == '.'))
			ok = 0;
		p = e;
	}
	ok = ok && strstr(msg, "exactly seventy-six characters on this line, "
	    "which QP leaves as one line, ok\r\n") != NULL &&
	    strstr(msg, "seventy-seven characters on this line, which QP has "
	    "to break with a soft one.\r\n") == NULL;
	free(msg);
	buf_free(&text);
	CHECK(ok);
}

static void
test_mail_boundary_random(void)
{
	struct mail_msg m = std_msg();
	char *a, *b, *ba, *bb;
	size_t la, lb;
	int ok;

	CHECK((a = mail_build(&m, &la)) != NULL);
	b = mail_build(&m, &lb);
	ba = hdr_get(a, "Content-Type");
	bb = b != NULL ? hdr_get(b, "Content-Type") : NULL;
	ok = ba != NULL && bb != NULL && strcmp(ba, bb) != 0 &&
	    strncmp(ba, "multipart/alternative; boundary=\"=_", 35) == 0 &&
	    strlen(ba) == 35 + 32 + 1;
	free(a);
	free(b);
	free(ba);
	free(bb);
	CHECK(ok);
}

static void
test_mail_long_unsub_url(void)
{
	struct mail_msg m = std_msg();
	char *msg, *v;
	size_t len;
	int ok;

	m.unsub_url = UNSUB_LONG;
	CHECK((msg = mail_build(&m, &len)) != NULL);
	v = hdr_get(msg, "List-Unsubscribe");
	ok = v != NULL && strcmp(v, "<" UNSUB_LONG ">") == 0 &&
	    strstr(msg, "List-Unsubscribe:\r\n <" UNSUB_LONG ">\r\n") != NULL &&
	    lines_within(msg, 78, " <https://");
	free(v);
	free(msg);
	CHECK(ok);
}

static void
test_mail_every_language(void)
{
	static const char *const langs[] = {
		"en", "de", "fr", "es", "it", "pt", "pt-BR", "nl", "pl", NULL
	};
	struct tmpl_vars v = {
		"\xc3\x9cnited Acme",
		"Zo\xc3\xab \xc5\x81ukasiewicz-M\xc3\xbcller",
		"zoe@example.org", "friend@example.net",
		"https://app.example/accept?token=abc&lang=de", UNSUB_LONG
	};
	struct mail_msg m = std_msg();
	char err[256], *subj, *text, *html, *msg, *raw, *dec;
	size_t len;
	int i, ok;

	CHECK(tmpl_load(TOP_SRCDIR "/templates", NULL, err, sizeof(err)) == 0);
	for (i = 0; langs[i] != NULL; i++) {
		subj = tmpl_render(langs[i], TMPL_SUBJECT, &v);
		text = tmpl_render(langs[i], TMPL_TEXT, &v);
		html = tmpl_render(langs[i], TMPL_HTML, &v);
		m.subject = subj;
		m.text = text;
		m.html = html;
		m.unsub_url = UNSUB_LONG;
		msg = subj && text && html ? mail_build(&m, &len) : NULL;
		raw = msg != NULL ? hdr_get(msg, "Subject") : NULL;
		dec = raw != NULL ? ew_decode(raw) : NULL;
		ok = dec != NULL && strcmp(dec, subj) == 0 &&
		    crlf_only(msg, len) &&
		    lines_within(msg, 78, " <https://") &&
		    part_is(msg, "text/plain", text) &&
		    part_is(msg, "text/html", html);
		if (!ok)
			fprintf(stderr, "language %s\n", langs[i]);
		free(subj);
		free(text);
		free(html);
		free(msg);
		free(raw);
		free(dec);
		if (!ok)
			tmpl_free();
		CHECK(ok);
	}
	tmpl_free();
}

static void
test_mail_addr_of(void)
{
	char out[EMAIL_MAX + 1];

	CHECK(mail_addr_of("Name <a@b.example>", out) == 0);
	CHECK_STR(out, "a@b.example");
	CHECK(mail_addr_of("a@b.example", out) == 0);
	CHECK_STR(out, "a@b.example");
	CHECK(mail_addr_of("  a@b.example  ", out) == 0);
	CHECK_STR(out, "a@b.example");
	CHECK(mail_addr_of("<a@b.example>", out) == 0);
	CHECK_STR(out, "a@b.example");
	CHECK(mail_addr_of("\"x <y@z>\" <a@b.example>", out) == 0);
	CHECK_STR(out, "a@b.example");
	CHECK(mail_addr_of("Invites <invites@localhost>", out) == 0);
	CHECK_STR(out, "invites@localhost");
	CHECK(mail_addr_of("Name <>", out) == -1);
	CHECK(mail_addr_of("Name <a@b.example", out) == -1);
	CHECK(mail_addr_of("a b@c.example", out) == -1);
	CHECK(mail_addr_of("a@@b.example", out) == -1);
	CHECK(mail_addr_of("@b.example", out) == -1);
	CHECK(mail_addr_of("a@", out) == -1);
	CHECK(mail_addr_of("a@b.example\r\n", out) == -1);
	CHECK(mail_addr_of("N <a@b.example>\nBcc: c@d.example", out) == -1);
	CHECK(mail_addr_of("", out) == -1);
	CHECK(mail_addr_of(NULL, out) == -1);
}

const struct unit_test mail_tests[] = {
	{ "mail_headers", test_mail_headers },
	{ "mail_date_epoch", test_mail_date_epoch },
	{ "mail_no_unsub", test_mail_no_unsub },
	{ "mail_crlf_only", test_mail_crlf_only },
	{ "mail_subject_roundtrip", test_mail_subject_roundtrip },
	{ "mail_from_forms", test_mail_from_forms },
	{ "mail_from_long_name", test_mail_from_long_name },
	{ "mail_refuses_injection", test_mail_refuses_injection },
	{ "mail_qp_roundtrip", test_mail_qp_roundtrip },
	{ "mail_boundary_random", test_mail_boundary_random },
	{ "mail_long_unsub_url", test_mail_long_unsub_url },
	{ "mail_every_language", test_mail_every_language },
	{ "mail_addr_of", test_mail_addr_of },
	{ NULL, NULL }
};
