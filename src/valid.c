/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Pure validators for untrusted input: UTF-8, UUIDs, e-mail addresses,
 * language tags, and the country-to-language table.  Nothing here
 * allocates, logs or looks at the locale: every character class is spelt
 * out in ASCII so that the answers are the same in every process.
 */
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "valid.h"

#define LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define LABEL_MAX	63	/* RFC 1035 2.3.4 */

struct country {
	char		 cc[3];
	const char	*lang;
};

/*
 * ISO 3166-1 alpha-2, every assigned code, sorted for bsearch.  The language
 * is the one mail to that country is most likely expected in: usually
 * CLDR's likely language for the country (und-CC), but the principal
 * official written language where CLDR names one without an ISO 639-1 code
 * or one little used in writing (DJ fr, GH en, ML fr, PH en, PY es, UG en,
 * ZW en...).  Uninhabited territories get their administrator's language.
 */
static const struct country countries[] = {
	{ "AD", "ca" }, { "AE", "ar" }, { "AF", "fa" }, { "AG", "en" },
	{ "AI", "en" }, { "AL", "sq" }, { "AM", "hy" }, { "AO", "pt" },
	{ "AQ", "en" }, { "AR", "es" }, { "AS", "sm" }, { "AT", "de" },
	{ "AU", "en" }, { "AW", "nl" }, { "AX", "sv" }, { "AZ", "az" },
	{ "BA", "bs" }, { "BB", "en" }, { "BD", "bn" }, { "BE", "nl" },
	{ "BF", "fr" }, { "BG", "bg" }, { "BH", "ar" }, { "BI", "rn" },
	{ "BJ", "fr" }, { "BL", "fr" }, { "BM", "en" }, { "BN", "ms" },
	{ "BO", "es" }, { "BQ", "nl" }, { "BR", "pt" }, { "BS", "en" },
	{ "BT", "dz" }, { "BV", "nb" }, { "BW", "en" }, { "BY", "be" },
	{ "BZ", "en" }, { "CA", "en" }, { "CC", "en" }, { "CD", "fr" },
	{ "CF", "fr" }, { "CG", "fr" }, { "CH", "de" }, { "CI", "fr" },
	{ "CK", "en" }, { "CL", "es" }, { "CM", "fr" }, { "CN", "zh" },
	{ "CO", "es" }, { "CR", "es" }, { "CU", "es" }, { "CV", "pt" },
	{ "CW", "nl" }, { "CX", "en" }, { "CY", "el" }, { "CZ", "cs" },
	{ "DE", "de" }, { "DJ", "fr" }, { "DK", "da" }, { "DM", "en" },
	{ "DO", "es" }, { "DZ", "ar" }, { "EC", "es" }, { "EE", "et" },
	{ "EG", "ar" }, { "EH", "ar" }, { "ER", "ti" }, { "ES", "es" },
	{ "ET", "am" }, { "FI", "fi" }, { "FJ", "en" }, { "FK", "en" },
	{ "FM", "en" }, { "FO", "fo" }, { "FR", "fr" }, { "GA", "fr" },
	{ "GB", "en" }, { "GD", "en" }, { "GE", "ka" }, { "GF", "fr" },
	{ "GG", "en" }, { "GH", "en" }, { "GI", "en" }, { "GL", "kl" },
	{ "GM", "en" }, { "GN", "fr" }, { "GP", "fr" }, { "GQ", "es" },
	{ "GR", "el" }, { "GS", "en" }, { "GT", "es" }, { "GU", "en" },
	{ "GW", "pt" }, { "GY", "en" }, { "HK", "zh" }, { "HM", "en" },
	{ "HN", "es" }, { "HR", "hr" }, { "HT", "ht" }, { "HU", "hu" },
	{ "ID", "id" }, { "IE", "en" }, { "IL", "he" }, { "IM", "en" },
	{ "IN", "hi" }, { "IO", "en" }, { "IQ", "ar" }, { "IR", "fa" },
	{ "IS", "is" }, { "IT", "it" }, { "JE", "en" }, { "JM", "en" },
	{ "JO", "ar" }, { "JP", "ja" }, { "KE", "sw" }, { "KG", "ky" },
	{ "KH", "km" }, { "KI", "en" }, { "KM", "ar" }, { "KN", "en" },
	{ "KP", "ko" }, { "KR", "ko" }, { "KW", "ar" }, { "KY", "en" },
	{ "KZ", "ru" }, { "LA", "lo" }, { "LB", "ar" }, { "LC", "en" },
	{ "LI", "de" }, { "LK", "si" }, { "LR", "en" }, { "LS", "st" },
	{ "LT", "lt" }, { "LU", "fr" }, { "LV", "lv" }, { "LY", "ar" },
	{ "MA", "ar" }, { "MC", "fr" }, { "MD", "ro" }, { "ME", "sr" },
	{ "MF", "fr" }, { "MG", "mg" }, { "MH", "en" }, { "MK", "mk" },
	{ "ML", "fr" }, { "MM", "my" }, { "MN", "mn" }, { "MO", "zh" },
	{ "MP", "en" }, { "MQ", "fr" }, { "MR", "ar" }, { "MS", "en" },
	{ "MT", "mt" }, { "MU", "en" }, { "MV", "dv" }, { "MW", "en" },
	{ "MX", "es" }, { "MY", "ms" }, { "MZ", "pt" }, { "NA", "en" },
	{ "NC", "fr" }, { "NE", "fr" }, { "NF", "en" }, { "NG", "en" },
	{ "NI", "es" }, { "NL", "nl" }, { "NO", "nb" }, { "NP", "ne" },
	{ "NR", "en" }, { "NU", "en" }, { "NZ", "en" }, { "OM", "ar" },
	{ "PA", "es" }, { "PE", "es" }, { "PF", "fr" }, { "PG", "en" },
	{ "PH", "en" }, { "PK", "ur" }, { "PL", "pl" }, { "PM", "fr" },
	{ "PN", "en" }, { "PR", "es" }, { "PS", "ar" }, { "PT", "pt" },
	{ "PW", "en" }, { "PY", "es" }, { "QA", "ar" }, { "RE", "fr" },
	{ "RO", "ro" }, { "RS", "sr" }, { "RU", "ru" }, { "RW", "rw" },
	{ "SA", "ar" }, { "SB", "en" }, { "SC", "fr" }, { "SD", "ar" },
	{ "SE", "sv" }, { "SG", "en" }, { "SH", "en" }, { "SI", "sl" },
	{ "SJ", "nb" }, { "SK", "sk" }, { "SL", "en" }, { "SM", "it" },
	{ "SN", "fr" }, { "SO", "so" }, { "SR", "nl" }, { "SS", "en" },
	{ "ST", "pt" }, { "SV", "es" }, { "SX", "en" }, { "SY", "ar" },
	{ "SZ", "en" }, { "TC", "en" }, { "TD", "fr" }, { "TF", "fr" },
	{ "TG", "fr" }, { "TH", "th" }, { "TJ", "tg" }, { "TK", "en" },
	{ "TL", "pt" }, { "TM", "tk" }, { "TN", "ar" }, { "TO", "to" },
	{ "TR", "tr" }, { "TT", "en" }, { "TV", "en" }, { "TW", "zh" },
	{ "TZ", "sw" }, { "UA", "uk" }, { "UG", "en" }, { "UM", "en" },
	{ "US", "en" }, { "UY", "es" }, { "UZ", "uz" }, { "VA", "it" },
	{ "VC", "en" }, { "VE", "es" }, { "VG", "en" }, { "VI", "en" },
	{ "VN", "vi" }, { "VU", "bi" }, { "WF", "fr" }, { "WS", "sm" },
	{ "YE", "ar" }, { "YT", "fr" }, { "ZA", "en" }, { "ZM", "en" },
	{ "ZW", "en" },
};

static int
is_alpha(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_hex(int c)
{
	return is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static char
to_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char
to_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* RFC 5322 3.2.3 atext. */
static int
is_atext(int c)
{
	return is_alpha(c) || is_digit(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Length of the well-formed UTF-8 sequence at p (left bytes available), or
 * 0.  The ranges are those of Unicode Table 3-7: they exclude overlong
 * forms, surrogates and everything above U+10FFFF.
 */
static size_t
utf8_seq(const unsigned char *p, size_t left)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t i, n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	if (p[0] < 0xe0)
		n = 2;
	else if (p[0] < 0xf0) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	}
	if (left < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * Whether the len bytes at s are well-formed UTF-8 (RFC 3629): 1 if so,
 * 0 if not.  NUL bytes are well-formed; rejecting them is the caller's job.
 */
int
valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, n;

	for (i = 0; i < len; i += n)
		if ((n = utf8_seq(p + i, len - i)) == 0)
			return 0;
	return 1;
}

static const char *
uuid_norm(const char *s, char tmp[UUID_LEN + 1])
{
	size_t i;

	if (s == NULL)
		return "not a UUID";
	for (i = 0; i < UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return "not a UUID";
		} else if (!is_hex((unsigned char)s[i]))
			return "not a UUID";
		tmp[i] = to_lower(s[i]);
	}
	if (s[UUID_LEN] != '\0')
		return "not a UUID";
	tmp[UUID_LEN] = '\0';
	return NULL;
}

/*
 * A UUID as 8-4-4-4-12 hex digits in any case, nothing before or after.
 * Returns NULL and writes the lower-case form to out (which may be s), or
 * a reason (out is then the empty string).
 */
const char *
valid_uuid(const char *s, char out[UUID_LEN + 1])
{
	char tmp[UUID_LEN + 1];
	const char *why;

	if ((why = uuid_norm(s, tmp)) != NULL)
		out[0] = '\0';
	else
		memcpy(out, tmp, sizeof(tmp));
	return why;
}

/* RFC 5322 dot-atom of 1 to 64 octets. */
static int
email_local(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > LOCAL_MAX || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i - 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* One LDH label of 1 to 63 octets, no hyphen at either end. */
static int
email_label(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > LABEL_MAX || s[0] == '-' || s[len - 1] == '-')
		return 0;
	for (i = 0; i < len; i++)
		if (!is_alpha((unsigned char)s[i]) &&
		    !is_digit((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/*
 * At least two labels, no empty label (so no leading, trailing or double
 * dot), and a last label that is not all digits: "1.2.3.4" is an address
 * in disguise, not a host name.
 */
static int
email_domain(const char *s, size_t len)
{
	const char *end = s + len, *dot;
	size_t labels = 0, i, n = 0;

	for (;;) {
		dot = memchr(s, '.', (size_t)(end - s));
		n = (size_t)((dot != NULL ? dot : end) - s);
		if (!email_label(s, n))
			return 0;
		labels++;
		if (dot == NULL)
			break;
		s = dot + 1;
	}
	for (i = 0; i < n; i++)
		if (!is_digit((unsigned char)s[i]))
			break;
	return labels >= 2 && i < n;
}

/* The address without surrounding spaces and tabs: its start and length. */
static const char *
email_trim(const char *s, size_t *lenp)
{
	size_t len;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	*lenp = len;
	return s;
}

static const char *
email_check(const char *s, size_t len)
{
	const char *at;

	if (len == 0)
		return "empty address";
	if (len > EMAIL_MAX)
		return "address too long";
	if ((at = memchr(s, '@', len)) == NULL)
		return "address without @";
	if (!email_local(s, (size_t)(at - s)))
		return "invalid local part";
	if (!email_domain(at + 1, len - (size_t)(at - s) - 1))
		return "invalid domain";
	return NULL;
}

/*
 * An address of SPEC section 2: spaces and tabs around it are trimmed, then
 * local@domain with a dot-atom local part and an LDH domain, ASCII only.
 * Any other character (CR, LF, controls, quotes, brackets, white space
 * inside, bytes >= 0x80) makes it invalid.  Returns NULL and fills out
 * (as given) and lower (lower-cased), or a reason and leaves both empty.
 */
const char *
valid_email(const char *s, char out[EMAIL_MAX + 1],
    char lower[EMAIL_MAX + 1])
{
	const char *why;
	size_t len, i;

	if (s == NULL)
		why = "empty address";
	else {
		s = email_trim(s, &len);
		why = email_check(s, len);
	}
	if (why != NULL) {
		out[0] = lower[0] = '\0';
		return why;
	}
	for (i = 0; i < len; i++) {
		out[i] = s[i];
		lower[i] = to_lower(s[i]);
	}
	out[len] = lower[len] = '\0';
	return NULL;
}

static int
lang_all(const char *s, size_t n, int (*cls)(int))
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!cls((unsigned char)s[i]))
			return 0;
	return 1;
}

/*
 * Split s at '-' into at most three non-empty subtags of at most four
 * characters.  Returns the number of subtags, or 0.
 */
static size_t
lang_split(const char *s, const char *sub[3], size_t len[3])
{
	size_t k = 0, n;

	for (;;) {
		for (n = 0; n < 5 && s[n] != '\0' && s[n] != '-'; n++)
			continue;
		if (n == 0 || n > 4 || k == 3)
			return 0;
		sub[k] = s;
		len[k++] = n;
		if (s[n] == '\0')
			return k;
		s += n + 1;
	}
}

/*
 * Normalise the tag s into tmp; NULL, or the reason it is not one.  The
 * forms are SPEC 2's closed list and no other: ll, lll, ll-RR, ll-Ssss,
 * ll-Ssss-RR, ll-999.  So a three-letter language stands alone (no
 * "deu-DE", no "gsw-Latn") and a numeric region follows a two-letter
 * language directly (no "de-Latn-999").
 */
static const char *
lang_norm(const char *s, char tmp[LANG_MAX])
{
	const char *sub[3];
	size_t len[3], k, i, j, o = 0;

	if (s == NULL || (k = lang_split(s, sub, len)) == 0)
		return "not a language tag";
	if (len[0] < 2 || len[0] > 3 || !lang_all(sub[0], len[0], is_alpha) ||
	    (len[0] == 3 && k > 1))
		return "not a language tag";
	for (j = 0; j < len[0]; j++)
		tmp[o++] = to_lower(sub[0][j]);
	i = 1;
	if (i < k && len[i] == 4 && lang_all(sub[i], 4, is_alpha)) {
		tmp[o++] = '-';
		tmp[o++] = to_upper(sub[i][0]);
		for (j = 1; j < 4; j++)
			tmp[o++] = to_lower(sub[i][j]);
		i++;
	}
	if (i < k && ((len[i] == 2 && lang_all(sub[i], 2, is_alpha)) ||
	    (i == 1 && len[i] == 3 && lang_all(sub[i], 3, is_digit)))) {
		tmp[o++] = '-';
		for (j = 0; j < len[i]; j++)
			tmp[o++] = to_upper(sub[i][j]);
		i++;
	}
	tmp[o] = '\0';
	return i == k ? NULL : "not a language tag";
}

/*
 * A language tag of one of the forms ll, lll, ll-RR, ll-Ssss, ll-Ssss-RR
 * or ll-999, in any case.  Returns NULL and writes the normalised tag
 * (language lower case, script title case, region upper case) to out
 * (which may be s), or a reason (out is then the empty string).
 */
const char *
valid_language(const char *s, char out[LANG_MAX])
{
	char tmp[LANG_MAX];
	const char *why;

	if ((why = lang_norm(s, tmp)) != NULL)
		out[0] = '\0';
	else
		memcpy(out, tmp, strlen(tmp) + 1);
	return why;
}

static int
country_cmp(const void *key, const void *elem)
{
	const struct country *c = elem;

	return strcmp(key, c->cc);
}

/*
 * The main language (ISO 639-1, lower case, static storage) of the country
 * whose ISO 3166-1 alpha-2 code is cc, in any case; NULL for anything else.
 */
const char *
lang_of_country(const char *cc)
{
	const struct country *c;
	char key[3];

	if (cc == NULL || !is_alpha((unsigned char)cc[0]) ||
	    !is_alpha((unsigned char)cc[1]) || cc[2] != '\0')
		return NULL;
	key[0] = to_upper(cc[0]);
	key[1] = to_upper(cc[1]);
	key[2] = '\0';
	c = bsearch(key, countries, sizeof(countries) / sizeof(countries[0]),
	    sizeof(countries[0]), country_cmp);
	return c != NULL ? c->lang : NULL;
}

/* At most REDIRECT_MAX bytes of printable ASCII (no space), none in not. */
static int
url_chars(const char *s, const char *not)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= REDIRECT_MAX || (unsigned char)s[i] < 0x21 ||
		    (unsigned char)s[i] > 0x7e || strchr(not, s[i]) != NULL)
			return 0;
	return i > 0;
}

const char *
valid_redirect_prefix(const char *p)
{
	const char *host;

	if (!url_chars(p, ","))
		return "not a URL of printable ASCII without commas";
	if (strncmp(p, "https://", 8) == 0)
		host = p + 8;
	else if (strncmp(p, "http://", 7) == 0)
		host = p + 7;
	else
		return "not an http or https URL";
	if (*host == '/' || strchr(host, '/') == NULL)
		return "no host, or no '/' after the host";
	return NULL;
}

const char *
valid_redirect(const char *url, const char *allow)
{
	const char *p;
	size_t n;

	if (!url_chars(url, ""))
		return "not a URL of printable ASCII";
	for (p = allow; p != NULL && *p != '\0'; p += n + (p[n] == ',')) {
		n = strcspn(p, ",");
		if (n > 0 && strncmp(url, p, n) == 0)
			return NULL;
	}
	return "not under an allowed prefix";
}
