/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * PostgreSQL connection URIs as the database key names them (pg_uri.c,
 * issue 21): which values are one, their check by libpq's own parser, and
 * the form that may be printed or logged, every password in it replaced.
 */
#ifndef PG_URI_H
#define PG_URI_H

#include <sys/types.h>

/* What stands for a password wherever a URI or a message is shown. */
#define PG_URI_REDACTED	"xxxxx"

/*
 * Whether s names a PostgreSQL database ("postgresql://" or
 * "postgres://", as libpq reads them) rather than a SQLite file.
 */
int	 pg_uri_is(const char *s);
/*
 * Whether uri is a connection URI libpq can use (PQconninfoParse): 0, or
 * -1 with the reason, its passwords redacted, in why.  Nothing connects.
 */
int	 pg_uri_check(const char *uri, char *why, size_t whysz);
/*
 * uri into out, of outsz bytes (truncated, always NUL-terminated), with
 * every password it holds replaced by PG_URI_REDACTED: the password of
 * its user information and the value of each password= parameter.  Where
 * uri is malformed, more is taken for a password rather than less.
 */
void	 pg_uri_redact(const char *uri, char *out, size_t outsz);
/*
 * The same for text, a message that may quote parts of uri (libpq's
 * about a malformed URI do): each occurrence of one of uri's passwords
 * replaced.
 */
void	 pg_uri_redact_text(const char *uri, const char *text, char *out,
	    size_t outsz);

/*
 * The TCP ports the daemon's processes connect to for uri (Landlock's
 * rules, child.c): each host that is not a unix socket's directory with
 * its port (one port for all, or one a host; 5432 without any), into
 * out, at most max, then a 0.  The number of them; 0 for unix sockets
 * only or a URI libpq cannot parse.
 */
#define PG_URI_PORTS_MAX	8
int	 pg_uri_ports(const char *uri, int out[PG_URI_PORTS_MAX + 1]);

#endif
