/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl: an app's webhook (its URL and signing secret) and
 * the events of the webhook outbox (listed, shown, retried).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "extern.h"
#include "conf.h"
#include "valid.h"
#include "token.h"
#include "webhook.h"
#include "db.h"
#include "ctl.h"

#define RETRY_DAYS	"+3 days"	/* as the triggers of schema 7 */

/* The server secret, read before anything changes: -1 refuses. */
static void
server_secret(unsigned char server[32])
{
	char err[512];

	if (token_secret_load(ctl_node, 0, server, err, sizeof(err)) == -1)
		ctl_refuse("%s", err);
}

/*
 * The signing secret of app's generation now in the database (in the
 * transaction under way: the caller prints it once that committed).
 */
static void
secret_of(const unsigned char server[32], const char *app,
    char text[WEBHOOK_SECRET_LEN + 1])
{
	unsigned char secret[32];
	char gen[24];

	ctl_value("SELECT webhook_generation FROM apps WHERE id = ?1", gen,
	    sizeof(gen), 1, app);
	if (webhook_secret(server, app, atoi(gen), secret) == -1)
		ctl_refuse("cannot derive the webhook secret");
	webhook_secret_text(secret, text);
	OPENSSL_cleanse(secret, sizeof(secret));
}

/* Print text, the secret, once; then forget it and the server's. */
static void
print_secret(char text[WEBHOOK_SECRET_LEN + 1], unsigned char server[32])
{
	if (text[0] != '\0')
		ctl_created("webhookSecret", text);
	OPENSSL_cleanse(text, WEBHOOK_SECRET_LEN + 1);
	OPENSSL_cleanse(server, 32);
}

void
ctl_webhook_check(const char *url)
{
	char why[WEBHOOK_WHY_MAX];

	if (*url != '\0' && webhook_url_check(url, ctl_conf ?
	    ctl_conf->webhook_allow_http : 0, ctl_conf ?
	    ctl_conf->webhook_ports : "443", why) == -1)
		ctl_refuse("%s: --webhook-url: %s", url, why);
}

void
ctl_webhook_url(const char *app, const char *url)
{
	unsigned char server[32];
	char text[WEBHOOK_SECRET_LEN + 1] = "";

	if (*url == '\0') {
		ctl_exec("UPDATE apps SET webhook_url = NULL WHERE id = ?1", 1,
		    app);
		return;
	}
	server_secret(server);
	/* A refusal exits: the transaction rolls back with the process. */
	ctl_begin();
	ctl_exec("UPDATE apps SET webhook_url = ?2 WHERE id = ?1", 2, app,
	    url);
	if (ctl_exec("UPDATE apps SET webhook_generation = 1 WHERE id = ?1 "
	    "AND webhook_generation = 0", 1, app) == 1)
		secret_of(server, app, text);
	ctl_exec("COMMIT", 0);
	print_secret(text, server);
}

int
cmd_app_webhook_secret(const struct cmd_args *a)
{
	unsigned char server[32];
	char id[UUID_LEN + 1], ts[21], text[WEBHOOK_SECRET_LEN + 1];

	ctl_need_app(a->pos[0], id);
	server_secret(server);
	ctl_now(ts);
	/* A new generation: the previous secret stops signing at once. */
	ctl_begin();
	ctl_exec("UPDATE apps SET webhook_generation = webhook_generation + 1,"
	    " updated_at = ?2 WHERE id = ?1", 2, id, ts);
	secret_of(server, id, text);
	ctl_exec("COMMIT", 0);
	print_secret(text, server);
	return 0;
}

int
cmd_events(const struct cmd_args *a)
{
	struct opts *o = a->o;
	char app[UUID_LEN + 1];

	if (o->app != NULL && valid_uuid(o->app, app) != NULL)
		ctl_refuse("%s: not a client id", o->app);
	if (o->status != NULL && strcmp(o->status, "pending") != 0 &&
	    strcmp(o->status, "delivered") != 0 &&
	    strcmp(o->status, "failed") != 0)
		ctl_refuse("%s: --status takes pending, delivered or failed",
		    o->status);
	ctl_rows("SELECT id, app_id, type, invite_id, status, attempts, "
	    "next_attempt_at, last_reply, created_at, delivered_at "
	    "FROM events WHERE (?1 IS NULL OR app_id = ?1) "
	    "AND (?2 IS NULL OR status = ?2) "
	    "ORDER BY created_at DESC, rowid DESC", 0, 2,
	    o->app ? app : NULL, o->status);
	return 0;
}

/* event show ID, event retry ID. */
int
cmd_event(const struct cmd_args *a)
{
	const char *id = a->pos[0];
	char ts[21];

	if (strlen(id) != 36 || strncmp(id, "msg_", 4) != 0 ||
	    strspn(id + 4, "0123456789abcdef") != 32)
		ctl_refuse("%s: not an event id", id);
	if (!ctl_exists("SELECT 1 FROM events WHERE id = ?1", 1, id))
		ctl_refuse("%s: no such event", id);
	if (strcmp(a->verb, "show") == 0) {
		ctl_rows("SELECT id, app_id, type, invite_id, status, "
		    "attempts, next_attempt_at, give_up_at, last_reply, "
		    "created_at, delivered_at, payload FROM events "
		    "WHERE id = ?1", 1, 1, id);
		return 0;
	}
	/* Due now, with three days of tries again; delivered ones too. */
	ctl_now(ts);
	ctl_exec(ctl_dialect("UPDATE events SET status = 'pending', "
	    "attempts = 0, next_attempt_at = ?2, give_up_at = "
	    "strftime('%Y-%m-%dT%H:%M:%SZ', ?2, '" RETRY_DAYS "'), "
	    "delivered_at = NULL WHERE id = ?1", "UPDATE events SET status = "
	    "'pending', attempts = 0, next_attempt_at = ?2, give_up_at = "
	    "to_char((?2::timestamptz AT TIME ZONE 'UTC') + interval '"
	    RETRY_DAYS "', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), delivered_at = "
	    "NULL WHERE id = ?1"), 2, id, ts);
	return 0;
}
