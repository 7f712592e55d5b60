/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Credentials (auth.c): API keys and access tokens.
 */
#ifndef AUTH_H
#define AUTH_H

#include "extern.h"

struct ctx;
struct req;


enum auth_res {
	AUTH_OK, AUTH_NONE, AUTH_BOTH, AUTH_BAD, AUTH_BADTOKEN, AUTH_BUSY,
	AUTH_ERR
};

struct principal {
	int	 token;			/* 1: access token, 0: API key */
	char	 app[UUID_LEN + 1];
	char	 key_type[8];		/* "read" or "write" for keys */
	char	 sub[UUID_LEN + 1];	/* the token's user */
	char	 cred[72];		/* names the credential, no secret */
};

/* Authenticate the caller by either of the two ways. */
enum auth_res	 auth_request(struct ctx *, struct req *, struct principal *);
/* Answer an authentication failure (400/401/500/503) for res. */
void		 auth_fail(struct req *, enum auth_res res);

#endif
