/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * JSON with cJSON (json.c): request bodies, string literals for answers,
 * and the parts of a JWT.
 */
#ifndef JSON_H
#define JSON_H

#include "util.h"

enum json_err {
	JSON_OK, JSON_EUTF8, JSON_ENUL, JSON_ESYNTAX, JSON_ENOTOBJ, JSON_EDEPTH,
	JSON_EUNKNOWN, JSON_EDUP, JSON_ETYPE, JSON_EMISSING,
	JSON_EDAYS, JSON_EMETA, JSON_EMETA_MANY, JSON_EMETA_VALUE,
	JSON_EMETA_DUP, JSON_EMETA_SIZE,
	JSON__MAX
};

/*
 * The invite body, as plain strings (owned by the struct); the optional
 * members NULL or 0 when not given.  metadata is the object as answered
 * later: compact, members in the order given, strings escaped as
 * json_add_string does; at most META_MAX bytes so.
 */
struct invite_body {
	char	*email;
	char	*language;
	int	 expires_days;		/* 1 to DAYS_MAX */
	char	*metadata;
	char	*redirect_url;
};

/*
 * Parse an invite body of len bytes (not NUL-terminated).  Returns JSON_OK
 * and fills b, or an error with *what set to the offending member name
 * (static storage) where there is one.
 */
enum json_err	 json_invite_body(const char *buf, size_t len,
		    struct invite_body *b, const char **what);
void		 json_invite_body_free(struct invite_body *b);
/* Parse {} (no member at all). */
enum json_err	 json_empty_body(const char *buf, size_t len,
		    const char **what);
/* Parse {"token": "..."}; *token is malloc'd. */
enum json_err	 json_token_body(const char *buf, size_t len, char **token,
		    const char **what);
/* A short English sentence for an error. */
const char	*json_strerror(enum json_err e, const char *what);
/*
 * Append s to b as a JSON string literal (quotes included), escaping
 * everything below 0x20, DEL, '"', '\\', and U+2028/U+2029; 0 or -1.
 */
int		 json_add_string(struct buf *b, const char *s);

struct jwt;

/* The header's "alg" into alg; -1 when missing, odd, or "crit" is set. */
int	 json_jwt_header(const char *buf, size_t len, char alg[16]);
/*
 * The claims we use into j's claim members, which must be zero (the
 * rest of j is left alone); -1 when malformed.  Either way the caller
 * frees what was filled with jwt_free.
 */
int	 json_jwt_payload(const char *buf, size_t len, struct jwt *j);

#endif
