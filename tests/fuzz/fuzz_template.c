/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * libFuzzer harness for template.c and the mail built from its output.
 * The input is rendered as a template of every part, then used as every
 * variable's value, then as the subject and bodies of a mail.  Beyond "no
 * crash": values come out HTML-escaped or free of controls as the part
 * wants, are never read as templates, and the mail has CRLF line ends
 * with header lines of at most 78 octets and body lines of at most 76.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "valid.h"
#include "template.h"
#include "mail.h"

#define ASSERT(c) do { if (!(c)) __builtin_trap(); } while (0)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Six known variables, one unknown, one inside braces: 7 substitutions. */
static const char tmpl[] = "{{app_name}}|{{inviter_name}}|"
    "{{inviter_email}}|{{invitee_email}}|{{accept_url}}|{{optout_url}}|"
    "{{unknown}}|{{{app_name}}}";
#define TMPL_SUBST	7
#define TMPL_VARLEN	(sizeof("{{app_name}}{{inviter_name}}" \
	"{{inviter_email}}{{invitee_email}}{{accept_url}}{{optout_url}}" \
	"{{app_name}}") - 1)

static void
check_html(const char *s)
{
	for (; *s != '\0'; s++) {
		ASSERT(strchr("<>\"'", *s) == NULL);
		if (*s == '&')
			ASSERT(strncmp(s, "&amp;", 5) == 0 ||
			    strncmp(s, "&lt;", 4) == 0 ||
			    strncmp(s, "&gt;", 4) == 0 ||
			    strncmp(s, "&quot;", 6) == 0 ||
			    strncmp(s, "&#39;", 5) == 0);
	}
}

static void
check_line(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	for (; *u != '\0'; u++) {
		ASSERT(*u >= 0x20 && *u != 0x7f);
		ASSERT(!(u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f));
	}
}

/* CRLF only; header lines <= 78, body lines (QP) <= 76. */
static void
check_mail(const char *p, size_t n)
{
	size_t i, col = 0, max = 78;

	for (i = 0; i < n; i++) {
		ASSERT(p[i] != '\n' || (i > 0 && p[i - 1] == '\r'));
		ASSERT(p[i] != '\r' || (i + 1 < n && p[i + 1] == '\n'));
		if (p[i] == '\r') {
			if (col == 0 && max == 78)
				max = 76;
			col = 0;
			i++;
			continue;
		}
		ASSERT(++col <= max);
	}
}

static void
fuzz_as_template(const char *data, size_t size)
{
	static const struct tmpl_vars v = {
		"A&B", "<x>", "\"q\"", "{{app_name}}", "\r\n", NULL
	};
	char *out;
	int p;

	for (p = 0; p < TMPL__MAX; p++) {
		out = tmpl_render_string(data, size, p, &v);
		ASSERT(out != NULL);
		free(out);
	}
}

static void
fuzz_as_values(const char *val, size_t size)
{
	struct tmpl_vars v = { val, val, val, val, val, val };
	struct mail_msg m;
	char *out[TMPL__MAX], *msg;
	size_t n, vlen = strlen(val);
	int p;

	for (p = 0; p < TMPL__MAX; p++) {
		out[p] = tmpl_render_string(tmpl, sizeof(tmpl) - 1, p, &v);
		ASSERT(out[p] != NULL);
	}
	ASSERT(strlen(out[TMPL_TEXT]) ==
	    sizeof(tmpl) - 1 - TMPL_VARLEN + TMPL_SUBST * vlen);
	check_line(out[TMPL_SUBJECT]);
	check_html(out[TMPL_HTML]);
	check_html(out[TMPL_OPTOUT]);

	m.from = "Fuzz <fuzz@example.org>";
	m.to = "friend@example.net";
	m.subject = out[TMPL_SUBJECT];
	m.text = val;
	m.html = out[TMPL_HTML];
	m.message_id = "id@example.org";
	m.unsub_url = "https://example.org/opt-out?token=x";
	m.date = (time_t)size * 86400;
	if ((msg = mail_build(&m, &n)) != NULL) {
		ASSERT(valid_utf8(val, vlen));
		check_mail(msg, n);
		free(msg);
	} else
		ASSERT(!valid_utf8(val, vlen) || !valid_utf8(m.subject,
		    strlen(m.subject)));
	for (p = 0; p < TMPL__MAX; p++)
		free(out[p]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *val;

	fuzz_as_template((const char *)data, size);
	if ((val = malloc(size + 1)) == NULL)
		return 0;
	memcpy(val, data, size);
	val[size] = '\0';
	fuzz_as_values(val, size);
	free(val);
	return 0;
}
