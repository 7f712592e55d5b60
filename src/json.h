/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * JSON parsing for JWTs (json.c), kept out of extern.h because only jwt.c
 * needs it.
 */
#ifndef JSON_H
#define JSON_H

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
