/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Inside the report reader only (dsn.c, dsn_field.c): a decoded body and
 * the bounded reader of its fields.
 */
#ifndef DSN_INT_H
#define DSN_INT_H

#include <stddef.h>

#define VALUE_MAX	2048	/* bytes of a field value kept */

/* A report's body (decoded), or a group of fields in one. */
struct body {
	const char	*p;
	size_t		 len;
};

struct dsn;

/*
 * The next group of fields after *off in b (blank lines skipped): 0 and
 * g, or -1 at the end.
 */
int	 dsn_group_next(const struct body *b, size_t *off, struct body *g);
/* Append n bytes at s to out (of outsz, used *used), NUL as space. */
void	 dsn_append(char *out, size_t outsz, size_t *used, const char *s,
		    size_t n);
/*
 * The first field called name in group g, unfolded (a continuation
 * line joins with one space), into out: 0, or -1 when there is none.
 */
int	 dsn_field_get(const struct body *g, const char *name, char *out,
		    size_t outsz);
/* A recipient field's address into rcpt: 0, or -1 when not valid. */
int	 dsn_rcpt_of(char *v, int need_type, char rcpt[EMAIL_MAX + 1]);
/* A field value naming an envelope sender: its tag into d->tag. */
void	 dsn_tag_from(char *v, const char *bounce_local, struct dsn *d);
/*
 * A Status value: its class ('2', '4' or '5') and the code in out, or 0.
 * RFC 3464: class "." subject "." detail, 1 to 3 digits each, then an
 * optional comment.
 */
int	 dsn_status_of(char *v, char out[DSN_STATUS_MAX + 1]);
/*
 * A Diagnostic-Code for display: the type ("smtp;") dropped, one line,
 * white space and control characters one space, invalid bytes '?', at
 * most DSN_DIAG_MAX bytes ending on a whole character.
 */
void	 dsn_diag_clean(const char *v, char out[DSN_DIAG_MAX + 1]);

#endif
