/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Accept and opt-out tokens (token.c).
 */
#ifndef TOKEN_H
#define TOKEN_H

#include <stddef.h>

#include "extern.h"

#define TOKEN_LEN	43		/* base64url of 32 bytes */
#define ACCEPT_ID_LEN	22		/* base64url of an id's 16 bytes */
#define ACCEPT_LEN	(ACCEPT_ID_LEN + TOKEN_LEN)

/*
 * The accept token of an invite: its id, then an HMAC of the id with the
 * server secret.  The id lets the accept route find the row by its
 * primary key, so no index over the token hashes is needed.
 */
void		 token_accept(const unsigned char secret[32], const char *id,
		    char out[ACCEPT_LEN + 1]);
/*
 * The token of generation gen (0: token_accept's): each resend of an
 * invite mails the next one, the HMAC then over the id and gen.
 */
void		 token_accept_gen(const unsigned char secret[32],
		    const char *id, int gen, char out[ACCEPT_LEN + 1]);
/*
 * The invite id an accept token names; -1 for any other shape (tokens
 * mailed before schema 2 are the TOKEN_LEN bytes of the HMAC alone).
 */
int		 token_accept_id(const char *tok, char id[UUID_LEN + 1]);
/*
 * The opt-out token for (app, address): the app id, the address and an
 * HMAC over both, so that it needs no row.  malloc'd.
 */
char		*token_optout(const unsigned char secret[32], const char *app,
		    const char *email_norm);
/* Check an opt-out token; 0 and the app and address, or -1. */
int		 token_optout_check(const unsigned char secret[32],
		    const char *tok, char app[UUID_LEN + 1],
		    char email[EMAIL_MAX + 1]);
/*
 * The VERP tag of an invite (bounce_address): the id's 16 bytes and the
 * first 8 of an HMAC of the id, as lower-case hex, so that a relay that
 * folds the case of a local part keeps it intact.
 */
#define BOUNCE_TAG_LEN	48
void		 token_bounce(const unsigned char secret[32], const char *id,
		    char out[BOUNCE_TAG_LEN + 1]);
/* The invite id a tag names when its HMAC holds (any case); else -1. */
int		 token_bounce_check(const unsigned char secret[32],
		    const char *tag, char id[UUID_LEN + 1]);
/*
 * The fingerprint of a server secret that nodes sharing a PostgreSQL
 * database compare (an HMAC of a fixed label: it tells nothing of the
 * secret), as 64 lower-case hex digits.
 */
void		 token_secret_check(const unsigned char secret[32],
		    char out[65]);
/* Read (or with create, make) the server secret file beside the db. */
int		 token_secret_load(const char *dbpath, int create,
		    unsigned char out[32], char *err, size_t errsz);

#endif
