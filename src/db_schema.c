/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The schema: its migrations, append-only, one a version, and the views
 * an admin reads with sqlite3.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "util.h"
#include "db.h"
#include "db_int.h"
#include "pg.h"

/* The admin's views, as of schema 1; a table rebuild drops and remakes them. */
#define VIEWS_1 \
	"CREATE VIEW invites_overview AS SELECT" \
	"  i.id AS invite_id, a.name AS app, u.email AS inviter," \
	"  i.email AS invitee, i.language_resolved AS language, i.status," \
	"  i.attempts, i.created_at AS created, i.sent_at AS sent," \
	"  i.accepted_at AS accepted" \
	"  FROM invites i JOIN apps a ON a.id = i.app_id" \
	"  JOIN users u ON u.id = i.inviter_id ORDER BY i.created_at DESC;" \
	"CREATE VIEW invite_counts_by_app AS SELECT" \
	"  a.id AS app_id, a.name AS app, count(i.id) AS invites," \
	"  count(i.sent_at) AS sent," \
	"  sum(i.status = 'failed') AS failed," \
	"  count(i.accepted_at) AS accepted" \
	"  FROM apps a LEFT JOIN invites i ON i.app_id = a.id GROUP BY a.id;" \
	"CREATE VIEW invite_counts_by_inviter AS SELECT" \
	"  u.id AS user_id, u.email AS inviter, a.name AS app," \
	"  count(i.id) AS invites, count(i.sent_at) AS sent," \
	"  count(i.accepted_at) AS accepted," \
	"  round(100.0 * count(i.accepted_at) / max(count(i.id), 1), 1)" \
	"    AS conversion_percent" \
	"  FROM users u JOIN apps a ON a.id = u.app_id" \
	"  LEFT JOIN invites i ON i.inviter_id = u.id GROUP BY u.id;" \
	"CREATE VIEW delivery_failures AS SELECT" \
	"  i.id AS invite_id, a.name AS app, i.email AS invitee, i.status," \
	"  i.attempts, i.last_reply, i.updated_at AS last_attempt" \
	"  FROM invites i JOIN apps a ON a.id = i.app_id" \
	"  WHERE i.status = 'failed'" \
	"     OR (i.status = 'queued' AND i.attempts > 0)" \
	"  ORDER BY i.updated_at DESC;"

/* A trigger moving the cache generation on any change to table t. */
#define BUMP(t, op) \
	"CREATE TRIGGER " t "_" op " AFTER " op " ON " t \
	" BEGIN UPDATE cache_generation SET n = n + 1; END;"

/*
 * The row of events (schema 7) for an app with a webhook URL, from one
 * row "app, type, invite, at, data" the trigger selects between the two.
 * The id is the Standard Webhooks message id; the event is tried until
 * three days after it happened.
 */
#define EVENT_FROM \
	"INSERT INTO events (id, app_id, type, invite_id, payload," \
	"  next_attempt_at, give_up_at, created_at)" \
	"  SELECT 'msg_' || lower(hex(randomblob(16))), e.app, e.type," \
	"  e.invite, json_object('type', e.type, 'timestamp', e.at," \
	"  'data', json(e.data)), e.at," \
	"  strftime('%Y-%m-%dT%H:%M:%SZ', e.at, '+3 days'), e.at FROM (SELECT "
#define EVENT_END \
	") e JOIN apps a ON a.id = e.app WHERE a.webhook_url IS NOT NULL;"

/*
 * Schema migrations: migrations[i] takes user_version i to i + 1.  Never
 * edit a released entry; append a new one.
 */
static const char *const migrations[] = {
	/* 0 -> 1: the first schema. */
	"CREATE TABLE apps ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  invite_url TEXT NOT NULL,"
	"  sender TEXT,"
	"  language TEXT,"
	"  jwt_alg TEXT NOT NULL DEFAULT 'HS256'"
	"    CHECK (jwt_alg IN ('HS256', 'RS256', 'ES256')),"
	"  jwt_public_key TEXT,"
	"  jwt_issuer TEXT,"
	"  jwt_generation INTEGER NOT NULL DEFAULT 1,"
	"  accept_ttl INTEGER,"
	"  limit_per_hour INTEGER,"
	"  limit_per_day INTEGER,"
	"  limit_per_minute INTEGER,"
	"  cooldown INTEGER,"
	"  created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL"
	") STRICT;"
	"CREATE TABLE api_keys ("
	"  id TEXT PRIMARY KEY,"
	"  app_id TEXT NOT NULL REFERENCES apps(id),"
	"  type TEXT NOT NULL CHECK (type IN ('read', 'write')),"
	"  key_hash TEXT NOT NULL UNIQUE,"
	"  created_at TEXT NOT NULL,"
	"  revoked_at TEXT"
	") STRICT;"
	"CREATE TABLE users ("
	"  id TEXT PRIMARY KEY,"
	"  app_id TEXT NOT NULL REFERENCES apps(id),"
	"  email TEXT NOT NULL,"
	"  name TEXT,"
	"  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),"
	"  created_at TEXT NOT NULL,"
	"  UNIQUE (app_id, email)"
	") STRICT;"
	"CREATE TABLE invites ("
	"  id TEXT PRIMARY KEY,"
	"  app_id TEXT NOT NULL REFERENCES apps(id),"
	"  inviter_id TEXT NOT NULL REFERENCES users(id),"
	"  email TEXT NOT NULL,"
	"  email_normalized TEXT NOT NULL,"
	"  language_requested TEXT NOT NULL,"
	"  language_resolved TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN"
	"    ('queued', 'sending', 'sent', 'failed', 'canceled')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  last_reply TEXT,"
	"  request_id TEXT,"
	"  accept_token_hash TEXT NOT NULL UNIQUE,"
	"  accepted_at TEXT,"
	"  next_attempt_at TEXT NOT NULL,"
	"  created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL,"
	"  sent_at TEXT"
	") STRICT;"
	"CREATE INDEX invites_by_inviter ON invites (inviter_id, created_at);"
	"CREATE INDEX invites_by_address ON invites"
	"  (app_id, email_normalized, created_at);"
	"CREATE INDEX invites_by_app ON invites (app_id, created_at);"
	"CREATE INDEX invites_due ON invites (status, next_attempt_at);"
	"CREATE TABLE suppressions ("
	"  app_id TEXT NOT NULL REFERENCES apps(id),"
	"  email_normalized TEXT NOT NULL,"
	"  source TEXT NOT NULL CHECK (source IN ('admin', 'opt-out', 'bounce')),"
	"  created_at TEXT NOT NULL,"
	"  PRIMARY KEY (app_id, email_normalized)"
	") STRICT;"
	"CREATE TABLE idempotency_keys ("
	"  app_id TEXT NOT NULL REFERENCES apps(id),"
	"  credential TEXT NOT NULL,"
	"  key TEXT NOT NULL,"
	"  request_hash TEXT NOT NULL,"
	"  status INTEGER NOT NULL DEFAULT 0,"
	"  response TEXT,"
	"  headers TEXT,"
	"  created_at TEXT NOT NULL,"
	"  PRIMARY KEY (app_id, credential, key)"
	") STRICT;"
	VIEWS_1,
	/*
	 * 1 -> 2: invites rebuilt without a UNIQUE index over the token
	 * hashes (accept tokens now name their invite); the mailer's index
	 * only holds the rows it has to look at.  Row ids are kept, for the
	 * list cursors already handed out.
	 */
	"DROP VIEW invites_overview; DROP VIEW invite_counts_by_app;"
	"DROP VIEW invite_counts_by_inviter; DROP VIEW delivery_failures;"
	"CREATE TABLE invites_2 ("
	"  id TEXT PRIMARY KEY,"
	"  app_id TEXT NOT NULL REFERENCES apps(id),"
	"  inviter_id TEXT NOT NULL REFERENCES users(id),"
	"  email TEXT NOT NULL,"
	"  email_normalized TEXT NOT NULL,"
	"  language_requested TEXT NOT NULL,"
	"  language_resolved TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN"
	"    ('queued', 'sending', 'sent', 'failed', 'canceled')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  last_reply TEXT,"
	"  request_id TEXT,"
	"  accept_token_hash TEXT NOT NULL,"
	"  accepted_at TEXT,"
	"  next_attempt_at TEXT NOT NULL,"
	"  created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL,"
	"  sent_at TEXT"
	") STRICT;"
	"INSERT INTO invites_2 (rowid, id, app_id, inviter_id, email,"
	"  email_normalized, language_requested, language_resolved, status,"
	"  attempts, last_reply, request_id, accept_token_hash, accepted_at,"
	"  next_attempt_at, created_at, updated_at, sent_at)"
	"  SELECT rowid, id, app_id, inviter_id, email, email_normalized,"
	"  language_requested, language_resolved, status, attempts,"
	"  last_reply, request_id, accept_token_hash, accepted_at,"
	"  next_attempt_at, created_at, updated_at, sent_at FROM invites;"
	"DROP TABLE invites;"
	"ALTER TABLE invites_2 RENAME TO invites;"
	"CREATE INDEX invites_by_inviter ON invites (inviter_id, created_at);"
	"CREATE INDEX invites_by_address ON invites"
	"  (app_id, email_normalized, created_at);"
	"CREATE INDEX invites_by_app ON invites (app_id, created_at);"
	"CREATE INDEX invites_due ON invites (next_attempt_at, created_at)"
	"  WHERE status = 'queued';"
	"CREATE INDEX invites_sending ON invites (id) WHERE status = 'sending';"
	"CREATE INDEX invites_by_old_token ON invites (accept_token_hash)"
	"  WHERE substr(id, 15, 1) <> '7';"
	VIEWS_1,
	/*
	 * 2 -> 3: a generation that any change to apps, API keys or users
	 * moves, so that workers may cache those rows (cache.c).
	 */
	"CREATE TABLE cache_generation ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  n INTEGER NOT NULL"
	") STRICT;"
	"INSERT INTO cache_generation (id, n) VALUES (1, 1);"
	BUMP("apps", "INSERT") BUMP("apps", "UPDATE") BUMP("apps", "DELETE")
	BUMP("api_keys", "INSERT") BUMP("api_keys", "UPDATE")
	BUMP("api_keys", "DELETE")
	BUMP("users", "INSERT") BUMP("users", "UPDATE") BUMP("users", "DELETE"),
	/*
	 * 3 -> 4: invites counted in fixed slots of each limit's window
	 * (a minute of the inviter's hour, half an hour of the day, a
	 * second of the app's minute), so that a limit check reads a few
	 * dozen rows whatever the limit (limit_check).  Filled from the
	 * invites still in a window.
	 */
	"CREATE TABLE invite_counts ("
	"  kind TEXT NOT NULL CHECK (kind IN ('hour', 'day', 'minute')),"
	"  id TEXT NOT NULL,"
	"  slot INTEGER NOT NULL,"
	"  n INTEGER NOT NULL,"
	"  PRIMARY KEY (kind, id, slot)"
	") STRICT, WITHOUT ROWID;"
	"CREATE INDEX invite_counts_by_slot ON invite_counts (slot);"
	"INSERT INTO invite_counts (kind, id, slot, n)"
	"  SELECT 'hour', inviter_id, unixepoch(created_at) / 60 * 60,"
	"  count(*) FROM invites WHERE created_at > strftime("
	"  '%Y-%m-%dT%H:%M:%SZ', 'now', '-3700 seconds') GROUP BY 2, 3;"
	"INSERT INTO invite_counts (kind, id, slot, n)"
	"  SELECT 'day', inviter_id, unixepoch(created_at) / 1800 * 1800,"
	"  count(*) FROM invites WHERE created_at > strftime("
	"  '%Y-%m-%dT%H:%M:%SZ', 'now', '-88300 seconds') GROUP BY 2, 3;"
	"INSERT INTO invite_counts (kind, id, slot, n)"
	"  SELECT 'minute', app_id, unixepoch(created_at), count(*)"
	"  FROM invites WHERE created_at > strftime("
	"  '%Y-%m-%dT%H:%M:%SZ', 'now', '-70 seconds') GROUP BY 2, 3;",
	/*
	 * 4 -> 5: the invite's life for apps (issue 23).  invites rebuilt
	 * for the statuses 'revoked' and 'hidden' (hide_existing_users: an
	 * invite to a user of the app or a listed address stored and never
	 * mailed, issue 24) in its CHECK, with what revoke, resend
	 * and the POST's optional members record: when it was revoked;
	 * its own lifetime in seconds (NULL: the app's accept TTL); its
	 * metadata (a JSON object, as answered) and redirect URL; how many
	 * times it was resent (the accept token's generation) and when
	 * last.  Each resend is a row of invite_resends too: the limits
	 * count them as they count invites, and the token it replaced
	 * answers 410 (no foreign key, so that a later rebuild of invites
	 * stays a plain copy).  Apps get their allowed redirect prefixes.
	 * Row ids are kept, for the list cursors already handed out.
	 */
	"DROP VIEW invites_overview; DROP VIEW invite_counts_by_app;"
	"DROP VIEW invite_counts_by_inviter; DROP VIEW delivery_failures;"
	"CREATE TABLE invites_5 ("
	"  id TEXT PRIMARY KEY,"
	"  app_id TEXT NOT NULL REFERENCES apps(id),"
	"  inviter_id TEXT NOT NULL REFERENCES users(id),"
	"  email TEXT NOT NULL,"
	"  email_normalized TEXT NOT NULL,"
	"  language_requested TEXT NOT NULL,"
	"  language_resolved TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN"
	"    ('queued', 'sending', 'sent', 'failed', 'canceled', 'revoked',"
	"    'hidden')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  last_reply TEXT,"
	"  request_id TEXT,"
	"  accept_token_hash TEXT NOT NULL,"
	"  accepted_at TEXT,"
	"  next_attempt_at TEXT NOT NULL,"
	"  created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL,"
	"  sent_at TEXT,"
	"  revoked_at TEXT,"
	"  expires_in INTEGER CHECK (expires_in > 0),"
	"  metadata TEXT,"
	"  redirect_url TEXT,"
	"  resends INTEGER NOT NULL DEFAULT 0,"
	"  resent_at TEXT"
	") STRICT;"
	"INSERT INTO invites_5 (rowid, id, app_id, inviter_id, email,"
	"  email_normalized, language_requested, language_resolved, status,"
	"  attempts, last_reply, request_id, accept_token_hash, accepted_at,"
	"  next_attempt_at, created_at, updated_at, sent_at)"
	"  SELECT rowid, id, app_id, inviter_id, email, email_normalized,"
	"  language_requested, language_resolved, status, attempts,"
	"  last_reply, request_id, accept_token_hash, accepted_at,"
	"  next_attempt_at, created_at, updated_at, sent_at FROM invites;"
	"DROP TABLE invites;"
	"ALTER TABLE invites_5 RENAME TO invites;"
	"CREATE INDEX invites_by_inviter ON invites (inviter_id, created_at);"
	"CREATE INDEX invites_by_address ON invites"
	"  (app_id, email_normalized, created_at);"
	"CREATE INDEX invites_by_app ON invites (app_id, created_at);"
	"CREATE INDEX invites_due ON invites (next_attempt_at, created_at)"
	"  WHERE status = 'queued';"
	"CREATE INDEX invites_sending ON invites (id) WHERE status = 'sending';"
	"CREATE INDEX invites_by_old_token ON invites (accept_token_hash)"
	"  WHERE substr(id, 15, 1) <> '7';"
	"CREATE TABLE invite_resends ("
	"  invite_id TEXT NOT NULL,"
	"  app_id TEXT NOT NULL,"
	"  inviter_id TEXT NOT NULL,"
	"  replaced_token_hash TEXT NOT NULL,"
	"  request_id TEXT,"
	"  created_at TEXT NOT NULL"
	") STRICT;"
	"CREATE INDEX invite_resends_by_invite ON invite_resends (invite_id);"
	"CREATE INDEX invite_resends_by_inviter ON invite_resends"
	"  (inviter_id, created_at);"
	"CREATE INDEX invite_resends_by_app ON invite_resends"
	"  (app_id, created_at);"
	"ALTER TABLE apps ADD COLUMN redirect_allow TEXT;"
	VIEWS_1,
	/*
	 * 5 -> 6: bounces that come back later (issue 22).  The
	 * do-not-invite list takes the source 'complaint' (rebuilt for its
	 * CHECK); every report referral-invitesctl bounce reads is a row of
	 * bounces, what it did or why it did nothing.
	 */
	"CREATE TABLE suppressions_6 ("
	"  app_id TEXT NOT NULL REFERENCES apps(id),"
	"  email_normalized TEXT NOT NULL,"
	"  source TEXT NOT NULL CHECK (source IN"
	"    ('admin', 'opt-out', 'bounce', 'complaint')),"
	"  created_at TEXT NOT NULL,"
	"  PRIMARY KEY (app_id, email_normalized)"
	") STRICT;"
	"INSERT INTO suppressions_6 SELECT app_id, email_normalized, source,"
	"  created_at FROM suppressions;"
	"DROP TABLE suppressions;"
	"ALTER TABLE suppressions_6 RENAME TO suppressions;"
	"CREATE TABLE bounces ("
	"  id INTEGER PRIMARY KEY,"
	"  received_at TEXT NOT NULL,"
	"  verdict TEXT NOT NULL CHECK (verdict IN"
	"    ('failed', 'delayed', 'complaint', 'ignored')),"
	"  invite_id TEXT,"
	"  app_id TEXT,"
	"  recipient TEXT,"
	"  status TEXT,"
	"  diagnostic TEXT,"
	"  reason TEXT"
	") STRICT;"
	"CREATE INDEX bounces_by_invite ON bounces (invite_id);",
	/*
	 * 6 -> 7: webhooks (issue 23).  Each app may have a URL (and a
	 * secret generation: the signing secret is derived from the
	 * server secret, never stored).  The outbox, events, is written
	 * by triggers in the transaction of the change itself, whoever
	 * makes it (a worker, the mailer, referral-invitesctl), and only
	 * for apps with a URL; the webhook process (hook.c) delivers it.
	 */
	"ALTER TABLE apps ADD COLUMN webhook_url TEXT;"
	"ALTER TABLE apps ADD COLUMN webhook_generation INTEGER NOT NULL"
	"  DEFAULT 0;"
	"CREATE TABLE events ("
	"  id TEXT PRIMARY KEY,"
	"  app_id TEXT NOT NULL REFERENCES apps(id),"
	"  type TEXT NOT NULL,"
	"  invite_id TEXT,"
	"  payload TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN"
	"    ('pending', 'delivered', 'failed')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt_at TEXT NOT NULL,"
	"  give_up_at TEXT NOT NULL,"
	"  last_reply TEXT,"
	"  created_at TEXT NOT NULL,"
	"  delivered_at TEXT"
	") STRICT;"
	"CREATE INDEX events_due ON events (next_attempt_at)"
	"  WHERE status = 'pending';"
	"CREATE INDEX events_by_app ON events (app_id, created_at);"
	"CREATE TRIGGER events_invite_status AFTER UPDATE OF status ON invites"
	"  WHEN NEW.status <> OLD.status"
	"  AND NEW.status IN ('sent', 'failed', 'revoked') BEGIN "
	EVENT_FROM "NEW.app_id AS app, CASE"
	"  WHEN NEW.status = 'sent' THEN 'invite.sent'"
	"  WHEN NEW.status = 'revoked' THEN 'invite.revoked'"
	"  WHEN substr(NEW.last_reply, 1, 9) = 'bounced: '"
	"  THEN 'invite.bounced'"
	"  ELSE 'invite.failed' END AS type, NEW.id AS invite,"
	"  NEW.updated_at AS at, json_patch(json_object('id', NEW.id,"
	"  'appId', NEW.app_id, 'userId', NEW.inviter_id, 'email', NEW.email),"
	/* A null member of a patch is none (RFC 7396). */
	"  json_object('reason', CASE WHEN NEW.status = 'failed'"
	"  THEN NEW.last_reply END)) AS data" EVENT_END
	"  END;"
	"CREATE TRIGGER events_invite_accepted AFTER UPDATE OF accepted_at"
	"  ON invites WHEN OLD.accepted_at IS NULL"
	"  AND NEW.accepted_at IS NOT NULL BEGIN "
	EVENT_FROM "NEW.app_id AS app, 'invite.accepted' AS type,"
	"  NEW.id AS invite, NEW.accepted_at AS at, json_object('id', NEW.id,"
	"  'appId', NEW.app_id, 'userId', NEW.inviter_id, 'email', NEW.email)"
	"  AS data" EVENT_END
	"  END;"
	/* An opt-out names an address: the invite is the latest to it. */
	"CREATE TRIGGER events_opted_out AFTER INSERT ON suppressions"
	"  WHEN NEW.source = 'opt-out' BEGIN "
	EVENT_FROM "NEW.app_id AS app, 'invite.opted_out' AS type,"
	"  i.id AS invite, NEW.created_at AS at, json_object('id', i.id,"
	"  'appId', NEW.app_id, 'userId', i.inviter_id,"
	"  'email', NEW.email_normalized) AS data"
	"  FROM (SELECT NULL) LEFT JOIN (SELECT id, inviter_id FROM invites"
	"  WHERE app_id = NEW.app_id"
	"  AND email_normalized = NEW.email_normalized"
	"  ORDER BY created_at DESC LIMIT 1) i" EVENT_END
	"  END;",
};
#define SCHEMA_VERSION	((int)(sizeof(migrations) / sizeof(migrations[0])))

int
db_version(struct db *db)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int
db_schema_current(struct db *db)
{
	PGresult *r;
	int ok;

	if (db->pg == NULL)
		return db_version(db) == SCHEMA_VERSION;
	r = PQexec(db->pg, "SELECT version FROM referral_invites_schema");
	ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    atoi(PQgetvalue(r, 0, 0)) == pg_schema_latest();
	PQclear(r);
	return ok;
}

int
db_secret_check(struct db *db, const char check[65], char *err,
    size_t errsz)
{
	const char *val[1] = { check };
	PGresult *r;
	int ok;

	if (db->pg == NULL)
		return 0;
	r = PQexecParams(db->pg, "UPDATE referral_invites_schema"
	    " SET secret_check = $1 WHERE secret_check IS NULL", 1, NULL, val,
	    NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	r = PQexec(db->pg, "SELECT secret_check FROM referral_invites_schema");
	if (!ok || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
	    PQgetisnull(r, 0, 0)) {
		snprintf(err, errsz, "cannot read the nodes' secret check: %.*s",
		    (int)strcspn(PQerrorMessage(db->pg), "\n"),
		    PQerrorMessage(db->pg));
		PQclear(r);
		return -1;
	}
	ok = strlen(PQgetvalue(r, 0, 0)) == 64 &&
	    util_ct_eq(PQgetvalue(r, 0, 0), check, 64);
	PQclear(r);
	if (!ok) {
		snprintf(err, errsz, "not the server secret of the other "
		    "nodes of this database: copy theirs here");
		return -1;
	}
	return 0;
}

int
db_migrate(struct db *db, char *err, size_t errsz)
{
	char sql[64];
	int v;

	if (db_exec(db, "BEGIN IMMEDIATE") == -1 ||
	    (v = db_version(db)) < 0) {
		snprintf(err, errsz, "cannot read the schema version: %s",
		    sqlite3_errmsg(db->h));
		return -1;
	}
	if (v > SCHEMA_VERSION) {
		db_exec(db, "ROLLBACK");
		snprintf(err, errsz, "schema version %d is newer than this "
		    "program (%d)", v, SCHEMA_VERSION);
		return -1;
	}
	for (; v < SCHEMA_VERSION; v++)
		if (db_exec(db, migrations[v]) == -1) {
			snprintf(err, errsz, "migration to version %d: %s",
			    v + 1, sqlite3_errmsg(db->h));
			db_exec(db, "ROLLBACK");
			return -1;
		}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
	if (db_exec(db, sql) == -1 || db_exec(db, "COMMIT") == -1) {
		snprintf(err, errsz, "%s", sqlite3_errmsg(db->h));
		db_exec(db, "ROLLBACK");
		return -1;
	}
	return 0;
}
