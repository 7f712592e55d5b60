/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/* Unit tests: the invite body parser and the JSON string writer. */
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "valid.h"
#include "json.h"
#include "unit.h"

static enum json_err
parse(const char *s, struct invite_body *b, const char **what)
{
	return json_invite_body(s, strlen(s), b, what);
}

static void
body_ok(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("{\"email\":\"a@b.co\",\"language\":\"de\"}", &b,
	    &what) == JSON_OK);
	CHECK_STR(b.email, "a@b.co");
	CHECK_STR(b.language, "de");
	json_invite_body_free(&b);
}

static void
body_unknown_member(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("{\"email\":\"a@b.co\",\"language\":\"de\",\"x\":\"1\"}",
	    &b, &what) == JSON_EUNKNOWN);
	CHECK_STR(json_strerror(JSON_EUNKNOWN, what),
	    "Unexpected member in request body: x");
	CHECK(b.email == NULL);
}

static void
body_case_sensitive(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("{\"Email\":\"a@b.co\",\"language\":\"de\"}", &b,
	    &what) == JSON_EUNKNOWN);
}

static void
body_duplicate(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("{\"email\":\"a@b.co\",\"email\":\"c@d.co\","
	    "\"language\":\"de\"}", &b, &what) == JSON_EDUP);
	CHECK_STR(json_strerror(JSON_EDUP, what),
	    "Duplicate member in request body: email");
}

static void
body_missing(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("{\"email\":\"a@b.co\"}", &b, &what) == JSON_EMISSING);
	CHECK_STR(json_strerror(JSON_EMISSING, what), "language is required");
}

static void
body_type(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("{\"email\":12345678901234567890,\"language\":\"de\"}",
	    &b, &what) == JSON_ETYPE);
	CHECK_STR(json_strerror(JSON_ETYPE, what), "email must be a string");
	CHECK(parse("{\"email\":null,\"language\":\"de\"}", &b, &what) ==
	    JSON_ETYPE);
}

static void
body_not_object(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("[1,2]", &b, &what) == JSON_ENOTOBJ);
	CHECK(parse("\"x\"", &b, &what) == JSON_ENOTOBJ);
}

static void
body_depth(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("{\"email\":[[[[1]]]]}", &b, &what) == JSON_EDEPTH);
	/* Brackets inside strings do not count. */
	CHECK(parse("{\"email\":\"[[[[[[\",\"language\":\"de\"}", &b,
	    &what) == JSON_OK);
	json_invite_body_free(&b);
}

static void
body_syntax(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("{\"email\":\"a@b.co\",", &b, &what) == JSON_ESYNTAX);
	CHECK(parse("", &b, &what) == JSON_ESYNTAX);
	CHECK(parse("{} {}", &b, &what) == JSON_ESYNTAX);
	CHECK(parse("\xef\xbb\xbf{}", &b, &what) == JSON_ESYNTAX);
	/* A raw control character inside a string. */
	CHECK(parse("{\"email\":\"a\tb\",\"language\":\"de\"}", &b, &what) ==
	    JSON_ESYNTAX);
}

static void
body_nul(void)
{
	struct invite_body b;
	const char *what;
	static const char raw[] = "{\"email\":\"a@b.co\0x\",\"language\":\"de\"}";

	CHECK(json_invite_body(raw, sizeof(raw) - 1, &b, &what) == JSON_ENUL);
	CHECK(parse("{\"email\":\"a@b.co\\u0000evil\",\"language\":\"de\"}",
	    &b, &what) == JSON_ENUL);
	/* An escaped backslash followed by u0000 is not a NUL. */
	CHECK(parse("{\"email\":\"a\\\\u0000\",\"language\":\"de\"}", &b,
	    &what) == JSON_OK);
	json_invite_body_free(&b);
}

static void
body_utf8(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("{\"email\":\"\xc0\xaf\",\"language\":\"de\"}", &b,
	    &what) == JSON_EUTF8);
	CHECK(parse("{\"email\":\"\xed\xa0\x80\",\"language\":\"de\"}", &b,
	    &what) == JSON_EUTF8);
}

static void
body_bad_unicode_escape(void)
{
	struct invite_body b;
	const char *what;

	/* cJSON would read \uZZZZ as U+0000 and cut the value there. */
	CHECK(parse("{\"email\":\"a@b.co\\uZZZZx\",\"language\":\"de\"}",
	    &b, &what) == JSON_ESYNTAX);
	CHECK(parse("{\"email\":\"a\\u00\",\"language\":\"de\"}", &b,
	    &what) == JSON_ESYNTAX);
	CHECK(parse("{\"email\":\"\\u0041@b.co\",\"language\":\"de\"}",
	    &b, &what) == JSON_OK);
	CHECK_STR(b.email, "A@b.co");
	json_invite_body_free(&b);
}

static void
body_control_outside_strings(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("\x01{\"email\":\"a@b.co\",\"language\":\"de\"}", &b,
	    &what) == JSON_ESYNTAX);
	CHECK(parse("\t{\"email\":\"a@b.co\",\"language\":\"de\"}\r\n",
	    &b, &what) == JSON_OK);
	json_invite_body_free(&b);
}

static void
member_name_cut_on_a_character(void)
{
	struct invite_body b;
	const char *what;
	const char *msg;

	/* 31 ASCII bytes then a two-byte character: cut before it. */
	CHECK(parse("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\":\"x\"}", &b,
	    &what) == JSON_EUNKNOWN);
	msg = json_strerror(JSON_EUNKNOWN, what);
	CHECK(valid_utf8(msg, strlen(msg)));
	CHECK_STR(msg, "Unexpected member in request body: "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
}

static void
string_escape(void)
{
	struct buf b = { 0 };

	CHECK(json_add_string(&b, "a\"b\\c\n\x01\xe2\x80\xa8") == 0);
	CHECK_STR(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\\u2028\"");
	buf_free(&b);
}

static void
token_body(void)
{
	char *tok;
	const char *what;

	CHECK(json_token_body("{\"token\":\"abc\"}", 15, &tok, &what) ==
	    JSON_OK);
	CHECK_STR(tok, "abc");
	free(tok);
	CHECK(json_token_body("{}", 2, &tok, &what) == JSON_EMISSING);
}

/* ------------------------------------------- the optional POST members */

#define BASE	"{\"email\":\"a@b.co\",\"language\":\"de\","

/* body is refused with e, naming what. */
static int
refused(const char *body, enum json_err e, const char *msg)
{
	struct invite_body b;
	const char *what;
	int ok;

	ok = parse(body, &b, &what) == e &&
	    strcmp(json_strerror(e, what), msg) == 0 && b.email == NULL &&
	    b.metadata == NULL && b.redirect_url == NULL;
	json_invite_body_free(&b);
	return ok;
}

static void
options_absent(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse("{\"email\":\"a@b.co\",\"language\":\"de\"}", &b,
	    &what) == JSON_OK);
	CHECK(b.expires_days == 0 && b.metadata == NULL &&
	    b.redirect_url == NULL);
	json_invite_body_free(&b);
}

static void
options_good(void)
{
	struct invite_body b;
	const char *what;

	CHECK(parse(BASE "\"expiresInDays\":30,\"redirectUrl\":\"https://x/\","
	    "\"metadata\":{ \"k\" : \"v\\u00e9\\n\", \"z\":\"\"}}", &b,
	    &what) == JSON_OK);
	CHECK(b.expires_days == 30);
	CHECK_STR(b.redirect_url, "https://x/");
	CHECK_STR(b.metadata, "{\"k\":\"v\xc3\xa9\\u000a\",\"z\":\"\"}");
	json_invite_body_free(&b);
	CHECK(parse(BASE "\"expiresInDays\":1.0,\"metadata\":{}}", &b,
	    &what) == JSON_OK);
	CHECK(b.expires_days == 1);
	CHECK_STR(b.metadata, "{}");
	json_invite_body_free(&b);
}

static void
days_bad(void)
{
	static const char *const bad[] = { "0", "31", "-1", "1.5", "\"7\"",
	    "null", "true", "[]", "{}", "1e9", "2e-1" };
	const char *msg = "expiresInDays must be a whole number from 1 to 30";
	char body[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), BASE "\"expiresInDays\":%s}",
		    bad[i]);
		CHECK(refused(body, JSON_EDAYS, msg));
	}
}

static void
metadata_bad_type(void)
{
	CHECK(refused(BASE "\"metadata\":\"x\"}", JSON_EMETA,
	    "metadata must be a JSON object"));
	CHECK(refused(BASE "\"metadata\":[]}", JSON_EMETA,
	    "metadata must be a JSON object"));
	CHECK(refused(BASE "\"metadata\":null}", JSON_EMETA,
	    "metadata must be a JSON object"));
	CHECK(refused(BASE "\"metadata\":{\"a\":1}}", JSON_EMETA_VALUE,
	    "metadata values must be strings"));
	CHECK(refused(BASE "\"metadata\":{\"a\":{\"b\":\"c\"}}}",
	    JSON_EMETA_VALUE, "metadata values must be strings"));
	CHECK(refused(BASE "\"metadata\":{\"a\":\"1\",\"a\":\"2\"}}",
	    JSON_EMETA_DUP, "metadata has a duplicate member"));
}

static void
metadata_limits(void)
{
	struct buf b = { 0 };
	struct invite_body ib;
	const char *what;
	int i;

	/* 16 members pass, 17 do not. */
	buf_adds(&b, BASE "\"metadata\":{");
	for (i = 0; i < 16; i++)
		buf_printf(&b, "%s\"k%d\":\"v\"", i ? "," : "", i);
	buf_adds(&b, "}}");
	CHECK(parse(b.p, &ib, &what) == JSON_OK);
	json_invite_body_free(&ib);
	b.len -= 2;
	buf_adds(&b, ",\"k16\":\"v\"}}");
	CHECK(refused(b.p, JSON_EMETA_MANY,
	    "metadata may have at most 16 members"));
	buf_free(&b);
	/* {"k":"..."}: 8 bytes around the value; 1024 in all pass. */
	buf_adds(&b, BASE "\"metadata\":{\"k\":\"");
	for (i = 0; i < 1016; i++)
		buf_adds(&b, "x");
	buf_adds(&b, "\"}}");
	CHECK(parse(b.p, &ib, &what) == JSON_OK);
	CHECK(strlen(ib.metadata) == 1024);
	json_invite_body_free(&ib);
	b.len -= 3;
	buf_adds(&b, "x\"}}");
	CHECK(refused(b.p, JSON_EMETA_SIZE,
	    "metadata must be at most 1024 bytes"));
	buf_free(&b);
}

static void
options_once_and_typed(void)
{
	CHECK(refused(BASE "\"metadata\":{},\"metadata\":{}}", JSON_EDUP,
	    "Duplicate member in request body: metadata"));
	CHECK(refused(BASE "\"redirectUrl\":1}", JSON_ETYPE,
	    "redirectUrl must be a string"));
	CHECK(refused(BASE "\"expiresInDay\":1}", JSON_EUNKNOWN,
	    "Unexpected member in request body: expiresInDay"));
}

static void
empty_body(void)
{
	const char *what;

	CHECK(json_empty_body("{}", 2, &what) == JSON_OK);
	CHECK(json_empty_body(" { } ", 5, &what) == JSON_OK);
	CHECK(json_empty_body("{\"a\":\"b\"}", 9, &what) == JSON_EUNKNOWN);
	CHECK_STR(json_strerror(JSON_EUNKNOWN, what),
	    "Unexpected member in request body: a");
	CHECK(json_empty_body("[]", 2, &what) == JSON_ENOTOBJ);
}

const struct unit_test json_tests[] = {
	{ "json_body_ok", body_ok },
	{ "json_body_unknown_member", body_unknown_member },
	{ "json_body_case_sensitive", body_case_sensitive },
	{ "json_body_duplicate", body_duplicate },
	{ "json_body_missing", body_missing },
	{ "json_body_type", body_type },
	{ "json_body_not_object", body_not_object },
	{ "json_body_depth", body_depth },
	{ "json_body_syntax", body_syntax },
	{ "json_body_nul", body_nul },
	{ "json_body_utf8", body_utf8 },
	{ "json_body_bad_unicode_escape", body_bad_unicode_escape },
	{ "json_body_control_outside_strings", body_control_outside_strings },
	{ "json_member_name_cut_on_a_character",
	    member_name_cut_on_a_character },
	{ "json_string_escape", string_escape },
	{ "json_token_body", token_body },
	{ "json_options_absent", options_absent },
	{ "json_options_good", options_good },
	{ "json_days_bad", days_bad },
	{ "json_metadata_bad_type", metadata_bad_type },
	{ "json_metadata_limits", metadata_limits },
	{ "json_options_once_and_typed", options_once_and_typed },
	{ "json_empty_body", empty_body },
	{ NULL, NULL }
};
