/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The database layer (db.h is its whole interface; every SQL statement of
 * the daemon is in db*.c).  This file: the connection, its prepared
 * statements (made once per connection and reused), transactions, the
 * helpers the other db*.c files share, and checkpoints.  Every write
 * transaction starts with BEGIN IMMEDIATE so that checks and the insert
 * they guard are one atomic step across all workers.  By role:
 * db_schema.c the schema and its migrations, db_request.c what a
 * request reads and writes, db_writer.c the writer's invites and
 * limits, db_mailer.c the mailer's queue.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "conf.h"
#include "db.h"
#include "db_int.h"
#include "metrics.h"

#define BUSY_TIMEOUT_MS	5000

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
	    " coalesce(cooldown, -1), redirect_allow FROM apps WHERE id = ?1",
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
	/*
	 * Within one slot: how many, and the k-th oldest (?4); a resend
	 * counts as an invite does.
	 */
	[Q_IN_INVITER] = "SELECT (SELECT count(*) FROM invites"
	    " WHERE inviter_id = ?1 AND created_at > ?2 AND created_at < ?3)"
	    " + (SELECT count(*) FROM invite_resends"
	    " WHERE inviter_id = ?1 AND created_at > ?2 AND created_at < ?3)",
	[Q_IN_APP] = "SELECT (SELECT count(*) FROM invites"
	    " WHERE app_id = ?1 AND created_at > ?2 AND created_at < ?3)"
	    " + (SELECT count(*) FROM invite_resends"
	    " WHERE app_id = ?1 AND created_at > ?2 AND created_at < ?3)",
	[Q_NTH_INVITER] = "SELECT created_at FROM invites"
	    " WHERE inviter_id = ?1 AND created_at > ?2 AND created_at < ?3"
	    " UNION ALL SELECT created_at FROM invite_resends"
	    " WHERE inviter_id = ?1 AND created_at > ?2 AND created_at < ?3"
	    " ORDER BY created_at LIMIT 1 OFFSET ?4",
	[Q_NTH_APP] = "SELECT created_at FROM invites"
	    " WHERE app_id = ?1 AND created_at > ?2 AND created_at < ?3"
	    " UNION ALL SELECT created_at FROM invite_resends"
	    " WHERE app_id = ?1 AND created_at > ?2 AND created_at < ?3"
	    " ORDER BY created_at LIMIT 1 OFFSET ?4",
	[Q_INSERT] = "INSERT INTO invites (id, app_id, inviter_id, email,"
	    " email_normalized, language_requested, language_resolved, status,"
	    " request_id, accept_token_hash, next_attempt_at, created_at,"
	    " updated_at, expires_in, metadata, redirect_url) VALUES (?1, ?2,"
	    " ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9, ?10, ?10, ?10, ?11, ?12,"
	    " ?13)",
	/*
	 * hide_existing_users: never mailed, so never due; last_reply (?14)
	 * why, updated_at (?15) when a real one would have been sent.
	 */
	[Q_INSERT_HIDDEN] = "INSERT INTO invites (id, app_id, inviter_id,"
	    " email, email_normalized, language_requested, language_resolved,"
	    " status, request_id, accept_token_hash, next_attempt_at,"
	    " created_at, updated_at, expires_in, metadata, redirect_url,"
	    " last_reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'hidden', ?8,"
	    " ?9, ?10, ?10, ?15, ?11, ?12, ?13, ?14)",
	[Q_STATUS] = "SELECT status, last_reply FROM invites WHERE id = ?1",
	[Q_RECOVER] = "UPDATE invites SET status = 'queued'"
	    " WHERE status = 'sending'",
	[Q_DUE] = "SELECT i.id, i.app_id, i.email, i.email_normalized,"
	    " i.language_resolved, a.name, a.sender, a.invite_url, u.name,"
	    " u.email, i.attempts, coalesce(i.resent_at, i.created_at),"
	    " i.resends, EXISTS (SELECT 1 FROM suppressions s"
	    " WHERE s.app_id = i.app_id"
	    " AND s.email_normalized = i.email_normalized) FROM invites i"
	    " JOIN apps a ON a.id = i.app_id JOIN users u ON u.id = i.inviter_id"
	    " WHERE i.status = 'queued' AND i.next_attempt_at <= ?1"
	    " ORDER BY i.next_attempt_at, i.created_at LIMIT ?2",
	/* One due row whose address opted out since it was queued. */
	[Q_CANCEL_SUPPRESSED] = "UPDATE invites SET status = 'canceled',"
	    " last_reply = 'address on the do-not-invite list',"
	    " updated_at = ?2 WHERE id = ?1 AND status = 'queued'",
	[Q_CLAIM] = "UPDATE invites SET status = 'sending',"
	    " attempts = attempts + 1, updated_at = ?2"
	    " WHERE id = ?1 AND status = 'queued'",
	[Q_MARK] = "UPDATE invites SET status = ?2, last_reply = ?3,"
	    " next_attempt_at = ?4, updated_at = ?5,"
	    " sent_at = CASE WHEN ?2 = 'sent' THEN ?5 ELSE sent_at END"
	    " WHERE id = ?1 AND status = 'sending'",
	[Q_NEXT_DUE] = "SELECT min(next_attempt_at) FROM invites"
	    " WHERE status = 'queued'",
	/*
	 * Index order of invites_by_inviter: no sort, however many rows.  A
	 * hidden invite (hide_existing_users) shows as one sent when its
	 * answer came: whoever lists may show the list to the inviter.
	 */
	[Q_LIST] = "SELECT id, email, language_requested,"
	    " CASE status WHEN 'hidden' THEN 'sent' ELSE status END,"
	    " created_at, CASE status WHEN 'hidden' THEN updated_at"
	    " ELSE sent_at END, accepted_at, strftime('%Y-%m-%dT%H:%M:%SZ',"
	    " unixepoch(coalesce(resent_at, created_at))"
	    " + coalesce(expires_in, ?6), 'unixepoch'), metadata, rowid"
	    " FROM invites WHERE inviter_id = ?2"
	    " AND +app_id = ?1 AND (?3 IS NULL OR created_at < ?3"
	    " OR (created_at = ?3 AND rowid < ?4))"
	    " ORDER BY created_at DESC, rowid DESC LIMIT ?5",
	[Q_ACCEPT_FIND] = "SELECT id, inviter_id, email, status,"
	    " coalesce(resent_at, created_at), accepted_at, accept_token_hash,"
	    " expires_in, metadata, redirect_url FROM invites"
	    " WHERE id = ?1 AND app_id = ?2",
	/* Tokens mailed before schema 2 carry no id (invites_by_old_token). */
	[Q_ACCEPT_FIND_OLD] = "SELECT id, inviter_id, email, status,"
	    " coalesce(resent_at, created_at), accepted_at, accept_token_hash,"
	    " expires_in, metadata, redirect_url FROM invites"
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
	[Q_IDEM_STORED] = "UPDATE idempotency_keys SET status = ?5"
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
	/* db_ops.c: the queue through invites_due, then whole tables. */
	[Q_OPS_QUEUE] = "SELECT count(*), min(created_at) FROM invites"
	    " INDEXED BY invites_due WHERE status = 'queued'",
	[Q_OPS_STATUSES] = "SELECT status, count(*) FROM invites"
	    " GROUP BY status",
	[Q_OPS_SOURCES] = "SELECT source, count(*) FROM suppressions"
	    " GROUP BY source",
	/* The tokens resends replaced: each answers 410. */
	[Q_ACCEPT_REPLACED] = "SELECT replaced_token_hash FROM invite_resends"
	    " WHERE invite_id = ?1",
	/* An inviter's invite in the app, for revoke and resend. */
	[Q_LIFE_FIND] = "SELECT status, accepted_at, email_normalized,"
	    " coalesce(resent_at, created_at), resends, accept_token_hash"
	    " FROM invites WHERE id = ?1 AND app_id = ?2 AND inviter_id = ?3",
	[Q_REVOKE] = "UPDATE invites SET status = 'revoked', revoked_at = ?2,"
	    " updated_at = ?2 WHERE id = ?1 AND status <> 'revoked'"
	    " AND accepted_at IS NULL",
	/* Only from the generation the worker made the new token for. */
	/*
	 * Queued again, or with a reason (?6) hidden again, updated_at (?7)
	 * when a real one would have been sent (hide_existing_users).
	 */
	[Q_RESEND_SET] = "UPDATE invites SET accept_token_hash = ?2,"
	    " resends = resends + 1, resent_at = ?3, status = CASE WHEN"
	    " ?6 IS NULL THEN 'queued' ELSE 'hidden' END, attempts = 0,"
	    " last_reply = ?6, next_attempt_at = ?3,"
	    " updated_at = coalesce(?7, ?3), request_id = ?4"
	    " WHERE id = ?1 AND resends = ?5 AND status IN"
	    " ('queued', 'sent', 'failed', 'hidden') AND accepted_at IS NULL",
	[Q_RESEND_LOG] = "INSERT INTO invite_resends (invite_id, app_id,"
	    " inviter_id, replaced_token_hash, request_id, created_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	/* db_hook.c: the webhook outbox (schema 7). */
	[Q_EVENTS_DUE] = "SELECT e.id, e.app_id, e.payload, e.attempts,"
	    " e.give_up_at, a.webhook_url, a.webhook_generation FROM events e"
	    " JOIN apps a ON a.id = e.app_id WHERE e.status = 'pending'"
	    " AND e.next_attempt_at <= ?1 ORDER BY e.next_attempt_at LIMIT ?2",
	/* Taken while its try lasts: due again if the taker dies. */
	[Q_EVENT_TAKE] = "UPDATE events SET attempts = attempts + 1,"
	    " next_attempt_at = ?2 WHERE id = ?1 AND status = 'pending'"
	    " AND next_attempt_at <= ?3",
	/* Only the try that took it (event retry starts a new count). */
	[Q_EVENT_DONE] = "UPDATE events SET status = ?2, last_reply = ?3,"
	    " next_attempt_at = ?4, delivered_at = CASE WHEN ?2 = 'delivered'"
	    " THEN ?5 END WHERE id = ?1 AND status = 'pending'"
	    " AND attempts = ?6",
	[Q_EVENTS_PURGE] = "DELETE FROM events WHERE status <> 'pending'"
	    " AND created_at < ?1",
	[Q_EVENTS_NEXT] = "SELECT min(next_attempt_at) FROM events"
	    " WHERE status = 'pending'",
};

/* Whether reads may be served from and kept in the cache. */
int
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

	if (count == 0)
		metrics_add(M_BUSY_WAITS);
	if (count >= BUSY_TIMEOUT_MS * 2) {
		metrics_add(M_BUSY_TIMEOUTS);
		return 0;
	}
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
enum db_res
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

/* A bind's result: 0, or -1 with the error logged. */
static int
bound(struct db *db, int rc)
{
	if (rc == SQLITE_OK)
		return 0;
	(void)db_res_of(db, rc);
	return -1;
}

int
bind_text(struct db *db, sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return bound(db, sqlite3_bind_null(st, i));
	return bound(db, sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC));
}

int
bind_int(struct db *db, sqlite3_stmt *st, int i, int64_t n)
{
	return bound(db, sqlite3_bind_int64(st, i, (sqlite3_int64)n));
}

int
bind_texts(struct db *db, sqlite3_stmt *st, const char *const *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (bind_text(db, st, (int)i + 1, v[i]) == -1)
			return -1;
	return 0;
}

char *
col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s == NULL ? NULL : strdup((const char *)s);
}

void
col_copy(sqlite3_stmt *st, int i, char *dst, size_t dstsz)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(dst, dstsz, "%s", s ? (const char *)s : "");
}

/* Run a one-row, one-column query; the text into out (or "" for NULL). */
int
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

time_t
parse_iso(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return 0;
	return timegm(&tm);
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


int
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

/* Run fn inside BEGIN IMMEDIATE ... COMMIT, rolling back on failure. */
enum db_res
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
