/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Unit tests for valid.c: one behaviour per test, exact expectations.
 */
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include <stdio.h>
#include <string.h>

#include "extern.h"
#include "util.h"
#include "valid.h"
#include "unit.h"

/* Every assigned ISO 3166-1 alpha-2 code (iso-codes 4.15). */
static const char all_countries[] =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH "
    "BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL "
    "CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET "
    "FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU "
    "GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE "
    "KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC "
    "MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC "
    "NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT "
    "PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR "
    "SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA "
    "UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/* ------------------------------------------------------------ helpers */

static int
utf8(const char *s, size_t len)
{
	return valid_utf8(s, len);
}

/* s is a good address whose trimmed form is want and lower form wantl. */
static int
email_ok(const char *s, const char *want, const char *wantl)
{
	char out[EMAIL_MAX + 1], lower[EMAIL_MAX + 1];

	if (valid_email(s, out, lower) != NULL)
		return 0;
	return strcmp(out, want) == 0 && strcmp(lower, wantl) == 0;
}

/* s is refused with a reason, and both buffers are left empty. */
static int
email_bad(const char *s)
{
	char out[EMAIL_MAX + 1], lower[EMAIL_MAX + 1];

	memset(out, 'x', sizeof(out));
	memset(lower, 'x', sizeof(lower));
	if (valid_email(s, out, lower) == NULL)
		return 0;
	return out[0] == '\0' && lower[0] == '\0';
}

static int
lang_ok(const char *s, const char *want)
{
	char out[LANG_MAX];

	return valid_language(s, out) == NULL && strcmp(out, want) == 0;
}

static int
lang_bad(const char *s)
{
	char out[LANG_MAX];

	memset(out, 'x', sizeof(out));
	return valid_language(s, out) != NULL && out[0] == '\0';
}

static int
lang_reason_is(const char *s, const char *why)
{
	char out[LANG_MAX];
	const char *got;

	got = valid_language(s, out);
	return got != NULL && strcmp(got, why) == 0;
}

static int
uuid_bad(const char *s)
{
	char out[UUID_LEN + 1];
	const char *why;

	memset(out, 'x', sizeof(out));
	why = valid_uuid(s, out);
	return why != NULL && strcmp(why, "not a UUID") == 0 && out[0] == '\0';
}

/*
 * An address with a local part of local octets and up to three domain
 * labels of the given lengths (0: no such label), all letters.
 */
static char *
mkaddr(char buf[300], size_t local, size_t l1, size_t l2, size_t l3)
{
	size_t lens[3], i;
	char *p = buf;

	lens[0] = l1;
	lens[1] = l2;
	lens[2] = l3;
	memset(p, 'a', local);
	p += local;
	*p++ = '@';
	for (i = 0; i < 3 && lens[i] != 0; i++) {
		if (i > 0)
			*p++ = '.';
		memset(p, 'd' + (int)i, lens[i]);
		p += lens[i];
	}
	*p = '\0';
	return buf;
}

/* --------------------------------------------------------------- UTF-8 */

static void
utf8_empty_and_ascii(void)
{
	CHECK(utf8("", 0) == 1);
	CHECK(utf8("hello, world", 12) == 1);
	CHECK(utf8("\x7f", 1) == 1);
}

static void
utf8_embedded_nul(void)
{
	CHECK(utf8("a\0b", 3) == 1);
	CHECK(utf8("\0", 1) == 1);
}

static void
utf8_multibyte(void)
{
	CHECK(utf8("\xc3\xa9", 2) == 1);		/* U+00E9 */
	CHECK(utf8("\xe2\x82\xac", 3) == 1);		/* U+20AC */
	CHECK(utf8("\xf0\x9f\x98\x80", 4) == 1);	/* U+1F600 */
	CHECK(utf8("Gr\xc3\xbc\xc3\x9f" "e", 7) == 1);
}

static void
utf8_boundaries(void)
{
	CHECK(utf8("\xc2\x80", 2) == 1);		/* U+0080 */
	CHECK(utf8("\xdf\xbf", 2) == 1);		/* U+07FF */
	CHECK(utf8("\xe0\xa0\x80", 3) == 1);		/* U+0800 */
	CHECK(utf8("\xed\x9f\xbf", 3) == 1);		/* U+D7FF */
	CHECK(utf8("\xee\x80\x80", 3) == 1);		/* U+E000 */
	CHECK(utf8("\xef\xbf\xbf", 3) == 1);		/* U+FFFF */
	CHECK(utf8("\xf0\x90\x80\x80", 4) == 1);	/* U+10000 */
	CHECK(utf8("\xf4\x8f\xbf\xbf", 4) == 1);	/* U+10FFFF */
}

static void
utf8_overlong(void)
{
	CHECK(utf8("\xc0\xaf", 2) == 0);		/* '/' */
	CHECK(utf8("\xc0\x80", 2) == 0);		/* NUL */
	CHECK(utf8("\xc1\xbf", 2) == 0);
	CHECK(utf8("\xe0\x80\xaf", 3) == 0);
	CHECK(utf8("\xe0\x9f\xbf", 3) == 0);
	CHECK(utf8("\xf0\x80\x80\xaf", 4) == 0);
	CHECK(utf8("\xf0\x8f\xbf\xbf", 4) == 0);
}

static void
utf8_surrogates(void)
{
	CHECK(utf8("\xed\xa0\x80", 3) == 0);		/* U+D800 */
	CHECK(utf8("\xed\xbf\xbf", 3) == 0);		/* U+DFFF */
	CHECK(utf8("\xed\xa0\xbd\xed\xb8\x80", 6) == 0);	/* CESU-8 */
}

static void
utf8_above_max(void)
{
	CHECK(utf8("\xf4\x90\x80\x80", 4) == 0);	/* U+110000 */
	CHECK(utf8("\xf5\x80\x80\x80", 4) == 0);
	CHECK(utf8("\xf7\xbf\xbf\xbf", 4) == 0);
	CHECK(utf8("\xf8\x88\x80\x80\x80", 5) == 0);
	CHECK(utf8("\xfe", 1) == 0);
	CHECK(utf8("\xff", 1) == 0);
}

static void
utf8_truncated(void)
{
	CHECK(utf8("\xc3", 1) == 0);
	CHECK(utf8("\xe2\x82", 2) == 0);
	CHECK(utf8("\xf0\x9f\x98", 3) == 0);
	CHECK(utf8("abc\xc3", 4) == 0);
	CHECK(utf8("\xe2\x82" "A", 3) == 0);
	CHECK(utf8("\xf0\x9f\x98" "AB", 5) == 0);
}

static void
utf8_length_is_respected(void)
{
	/* The second byte exists in memory but not within len. */
	CHECK(utf8("\xc3\xa9", 1) == 0);
	/* A bad byte past len is not looked at. */
	CHECK(utf8("ab\xff", 2) == 1);
}

static void
utf8_stray_continuation(void)
{
	CHECK(utf8("\x80", 1) == 0);
	CHECK(utf8("\xbf", 1) == 0);
	CHECK(utf8("a\x80" "b", 3) == 0);
	CHECK(utf8("\xc3\xa9\xa9", 3) == 0);
}

/* ---------------------------------------------------------------- UUID */

static void
uuid_lower_case(void)
{
	char out[UUID_LEN + 1];

	CHECK(valid_uuid("123e4567-e89b-42d3-a456-426614174000", out) == NULL);
	CHECK_STR(out, "123e4567-e89b-42d3-a456-426614174000");
}

static void
uuid_upper_case_is_lowered(void)
{
	char out[UUID_LEN + 1];

	CHECK(valid_uuid("123E4567-E89B-42D3-A456-42661417400F", out) == NULL);
	CHECK_STR(out, "123e4567-e89b-42d3-a456-42661417400f");
	CHECK(valid_uuid("aBcDeF01-2345-6789-AbCd-eF0123456789", out) == NULL);
	CHECK_STR(out, "abcdef01-2345-6789-abcd-ef0123456789");
}

/* util_uuid7: valid, version 7, RFC 9562 variant, the time up front. */
static void
uuid7_shape_and_time(void)
{
	char a[UUID_LEN + 1], b[UUID_LEN + 1], out[UUID_LEN + 1], hex[13];
	unsigned long long ms, before, after;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	before = (unsigned long long)ts.tv_sec * 1000 +
	    (unsigned long long)ts.tv_nsec / 1000000;
	util_uuid7(a);
	clock_gettime(CLOCK_REALTIME, &ts);
	after = (unsigned long long)ts.tv_sec * 1000 +
	    (unsigned long long)ts.tv_nsec / 1000000;
	CHECK(valid_uuid(a, out) == NULL);
	CHECK_STR(out, a);
	CHECK(a[14] == '7');
	CHECK(strchr("89ab", a[19]) != NULL);
	snprintf(hex, sizeof(hex), "%.8s%.4s", a, a + 9);
	ms = strtoull(hex, NULL, 16);
	CHECK(before <= ms && ms <= after);
	/* Two in a row differ, and a later millisecond sorts after. */
	util_uuid7(b);
	CHECK(strcmp(a, b) != 0);
	ts.tv_sec = 0;
	ts.tv_nsec = 2000000;
	nanosleep(&ts, NULL);
	util_uuid7(b);
	CHECK(strcmp(a, b) < 0);
}

/* util_uuid_bytes and util_uuid_str: inverse of each other, strict. */
static void
uuid_bytes_round_trip(void)
{
	unsigned char b[16];
	char out[UUID_LEN + 1];

	CHECK(util_uuid_bytes("01a216a0-08a6-7442-a312-8e077c56030e", b) == 0);
	CHECK(b[0] == 0x01 && b[6] == 0x74 && b[15] == 0x0e);
	util_uuid_str(b, out);
	CHECK_STR(out, "01a216a0-08a6-7442-a312-8e077c56030e");
	CHECK(util_uuid_bytes("01a216a0-08a6-7442-a312-8e077c56030", b) == -1);
	CHECK(util_uuid_bytes("01a216a0-08a6-7442-a312-8e077c56030e0", b) == -1);
	CHECK(util_uuid_bytes("01a216a0008a6-7442-a312-8e077c56030e", b) == -1);
	CHECK(util_uuid_bytes("01a216a0-08a6-7442-a312-8e077c56030g", b) == -1);
	CHECK(util_uuid_bytes("", b) == -1);
}

static void
uuid_in_place(void)
{
	char buf[UUID_LEN + 1] = "ABCDEF01-2345-6789-ABCD-EF0123456789";

	CHECK(valid_uuid(buf, buf) == NULL);
	CHECK_STR(buf, "abcdef01-2345-6789-abcd-ef0123456789");
}

static void
uuid_wrong_length(void)
{
	CHECK(uuid_bad(""));
	CHECK(uuid_bad(NULL));
	CHECK(uuid_bad("123e4567-e89b-42d3-a456-42661417400"));
	CHECK(uuid_bad("123e4567-e89b-42d3-a456-4266141740000"));
	CHECK(uuid_bad("123e4567e89b42d3a456426614174000"));
}

static void
uuid_bad_characters(void)
{
	CHECK(uuid_bad("123e4567-e89b-42d3-a456-42661417400g"));
	CHECK(uuid_bad("123e4567_e89b-42d3-a456-426614174000"));
	CHECK(uuid_bad("123e4567-e89b-42d3-a456+426614174000"));
	CHECK(uuid_bad("123e456-7e89b-42d3-a456-426614174000"));
	CHECK(uuid_bad("{23e4567-e89b-42d3-a456-42661417400}"));
	CHECK(uuid_bad(" 123e4567-e89b-42d3-a456-426614174000"));
	CHECK(uuid_bad("123e4567-e89b-42d3-a456-426614174000\n"));
	CHECK(uuid_bad("me"));
}

/* --------------------------------------------------------------- email */

static void
email_plain(void)
{
	CHECK(email_ok("friend@example.org", "friend@example.org",
	    "friend@example.org"));
	CHECK(email_ok("first.last@mail.example.co.uk",
	    "first.last@mail.example.co.uk", "first.last@mail.example.co.uk"));
}

static void
email_lower_case_copy(void)
{
	CHECK(email_ok("Friend.X@Example.ORG", "Friend.X@Example.ORG",
	    "friend.x@example.org"));
}

static void
email_trims_space_and_tab(void)
{
	CHECK(email_ok("  a@b.co", "a@b.co", "a@b.co"));
	CHECK(email_ok("a@b.co  ", "a@b.co", "a@b.co"));
	CHECK(email_ok("\t A@B.co \t", "A@B.co", "a@b.co"));
}

static void
email_does_not_trim_cr_lf(void)
{
	CHECK(email_bad("a@b.co\n"));
	CHECK(email_bad("a@b.co\r\n"));
	CHECK(email_bad("\ra@b.co"));
	CHECK(email_bad("\na@b.co"));
	CHECK(email_bad("\va@b.co"));
	CHECK(email_bad("a@b.co\f"));
}

static void
email_crlf_injection(void)
{
	CHECK(email_bad("a@b.co\r\nBcc: x@y.z"));
	CHECK(email_bad("a@b.co\nBcc: x@y.z"));
	CHECK(email_bad("a\r\n@b.co"));
	CHECK(email_bad("a@b.co\r\n.\r\nMAIL FROM:<x@y.z>"));
}

static void
email_control_characters(void)
{
	CHECK(email_bad("a\x01@b.co"));
	CHECK(email_bad("a@b.c\x7fo"));
	CHECK(email_bad("a@b.co\x1b[0m"));
}

static void
email_all_atext(void)
{
	CHECK(email_ok("!#$%&'*+-/=?^_`{|}~@example.org",
	    "!#$%&'*+-/=?^_`{|}~@example.org",
	    "!#$%&'*+-/=?^_`{|}~@example.org"));
	CHECK(email_ok("user+tag@example.org", "user+tag@example.org",
	    "user+tag@example.org"));
}

static void
email_local_dots(void)
{
	CHECK(email_bad(".a@b.co"));
	CHECK(email_bad("a.@b.co"));
	CHECK(email_bad("a..b@b.co"));
	CHECK(email_bad(".@b.co"));
	CHECK(email_ok("a.b.c@b.co", "a.b.c@b.co", "a.b.c@b.co"));
}

static void
email_local_length(void)
{
	char buf[300];

	CHECK(email_ok(mkaddr(buf, 64, 1, 2, 0), buf, buf));
	CHECK(email_bad(mkaddr(buf, 65, 1, 2, 0)));
	CHECK(email_bad(mkaddr(buf, 0, 1, 2, 0)));
}

static void
email_label_length(void)
{
	char buf[300];

	CHECK(email_ok(mkaddr(buf, 1, 63, 2, 0), buf, buf));
	CHECK(email_bad(mkaddr(buf, 1, 64, 2, 0)));
	CHECK(email_ok(mkaddr(buf, 1, 2, 63, 0), buf, buf));
	CHECK(email_bad(mkaddr(buf, 1, 2, 64, 0)));
}

static void
email_total_length(void)
{
	char buf[300];

	CHECK(strlen(mkaddr(buf, 64, 63, 63, 61)) == 254);
	CHECK(email_ok(buf, buf, buf));
	CHECK(strlen(mkaddr(buf, 64, 63, 63, 62)) == 255);
	CHECK(email_bad(buf));
	CHECK(strlen(mkaddr(buf, 10, 63, 63, 63)) == 202);
	CHECK(email_ok(buf, buf, buf));
}

/* The limit applies to the address, not to the white space around it. */
static void
email_total_length_after_trim(void)
{
	char buf[310], want[300];

	mkaddr(want, 64, 63, 63, 61);
	snprintf(buf, sizeof(buf), "  %s\t ", want);
	CHECK(strlen(buf) == 258);
	CHECK(email_ok(buf, want, want));
}

static void
email_single_label_domain(void)
{
	CHECK(email_bad("a@localhost"));
	CHECK(email_bad("root@co"));
}

static void
email_ip_literal(void)
{
	CHECK(email_bad("a@[192.0.2.1]"));
	CHECK(email_bad("a@[IPv6:2001:db8::1]"));
	CHECK(email_bad("a@192.0.2.1"));
	CHECK(email_bad("a@example.123"));
	CHECK(email_ok("a@123.example", "a@123.example", "a@123.example"));
	CHECK(email_ok("a@b.c0m", "a@b.c0m", "a@b.c0m"));
}

static void
email_quoted_local_part(void)
{
	CHECK(email_bad("\"a b\"@example.org"));
	CHECK(email_bad("\"a\"@example.org"));
	CHECK(email_bad("a\\@b@example.org"));
}

static void
email_display_name(void)
{
	CHECK(email_bad("A <a@b.co>"));
	CHECK(email_bad("<a@b.co>"));
	CHECK(email_bad("\"A\" <a@b.co>"));
	CHECK(email_bad("a@b.co, c@d.co"));
}

static void
email_comments(void)
{
	CHECK(email_bad("a(comment)@b.co"));
	CHECK(email_bad("a@b.co(comment)"));
	CHECK(email_bad("(c)a@b.co"));
}

static void
email_non_ascii(void)
{
	CHECK(email_bad("j\xc3\xb6rg@example.org"));
	CHECK(email_bad("a@ex\xc3\xa4mple.org"));
	CHECK(email_bad("a@b.co\xc2\xa0"));	/* NBSP is not trimmed */
	CHECK(email_bad("a@b.\xff"));
}

static void
email_a_labels(void)
{
	CHECK(email_ok("a@xn--exmple-cua.org", "a@xn--exmple-cua.org",
	    "a@xn--exmple-cua.org"));
	CHECK(email_ok("a@XN--80AK6AA92E.xn--p1ai", "a@XN--80AK6AA92E.xn--p1ai",
	    "a@xn--80ak6aa92e.xn--p1ai"));
}

static void
email_label_hyphens(void)
{
	CHECK(email_bad("a@-b.co"));
	CHECK(email_bad("a@b-.co"));
	CHECK(email_bad("a@b.-co"));
	CHECK(email_bad("a@b.co-"));
	CHECK(email_ok("a@b-c.co", "a@b-c.co", "a@b-c.co"));
	CHECK(email_bad("a@b_c.co"));
}

static void
email_domain_dots(void)
{
	CHECK(email_bad("a@b..co"));
	CHECK(email_bad("a@.b.co"));
	CHECK(email_bad("a@b.co."));
	CHECK(email_bad("a@."));
}

static void
email_one_at_sign(void)
{
	CHECK(email_bad("a@b@c.co"));
	CHECK(email_bad("ab.co"));
	CHECK(email_bad("a@"));
	CHECK(email_bad("@"));
}

static void
email_inner_white_space(void)
{
	CHECK(email_bad("a b@c.co"));
	CHECK(email_bad("a@b .co"));
	CHECK(email_bad("a @b.co"));
	CHECK(email_bad("a\t@b.co"));
}

static void
email_empty(void)
{
	CHECK(email_bad(""));
	CHECK(email_bad("   "));
	CHECK(email_bad("\t"));
	CHECK(email_bad(NULL));
}

static void
email_reasons(void)
{
	char out[EMAIL_MAX + 1], lower[EMAIL_MAX + 1], buf[300];

	CHECK_STR(valid_email("", out, lower), "empty address");
	CHECK_STR(valid_email("a.b.co", out, lower), "address without @");
	CHECK_STR(valid_email("a..b@b.co", out, lower), "invalid local part");
	CHECK_STR(valid_email("a@b", out, lower), "invalid domain");
	memset(buf, 'a', 255);
	buf[255] = '\0';
	CHECK_STR(valid_email(buf, out, lower), "address too long");
}

/* ------------------------------------------------------------ language */

static void
lang_primary_only(void)
{
	CHECK(lang_ok("de", "de"));
	CHECK(lang_ok("DE", "de"));
	CHECK(lang_ok("En", "en"));
	CHECK(lang_ok("gsw", "gsw"));
	CHECK(lang_ok("FIL", "fil"));
}

static void
lang_with_region(void)
{
	CHECK(lang_ok("pt-br", "pt-BR"));
	CHECK(lang_ok("pt-BR", "pt-BR"));
	CHECK(lang_ok("EN-us", "en-US"));
	CHECK(lang_ok("de-AT", "de-AT"));
}

static void
lang_with_script(void)
{
	CHECK(lang_ok("zh-hant", "zh-Hant"));
	CHECK(lang_ok("sr-LATN", "sr-Latn"));
	CHECK(lang_ok("ZH-hant-tw", "zh-Hant-TW"));
	CHECK(lang_ok("uz-cyrl-UZ", "uz-Cyrl-UZ"));
}

static void
lang_numeric_region(void)
{
	CHECK(lang_ok("es-419", "es-419"));
	CHECK(lang_ok("ES-419", "es-419"));
	CHECK(lang_ok("en-001", "en-001"));
}

/* One of each of SPEC 2's forms, and nothing else passes. */
static void
lang_spec_forms(void)
{
	CHECK(lang_ok("de", "de"));			/* ll */
	CHECK(lang_ok("fil", "fil"));			/* lll */
	CHECK(lang_ok("de-at", "de-AT"));		/* ll-RR */
	CHECK(lang_ok("sr-latn", "sr-Latn"));		/* ll-Ssss */
	CHECK(lang_ok("zh-hant-tw", "zh-Hant-TW"));	/* ll-Ssss-RR */
	CHECK(lang_ok("es-419", "es-419"));		/* ll-999 */
	CHECK(lang_ok("DEU", "deu"));
	CHECK(lang_ok("SR-LATN-rs", "sr-Latn-RS"));
}

/* A three-letter language takes no subtag at all. */
static void
lang_bad_three_letter_with_subtag(void)
{
	CHECK(lang_bad("deu-DE"));
	CHECK(lang_bad("DEU-de"));
	CHECK(lang_bad("gsw-CH"));
	CHECK(lang_bad("lll-Ssss"));
	CHECK(lang_bad("yue-Hant"));
	CHECK(lang_bad("yue-Hant-HK"));
	CHECK(lang_bad("gsw-419"));
	CHECK(lang_bad("gsw-Latn-419"));
	CHECK(lang_reason_is("deu-DE", "not a language tag"));
}

/* A numeric region follows the language directly, never a script. */
static void
lang_bad_script_numeric_region(void)
{
	CHECK(lang_bad("de-Latn-999"));
	CHECK(lang_bad("es-latn-419"));
	CHECK(lang_bad("ZH-HANT-001"));
	CHECK(lang_bad("de-999-Latn"));
	CHECK(lang_bad("de-419-AT"));
	CHECK(lang_bad("de-AT-419"));
	CHECK(lang_bad("de-Latn-99"));
	CHECK(lang_bad("de-Latn-9999"));
	CHECK(lang_bad("de-Latn-A1"));
	CHECK(lang_reason_is("de-Latn-999", "not a language tag"));
}

static void
lang_longest_fits(void)
{
	char out[LANG_MAX];

	CHECK(valid_language("zh-hant-tw", out) == NULL);
	CHECK_STR(out, "zh-Hant-TW");
	CHECK(strlen(out) < LANG_MAX);
}

static void
lang_in_place(void)
{
	char buf[LANG_MAX] = "ZH-hant-tw";

	CHECK(valid_language(buf, buf) == NULL);
	CHECK_STR(buf, "zh-Hant-TW");
}

static void
lang_bad_primary(void)
{
	CHECK(lang_bad("e"));
	CHECK(lang_bad("english"));
	CHECK(lang_bad("engl"));
	CHECK(lang_bad("e1"));
	CHECK(lang_bad("12"));
	CHECK(lang_bad(""));
	CHECK(lang_bad(NULL));
	CHECK(lang_bad("i-klingon"));
	CHECK(lang_bad("x-private"));
}

static void
lang_bad_separators(void)
{
	CHECK(lang_bad("en_US"));
	CHECK(lang_bad("en-"));
	CHECK(lang_bad("-en"));
	CHECK(lang_bad("en--US"));
	CHECK(lang_bad("en US"));
	CHECK(lang_bad(" en"));
	CHECK(lang_bad("en "));
	CHECK(lang_bad("de\n"));
	CHECK(lang_bad("en.US"));
}

static void
lang_bad_subtags(void)
{
	CHECK(lang_bad("de-DE-x"));
	CHECK(lang_bad("en-x-foo"));
	CHECK(lang_bad("en-US-US"));
	CHECK(lang_bad("en-US-Latn"));
	CHECK(lang_bad("en-Latn-Latn"));
	CHECK(lang_bad("en-usa"));
	CHECK(lang_bad("en-1"));
	CHECK(lang_bad("en-12"));
	CHECK(lang_bad("en-1234"));
	CHECK(lang_bad("en-U1"));
	CHECK(lang_bad("en-a1b2"));
	CHECK(lang_bad("de-DE-1996"));
	CHECK(lang_bad("en-Latn-US-x"));
	CHECK(lang_bad("en-Latnx"));
}

static void
lang_non_ascii(void)
{
	CHECK(lang_bad("\xc3\xa9n"));
	CHECK(lang_bad("de-\xc3\x9c"));
}

static void
lang_reason(void)
{
	char out[LANG_MAX];

	CHECK_STR(valid_language("en_US", out), "not a language tag");
}

/* ------------------------------------------------------------ countries */

static void
country_examples(void)
{
	CHECK_STR(lang_of_country("DE"), "de");
	CHECK_STR(lang_of_country("AT"), "de");
	CHECK_STR(lang_of_country("CH"), "de");
	CHECK_STR(lang_of_country("US"), "en");
	CHECK_STR(lang_of_country("GB"), "en");
	CHECK_STR(lang_of_country("CA"), "en");
	CHECK_STR(lang_of_country("BR"), "pt");
	CHECK_STR(lang_of_country("MX"), "es");
	CHECK_STR(lang_of_country("BE"), "nl");
	CHECK_STR(lang_of_country("CN"), "zh");
	CHECK_STR(lang_of_country("JP"), "ja");
	CHECK_STR(lang_of_country("KR"), "ko");
	CHECK_STR(lang_of_country("IN"), "hi");
	CHECK_STR(lang_of_country("IR"), "fa");
	CHECK_STR(lang_of_country("IL"), "he");
	CHECK_STR(lang_of_country("UA"), "uk");
	CHECK_STR(lang_of_country("GR"), "el");
	CHECK_STR(lang_of_country("CZ"), "cs");
	CHECK_STR(lang_of_country("DK"), "da");
	CHECK_STR(lang_of_country("SE"), "sv");
	CHECK_STR(lang_of_country("NO"), "nb");
	CHECK_STR(lang_of_country("EE"), "et");
}

static void
country_any_case(void)
{
	CHECK_STR(lang_of_country("at"), "de");
	CHECK_STR(lang_of_country("dE"), "de");
	CHECK_STR(lang_of_country("Br"), "pt");
}

static void
country_first_and_last(void)
{
	CHECK_STR(lang_of_country("AD"), "ca");
	CHECK_STR(lang_of_country("ZW"), "en");
}

static void
country_unknown(void)
{
	CHECK(lang_of_country("XX") == NULL);
	CHECK(lang_of_country("UK") == NULL);	/* GB is the code */
	CHECK(lang_of_country("EU") == NULL);
	CHECK(lang_of_country("AA") == NULL);
	CHECK(lang_of_country("ZZ") == NULL);
}

static void
country_bad_shape(void)
{
	CHECK(lang_of_country(NULL) == NULL);
	CHECK(lang_of_country("") == NULL);
	CHECK(lang_of_country("D") == NULL);
	CHECK(lang_of_country("DEU") == NULL);
	CHECK(lang_of_country("de-") == NULL);
	CHECK(lang_of_country("D1") == NULL);
	CHECK(lang_of_country("de-DE") == NULL);
	CHECK(lang_of_country("\xc3\x84T") == NULL);
}

/* Every assigned code is found (so the table is sorted and complete). */
static void
country_all_assigned(void)
{
	const char *p, *l;
	char cc[3], out[LANG_MAX];
	int n = 0;

	for (p = all_countries; *p != '\0'; p += p[2] == ' ' ? 3 : 2) {
		memcpy(cc, p, 2);
		cc[2] = '\0';
		l = lang_of_country(cc);
		if (l == NULL)
			fprintf(stderr, "no language for %s\n", cc);
		CHECK(l != NULL);
		CHECK(strlen(l) == 2 && l[0] >= 'a' && l[0] <= 'z' &&
		    l[1] >= 'a' && l[1] <= 'z');
		CHECK(valid_language(l, out) == NULL && strcmp(out, l) == 0);
		n++;
	}
	CHECK(n == 249);
}

/* ------------------------------------------------------ redirect URLs */

static void
redirect_prefix_good(void)
{
	CHECK(valid_redirect_prefix("https://app.example/") == NULL);
	CHECK(valid_redirect_prefix("https://app.example/welcome?x=") ==
	    NULL);
	CHECK(valid_redirect_prefix("http://127.0.0.1:8080/cb") == NULL);
}

static void
redirect_prefix_bad(void)
{
	/* No path: "https://app.example.evil/" would match it. */
	CHECK(valid_redirect_prefix("https://app.example") != NULL);
	CHECK(valid_redirect_prefix("https:///x") != NULL);
	CHECK(valid_redirect_prefix("ftp://app.example/") != NULL);
	CHECK(valid_redirect_prefix("HTTPS://app.example/") != NULL);
	CHECK(valid_redirect_prefix("https://app.example/a,b") != NULL);
	CHECK(valid_redirect_prefix("https://app.example/a b") != NULL);
	CHECK(valid_redirect_prefix("") != NULL);
}

static void
redirect_under_prefix(void)
{
	const char *allow = "https://a.example/x/,https://b.example/";

	CHECK(valid_redirect("https://a.example/x/", allow) == NULL);
	CHECK(valid_redirect("https://a.example/x/y?z=1#f", allow) == NULL);
	CHECK(valid_redirect("https://b.example/", allow) == NULL);
	CHECK(valid_redirect("https://a.example/xy", allow) != NULL);
	CHECK(valid_redirect("https://a.example/", allow) != NULL);
	CHECK(valid_redirect("https://c.example/x/", allow) != NULL);
}

static void
redirect_without_prefixes(void)
{
	CHECK(valid_redirect("https://a.example/", NULL) != NULL);
	CHECK(valid_redirect("https://a.example/", "") != NULL);
}

static void
redirect_bad_bytes(void)
{
	char long_url[REDIRECT_MAX + 2];
	const char *allow = "https://a.example/";

	CHECK(valid_redirect("https://a.example/ x", allow) != NULL);
	CHECK(valid_redirect("https://a.example/\tx", allow) != NULL);
	CHECK(valid_redirect("https://a.example/\xc3\xa9", allow) != NULL);
	CHECK(valid_redirect("", allow) != NULL);
	memset(long_url, 'a', sizeof(long_url) - 1);
	long_url[sizeof(long_url) - 1] = '\0';
	memcpy(long_url, allow, strlen(allow));
	CHECK(valid_redirect(long_url, allow) != NULL);
	long_url[REDIRECT_MAX] = '\0';
	CHECK(valid_redirect(long_url, allow) == NULL);
}

const struct unit_test valid_tests[] = {
	{ "util_uuid7_shape_and_time", uuid7_shape_and_time },
	{ "util_uuid_bytes_round_trip", uuid_bytes_round_trip },
	{ "valid_utf8_empty_and_ascii", utf8_empty_and_ascii },
	{ "valid_utf8_embedded_nul", utf8_embedded_nul },
	{ "valid_utf8_multibyte", utf8_multibyte },
	{ "valid_utf8_boundaries", utf8_boundaries },
	{ "valid_utf8_overlong", utf8_overlong },
	{ "valid_utf8_surrogates", utf8_surrogates },
	{ "valid_utf8_above_max", utf8_above_max },
	{ "valid_utf8_truncated", utf8_truncated },
	{ "valid_utf8_length_is_respected", utf8_length_is_respected },
	{ "valid_utf8_stray_continuation", utf8_stray_continuation },
	{ "valid_uuid_lower_case", uuid_lower_case },
	{ "valid_uuid_upper_case_is_lowered", uuid_upper_case_is_lowered },
	{ "valid_uuid_in_place", uuid_in_place },
	{ "valid_uuid_wrong_length", uuid_wrong_length },
	{ "valid_uuid_bad_characters", uuid_bad_characters },
	{ "valid_email_plain", email_plain },
	{ "valid_email_lower_case_copy", email_lower_case_copy },
	{ "valid_email_trims_space_and_tab", email_trims_space_and_tab },
	{ "valid_email_does_not_trim_cr_lf", email_does_not_trim_cr_lf },
	{ "valid_email_crlf_injection", email_crlf_injection },
	{ "valid_email_control_characters", email_control_characters },
	{ "valid_email_all_atext", email_all_atext },
	{ "valid_email_local_dots", email_local_dots },
	{ "valid_email_local_length", email_local_length },
	{ "valid_email_label_length", email_label_length },
	{ "valid_email_total_length", email_total_length },
	{ "valid_email_total_length_after_trim",
	    email_total_length_after_trim },
	{ "valid_email_single_label_domain", email_single_label_domain },
	{ "valid_email_ip_literal", email_ip_literal },
	{ "valid_email_quoted_local_part", email_quoted_local_part },
	{ "valid_email_display_name", email_display_name },
	{ "valid_email_comments", email_comments },
	{ "valid_email_non_ascii", email_non_ascii },
	{ "valid_email_a_labels", email_a_labels },
	{ "valid_email_label_hyphens", email_label_hyphens },
	{ "valid_email_domain_dots", email_domain_dots },
	{ "valid_email_one_at_sign", email_one_at_sign },
	{ "valid_email_inner_white_space", email_inner_white_space },
	{ "valid_email_empty", email_empty },
	{ "valid_email_reasons", email_reasons },
	{ "valid_lang_primary_only", lang_primary_only },
	{ "valid_lang_with_region", lang_with_region },
	{ "valid_lang_with_script", lang_with_script },
	{ "valid_lang_numeric_region", lang_numeric_region },
	{ "valid_lang_spec_forms", lang_spec_forms },
	{ "valid_lang_bad_three_letter_with_subtag",
	    lang_bad_three_letter_with_subtag },
	{ "valid_lang_bad_script_numeric_region",
	    lang_bad_script_numeric_region },
	{ "valid_lang_longest_fits", lang_longest_fits },
	{ "valid_lang_in_place", lang_in_place },
	{ "valid_lang_bad_primary", lang_bad_primary },
	{ "valid_lang_bad_separators", lang_bad_separators },
	{ "valid_lang_bad_subtags", lang_bad_subtags },
	{ "valid_lang_non_ascii", lang_non_ascii },
	{ "valid_lang_reason", lang_reason },
	{ "valid_country_examples", country_examples },
	{ "valid_country_any_case", country_any_case },
	{ "valid_country_first_and_last", country_first_and_last },
	{ "valid_country_unknown", country_unknown },
	{ "valid_country_bad_shape", country_bad_shape },
	{ "valid_country_all_assigned", country_all_assigned },
	{ "valid_redirect_prefix_good", redirect_prefix_good },
	{ "valid_redirect_prefix_bad", redirect_prefix_bad },
	{ "valid_redirect_under_prefix", redirect_under_prefix },
	{ "valid_redirect_without_prefixes", redirect_without_prefixes },
	{ "valid_redirect_bad_bytes", redirect_bad_bytes },
	{ NULL, NULL }
};
