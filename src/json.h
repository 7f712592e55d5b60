/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * JSON parsing for JWTs (json.c), kept out of extern.h because only jwt.c
 * needs it.
 */
#ifndef JSON_H
#define JSON_H

struct jwt_payload {
	char	*sub;
	char	*iss;
	char	**aud;
	size_t	 naud;
	int	 has_exp, has_nbf, has_iat;
	double	 exp, nbf, iat;
};

/* The header's "alg" into alg; -1 when missing, odd, or "crit" is set. */
int	 json_jwt_header(const char *buf, size_t len, char alg[16]);
/* The claims we use; -1 when malformed.  Free with json_jwt_free. */
int	 json_jwt_payload(const char *buf, size_t len, struct jwt_payload *);
void	 json_jwt_free(struct jwt_payload *);

#endif
