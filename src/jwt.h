/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * JSON Web Tokens (jwt.c): decode, verify, sign HS256.
 */
#ifndef JWT_H
#define JWT_H

#include <time.h>

#include "extern.h"

enum jwt_alg { JWT_NONE, JWT_HS256, JWT_RS256, JWT_ES256 };

struct jwt_key {
	enum jwt_alg	 alg;
	const unsigned char *secret;	/* HS256 */
	size_t		 secretlen;
	const char	*pem;		/* RS256 / ES256 public key */
	const char	*issuer;	/* checked when not NULL */
	const char	*audience;	/* the app's client id */
};

struct jwt_claims {
	char	sub[UUID_LEN + 1];	/* lower case */
	time_t	exp;
};

/*
 * A compact JWS, decoded but not yet verified: the header's algorithm,
 * the signature, and the claims we use (json.c fills those).
 */
struct jwt {
	enum jwt_alg	 alg;		/* JWT_NONE for anything unknown */
	size_t		 signed_len;	/* bytes of "header.payload" */
	unsigned char	 sig[512];
	size_t		 siglen;
	char		*sub;
	char		*iss;
	char		**aud;
	size_t		 naud;
	int		 has_exp, has_nbf, has_iat;
	double		 exp, nbf, iat;
};

/*
 * Decode token (len bytes) into j without verifying it; -1 when it is not a
 * well-formed compact JWS with the claims we need (j is then empty).  Free
 * with jwt_free.
 */
int	 jwt_decode(const char *token, size_t len, struct jwt *j);
void	 jwt_free(struct jwt *j);
/*
 * Verify a decoded token against key at time now, with 60 s leeway: alg
 * pinned to the key's, signature, exp (required), nbf, iat, aud containing
 * key->audience, iss when key->issuer is set, sub a UUID (lower-cased into
 * claims).  Returns 0 or -1; the reason goes to log_debug only.
 */
int	 jwt_verify(const char *token, const struct jwt *j,
	    const struct jwt_key *key, time_t now, struct jwt_claims *claims);
/* The HS256 secret of an app, derived from the server secret. */
void	 jwt_app_secret(const unsigned char *server, size_t serverlen,
	    const char *app_id, int generation, unsigned char out[32]);
/* Mint an HS256 token (for referral-invitesctl token); malloc'd. */
char	*jwt_sign_hs256(const unsigned char *secret, size_t secretlen,
	    const char *iss, const char *aud, const char *sub, time_t iat,
	    time_t exp);
enum jwt_alg jwt_alg_parse(const char *s);
const char *jwt_alg_name(enum jwt_alg a);

#endif
