/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Building a mail message (mail.c).
 */
#ifndef MAIL_H
#define MAIL_H

#include <time.h>

#include "extern.h"

struct mail_msg {
	const char	*from;		/* "Name <addr>" or "addr", validated */
	const char	*to;		/* a validated address */
	const char	*subject;	/* UTF-8, no CR/LF */
	const char	*text;		/* UTF-8, LF or CRLF line ends */
	const char	*html;
	const char	*message_id;	/* without <> */
	const char	*unsub_url;	/* List-Unsubscribe target, or NULL */
	time_t		 date;
};

/*
 * Build a complete RFC 5322 message: CRLF line ends, RFC 2047-encoded
 * non-ASCII header text, multipart/alternative with quoted-printable UTF-8
 * parts.  Returns malloc'd bytes and their length, or NULL.
 */
char	*mail_build(const struct mail_msg *m, size_t *lenp);
/* Extract the bare address from "Name <addr>" or "addr"; 0 or -1. */
int	 mail_addr_of(const char *from, char out[EMAIL_MAX + 1]);

#endif
