/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl's PostgreSQL connection: connecting with a URI that
 * is never shown unredacted, and statements run with their failures
 * turned into one line of reason.
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "pg_uri.h"
#include "pg.h"

#define PG_CONNECT_TIMEOUT	"10"	/* seconds */

/* The first line of libpq's message on c, or of r's. */
static void
reason(PGconn *c, const PGresult *r, const char *what, char *err,
    size_t errsz)
{
	const char *msg = r != NULL ? PQresultErrorMessage(r) : "";

	if (*msg == '\0')
		msg = PQerrorMessage(c);
	if (*msg == '\0')
		msg = "out of memory";
	snprintf(err, errsz, "%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
}

/* Notices (a DDL's chatter) are not for an admin's terminal. */
static void
quiet(void *arg, const char *msg)
{
}

/*
 * The URI is the dbname, expanded: its own connect_timeout, when given,
 * comes later and wins over ours, without which a server that never
 * answers would hold the tool for the kernel's TCP timeout.
 */
PGconn *
pg_connect(const char *uri, char *err, size_t errsz)
{
	static const char *const keys[] = { "connect_timeout", "dbname",
	    NULL };
	const char *vals[] = { PG_CONNECT_TIMEOUT, uri, NULL };
	PGconn *c;
	char shown[512], why[512];

	pg_uri_redact(uri, shown, sizeof(shown));
	if ((c = PQconnectdbParams(keys, vals, 1)) == NULL) {
		snprintf(err, errsz, "%s: out of memory", shown);
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		reason(c, NULL, shown, why, sizeof(why));
		pg_uri_redact_text(uri, why, err, errsz);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

int
pg_ok(PGconn *c, PGresult *r, ExecStatusType want, const char *what,
    char *err, size_t errsz)
{
	if (r != NULL && PQresultStatus(r) == want)
		return 1;
	reason(c, r, what, err, errsz);
	PQclear(r);
	return 0;
}

int
pg_exec(PGconn *c, const char *sql, char *err, size_t errsz)
{
	PGresult *r = PQexec(c, sql);

	if (!pg_ok(c, r, PGRES_COMMAND_OK, "PostgreSQL", err, errsz))
		return -1;
	PQclear(r);
	return 0;
}
