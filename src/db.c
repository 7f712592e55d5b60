/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The database: the only file of the daemon with SQL.  Prepared statements
 * are made once per connection and reused; every write transaction starts
 * with BEGIN IMMEDIATE so that checks and the insert they guard are one
 * atomic step across all workers.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "extern.h"
#include "db.h"

#define BUSY_TIMEOUT_MS	5000

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
};
#define SCHEMA_VERSION	((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *const queries[Q__MAX] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_BEGIN_READ] = "BEGIN",
	[Q_GENERATION] = "SELECT n FROM cache_generation",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_APP_GET] = "SELECT id, name, invite_url, sender, language, jwt_alg,"
	    " jwt_public_key, jwt_issuer, jwt_generation,"
	    " coalesce(accept_ttl, -1), coalesce(limit_per_hour, -1),"
	    " coalesce(limit_per_day, -1), coalesce(limit_per_minute, -1),"
	    " coalesce(cooldown, -1) FROM apps WHERE id = ?1",
	[Q_USER_GET] = "SELECT id, email, name, active FROM users"
	    " WHERE id = ?1 AND app_id = ?2",
	[Q_KEY_FIND] = "SELECT app_id, type, key_hash FROM api_keys"
	    " WHERE key_hash = ?1 AND revoked_at IS NULL",
	[Q_IS_MEMBER] = "SELECT 1 FROM users WHERE app_id = ?1 AND email = ?2",
	[Q_IS_SUPPRESSED] = "SELECT 1 FROM suppressions"
	    " WHERE app_id = ?1 AND email_normalized = ?2",
	[Q_COOLDOWN] = "SELECT max(created_at) FROM invites"
	    " WHERE app_id = ?1 AND email_normalized = ?2 AND created_at > ?3",
	/* A limit's slots (limit_check), oldest first. */
	[Q_COUNTS] = "SELECT slot, n FROM invite_counts"
	    " WHERE kind = ?1 AND id = ?2 ORDER BY slot",
	[Q_COUNTS_DROP] = "DELETE FROM invite_counts"
	    " WHERE kind = ?1 AND id = ?2 AND slot < ?3",
	[Q_COUNTS_ADD] = "INSERT INTO invite_counts (kind, id, slot, n)"
	    " VALUES (?1, ?2, ?3, 1) ON CONFLICT DO UPDATE SET n = n + 1",
	[Q_COUNTS_PURGE] = "DELETE FROM invite_counts WHERE slot < ?1",
	/* Within one slot: how many, and the k-th oldest (?4). */
	[Q_IN_INVITER] = "SELECT count(*) FROM invites"
	    " WHERE inviter_id = ?1 AND created_at > ?2 AND created_at < ?3",
	[Q_IN_APP] = "SELECT count(*) FROM invites"
	    " WHERE app_id = ?1 AND created_at > ?2 AND created_at < ?3",
	[Q_NTH_INVITER] = "SELECT created_at FROM invites"
	    " WHERE inviter_id = ?1 AND created_at > ?2 AND created_at < ?3"
	    " ORDER BY created_at LIMIT 1 OFFSET ?4",
	[Q_NTH_APP] = "SELECT created_at FROM invites"
	    " WHERE app_id = ?1 AND created_at > ?2 AND created_at < ?3"
	    " ORDER BY created_at LIMIT 1 OFFSET ?4",
	[Q_INSERT] = "INSERT INTO invites (id, app_id, inviter_id, email,"
	    " email_normalized, language_requested, language_resolved, status,"
	    " request_id, accept_token_hash, next_attempt_at, created_at,"
	    " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9,"
	    " ?10, ?10, ?10)",
	[Q_STATUS] = "SELECT status, last_reply FROM invites WHERE id = ?1",
	[Q_RECOVER] = "UPDATE invites SET status = 'queued'"
	    " WHERE status = 'sending'",
	[Q_DUE] = "SELECT i.id, i.app_id, i.email, i.email_normalized,"
	    " i.language_resolved, a.name, a.sender, a.invite_url, u.name,"
	    " u.email, i.attempts, i.created_at FROM invites i"
	    " JOIN apps a ON a.id = i.app_id JOIN users u ON u.id = i.inviter_id"
	    " WHERE i.status = 'queued' AND i.next_attempt_at <= ?1"
	    " ORDER BY i.next_attempt_at, i.created_at LIMIT ?2",
	[Q_CANCEL_SUPPRESSED] = "UPDATE invites SET status = 'canceled',"
	    " last_reply = 'address on the do-not-invite list',"
	    " updated_at = ?1 WHERE status = 'queued' AND EXISTS"
	    " (SELECT 1 FROM suppressions s WHERE s.app_id = invites.app_id"
	    " AND s.email_normalized = invites.email_normalized)",
	[Q_CLAIM] = "UPDATE invites SET status = 'sending',"
	    " attempts = attempts + 1, updated_at = ?2"
	    " WHERE id = ?1 AND status = 'queued'",
	[Q_MARK] = "UPDATE invites SET status = ?2, last_reply = ?3,"
	    " next_attempt_at = ?4, updated_at = ?5,"
	    " sent_at = CASE WHEN ?2 = 'sent' THEN ?5 ELSE sent_at END"
	    " WHERE id = ?1 AND status = 'sending'",
	[Q_NEXT_DUE] = "SELECT min(next_attempt_at) FROM invites"
	    " WHERE status = 'queued'",
	/* Index order of invites_by_inviter: no sort, however many rows. */
	[Q_LIST] = "SELECT id, email, language_requested, status, created_at,"
	    " sent_at, accepted_at, rowid FROM invites WHERE inviter_id = ?2"
	    " AND +app_id = ?1 AND (?3 IS NULL OR created_at < ?3"
	    " OR (created_at = ?3 AND rowid < ?4))"
	    " ORDER BY created_at DESC, rowid DESC LIMIT ?5",
	[Q_ACCEPT_FIND] = "SELECT id, inviter_id, email, status, created_at,"
	    " accepted_at, accept_token_hash FROM invites"
	    " WHERE id = ?1 AND app_id = ?2",
	/* Tokens mailed before schema 2 carry no id (invites_by_old_token). */
	[Q_ACCEPT_FIND_OLD] = "SELECT id, inviter_id, email, status,"
	    " created_at, accepted_at, accept_token_hash FROM invites"
	    " WHERE accept_token_hash = ?1 AND app_id = ?2"
	    " AND substr(id, 15, 1) <> '7'",
	[Q_ACCEPT_SET] = "UPDATE invites SET accepted_at = ?2, updated_at = ?2"
	    " WHERE id = ?1 AND accepted_at IS NULL",
	[Q_OPTOUT_ADD] = "INSERT INTO suppressions"
	    " (app_id, email_normalized, source, created_at)"
	    " VALUES (?1, ?2, 'opt-out', ?3) ON CONFLICT DO NOTHING",
	[Q_OPTOUT_CANCEL] = "UPDATE invites SET status = 'canceled',"
	    " updated_at = ?3 WHERE app_id = ?1 AND email_normalized = ?2"
	    " AND status = 'queued'",
	[Q_IDEM_GET] = "SELECT request_hash, status, response, headers,"
	    " created_at FROM idempotency_keys"
	    " WHERE app_id = ?1 AND credential = ?2 AND key = ?3",
	[Q_IDEM_CLAIM] = "INSERT INTO idempotency_keys (app_id, credential,"
	    " key, request_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT DO UPDATE SET request_hash = excluded.request_hash,"
	    " status = 0, response = NULL, headers = NULL,"
	    " created_at = excluded.created_at",
	[Q_IDEM_SET] = "UPDATE idempotency_keys SET status = ?4,"
	    " response = ?5, headers = ?6"
	    " WHERE app_id = ?1 AND credential = ?2 AND key = ?3"
	    " AND request_hash = ?7 AND response IS NULL",
	/* The invite's own transaction turns the claim into its answer. */
	[Q_IDEM_STORED] = "UPDATE idempotency_keys SET status = 201"
	    " WHERE app_id = ?1 AND credential = ?2 AND key = ?3"
	    " AND request_hash = ?4 AND status = 0",
	[Q_SAVEPOINT] = "SAVEPOINT invite",
	[Q_DUE_COUNT] = "SELECT count(*) FROM (SELECT 1 FROM invites"
	    " WHERE status = 'queued' AND next_attempt_at <= ?1 LIMIT ?2)",
	[Q_RELEASE] = "RELEASE invite",
	[Q_ROLLBACK_TO] = "ROLLBACK TO invite",
	[Q_IDEM_DEL] = "DELETE FROM idempotency_keys"
	    " WHERE app_id = ?1 AND credential = ?2 AND key = ?3"
	    " AND status = 0 AND request_hash = ?7",
	[Q_IDEM_PURGE] = "DELETE FROM idempotency_keys WHERE created_at < ?1",
	[Q_SUPPRESS_BOUNCE] = "INSERT OR IGNORE INTO suppressions"
	    " (app_id, email_normalized, source, created_at)"
	    " VALUES (?1, ?2, 'bounce', ?3)",
};

struct db {
	sqlite3		*h;
	sqlite3_stmt	*st[Q__MAX];
	unsigned int	 seed;
	struct cache	*cache;		/* NULL: not caching */
	int64_t		 gen;		/* of the rows in the cache */
	int		 fresh;		/* this snapshot has seen gen */
	int		 wal_frames;	/* in the WAL at our last commit */
};

/* Whether reads may be served from and kept in the cache. */
static int
cached(const struct db *db)
{
	return db->cache != NULL && db->fresh;
}

/*
 * Wait a short random while and try again, up to BUSY_TIMEOUT_MS.  Short,
 * jittered sleeps keep writers fair where SQLite's escalating default lets
 * one writer starve the others.
 */
static int
busy_handler(void *arg, int count)
{
	struct db *db = arg;
	struct timespec ts;

	if (count >= BUSY_TIMEOUT_MS * 2)
		return 0;
	ts.tv_sec = 0;
	ts.tv_nsec = 100000 + (long)(rand_r(&db->seed) % 800000);
	nanosleep(&ts, NULL);
	return 1;
}

struct db *
db_open(const char *path, enum sync_mode sync, int readonly)
{
	struct db *db;
	int flags;

	/*
	 * No memory statistics: they cost a global mutex in every one of
	 * SQLite's allocations, and nothing here reads them.  Only possible
	 * before the library initialises; later calls fail harmlessly.
	 */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if ((db = calloc(1, sizeof(*db))) == NULL)
		return NULL;
	db->seed = (unsigned int)getpid() ^ (unsigned int)time(NULL);
	flags = readonly ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db->h, flags | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK) {
		log_warnx("database %s: %s", path, db->h ?
		    sqlite3_errmsg(db->h) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_handler(db->h, busy_handler, db);
	if (db_exec(db, readonly ? "PRAGMA foreign_keys = ON" :
	    "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON") == -1)
		goto fail;
	if (db_exec(db, sync == SYNC_FULL ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL") == -1)
		goto fail;
	/*
	 * No memory-mapped reads: every commit elsewhere makes SQLite unmap
	 * and map the file again, dearer than the preads it saves.
	 */
	if (db_exec(db, "PRAGMA mmap_size = 0") == -1)
		goto fail;
	/* No temporary files outside the database directory (Landlock). */
	if (db_exec(db, "PRAGMA temp_store = MEMORY") == -1)
		goto fail;
	return db;
fail:
	db_close(db);
	return NULL;
}

void
db_close(struct db *db)
{
	int i;

	if (db == NULL)
		return;
	for (i = 0; i < Q__MAX; i++)
		sqlite3_finalize(db->st[i]);
	sqlite3_close(db->h);
	cache_free(db->cache);
	free(db);
}

sqlite3 *
db_handle(struct db *db)
{
	return db->h;
}

int
db_exec(struct db *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("database: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

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
	return db_version(db) == SCHEMA_VERSION;
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

/* The prepared statement for q, reset and cleared; NULL on error. */
sqlite3_stmt *
db_stmt(struct db *db, enum db_query q)
{
	sqlite3_stmt *st = db->st[q];

	if (st == NULL) {
		if (sqlite3_prepare_v3(db->h, queries[q], -1,
		    SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
			log_warnx("prepare: %s", sqlite3_errmsg(db->h));
			return NULL;
		}
		db->st[q] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Map an sqlite3 result to ours, logging the unexpected. */
static enum db_res
db_res_of(struct db *db, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_DONE:
	case SQLITE_ROW:
	case SQLITE_OK:
		return DB_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return DB_BUSY;
	case SQLITE_CONSTRAINT:
		return DB_CONFLICT;
	case SQLITE_FULL:
	case SQLITE_IOERR:
		log_errx("database: %s (is its disk full?)",
		    sqlite3_errmsg(db->h));
		return DB_ERR;
	default:
		log_warnx("database: %s", sqlite3_errmsg(db->h));
		return DB_ERR;
	}
}

static int
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static char *
col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s == NULL ? NULL : strdup((const char *)s);
}

static void
col_copy(sqlite3_stmt *st, int i, char *dst, size_t dstsz)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(dst, dstsz, "%s", s ? (const char *)s : "");
}

void
db_app_free(struct app *a)
{
	free(a->name);
	free(a->invite_url);
	free(a->sender);
	free(a->language);
	free(a->jwt_key);
	free(a->jwt_issuer);
	memset(a, 0, sizeof(*a));
}

enum db_res
db_app_get(struct db *db, const char *id, struct app *a)
{
	sqlite3_stmt *st;
	int rc;

	memset(a, 0, sizeof(*a));
	if (cached(db) && cache_app_get(db->cache, id, a))
		return DB_OK;
	if ((st = db_stmt(db, Q_APP_GET)) == NULL)
		return DB_ERR;
	bind_text(st, 1, id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? DB_NOTFOUND : db_res_of(db, rc);
	}
	col_copy(st, 0, a->id, sizeof(a->id));
	a->name = col_strdup(st, 1);
	a->invite_url = col_strdup(st, 2);
	a->sender = col_strdup(st, 3);
	a->language = col_strdup(st, 4);
	a->jwt_alg = jwt_alg_parse((const char *)sqlite3_column_text(st, 5));
	a->jwt_key = col_strdup(st, 6);
	a->jwt_issuer = col_strdup(st, 7);
	a->jwt_generation = sqlite3_column_int(st, 8);
	a->accept_ttl = sqlite3_column_int(st, 9);
	a->limit_per_hour = sqlite3_column_int(st, 10);
	a->limit_per_day = sqlite3_column_int(st, 11);
	a->limit_per_minute = sqlite3_column_int(st, 12);
	a->cooldown = sqlite3_column_int(st, 13);
	sqlite3_reset(st);
	if (a->name == NULL || a->invite_url == NULL) {
		db_app_free(a);
		return DB_ERR;
	}
	if (cached(db))
		cache_app_put(db->cache, a);
	return DB_OK;
}

void
db_user_free(struct user *u)
{
	free(u->email);
	free(u->name);
	memset(u, 0, sizeof(*u));
}

enum db_res
db_user_get(struct db *db, const char *app, const char *id, struct user *u)
{
	sqlite3_stmt *st;
	int rc;

	memset(u, 0, sizeof(*u));
	if (cached(db) && cache_user_get(db->cache, app, id, u))
		return DB_OK;
	if ((st = db_stmt(db, Q_USER_GET)) == NULL)
		return DB_ERR;
	bind_text(st, 1, id);
	bind_text(st, 2, app);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? DB_NOTFOUND : db_res_of(db, rc);
	}
	col_copy(st, 0, u->id, sizeof(u->id));
	u->email = col_strdup(st, 1);
	u->name = col_strdup(st, 2);
	u->active = sqlite3_column_int(st, 3);
	sqlite3_reset(st);
	if (u->email == NULL)
		return DB_ERR;
	if (cached(db))
		cache_user_put(db->cache, app, u);
	return DB_OK;
}

enum db_res
db_key_find(struct db *db, const char *hash_hex, char app[UUID_LEN + 1],
    char type[8])
{
	sqlite3_stmt *st;
	const unsigned char *h;
	int rc;
	enum db_res res = DB_NOTFOUND;

	if (cached(db) && cache_key_get(db->cache, hash_hex, app, type))
		return DB_OK;
	if ((st = db_stmt(db, Q_KEY_FIND)) == NULL)
		return DB_ERR;
	bind_text(st, 1, hash_hex);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		h = sqlite3_column_text(st, 2);
		/* The index found it; compare anyway, in constant time. */
		if (h != NULL && strlen((const char *)h) == 64 &&
		    util_ct_eq(h, hash_hex, 64)) {
			col_copy(st, 0, app, UUID_LEN + 1);
			col_copy(st, 1, type, 8);
			res = DB_OK;
			if (cached(db))
				cache_key_put(db->cache, hash_hex, app, type);
		}
	} else if (rc != SQLITE_DONE)
		res = db_res_of(db, rc);
	sqlite3_reset(st);
	return res;
}

/* Run a one-row, one-column query; the text into out (or "" for NULL). */
static int
query_text(struct db *db, sqlite3_stmt *st, char *out, size_t outsz)
{
	int rc;

	out[0] = '\0';
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		col_copy(st, 0, out, outsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
query_exists(sqlite3_stmt *st, int *exists)
{
	int rc = sqlite3_step(st);

	*exists = rc == SQLITE_ROW;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static time_t
parse_iso(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

/*
 * A limit's window, counted in fixed slots (invite_counts): the check
 * sums the slots, and only near the limit counts the invites of the one
 * slot the window's start cuts, exactly, from the invites table; so its
 * cost is a few dozen rows whatever the limit and however many invites
 * the window holds, and its answer (and Retry-After, to the second) is
 * that of counting every invite of the window.
 */
struct window {
	const char	*kind;
	int		 len;		/* seconds */
	int		 slot;		/* seconds, a divisor of len */
	int		 by_app;	/* else by inviter */
};

static const struct window win_hour = { "hour", 3600, 60, 0 };
static const struct window win_day = { "day", 86400, 1800, 0 };
static const struct window win_minute = { "minute", 60, 1, 1 };
#define SLOTS_MAX	64		/* len / slot + 1, for each of them */

/* Invites of id in (lo, hi) (unix seconds, exclusive); -1 on error. */
static long long
count_in(struct db *db, const struct window *w, const char *id, time_t lo,
    time_t hi)
{
	sqlite3_stmt *st;
	char a[21], b[21];
	long long n = -1;

	if ((st = db_stmt(db, w->by_app ? Q_IN_APP : Q_IN_INVITER)) == NULL)
		return -1;
	util_isotime(lo, a);
	util_isotime(hi, b);
	bind_text(st, 1, id);
	bind_text(st, 2, a);
	bind_text(st, 3, b);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

/* The k-th oldest (from 0) invite of id in (lo, hi); 0 on error. */
static time_t
nth_in(struct db *db, const struct window *w, const char *id, time_t lo,
    time_t hi, long long k)
{
	sqlite3_stmt *st;
	char a[21], b[21], t[32];

	if ((st = db_stmt(db, w->by_app ? Q_NTH_APP : Q_NTH_INVITER)) == NULL)
		return 0;
	util_isotime(lo, a);
	util_isotime(hi, b);
	bind_text(st, 1, id);
	bind_text(st, 2, a);
	bind_text(st, 3, b);
	sqlite3_bind_int64(st, 4, k);
	if (query_text(db, st, t, sizeof(t)) == -1 || t[0] == '\0')
		return 0;
	return parse_iso(t);
}

/* The slots of id from first on, oldest first (dropping older ones). */
static int
slots_of(struct db *db, const struct window *w, const char *id,
    time_t first, time_t slot[SLOTS_MAX], long long n[SLOTS_MAX])
{
	sqlite3_stmt *st;
	int k = 0, old = 0, rc;

	if ((st = db_stmt(db, Q_COUNTS)) == NULL)
		return -1;
	bind_text(st, 1, w->kind);
	bind_text(st, 2, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_int64(st, 0) < first)
			old = 1;
		else if (k < SLOTS_MAX) {
			slot[k] = (time_t)sqlite3_column_int64(st, 0);
			n[k++] = sqlite3_column_int64(st, 1);
		} else		/* the clock went back: count them all */
			n[k - 1] += sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (old) {
		if ((st = db_stmt(db, Q_COUNTS_DROP)) == NULL)
			return -1;
		bind_text(st, 1, w->kind);
		bind_text(st, 2, id);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)first);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return k;
}

/*
 * Whether a window limit is exhausted (a limit of 0 is off): an invite
 * counts while it is younger than the window.  When it is, *retry gets
 * the seconds until a slot frees (the later of two limits).  -1 on error.
 */
static int
limit_check(struct db *db, const struct window *w, const char *id,
    time_t now, int limit, int *retry)
{
	time_t slot[SLOTS_MAX], since = now - w->len, edge, t = 0;
	long long n[SLOTS_MAX], full = 0, part = 0, need;
	int k, i;

	if (limit <= 0)
		return 0;
	/* The slot the window's start cuts: only its later part counts. */
	edge = (since + 1) / w->slot * w->slot;
	if ((k = slots_of(db, w, id, edge, slot, n)) == -1)
		return -1;
	for (i = 0; i < k; i++)
		full += slot[i] == edge ? 0 : n[i];
	if (full + (k > 0 && slot[0] == edge ? n[0] : 0) < limit)
		return 0;
	if (k > 0 && slot[0] == edge && (part = count_in(db, w, id, since,
	    edge + w->slot)) == -1)
		return -1;
	if (full + part < limit)
		return 0;
	/* The need-th oldest of the window must leave it first. */
	need = full + part - limit + 1;
	if (need <= part)
		t = nth_in(db, w, id, since, edge + w->slot, need - 1);
	else
		for (need -= part, i = 0; i < k && t == 0; i++) {
			if (slot[i] == edge)
				continue;
			if (need <= n[i])
				t = nth_in(db, w, id, slot[i] - 1,
				    slot[i] + w->slot, need - 1);
			else
				need -= n[i];
		}
	if (t == 0)
		return -1;
	if (t + w->len - now > *retry)
		*retry = (int)(t + w->len - now);
	if (*retry < 1)
		*retry = 1;
	return 1;
}

/* Count a stored invite in the slots of its limits' windows. */
static int
limit_count(struct db *db, const struct invite_new *in, time_t now)
{
	const struct window *ws[] = { &win_hour, &win_day, &win_minute };
	sqlite3_stmt *st;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
		if ((st = db_stmt(db, Q_COUNTS_ADD)) == NULL)
			return -1;
		bind_text(st, 1, ws[i]->kind);
		bind_text(st, 2, ws[i]->by_app ? in->app_id : in->inviter_id);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)(now / ws[i]->slot *
		    ws[i]->slot));
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return 0;
}

int
db_counts_purge(struct db *db, time_t now)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, Q_COUNTS_PURGE)) == NULL)
		return -1;
	/* Past the longest window: slots no check reads again. */
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(now - win_day.len -
	    win_day.slot));
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? sqlite3_changes(db->h) : -1;
}

/* The checks of one invite, inside the write transaction. */
static enum invite_res
invite_checks(struct db *db, const struct invite_new *in, time_t now,
    int *retry)
{
	sqlite3_stmt *st;
	char since[21], last[32];
	int r, hit = 0;

	*retry = 0;
	if ((r = limit_check(db, &win_hour, in->inviter_id, now,
	    in->limit_hour, retry)) < 0)
		return INV_ERR;
	hit |= r;
	if ((r = limit_check(db, &win_day, in->inviter_id, now,
	    in->limit_day, retry)) < 0)
		return INV_ERR;
	hit |= r;
	if ((r = limit_check(db, &win_minute, in->app_id, now,
	    in->limit_minute, retry)) < 0)
		return INV_ERR;
	if (hit || r)
		return INV_LIMIT;

	if ((st = db_stmt(db, Q_IS_MEMBER)) == NULL)
		return INV_ERR;
	bind_text(st, 1, in->app_id);
	bind_text(st, 2, in->email_norm);
	if (query_exists(st, &r) == -1)
		return INV_ERR;
	if (r)
		return INV_MEMBER;
	if ((st = db_stmt(db, Q_IS_SUPPRESSED)) == NULL)
		return INV_ERR;
	bind_text(st, 1, in->app_id);
	bind_text(st, 2, in->email_norm);
	if (query_exists(st, &r) == -1)
		return INV_ERR;
	if (r)
		return INV_SUPPRESSED;
	if (in->cooldown > 0) {
		if ((st = db_stmt(db, Q_COOLDOWN)) == NULL)
			return INV_ERR;
		util_isotime(now - in->cooldown, since);
		bind_text(st, 1, in->app_id);
		bind_text(st, 2, in->email_norm);
		bind_text(st, 3, since);
		if (query_text(db, st, last, sizeof(last)) == -1)
			return INV_ERR;
		if (last[0] != '\0')
			return INV_COOLDOWN;
	}
	return INV_OK;
}

static enum invite_res
invite_insert(struct db *db, const struct invite_new *in, time_t now)
{
	sqlite3_stmt *st;
	char ts[21];
	int rc;

	if ((st = db_stmt(db, Q_INSERT)) == NULL)
		return INV_ERR;
	util_isotime(now, ts);
	bind_text(st, 1, in->id);
	bind_text(st, 2, in->app_id);
	bind_text(st, 3, in->inviter_id);
	bind_text(st, 4, in->email);
	bind_text(st, 5, in->email_norm);
	bind_text(st, 6, in->lang_req);
	bind_text(st, 7, in->lang_res);
	bind_text(st, 8, in->request_id);
	bind_text(st, 9, in->token_hash);
	bind_text(st, 10, ts);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	switch (db_res_of(db, rc)) {
	case DB_OK:
		return INV_OK;
	case DB_BUSY:
		return INV_BUSY;
	default:
		return INV_ERR;
	}
}

static int
step_simple(struct db *db, enum db_query q)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, q)) == NULL)
		return SQLITE_ERROR;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc;
}

/*
 * The invite's Idempotency-Key claim becomes its answer ("stored, answer
 * to come") in the invite's transaction: a request that dies after the
 * commit leaves a key that replays the invite, never one that lets a
 * retry store a second.  INV_IDEM when the claim is not this request's
 * any more (it lapsed and another request took it, or answered it).
 */
static enum invite_res
invite_idem(struct db *db, const struct invite_new *in)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, Q_IDEM_STORED)) == NULL)
		return INV_ERR;
	bind_text(st, 1, in->app_id);
	bind_text(st, 2, in->idem_cred);
	bind_text(st, 3, in->idem_key);
	bind_text(st, 4, in->idem_hash);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (db_res_of(db, rc) != DB_OK)
		return INV_ERR;
	return sqlite3_changes(db->h) == 1 ? INV_OK : INV_IDEM;
}

enum invite_res
db_invite_add(struct db *db, const struct invite_new *in, time_t now,
    int *retry)
{
	enum invite_res res;

	/*
	 * Only inside the caller's transaction: after a failure SQLite may
	 * have rolled it back (a full disk), and a savepoint would then
	 * commit this invite alone, before the batch's answer says 500.
	 */
	if (sqlite3_get_autocommit(db->h))
		return INV_ERR;
	if ((res = invite_checks(db, in, now, retry)) != INV_OK)
		return res;
	/*
	 * The key's answer, the invite and its counts, all or none, inside
	 * a batch that may commit others.
	 */
	if (step_simple(db, Q_SAVEPOINT) != SQLITE_DONE)
		return INV_ERR;
	if (in->idem_key != NULL)
		res = invite_idem(db, in);
	if (res == INV_OK)
		res = invite_insert(db, in, now);
	if (res == INV_OK && limit_count(db, in, now) == -1)
		res = INV_ERR;
	if (res != INV_OK)
		step_simple(db, Q_ROLLBACK_TO);
	if (step_simple(db, Q_RELEASE) != SQLITE_DONE && res == INV_OK)
		res = INV_ERR;
	return res;
}

enum db_res
db_begin(struct db *db)
{
	db->fresh = 0;
	return db_res_of(db, step_simple(db, Q_BEGIN));
}

int
db_cache_enable(struct db *db)
{
	if (db->cache == NULL && (db->cache = cache_new()) == NULL)
		return -1;
	return 0;
}

/*
 * With a cache, the snapshot's first read is the cache generation: rows
 * cached under another generation are dropped before anything is served.
 */
enum db_res
db_read_begin(struct db *db)
{
	sqlite3_stmt *st;
	enum db_res res;
	int64_t gen;
	int rc;

	db->fresh = 0;
	res = db_res_of(db, step_simple(db, Q_BEGIN_READ));
	if (res != DB_OK || db->cache == NULL)
		return res;
	if ((st = db_stmt(db, Q_GENERATION)) == NULL) {
		step_simple(db, Q_ROLLBACK);
		return DB_ERR;
	}
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		/* The error before the rollback replaces its message. */
		res = rc == SQLITE_DONE ? DB_ERR : db_res_of(db, rc);
		sqlite3_reset(st);
		step_simple(db, Q_ROLLBACK);
		return res;
	}
	gen = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (gen != db->gen) {
		cache_flush(db->cache);
		db->gen = gen;
	}
	db->fresh = 1;
	return DB_OK;
}

enum db_res
db_commit(struct db *db)
{
	enum db_res res;

	db->fresh = 0;
	if ((res = db_res_of(db, step_simple(db, Q_COMMIT))) != DB_OK)
		step_simple(db, Q_ROLLBACK);
	return res;
}

void
db_rollback(struct db *db)
{
	db->fresh = 0;
	step_simple(db, Q_ROLLBACK);
}

enum invite_res
db_invite_create(struct db *db, const struct invite_new *in, int *retry)
{
	enum invite_res res;
	enum db_res dr;

	if ((dr = db_begin(db)) != DB_OK)
		return dr == DB_BUSY ? INV_BUSY : INV_ERR;
	if ((res = db_invite_add(db, in, time(NULL), retry)) != INV_OK) {
		db_rollback(db);
		return res;
	}
	if ((dr = db_commit(db)) != DB_OK)
		return dr == DB_BUSY ? INV_BUSY : INV_ERR;
	return INV_OK;
}

enum db_res
db_invite_status(struct db *db, const char *id, char status[16],
    char *reply, size_t replysz)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, Q_STATUS)) == NULL)
		return DB_ERR;
	bind_text(st, 1, id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? DB_NOTFOUND : db_res_of(db, rc);
	}
	col_copy(st, 0, status, 16);
	col_copy(st, 1, reply, replysz);
	sqlite3_reset(st);
	return DB_OK;
}

/* ------------------------------------------------------------- mailer */

int
db_outbox_recover(struct db *db)
{
	int rc = step_simple(db, Q_RECOVER);

	return rc == SQLITE_DONE ? sqlite3_changes(db->h) : -1;
}

ssize_t
db_outbox_due(struct db *db, time_t now, size_t max)
{
	sqlite3_stmt *st;
	char ts[21];
	ssize_t n = -1;

	if ((st = db_stmt(db, Q_DUE_COUNT)) == NULL)
		return -1;
	util_isotime(now, ts);
	bind_text(st, 1, ts);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = (ssize_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

void
db_outbox_free(struct outbox *o, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(o[i].email);
		free(o[i].email_norm);
		free(o[i].app_name);
		free(o[i].sender);
		free(o[i].invite_url);
		free(o[i].inviter_name);
		free(o[i].inviter_email);
	}
	free(o);
}

static int
outbox_fill(struct outbox *o, sqlite3_stmt *st)
{
	col_copy(st, 0, o->id, sizeof(o->id));
	col_copy(st, 1, o->app_id, sizeof(o->app_id));
	o->email = col_strdup(st, 2);
	o->email_norm = col_strdup(st, 3);
	col_copy(st, 4, o->language, sizeof(o->language));
	o->app_name = col_strdup(st, 5);
	o->sender = col_strdup(st, 6);
	o->invite_url = col_strdup(st, 7);
	o->inviter_name = col_strdup(st, 8);
	o->inviter_email = col_strdup(st, 9);
	o->attempts = sqlite3_column_int(st, 10) + 1;
	col_copy(st, 11, o->created_at, sizeof(o->created_at));
	return o->email && o->email_norm && o->app_name && o->invite_url &&
	    o->inviter_email ? 0 : -1;
}

ssize_t
db_outbox_claim(struct db *db, time_t now, size_t max, struct outbox **out)
{
	sqlite3_stmt *st = NULL, *up;
	struct outbox *o = NULL;
	char ts[21];
	size_t n = 0;
	int rc;

	*out = NULL;
	if ((o = calloc(max, sizeof(*o))) == NULL)
		return -1;
	if (step_simple(db, Q_BEGIN) != SQLITE_DONE)
		goto fail;
	util_isotime(now, ts);
	/* An address may have opted out since its invite was queued. */
	if ((st = db_stmt(db, Q_CANCEL_SUPPRESSED)) == NULL)
		goto rollback;
	bind_text(st, 1, ts);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto rollback;
	if ((st = db_stmt(db, Q_DUE)) == NULL)
		goto rollback;
	bind_text(st, 1, ts);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		if (outbox_fill(&o[n++], st) == -1)
			goto rollback;
	sqlite3_reset(st);
	if ((up = db_stmt(db, Q_CLAIM)) == NULL)
		goto rollback;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(up);
		bind_text(up, 1, o[i].id);
		bind_text(up, 2, ts);
		if (sqlite3_step(up) != SQLITE_DONE)
			goto rollback;
	}
	sqlite3_reset(up);
	if (step_simple(db, Q_COMMIT) != SQLITE_DONE)
		goto rollback;
	if (n == 0) {
		free(o);
		return 0;
	}
	*out = o;
	return (ssize_t)n;
rollback:
	sqlite3_reset(st);
	step_simple(db, Q_ROLLBACK);
fail:
	db_outbox_free(o, n);
	return -1;
}

int
db_outbox_mark(struct db *db, const char *id, const char *status,
    const char *reply, time_t next)
{
	sqlite3_stmt *st;
	char ts[21], nx[21];
	int rc;

	if ((st = db_stmt(db, Q_MARK)) == NULL)
		return -1;
	util_isotime(time(NULL), ts);
	util_isotime(next, nx);
	bind_text(st, 1, id);
	bind_text(st, 2, status);
	bind_text(st, 3, reply);
	bind_text(st, 4, nx);
	bind_text(st, 5, ts);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return db_res_of(db, rc) == DB_OK ? 0 : -1;
}

int
db_suppress_bounce(struct db *db, const char *app, const char *email_norm)
{
	sqlite3_stmt *st;
	char ts[21];
	int rc;

	if ((st = db_stmt(db, Q_SUPPRESS_BOUNCE)) == NULL)
		return -1;
	util_isotime(time(NULL), ts);
	bind_text(st, 1, app);
	bind_text(st, 2, email_norm);
	bind_text(st, 3, ts);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * A permanent refusal: the row failed and the address on the app's list,
 * in one transaction, so that the 400 a worker answers when it sees
 * "failed" always comes with the listing, whatever crashes after.
 */
int
db_outbox_bounce(struct db *db, const char *id, const char *reply,
    const char *app, const char *email_norm)
{
	if (db_begin(db) != DB_OK)
		return -1;
	if (db_suppress_bounce(db, app, email_norm) == -1 ||
	    db_outbox_mark(db, id, "failed", reply, time(NULL)) == -1) {
		db_rollback(db);
		return -1;
	}
	return db_commit(db) == DB_OK ? 0 : -1;
}

int
db_checkpoint(struct db *db, int restart)
{
	int logged = 0, done = 0, rc;

	/*
	 * Never a wait, for a lock or for a reader: a process that sleeps
	 * with the write lock held, on two cores busy with fifty others,
	 * wakes tens of milliseconds later.
	 */
	sqlite3_busy_handler(db->h, NULL, NULL);
	rc = sqlite3_wal_checkpoint_v2(db->h, NULL, restart ?
	    SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE, &logged,
	    &done);
	sqlite3_busy_handler(db->h, busy_handler, db);
	if (rc != SQLITE_OK) {
		log_debug("checkpoint: %s", sqlite3_errmsg(db->h));
		return -1;
	}
	return logged == done ? 0 : -1;
}

int
db_sync(struct db *db)
{
	sqlite3_file *f = NULL;

	if (sqlite3_file_control(db->h, "main", SQLITE_FCNTL_FILE_POINTER,
	    &f) != SQLITE_OK || f == NULL || f->pMethods == NULL ||
	    f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) != SQLITE_OK)
		return -1;
	return 0;
}

/* SQLite's WAL hook: called after each of our commits. */
static int
wal_count(void *arg, sqlite3 *h, const char *name, int frames)
{
	struct db *db = arg;

	(void)h;
	(void)name;
	db->wal_frames = frames;
	return SQLITE_OK;
}

void
db_wal_watch(struct db *db)
{
	/* Replaces SQLite's automatic checkpoint, which is off anyway. */
	sqlite3_wal_hook(db->h, wal_count, db);
}

int
db_wal_frames(const struct db *db)
{
	return db->wal_frames;
}

time_t
db_outbox_next_due(struct db *db)
{
	sqlite3_stmt *st;
	char t[32];

	if ((st = db_stmt(db, Q_NEXT_DUE)) == NULL ||
	    query_text(db, st, t, sizeof(t)) == -1 || t[0] == '\0')
		return 0;
	return parse_iso(t);
}

/* --------------------------------------------------- the other routes */

enum db_res
db_invites_list(struct db *db, const char *app, const char *user,
    const char *before_time, int64_t before, int limit, db_row_fn fn,
    void *arg)
{
	sqlite3_stmt *st;
	const char *cols[7];
	int rc, i;

	if ((st = db_stmt(db, Q_LIST)) == NULL)
		return DB_ERR;
	bind_text(st, 1, app);
	bind_text(st, 2, user);
	if (before_time != NULL) {
		bind_text(st, 3, before_time);
		sqlite3_bind_int64(st, 4, before);
	}
	sqlite3_bind_int(st, 5, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (i = 0; i < 7; i++)
			cols[i] = (const char *)sqlite3_column_text(st, i);
		if (fn(arg, cols, sqlite3_column_int64(st, 7)) == -1) {
			sqlite3_reset(st);
			return DB_ERR;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? DB_OK : db_res_of(db, rc);
}

static enum db_res
accept_step(struct db *db, const char *app, const char *id,
    const char *hash, int ttl, struct accepted *out)
{
	sqlite3_stmt *st;
	char status[16], ts[21], stored[65];
	time_t now = time(NULL);
	int rc;

	if ((st = db_stmt(db, id ? Q_ACCEPT_FIND : Q_ACCEPT_FIND_OLD)) == NULL)
		return DB_ERR;
	bind_text(st, 1, id ? id : hash);
	bind_text(st, 2, app);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? DB_NOTFOUND : db_res_of(db, rc);
	}
	col_copy(st, 0, out->id, sizeof(out->id));
	col_copy(st, 1, out->inviter, sizeof(out->inviter));
	col_copy(st, 2, out->email, sizeof(out->email));
	col_copy(st, 3, status, sizeof(status));
	col_copy(st, 4, ts, sizeof(ts));
	col_copy(st, 5, out->accepted_at, sizeof(out->accepted_at));
	col_copy(st, 6, stored, sizeof(stored));
	sqlite3_reset(st);
	/* The id is public; the token's hash is what proves it. */
	if (strlen(stored) != 64 || !util_ct_eq(stored, hash, 64)) {
		memset(out, 0, sizeof(*out));
		return DB_NOTFOUND;
	}
	if (out->accepted_at[0] != '\0') {
		out->why = ACCEPT_USED;
		return DB_OK;
	}
	if (strcmp(status, "canceled") == 0) {
		out->why = ACCEPT_CANCELED;
		return DB_OK;
	}
	if (parse_iso(ts) + ttl < now) {
		out->why = ACCEPT_EXPIRED;
		return DB_OK;
	}
	util_isotime(now, out->accepted_at);
	if ((st = db_stmt(db, Q_ACCEPT_SET)) == NULL)
		return DB_ERR;
	bind_text(st, 1, out->id);
	bind_text(st, 2, out->accepted_at);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_res_of(db, rc);
	out->why = sqlite3_changes(db->h) == 1 ? ACCEPT_OK : ACCEPT_USED;
	return DB_OK;
}

/* Run fn inside BEGIN IMMEDIATE ... COMMIT, rolling back on failure. */
static enum db_res
in_tx(struct db *db, enum db_res res_of_fn(struct db *, void *), void *arg)
{
	enum db_res res;
	int rc;

	rc = step_simple(db, Q_BEGIN);
	if (rc != SQLITE_DONE)
		return db_res_of(db, rc);
	if ((res = res_of_fn(db, arg)) != DB_OK) {
		step_simple(db, Q_ROLLBACK);
		return res;
	}
	if ((rc = step_simple(db, Q_COMMIT)) != SQLITE_DONE) {
		res = db_res_of(db, rc);
		step_simple(db, Q_ROLLBACK);
	}
	return res;
}

struct accept_args {
	const char	*app, *id, *hash;
	int		 ttl;
	struct accepted	*out;
};

static enum db_res
accept_fn(struct db *db, void *arg)
{
	struct accept_args *a = arg;

	return accept_step(db, a->app, a->id, a->hash, a->ttl, a->out);
}

enum db_res
db_invite_accept(struct db *db, const char *app, const char *id,
    const char *hash, int ttl, struct accepted *out)
{
	struct accept_args a = { app, id, hash, ttl, out };

	memset(out, 0, sizeof(*out));
	return in_tx(db, accept_fn, &a);
}

struct optout_args {
	const char	*app, *email;
	int		 canceled;
};

static enum db_res
optout_fn(struct db *db, void *arg)
{
	struct optout_args *a = arg;
	sqlite3_stmt *st;
	char ts[21];
	int rc;
	enum db_query q[2] = { Q_OPTOUT_ADD, Q_OPTOUT_CANCEL };

	util_isotime(time(NULL), ts);
	for (int i = 0; i < 2; i++) {
		if ((st = db_stmt(db, q[i])) == NULL)
			return DB_ERR;
		bind_text(st, 1, a->app);
		bind_text(st, 2, a->email);
		bind_text(st, 3, ts);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return db_res_of(db, rc);
	}
	a->canceled = sqlite3_changes(db->h);
	return DB_OK;
}

enum db_res
db_optout(struct db *db, const char *app, const char *email, int *canceled)
{
	struct optout_args a = { app, email, 0 };
	enum db_res res = in_tx(db, optout_fn, &a);

	*canceled = a.canceled;
	return res;
}

/* ------------------------------------------------------- idempotency */

struct idem_args {
	const char	*app, *cred, *key, *hash;
	int		 stale;
	struct idem	*out;
};

#define IDEM_TTL	86400

static enum db_res
idem_fn(struct db *db, void *arg)
{
	struct idem_args *a = arg;
	sqlite3_stmt *st;
	char ts[21], created[32];
	time_t now = time(NULL), t;
	int rc, i;

	if ((st = db_stmt(db, Q_IDEM_GET)) == NULL)
		return DB_ERR;
	bind_text(st, 1, a->app);
	bind_text(st, 2, a->cred);
	bind_text(st, 3, a->key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		col_copy(st, 4, created, sizeof(created));
		t = parse_iso(created);
		a->out->status = sqlite3_column_int(st, 1);
		a->out->age = (long)(now - t);
		if (t + IDEM_TTL > now && (a->out->status != 0 ||
		    t + a->stale > now)) {
			a->out->same = strcmp((const char *)
			    sqlite3_column_text(st, 0), a->hash) == 0;
			a->out->body = col_strdup(st, 2);
			a->out->headers = col_strdup(st, 3);
			a->out->found = 1;
			sqlite3_reset(st);
			return DB_OK;
		}
		a->out->status = 0;
	} else if (rc != SQLITE_DONE) {
		sqlite3_reset(st);
		return db_res_of(db, rc);
	}
	sqlite3_reset(st);
	if ((st = db_stmt(db, Q_IDEM_CLAIM)) == NULL)
		return DB_ERR;
	util_isotime(now, ts);
	for (i = 0; i < 3; i++)
		bind_text(st, i + 1, i == 0 ? a->app : i == 1 ? a->cred :
		    a->key);
	bind_text(st, 4, a->hash);
	bind_text(st, 5, ts);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? DB_OK : db_res_of(db, rc);
}

enum db_res
db_idem_begin(struct db *db, const char *app, const char *cred,
    const char *key, const char *hash, int stale, struct idem *out)
{
	struct idem_args a = { app, cred, key, hash, stale, out };

	memset(out, 0, sizeof(*out));
	return in_tx(db, idem_fn, &a);
}

enum db_res
db_idem_end(struct db *db, const char *app, const char *cred,
    const char *key, const char *hash, int status, const char *body,
    const char *headers)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, status ? Q_IDEM_SET : Q_IDEM_DEL)) == NULL)
		return DB_ERR;
	bind_text(st, 1, app);
	bind_text(st, 2, cred);
	bind_text(st, 3, key);
	/* Only this request's claim: it may have lapsed and been retaken. */
	bind_text(st, 7, hash);
	if (status) {
		sqlite3_bind_int(st, 4, status);
		bind_text(st, 5, body);
		bind_text(st, 6, headers);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? DB_OK : db_res_of(db, rc);
}

int
db_idem_purge(struct db *db)
{
	sqlite3_stmt *st;
	char ts[21];
	int rc;

	if ((st = db_stmt(db, Q_IDEM_PURGE)) == NULL)
		return -1;
	util_isotime(time(NULL) - IDEM_TTL, ts);
	bind_text(st, 1, ts);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? sqlite3_changes(db->h) : -1;
}
