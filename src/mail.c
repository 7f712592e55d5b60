/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The invite mail as bytes, ready for libesmtp.  libesmtp checks nothing,
 * so every header is built here from checked parts: CRLF line ends,
 * RFC 2047 encoded-words for non-ASCII header text, multipart/alternative
 * with quoted-printable UTF-8 parts.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "extern.h"
#include "util.h"
#include "valid.h"
#include "mail.h"

#define HDR_LINE	78	/* RFC 5322 2.1.1 */
#define EW_LINE		76	/* RFC 2047 2: a line with encoded-words */
#define EW_MAX		75	/* RFC 2047 2: one encoded-word */
#define EW_FRAME	12	/* "=?UTF-8?Q?" and "?=" */
#define EW_CHAR_MAX	12	/* one 4-byte character, Q-encoded */
#define QP_LINE		76	/* RFC 2045 6.7 (5) */

/* Whether s holds a C0 control character or DEL (CR and LF included). */
static int
mail_has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* n > 0 bytes of printable ASCII, no space, none of the bytes in bad. */
static int
mail_token(const char *s, size_t n, const char *bad)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 ||
		    (unsigned char)s[i] >= 0x7f || strchr(bad, s[i]) != NULL)
			return 0;
	return 1;
}

/*
 * An address fit for a header and an SMTP envelope: one '@' with text on
 * both sides, no white space, no brackets or other specials.
 */
static int
mail_addr_ok(const char *s, size_t n)
{
	const char *at;

	if (n > EMAIL_MAX || !mail_token(s, n, "<>()[]\\,;:\""))
		return 0;
	at = memchr(s, '@', n);
	return at != NULL && at != s && at != s + n - 1 &&
	    memchr(at + 1, '@', n - (size_t)(at - s) - 1) == NULL;
}

/* The '<' that opens the angle address of from, or NULL for a bare one. */
static const char *
mail_angle(const char *from, const char **endp)
{
	const char *e, *lt;

	e = from + strlen(from);
	while (e > from && e[-1] == ' ')
		e--;
	*endp = e;
	if (e == from || e[-1] != '>')
		return NULL;
	for (lt = e - 1; lt > from && lt[-1] != '<'; lt--)
		continue;
	return lt > from ? lt - 1 : NULL;
}

/*
 * Copy the address of "Name <addr>" or "addr" into out.  Returns 0, or -1
 * when from holds no single plain address (or a control character).
 */
int
mail_addr_of(const char *from, char out[EMAIL_MAX + 1])
{
	const char *a, *e, *lt;
	size_t n;

	if (from == NULL || mail_has_ctl(from))
		return -1;
	if ((lt = mail_angle(from, &e)) != NULL) {
		a = lt + 1;
		e--;
	} else
		for (a = from; *a == ' '; a++)
			continue;
	if (a > e)
		return -1;
	n = (size_t)(e - a);
	if (!mail_addr_ok(a, n))
		return -1;
	memcpy(out, a, n);
	out[n] = '\0';
	return 0;
}

/* The display name of from, trimmed and with one level of quoting undone. */
static int
mail_name(const char *from, struct buf *name)
{
	const char *s = from, *e, *lt;

	if ((lt = mail_angle(from, &e)) == NULL)
		return buf_add(name, "", 0);
	e = lt;
	while (s < e && *s == ' ')
		s++;
	while (e > s && e[-1] == ' ')
		e--;
	if (e - s < 2 || *s != '"' || e[-1] != '"')
		return buf_add(name, s, (size_t)(e - s));
	for (s++, e--; s < e; s++) {
		if (*s == '\\' && s + 1 < e)
			s++;
		if (buf_add(name, s, 1) == -1)
			return -1;
	}
	return buf_add(name, "", 0);
}

static size_t
utf8_seqlen(unsigned char c)
{
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	if (c >= 0xc0)
		return 2;
	return 1;
}

/* RFC 2047 5 (3): the characters a Q-word may carry as themselves. */
static int
ew_q_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+' ||
	    c == '-' || c == '/';
}

/* The length of n bytes of s encoded with Q (q) or B. */
static size_t
ew_cost(const unsigned char *s, size_t n, int q)
{
	size_t i, len = 0;

	if (!q)
		return (n + 2) / 3 * 4;
	for (i = 0; i < n; i++)
		len += ew_q_safe(s[i]) || s[i] == ' ' ? 1 : 3;
	return len;
}

static int
ew_word(struct buf *b, const unsigned char *s, size_t n, int q)
{
	static const char hex[] = "0123456789ABCDEF";
	char out[EW_MAX + 1];
	size_t i, o = 0;

	if (!q) {
		EVP_EncodeBlock((unsigned char *)out, s, (int)n);
		return buf_printf(b, "=?UTF-8?B?%s?=", out);
	}
	for (i = 0; i < n; i++) {
		if (ew_q_safe(s[i]))
			out[o++] = (char)s[i];
		else if (s[i] == ' ')
			out[o++] = '_';
		else {
			out[o++] = '=';
			out[o++] = hex[s[i] >> 4];
			out[o++] = hex[s[i] & 0xf];
		}
	}
	out[o] = '\0';
	return buf_printf(b, "=?UTF-8?Q?%s?=", out);
}

/*
 * Append str as encoded-words from column *col (updated): Q or B,
 * whichever is shorter; each word at most 75 characters, lines at most
 * 76, words split only between UTF-8 characters and folded with CRLF SP
 * (white space between encoded-words is not part of the text).
 */
static int
ew_add(struct buf *b, const char *str, size_t *col)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0, j, c, room;
	int q;

	q = ew_cost(s, n, 1) <= ew_cost(s, n, 0);
	while (i < n) {
		if (*col + EW_FRAME + EW_CHAR_MAX > EW_LINE) {
			if (buf_adds(b, "\r\n ") == -1)
				return -1;
			*col = 1;
		}
		room = EW_LINE - *col < EW_MAX ? EW_LINE - *col : EW_MAX;
		room -= EW_FRAME;
		for (j = i; j < n; j += c) {
			if ((c = utf8_seqlen(s[j])) > n - j)
				c = n - j;
			if (ew_cost(s + i, j + c - i, q) > room)
				break;
		}
		if (j == i)
			return -1;
		if (ew_word(b, s + i, j - i, q) == -1)
			return -1;
		*col += EW_FRAME + ew_cost(s + i, j - i, q);
		if ((i = j) < n && buf_adds(b, "\r\n ") == -1)
			return -1;
		if (i < n)
			*col = 1;
	}
	return 0;
}

/* Text that can stand in a header as it is: printable ASCII, no "=?". */
static int
mail_plain(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e ||
		    (s[0] == '=' && s[1] == '?'))
			return 0;
	return 1;
}

static int
mail_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * The display name as RFC 5322 phrase into ph: atoms as they are, other
 * ASCII as a quoted-string.  Returns 1 when the name needs encoded-words
 * instead (non-ASCII), 0 when done, -1 on error.
 */
static int
mail_phrase(const char *name, struct buf *ph)
{
	const char *s;
	int atoms;

	for (s = name; *s != '\0'; s++)
		if ((unsigned char)*s > 0x7e)
			return 1;
	atoms = strstr(name, "=?") == NULL;
	for (s = name; *s != '\0'; s++)
		if (!mail_atext((unsigned char)*s) && !(*s == ' ' &&
		    s != name && s[1] != '\0' && s[1] != ' '))
			atoms = 0;
	if (atoms)
		return buf_adds(ph, name);
	if (buf_adds(ph, "\"") == -1)
		return -1;
	for (s = name; *s != '\0'; s++)
		if (((*s == '"' || *s == '\\') && buf_adds(ph, "\\") == -1) ||
		    buf_add(ph, s, 1) == -1)
			return -1;
	return buf_adds(ph, "\"");
}

static int
mail_from(struct buf *b, const char *from)
{
	struct buf name = { NULL, 0, 0 }, ph = { NULL, 0, 0 };
	char addr[EMAIL_MAX + 1];
	size_t col = sizeof("From: ") - 1, alen;
	int rc = -1, enc;

	if (mail_addr_of(from, addr) == -1 || mail_name(from, &name) == -1)
		goto out;
	alen = strlen(addr);
	if (name.len == 0) {
		rc = buf_printf(b, "From: %s\r\n", addr);
		goto out;
	}
	if ((enc = mail_phrase(name.p, &ph)) == -1)
		goto out;
	if (enc == 0 && col + ph.len + alen + 3 <= HDR_LINE) {
		rc = buf_printf(b, "From: %s <%s>\r\n", ph.p, addr);
		goto out;
	}
	if (buf_adds(b, "From: ") == -1 || ew_add(b, name.p, &col) == -1)
		goto out;
	rc = buf_printf(b, "%s<%s>\r\n", col + alen + 3 > HDR_LINE ?
	    "\r\n " : " ", addr);
out:
	buf_free(&name);
	buf_free(&ph);
	return rc;
}

/* Readers drop white space around a header value: such text is encoded. */
static int
mail_subject(struct buf *b, const char *s)
{
	size_t col = sizeof("Subject: ") - 1, n = strlen(s);

	if (mail_plain(s) && col + n <= HDR_LINE &&
	    (n == 0 || (s[0] != ' ' && s[n - 1] != ' ')))
		return buf_printf(b, "Subject: %s\r\n", s);
	if (buf_adds(b, "Subject: ") == -1 || ew_add(b, s, &col) == -1)
		return -1;
	return buf_adds(b, "\r\n");
}

/* name: <v>, folded after the colon when the line would be too long. */
static int
mail_angle_hdr(struct buf *b, const char *name, const char *v)
{
	if (strlen(name) + strlen(v) + 4 <= HDR_LINE)
		return buf_printf(b, "%s: <%s>\r\n", name, v);
	return buf_printf(b, "%s:\r\n <%s>\r\n", name, v);
}

static int
mail_date(struct buf *b, time_t t)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 1900)
		return -1;
	return buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * One QP token for c: itself, or =XX for '=', non-ASCII, controls, white
 * space at the end of a line and '.' at the start of one.
 */
static size_t
qp_token(unsigned char c, int eol, int bol, char tok[3])
{
	static const char hex[] = "0123456789ABCDEF";

	if (((c >= 33 && c <= 126 && c != '=') ||
	    ((c == ' ' || c == '\t') && !eol)) && !(c == '.' && bol)) {
		tok[0] = (char)c;
		return 1;
	}
	tok[0] = '=';
	tok[1] = hex[c >> 4];
	tok[2] = hex[c & 0xf];
	return 3;
}

/* One line of text (no line end) as QP lines of at most 76 characters. */
static int
qp_line(struct buf *b, const unsigned char *s, size_t n)
{
	char tok[3];
	size_t i, col = 0, k, lim;

	for (i = 0; i < n; i++) {
		k = qp_token(s[i], i + 1 == n, col == 0, tok);
		/* Room for the '=' of a soft break, unless this is the end. */
		lim = i + 1 == n ? QP_LINE : QP_LINE - 1;
		if (col + k > lim) {
			if (buf_adds(b, "=\r\n") == -1)
				return -1;
			col = 0;
			k = qp_token(s[i], i + 1 == n, 1, tok);
		}
		if (buf_add(b, tok, k) == -1)
			return -1;
		col += k;
	}
	return 0;
}

/* text with its line ends (LF, CRLF or a lone CR) as CRLF, encoded. */
static int
qp_add(struct buf *b, const char *text)
{
	const char *p = text, *e;

	for (;;) {
		e = p + strcspn(p, "\r\n");
		if (qp_line(b, (const unsigned char *)p, (size_t)(e - p)) == -1)
			return -1;
		if (*e == '\0')
			return 0;
		if (buf_adds(b, "\r\n") == -1)
			return -1;
		if (e[0] == '\r' && e[1] == '\n')
			e++;
		p = e + 1;
	}
}

static int
mail_part(struct buf *b, const char *bnd, int first, const char *type,
    const char *body)
{
	if (buf_printf(b, "%s--%s\r\n"
	    "Content-Type: text/%s; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n", first ? "" : "\r\n", bnd, type) == -1)
		return -1;
	return qp_add(b, body);
}

/* Whether every part of m may go into the message as mail_build puts it. */
static int
mail_ok(const struct mail_msg *m)
{
	if (m == NULL || m->from == NULL || m->to == NULL ||
	    m->subject == NULL || m->text == NULL || m->html == NULL ||
	    m->message_id == NULL)
		return 0;
	if (mail_has_ctl(m->from) || mail_has_ctl(m->to) ||
	    mail_has_ctl(m->subject) || mail_has_ctl(m->message_id) ||
	    (m->unsub_url != NULL && mail_has_ctl(m->unsub_url)))
		return 0;
	if (!valid_utf8(m->from, strlen(m->from)) ||
	    !valid_utf8(m->subject, strlen(m->subject)) ||
	    !valid_utf8(m->text, strlen(m->text)) ||
	    !valid_utf8(m->html, strlen(m->html)))
		return 0;
	return mail_addr_ok(m->to, strlen(m->to)) &&
	    mail_token(m->message_id, strlen(m->message_id), "<>") &&
	    (m->unsub_url == NULL ||
	    mail_token(m->unsub_url, strlen(m->unsub_url), "<>"));
}

static int
mail_headers(struct buf *b, const struct mail_msg *m, const char *bnd)
{
	if (mail_date(b, m->date) == -1 || mail_from(b, m->from) == -1 ||
	    buf_printf(b, "To: %s\r\n", m->to) == -1 ||
	    mail_subject(b, m->subject) == -1 ||
	    mail_angle_hdr(b, "Message-ID", m->message_id) == -1 ||
	    buf_adds(b, "MIME-Version: 1.0\r\n") == -1)
		return -1;
	if (m->unsub_url != NULL &&
	    (mail_angle_hdr(b, "List-Unsubscribe", m->unsub_url) == -1 ||
	    buf_adds(b, "List-Unsubscribe-Post: "
	    "List-Unsubscribe=One-Click\r\n") == -1))
		return -1;
	return buf_printf(b, "Content-Type: multipart/alternative;\r\n"
	    " boundary=\"%s\"\r\n\r\n", bnd);
}

/*
 * Build the whole message for m: headers (Date, From, To, Subject,
 * Message-ID, MIME-Version, List-Unsubscribe and List-Unsubscribe-Post
 * when m->unsub_url is set, Content-Type) and a multipart/alternative body
 * of m->text and m->html.  Refuses (NULL) a header value with a control
 * character, text that is not UTF-8, a From or To that is not a plain
 * address, a Message-ID or URL with white space or angle brackets.
 * Returns malloc'd bytes (NUL-terminated too) and their length in *lenp.
 * Header lines stay within 78 octets except a Message-ID or URL longer
 * than that, which goes on a line of its own.
 */
char *
mail_build(const struct mail_msg *m, size_t *lenp)
{
	struct buf b = { NULL, 0, 0 };
	unsigned char rnd[16];
	char bnd[2 + 2 * sizeof(rnd) + 1];

	if (lenp == NULL || !mail_ok(m))
		return NULL;
	/* QP never has "=_", so this boundary cannot occur in a part. */
	util_random(rnd, sizeof(rnd));
	bnd[0] = '=';
	bnd[1] = '_';
	util_hex(rnd, sizeof(rnd), bnd + 2);
	if (mail_headers(&b, m, bnd) == -1 ||
	    mail_part(&b, bnd, 1, "plain", m->text) == -1 ||
	    mail_part(&b, bnd, 0, "html", m->html) == -1 ||
	    buf_printf(&b, "\r\n--%s--\r\n", bnd) == -1) {
		buf_free(&b);
		return NULL;
	}
	*lenp = b.len;
	return b.p;
}
