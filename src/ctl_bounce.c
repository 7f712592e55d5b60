/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl bounce: a report that came back to bounce_address,
 * on standard input as an MTA's pipe hands it over (or each message in a
 * maildir's new/), read by dsn.c and applied in one transaction:
 *
 *   failed     the invite failed, with the report's status and
 *              diagnostic; its address on the app's do-not-invite list
 *              (source "bounce"), its other queued invites canceled;
 *   complaint  the address on the list (source "complaint"), the same;
 *   delayed    recorded only;
 *   ignored    recorded with the reason, nothing else changed.
 *
 * The invite is named by the VERP tag of the address the report was
 * delivered to (the MTA's recipient: --recipient, or ORIGINAL_RECIPIENT
 * or RECIPIENT as Postfix's local(8) sets them), else by the tag found
 * in the report; the tag's HMAC must hold (token.c) and a report about
 * another address than the invite's changes nothing.  Every report is a
 * row of bounces.  The exit status is 0 for every report read, so that
 * the MTA does not bounce or retry it; 75 (EX_TEMPFAIL: the MTA tries
 * again later) only when the config, the database or secret.key cannot
 * be read (run as the wrong user) or the database refuses.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "extern.h"
#include "conf.h"
#include "util.h"
#include "valid.h"
#include "token.h"
#include "db.h"
#include "dsn.h"
#include "ctl.h"

#define MAILDIR_MAX	10000	/* messages read in one run */

struct bounce_ctx {
	char		 local[EMAIL_MAX + 1];	/* bounce_address's */
	unsigned char	 secret[32];
};

/* The invite a report is about, found by its tag. */
struct bounced {
	char	 id[UUID_LEN + 1];
	char	 app[UUID_LEN + 1];
	char	 email_norm[EMAIL_MAX + 1];
};

/*
 * Read all of f into a malloc'd buffer, keeping at most DSN_MAX_SIZE + 1
 * bytes (enough for dsn.c to say "too large") and draining the rest, so
 * that the MTA sees its whole message taken.  -1 on a read error.
 */
static int
read_all(FILE *f, char **out, size_t *len)
{
	char chunk[65536], *b;
	size_t n, keep, cap = DSN_MAX_SIZE + 1;

	if ((b = malloc(cap)) == NULL)
		return -1;
	*len = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		keep = cap - *len < n ? cap - *len : n;
		memcpy(b + *len, chunk, keep);
		*len += keep;
	}
	if (ferror(f)) {
		free(b);
		return -1;
	}
	*out = b;
	return 0;
}

/* The invite of a tag whose HMAC holds; -1 with why otherwise. */
static int
find_invite(struct bounce_ctx *b, const char *tag, struct bounced *inv,
    const char **why)
{
	if (tag[0] == '\0' || token_bounce_check(b->secret, tag, inv->id)) {
		inv->id[0] = '\0';	/* a forged tag names nothing */
		*why = tag[0] == '\0' ? "no tag" : "tag not valid";
		return -1;
	}
	if (!ctl_value("SELECT app_id FROM invites WHERE id = ?1", inv->app,
	    sizeof(inv->app), 1, inv->id)) {
		inv->id[0] = '\0';
		*why = "unknown invite";
		return -1;
	}
	ctl_value("SELECT email_normalized FROM invites WHERE id = ?1",
	    inv->email_norm, sizeof(inv->email_norm), 1, inv->id);
	return 0;
}

/* Whether the report's recipient is the invite's (an empty one may be). */
static int
same_address(const struct dsn *d, const struct bounced *inv)
{
	char email[EMAIL_MAX + 1], lower[EMAIL_MAX + 1];

	if (d->rcpt[0] == '\0')
		return d->verdict == DSN_COMPLAINT;
	return valid_email(d->rcpt, email, lower) == NULL &&
	    strcmp(lower, inv->email_norm) == 0;
}

/* The address on the app's list, its queued invites canceled. */
static void
suppress(const struct bounced *inv, const char *source, const char *ts)
{
	ctl_exec(ctl_dialect("INSERT OR IGNORE INTO suppressions (app_id, "
	    "email_normalized, source, created_at) VALUES (?1, ?2, ?3, ?4)",
	    "INSERT INTO suppressions (app_id, email_normalized, source, "
	    "created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"),
	    4, inv->app, inv->email_norm, source, ts);
	ctl_exec("UPDATE invites SET status = 'canceled', last_reply = "
	    "'address on the do-not-invite list', updated_at = ?3 WHERE "
	    "app_id = ?1 AND email_normalized = ?2 AND status = 'queued'", 3,
	    inv->app, inv->email_norm, ts);
}

/* Read one message and apply it; what was done on stdout, one line. */
static void
bounce_one(struct bounce_ctx *b, const char *msg, size_t len,
    const char *rcpt)
{
	struct dsn d;
	struct bounced inv;
	const char *why = NULL, *verdict;
	char tag[BOUNCE_TAG_LEN + 1] = "", ts[21], reply[DSN_DIAG_MAX + 64];
	enum dsn_verdict v;

	memset(&inv, 0, sizeof(inv));
	v = dsn_parse(msg, len, b->local, &d);
	if (rcpt == NULL || dsn_tag_of(rcpt, b->local, tag) == -1)
		COPY(tag, d.tag);
	if (v == DSN_IGNORED)
		why = d.reason;
	else if (find_invite(b, tag, &inv, &why) == -1)
		v = DSN_IGNORED;
	else if (!same_address(&d, &inv)) {
		why = "report about another address";
		v = DSN_IGNORED;
	}
	verdict = dsn_verdict_name(v);
	ctl_now(ts);
	ctl_begin();
	if (v == DSN_FAILED) {
		snprintf(reply, sizeof(reply), "bounced: %s%s%s", d.status,
		    d.diag[0] ? " " : "", d.diag);
		ctl_exec("UPDATE invites SET status = 'failed', last_reply = "
		    "?2, updated_at = ?3 WHERE id = ?1 AND status IN ('sent', "
		    "'sending', 'queued')", 3, inv.id, reply, ts);
		suppress(&inv, "bounce", ts);
	} else if (v == DSN_COMPLAINT)
		suppress(&inv, "complaint", ts);
	ctl_exec("INSERT INTO bounces (received_at, verdict, invite_id, "
	    "app_id, recipient, status, diagnostic, reason) VALUES (?1, ?2, "
	    "?3, ?4, ?5, ?6, ?7, ?8)", 8, ts, verdict,
	    inv.id[0] ? inv.id : NULL, inv.app[0] ? inv.app : NULL,
	    d.rcpt[0] ? d.rcpt : NULL, d.status[0] ? d.status : NULL,
	    d.diag[0] ? d.diag : NULL, why);
	ctl_exec("COMMIT", 0);
	if (v == DSN_IGNORED)
		printf("ignored: %s\n", why);
	else
		printf("%s: invite %s, %s%s%s\n", verdict, inv.id,
		    d.rcpt[0] ? d.rcpt : inv.email_norm, d.status[0] ? " " : "",
		    d.status);
}

/* Each file of dir/new, applied and then moved to dir/cur as seen. */
static void
bounce_maildir(struct bounce_ctx *b, const char *dir)
{
	char path[PATH_MAX], cur[PATH_MAX], to[EMAIL_MAX + 1], *msg;
	struct dirent *de;
	size_t len;
	FILE *f;
	DIR *dp;
	int n = 0;

	snprintf(path, sizeof(path), "%s/new", dir);
	if ((dp = opendir(path)) == NULL)
		ctl_refuse("%s: %s", path, strerror(errno));
	while (n < MAILDIR_MAX && (de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/new/%s", dir, de->d_name);
		snprintf(cur, sizeof(cur), "%s/cur/%s:2,S", dir, de->d_name);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		if (read_all(f, &msg, &len) == -1) {
			fclose(f);
			continue;
		}
		fclose(f);
		bounce_one(b, msg, len, dsn_delivered_to(msg, len, to) == 0 ?
		    to : NULL);
		free(msg);
		if (rename(path, cur) == -1)
			ctl_refuse("%s: %s", cur, strerror(errno));
		n++;
	}
	closedir(dp);
}

int
cmd_bounce(const struct cmd_args *a)
{
	struct bounce_ctx b;
	const char *rcpt = a->o->recipient, *at;
	char err[256], *msg;
	size_t len;

	/* ctl_fail_status is EX_TEMPFAIL (main): the MTA retries. */
	memset(&b, 0, sizeof(b));
	if (ctl_conf == NULL || ctl_conf->bounce_address == NULL)
		ctl_refuse("bounce needs bounce_address in the configuration");
	at = strrchr(ctl_conf->bounce_address, '@');
	snprintf(b.local, sizeof(b.local), "%.*s",
	    (int)(at - ctl_conf->bounce_address), ctl_conf->bounce_address);
	if (token_secret_load(ctl_node, 0, b.secret, err, sizeof(err)) == -1)
		ctl_refuse("%s", err);
	if (rcpt == NULL && (rcpt = getenv("ORIGINAL_RECIPIENT")) == NULL)
		rcpt = getenv("RECIPIENT");
	if (a->o->maildir != NULL)
		bounce_maildir(&b, a->o->maildir);
	else {
		if (read_all(stdin, &msg, &len) == -1)
			ctl_refuse("standard input: %s", strerror(errno));
		bounce_one(&b, msg, len, rcpt);
		free(msg);
	}
	explicit_bzero(b.secret, sizeof(b.secret));
	return 0;
}
