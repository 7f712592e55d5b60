/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Input validators (valid.c).
 */
#ifndef VALID_H
#define VALID_H

#include "extern.h"

/*
 * Pure validators.  Each returns NULL when the input is good and writes the
 * normalised form into out; otherwise returns a short English reason.
 */

/* Strictly valid UTF-8: no overlong forms, surrogates or > U+10FFFF. */
int		 valid_utf8(const char *s, size_t len);
/* A UUID in any case; out receives it in lower case. */
const char	*valid_uuid(const char *s, char out[UUID_LEN + 1]);
/*
 * An address as SPEC section 2 defines it.  Surrounding white space is
 * trimmed; out receives the trimmed address as given, lower the same in
 * lower case.  Both buffers are EMAIL_MAX + 1 bytes.
 */
const char	*valid_email(const char *s, char out[EMAIL_MAX + 1],
		    char lower[EMAIL_MAX + 1]);
/* A BCP 47 tag of the shapes SPEC section 2 allows, normalised. */
const char	*valid_language(const char *s, char out[LANG_MAX]);
/*
 * The main language of a bare ISO 3166-1 alpha-2 country code (any case),
 * or NULL when cc is not one we know.
 */
const char	*lang_of_country(const char *cc);
/*
 * An app's allowed redirect prefix: http:// or https://, a host, then a
 * path from its first '/' on (so that a prefix fixes the origin:
 * "https://a.example" would also allow "https://a.example.evil"), at
 * most REDIRECT_MAX bytes of printable ASCII other than ','.
 */
const char	*valid_redirect_prefix(const char *p);
/*
 * A redirectUrl: at most REDIRECT_MAX bytes of printable ASCII, starting
 * with one of the prefixes in allow (comma-separated; NULL or "": none).
 */
const char	*valid_redirect(const char *url, const char *allow);

#endif
