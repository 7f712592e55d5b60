/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl: invites (listed, shown, retried, canceled) and an
 * app's do-not-invite list.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "extern.h"
#include "util.h"
#include "valid.h"
#include "ctl.h"

/* --since: a date or an ISO 8601 UTC time, as the database writes them. */
static const char *
norm_since(const char *s, char out[21])
{
	struct tm tm;
	const char *end;

	if (s == NULL)
		return NULL;
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL ||
	    *end != '\0') {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL ||
		    *end != '\0')
			ctl_refuse("%s: --since takes YYYY-MM-DD or "
			    "YYYY-MM-DDTHH:MM:SSZ", s);
	}
	util_isotime(timegm(&tm), out);
	/* strptime accepts 2026-02-31; the round trip must be exact. */
	if (strncmp(out, s, strlen(s) < 20 ? strlen(s) : 20) != 0)
		ctl_refuse("%s: not a valid date", s);
	return out;
}

int
cmd_invites(const struct cmd_args *a)
{
	struct opts *o = a->o;
	static const char *const statuses[] = { "queued", "sending", "sent",
	    "failed", "canceled", "revoked", "hidden", NULL };
	char app[UUID_LEN + 1], sincebuf[21];
	const char *since;
	int i;

	if (o->app != NULL && valid_uuid(o->app, app) != NULL)
		ctl_refuse("%s: not a client id", o->app);
	for (i = 0; o->status != NULL && statuses[i] != NULL; i++)
		if (strcmp(o->status, statuses[i]) == 0)
			break;
	if (o->status != NULL && statuses[i] == NULL)
		ctl_refuse("%s: --status takes queued, sending, sent, failed, "
		    "canceled, revoked or hidden", o->status);
	since = norm_since(o->since, sincebuf);
	ctl_rows("SELECT i.id, a.name AS app, u.email AS inviter, i.email "
	    "AS invitee, i.language_resolved AS language, i.status, "
	    "i.attempts, i.created_at, i.sent_at, i.accepted_at "
	    "FROM invites i JOIN apps a ON a.id = i.app_id "
	    "JOIN users u ON u.id = i.inviter_id "
	    "WHERE (?1 IS NULL OR i.app_id = ?1) "
	    "AND (?2 IS NULL OR i.status = ?2) "
	    "AND (?3 IS NULL OR i.created_at >= ?3) "
	    "ORDER BY i.created_at DESC, i.id", 0, 3,
	    o->app ? app : NULL, o->status, since);
	return 0;
}

/* A cancel that changed nothing: refuse, saying which state id is in. */
static void
cancel_refuse(const char *id)
{
	char status[16] = "";

	ctl_value("SELECT status FROM invites WHERE id = ?1", status,
	    sizeof(status), 1, id);
	ctl_refuse("invite %s is %s, not queued or failed: nothing was done",
	    id, status[0] ? status : "gone");
}

int
cmd_invite(const struct cmd_args *a)
{
	const char *verb = a->verb, *idarg = a->pos[0];
	char id[UUID_LEN + 1], ts[21];

	if (valid_uuid(idarg, id) != NULL)
		ctl_refuse("%s: not an invite id", idarg);
	if (!ctl_exists("SELECT 1 FROM invites WHERE id = ?1", 1, id))
		ctl_refuse("%s: no such invite", id);
	ctl_now(ts);
	if (strcmp(verb, "show") == 0) {
		ctl_rows("SELECT id, app_id, inviter_id, email, "
		    "email_normalized, language_requested, language_resolved,"
		    " status, attempts, last_reply, request_id, created_at, "
		    "updated_at, sent_at, accepted_at, next_attempt_at, "
		    "revoked_at, expires_in, metadata, redirect_url, resends, "
		    "resent_at FROM invites WHERE id = ?1", 1, 1, id);
		return 0;
	}
	if (strcmp(verb, "retry") == 0) {
		if (ctl_exists("SELECT 1 FROM invites i JOIN suppressions s ON "
		    "s.app_id = i.app_id AND s.email_normalized = "
		    "i.email_normalized WHERE i.id = ?1", 1, id))
			ctl_refuse("invite %s: the address is on the "
			    "do-not-invite list", id);
		if (ctl_exec("UPDATE invites SET status = 'queued', "
		    "next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1 AND "
		    "status IN ('failed', 'queued')", 2, id, ts) == 0)
			ctl_refuse("invite %s is not failed or queued", id);
		return 0;
	}
	if (ctl_exec("UPDATE invites SET status = 'canceled', updated_at = ?2 "
	    "WHERE id = ?1 AND status IN ('queued', 'failed')", 2, id,
	    ts) == 0)
		cancel_refuse(id);
	return 0;
}

int
cmd_suppress(const struct cmd_args *a)
{
	const char *verb = a->verb, *appid = a->pos[0];
	const char *addr = a->npos > 1 ? a->pos[1] : NULL;
	char app[UUID_LEN + 1], email[EMAIL_MAX + 1], lower[EMAIL_MAX + 1];
	char ts[21];

	ctl_need_app(appid, app);
	if (strcmp(verb, "list") == 0) {
		ctl_rows("SELECT email_normalized AS email, source, "
		    "created_at FROM suppressions WHERE app_id = ?1 "
		    "ORDER BY created_at DESC, email_normalized", 0, 1, app);
		return 0;
	}
	if (addr == NULL)
		ctl_usage("suppress add|remove needs an address");
	if (valid_email(addr, email, lower) != NULL)
		ctl_refuse("%s: not a valid address", addr);
	ctl_now(ts);
	if (strcmp(verb, "add") == 0) {
		ctl_exec(ctl_dialect("INSERT OR IGNORE INTO suppressions "
		    "(app_id, email_normalized, source, created_at) VALUES "
		    "(?1, ?2, 'admin', ?3)", "INSERT INTO suppressions "
		    "(app_id, email_normalized, source, created_at) VALUES "
		    "(?1, ?2, 'admin', ?3) ON CONFLICT DO NOTHING"), 3, app,
		    lower, ts);
		ctl_exec("UPDATE invites SET status = 'canceled', "
		    "updated_at = ?3 WHERE app_id = ?1 AND "
		    "email_normalized = ?2 AND status = 'queued'", 3, app,
		    lower, ts);
	} else if (ctl_exec("DELETE FROM suppressions WHERE app_id = ?1 AND "
	    "email_normalized = ?2", 2, app, lower) == 0)
		ctl_refuse("%s is not on the list", lower);
	return 0;
}
