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

#include <libpq-fe.h>
#include <sqlite3.h>

#include "log.h"
#include "util.h"
#include "conf.h"
#include "db.h"
#include "db_int.h"
#include "metrics.h"
#include "pg_uri.h"
#include "pg.h"

#define BUSY_TIMEOUT_MS	5000

/* The due invites a mailer's round reads (Q_DUE, both dialects). */
#define DUE	"SELECT i.id, i.app_id, i.email, i.email_normalized," \
	    " i.language_resolved, a.name, a.sender, a.invite_url, u.name," \
	    " u.email, i.attempts, coalesce(i.resent_at, i.created_at)," \
	    " i.resends, EXISTS (SELECT 1 FROM suppressions s" \
	    " WHERE s.app_id = i.app_id" \
	    " AND s.email_normalized = i.email_normalized) FROM invites i" \
	    " JOIN apps a ON a.id = i.app_id JOIN users u ON u.id = i.inviter_id" \
	    " WHERE i.status = 'queued' AND i.next_attempt_at <= ?1" \
	    " ORDER BY i.next_attempt_at, i.created_at LIMIT ?2"

static const char *const queries[Q__MAX] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_BEGIN_READ] = "BEGIN",
	[Q_BEGIN_OUTBOX] = "BEGIN IMMEDIATE",
	/* PostgreSQL only (db_outbox_keep): SQLite has one mailer. */
	[Q_NOTIFY] = "SELECT ?1",
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
	/* PostgreSQL's only (pg_begin; a claim's lease, Q_CLAIM below). */
	[Q_WRITE_LOCK] = "SELECT 1",
	[Q_TOUCH] = "UPDATE invites SET next_attempt_at = ?2"
	    " WHERE id = ?1 AND status = 'sending'",
	/* A claim never tried: as if never made (a mailer's stop). */
	[Q_UNCLAIM] = "UPDATE invites SET status = 'queued',"
	    " attempts = attempts - 1 WHERE id = ?1 AND status = 'sending'",
	[Q_DUE] = DUE,
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
	    " WHERE status = 'queued' AND next_attempt_at <= ?1 LIMIT ?2) AS due",
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

/*
 * PostgreSQL's form of the statements where its dialect differs (NULL:
 * the SQLite text above, its ?N made $N).  Every write transaction of a
 * request (Q_BEGIN) takes one advisory lock, held to its end: those of
 * all nodes run one at a time, as BEGIN IMMEDIATE makes them in one
 * SQLite file, so that the limits, the cooldown and the do-not-invite
 * list are exact across nodes with the very checks SQLite runs.  Reads
 * and the mailers' rounds (Q_BEGIN_OUTBOX) take none.
 */
#define PG_VERDICTS	"referral_invites_verdicts"	/* the channel */
static const char *const queries_pg[Q__MAX] = {
	[Q_BEGIN] = "BEGIN; SELECT pg_try_advisory_xact_lock(" PG_WRITE_LOCK
	    ")",
	[Q_WRITE_LOCK] = "SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK ")",
	/*
	 * The mailers' rounds take no write lock: their claims change only
	 * rows no check of the writer counts, and two mailers never claim
	 * one row, each skipping the rows another's round holds.
	 */
	[Q_BEGIN_OUTBOX] = "BEGIN",
	/*
	 * A verdict recorded, told to every node's mailer when it commits
	 * (and never when it rolls back): the one whose worker waits for
	 * the invite tells it (db_verdicts_heard, mailer.c's verdict_heard).
	 */
	[Q_NOTIFY] = "SELECT pg_notify('" PG_VERDICTS "', ?1)",
	[Q_DUE] = DUE " FOR UPDATE OF i SKIP LOCKED",
	[Q_BEGIN_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ",
	[Q_COUNTS_ADD] = "INSERT INTO invite_counts (kind, id, slot, n)"
	    " VALUES (?1, ?2, ?3, 1) ON CONFLICT (kind, id, slot)"
	    " DO UPDATE SET n = invite_counts.n + 1",
	[Q_LIST] = "SELECT id, email, language_requested,"
	    " CASE status WHEN 'hidden' THEN 'sent' ELSE status END,"
	    " created_at, CASE status WHEN 'hidden' THEN updated_at"
	    " ELSE sent_at END, accepted_at, to_char((coalesce(resent_at,"
	    " created_at)::timestamptz AT TIME ZONE 'UTC') + make_interval("
	    " secs => coalesce(expires_in, ?6::integer)),"
	    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), metadata, rowid"
	    " FROM invites WHERE inviter_id = ?2"
	    " AND app_id = ?1 AND (?3::text IS NULL OR created_at < ?3"
	    " OR (created_at = ?3 AND rowid < ?4::bigint))"
	    " ORDER BY created_at DESC, rowid DESC LIMIT ?5",
	[Q_IDEM_CLAIM] = "INSERT INTO idempotency_keys (app_id, credential,"
	    " key, request_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (app_id, credential, key) DO UPDATE SET"
	    " request_hash = excluded.request_hash, status = 0,"
	    " response = NULL, headers = NULL,"
	    " created_at = excluded.created_at",
	[Q_SUPPRESS_BOUNCE] = "INSERT INTO suppressions"
	    " (app_id, email_normalized, source, created_at)"
	    " VALUES (?1, ?2, 'bounce', ?3) ON CONFLICT DO NOTHING",
	[Q_OPS_QUEUE] = "SELECT count(*), min(created_at) FROM invites"
	    " WHERE status = 'queued'",
	/*
	 * A claim is a lease: next_attempt_at (?3) is when it lapses should
	 * its mailer never record it, as an event's try (Q_EVENT_TAKE);
	 * the mailer moves it on while it holds the claim (Q_TOUCH), and
	 * any mailer queues again a claim past it (Q_RECOVER, ?1 now).
	 */
	[Q_CLAIM] = "UPDATE invites SET status = 'sending',"
	    " attempts = attempts + 1, updated_at = ?2, next_attempt_at = ?3"
	    " WHERE id = ?1 AND status = 'queued'",
	[Q_RECOVER] = "UPDATE invites SET status = 'queued'"
	    " WHERE status = 'sending' AND next_attempt_at < ?1",
	[Q_RESEND_SET] = "UPDATE invites SET accept_token_hash = ?2,"
	    " resends = resends + 1, resent_at = ?3, status = CASE WHEN"
	    " ?6::text IS NULL THEN 'queued' ELSE 'hidden' END, attempts = 0,"
	    " last_reply = ?6, next_attempt_at = ?3,"
	    " updated_at = coalesce(?7, ?3), request_id = ?4"
	    " WHERE id = ?1 AND resends = ?5 AND status IN"
	    " ('queued', 'sent', 'failed', 'hidden') AND accepted_at IS NULL",
	[Q_MARK] = "UPDATE invites SET status = ?2, last_reply = ?3,"
	    " next_attempt_at = ?4, updated_at = ?5,"
	    " sent_at = CASE WHEN ?2::text = 'sent' THEN ?5 ELSE sent_at END"
	    " WHERE id = ?1 AND status = 'sending'",
	[Q_EVENT_DONE] = "UPDATE events SET status = ?2, last_reply = ?3,"
	    " next_attempt_at = ?4, delivered_at = CASE WHEN"
	    " ?2::text = 'delivered' THEN ?5 END WHERE id = ?1"
	    " AND status = 'pending' AND attempts = ?6",
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

static int
sqlite_open(struct db *db, const char *path, enum sync_mode sync,
    int readonly)
{
	int flags;

	/*
	 * No memory statistics: they cost a global mutex in every one of
	 * SQLite's allocations, and nothing here reads them.  Only possible
	 * before the library initialises; later calls fail harmlessly.
	 */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	flags = readonly ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db->h, flags | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK) {
		log_warnx("database %s: %s", path, db->h ?
		    sqlite3_errmsg(db->h) : "out of memory");
		return -1;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_handler(db->h, busy_handler, db);
	if (db_exec(db, readonly ? "PRAGMA foreign_keys = ON" :
	    "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON") == -1)
		return -1;
	if (db_exec(db, sync == SYNC_FULL ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL") == -1)
		return -1;
	/*
	 * No memory-mapped reads: every commit elsewhere makes SQLite unmap
	 * and map the file again, dearer than the preads it saves.
	 */
	if (db_exec(db, "PRAGMA mmap_size = 0") == -1)
		return -1;
	/* No temporary files outside the database directory (Landlock). */
	if (db_exec(db, "PRAGMA temp_store = MEMORY") == -1)
		return -1;
	return 0;
}

/*
 * A session's settings, at its start and after each reconnection.  A
 * commit of SYNC_NORMAL (the mailer's verdicts, the webhooks' tries)
 * returns before the server flushed it, as SQLite's synchronous =
 * NORMAL does; an invite's commit (SYNC_FULL) always waits, for the
 * synchronous standby too where the server has one.  A lock held
 * elsewhere (another node's transaction, an admin's psql) is waited for
 * as long as SQLite's busy handler waits, then SQLITE_BUSY: a 503 with
 * Retry-After.
 */
static void	pg_why(struct db *, const PGresult *);

static int
pg_session(struct db *db)
{
	PGresult *r;
	int ok;

	r = PQexec(db->pg, db->pg_full ? "SET synchronous_commit = on; "
	    "SET lock_timeout = " STRINGIFY(BUSY_TIMEOUT_MS) :
	    "SET synchronous_commit = off; "
	    "SET lock_timeout = " STRINGIFY(BUSY_TIMEOUT_MS));
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (ok && db->listen) {
		PQclear(r);
		r = PQexec(db->pg, "LISTEN " PG_VERDICTS);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	}
	if (!ok) {
		pg_why(db, r);
		log_warnx("database: %s", db->err);
	}
	PQclear(r);
	return ok ? 0 : -1;
}

int
db_verdicts_listen(struct db *db)
{
	if (db->pg == NULL)
		return 0;
	db->listen = 1;
	return pg_session(db);
}

int
db_verdicts_fd(struct db *db)
{
	return db->pg != NULL && PQstatus(db->pg) == CONNECTION_OK ?
	    PQsocket(db->pg) : -1;
}

int
db_verdicts_heard(struct db *db, void (*fn)(void *, const char *id,
    const char *status, const char *reply), void *arg)
{
	PGnotify *n;
	char *status, *reply;
	int rc;

	if (db->pg == NULL || !db->listen)
		return 0;
	rc = PQconsumeInput(db->pg) == 1 ? 0 : -1;
	while ((n = PQnotifies(db->pg)) != NULL) {
		/* "id status reply", as db_outbox_keep sends it. */
		if (n->be_pid != PQbackendPID(db->pg) &&
		    (status = strchr(n->extra, ' ')) != NULL &&
		    (reply = strchr(status + 1, ' ')) != NULL) {
			*status++ = '\0';
			*reply++ = '\0';
			fn(arg, n->extra, status, reply);
		}
		PQfreemem(n);
	}
	return rc;
}

static int
pg_open(struct db *db, const char *uri, enum sync_mode sync)
{
	char err[1024];

	if ((db->pg = pg_connect(uri, err, sizeof(err))) == NULL) {
		log_warnx("database %s", err);
		return -1;
	}
	db->pg_full = sync == SYNC_FULL;
	return pg_session(db) == -1 ? -1 : 0;
}

struct db *
db_open(const char *path, enum sync_mode sync, int readonly)
{
	struct db *db;
	int i, rc;

	if ((db = calloc(1, sizeof(*db))) == NULL)
		return NULL;
	db->seed = (unsigned int)getpid() ^ (unsigned int)time(NULL);
	for (i = 0; i < Q__MAX; i++) {
		db->st[i].db = db;
		db->st[i].q = i;
		db->st[i].row = -1;
	}
	rc = pg_uri_is(path) ? pg_open(db, path, sync) :
	    sqlite_open(db, path, sync, readonly);
	if (rc == -1) {
		db_close(db);
		return NULL;
	}
	return db;
}

void
db_close(struct db *db)
{
	int i;

	if (db == NULL)
		return;
	for (i = 0; i < Q__MAX; i++) {
		sqlite3_finalize(db->st[i].sq);
		PQclear(db->st[i].r);
	}
	sqlite3_close(db->h);
	if (db->pg != NULL)
		PQfinish(db->pg);
	cache_free(db->cache);
	free(db);
}

sqlite3 *
db_handle(struct db *db)
{
	return db->h;
}

int
db_shared(const struct db *db)
{
	return db->pg != NULL;
}

/* PostgreSQL's error on r (NULL: the connection's) into db->err. */
static void
pg_why(struct db *db, const PGresult *r)
{
	const char *msg = r != NULL ? PQresultErrorMessage(r) : "";

	if (*msg == '\0')
		msg = PQerrorMessage(db->pg);
	snprintf(db->err, sizeof(db->err), "%.*s", (int)strcspn(msg, "\n"),
	    *msg ? msg : "out of memory");
}

/*
 * The SQLite result code for PostgreSQL's error on r: its SQLSTATE's
 * class decides, so that the code above handles both engines alike.
 */
static int
pg_rc(struct db *db, const PGresult *r)
{
	const char *code = r != NULL ? PQresultErrorField(r,
	    PG_DIAG_SQLSTATE) : NULL;

	pg_why(db, r);
	/*
	 * A server gone (its connection lost, shut down, in recovery, a
	 * standby now read-only): busy, a 503 with Retry-After while the
	 * next statement connects again, to the new primary after a
	 * failover.
	 */
	if (PQstatus(db->pg) != CONNECTION_OK)
		return SQLITE_BUSY;
	/* libpq's own: a connection lost before libpq says so, or memory. */
	if (code == NULL) {
		db->reconnect = 1;
		return SQLITE_BUSY;
	}
	if (strncmp(code, "23", 2) == 0)
		return SQLITE_CONSTRAINT;
	if (strcmp(code, "25006") == 0 || strncmp(code, "57P", 3) == 0) {
		db->reconnect = 1;	/* not a primary (any more) */
		return SQLITE_BUSY;
	}
	if (strcmp(code, "40001") == 0 || strcmp(code, "40P01") == 0 ||
	    strcmp(code, "55P03") == 0 || strncmp(code, "08", 2) == 0)
		return SQLITE_BUSY;
	if (strncmp(code, "53", 2) == 0)
		return SQLITE_FULL;
	return SQLITE_ERROR;
}

/*
 * A connection lost is made again before the next statement (libpq
 * tries every host of the URI, so a failover's new primary too), its
 * statements then prepared anew.  -1 while it cannot be.
 */
static int
pg_alive(struct db *db)
{
	int i;

	if (PQstatus(db->pg) == CONNECTION_OK && !db->reconnect)
		return 0;
	/* Never inside a transaction: its statements fail until it ends. */
	if (PQstatus(db->pg) == CONNECTION_OK &&
	    PQtransactionStatus(db->pg) != PQTRANS_IDLE)
		return 0;
	db->reconnect = 0;
	PQreset(db->pg);
	for (i = 0; i < Q__MAX; i++)
		db->st[i].prepared = 0;
	if (PQstatus(db->pg) != CONNECTION_OK) {
		pg_why(db, NULL);
		return -1;
	}
	if (pg_session(db) == -1) {
		db->reconnect = 1;
		return -1;
	}
	log_info("database: connected again");
	return 0;
}

int
db_exec(struct db *db, const char *sql)
{
	PGresult *r;
	char *msg = NULL;
	int ok;

	if (db->pg != NULL) {
		if (pg_alive(db) == -1) {
			log_warnx("database: %s", db->err);
			return -1;
		}
		r = PQexec(db->pg, sql);
		if (!(ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
		    PQresultStatus(r) == PGRES_TUPLES_OK)) {
			(void)pg_rc(db, r);
			log_warnx("database: %s", db->err);
		}
		PQclear(r);
		return ok ? 0 : -1;
	}
	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("database: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/*
 * Statement q's PostgreSQL text, ?N made $N, and the highest N.  A
 * statement without parameters runs as a simple query (it may then be
 * several, as Q_BEGIN is); one with them is prepared once per session.
 */
static int
pg_prepare(struct db *db, struct stmt *st)
{
	const char *src = queries_pg[st->q] ? queries_pg[st->q] :
	    queries[st->q];
	char sql[2048], name[16];
	size_t o = 0;
	/* A parameter no text names (Q_IDEM_DEL's ?4) is typed text. */
	Oid types[STMT_PARAMS];
	int n, i;
	PGresult *r;

	st->nparams = 0;
	for (i = 0; i < STMT_PARAMS; i++)
		types[i] = 25;	/* TEXTOID, PostgreSQL's pg_type.h */
	for (; *src != '\0' && o + 2 < sizeof(sql); src++) {
		if (*src == '?' && src[1] >= '0' && src[1] <= '9') {
			sql[o++] = '$';
			n = atoi(src + 1);
			if (n > st->nparams)
				st->nparams = n;
			if (n >= 1 && n <= STMT_PARAMS)
				types[n - 1] = 0;	/* inferred */
			continue;
		}
		sql[o++] = *src;
	}
	sql[o] = '\0';
	if (st->nparams > STMT_PARAMS || *src != '\0') {
		log_warnx("prepare: statement %d too big", st->q);
		return -1;
	}
	st->prepared = 1;
	if (st->nparams == 0)
		return 0;
	snprintf(name, sizeof(name), "q%d", st->q);
	r = PQprepare(db->pg, name, sql, st->nparams, types);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		(void)pg_rc(db, r);
		log_warnx("prepare: %s", db->err);
		PQclear(r);
		st->prepared = 0;
		return -1;
	}
	PQclear(r);
	return 0;
}

struct stmt *
db_stmt(struct db *db, enum db_query q)
{
	struct stmt *st = &db->st[q];

	if (db->pg != NULL) {
		st_reset(st);
		memset(st->vals, 0, sizeof(st->vals));
		/*
		 * No server (a failover under way): the statement, which
		 * st_step answers SQLITE_BUSY, so that the caller says 503.
		 */
		if (pg_alive(db) == -1) {
			log_warnx("database: %s", db->err);
			return st;
		}
		if (!st->prepared && pg_prepare(db, st) == -1)
			return PQstatus(db->pg) != CONNECTION_OK ? st : NULL;
		return st;
	}
	if (st->sq == NULL) {
		if (sqlite3_prepare_v3(db->h, queries[q], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->sq, NULL) != SQLITE_OK) {
			log_warnx("prepare: %s", sqlite3_errmsg(db->h));
			return NULL;
		}
	}
	sqlite3_reset(st->sq);
	sqlite3_clear_bindings(st->sq);
	return st;
}

/* Run st on PostgreSQL: its rows kept, or the count of those changed. */
static int
pg_run(struct stmt *st)
{
	struct db *db = st->db;
	char name[16];
	int rc;

	if (PQstatus(db->pg) != CONNECTION_OK || !st->prepared) {
		pg_why(db, NULL);
		return SQLITE_BUSY;
	}
	if (st->nparams == 0) {
		st->r = PQexec(db->pg, queries_pg[st->q] ?
		    queries_pg[st->q] : queries[st->q]);
	} else {
		snprintf(name, sizeof(name), "q%d", st->q);
		st->r = PQexecPrepared(db->pg, name, st->nparams, st->vals,
		    NULL, NULL, 0);
	}
	switch (PQresultStatus(st->r)) {
	case PGRES_TUPLES_OK:
		st->nrows = PQntuples(st->r);
		st->row = -1;
		return SQLITE_ROW;
	case PGRES_COMMAND_OK:
		/* A transaction a failed statement aborted ends so. */
		if (st->q == Q_COMMIT &&
		    strcmp(PQcmdStatus(st->r), "COMMIT") != 0) {
			snprintf(db->err, sizeof(db->err), "the transaction "
			    "was rolled back");
			PQclear(st->r);
			st->r = NULL;
			return SQLITE_ERROR;
		}
		db->changes = atoi(PQcmdTuples(st->r));
		st->nrows = 0;
		st->row = -1;
		return SQLITE_DONE;
	default:
		rc = pg_rc(db, st->r);
		PQclear(st->r);
		st->r = NULL;
		return rc;
	}
}

int
st_step(struct stmt *st)
{
	int rc;

	if (st->db->pg == NULL)
		return sqlite3_step(st->sq);
	if (st->r == NULL && (rc = pg_run(st)) != SQLITE_ROW &&
	    rc != SQLITE_DONE)
		return rc;
	if (++st->row < st->nrows)
		return SQLITE_ROW;
	st->row = st->nrows;
	return SQLITE_DONE;
}

void
st_reset(struct stmt *st)
{
	if (st->db->pg == NULL) {
		sqlite3_reset(st->sq);
		return;
	}
	PQclear(st->r);
	st->r = NULL;
	st->row = -1;
	st->nrows = 0;
}

int
st_null(struct stmt *st, int i)
{
	if (st->db->pg == NULL)
		return sqlite3_column_type(st->sq, i) == SQLITE_NULL;
	return st->r == NULL || st->row < 0 || st->row >= st->nrows ||
	    PQgetisnull(st->r, st->row, i);
}

const char *
st_text(struct stmt *st, int i)
{
	if (st->db->pg == NULL)
		return (const char *)sqlite3_column_text(st->sq, i);
	return st_null(st, i) ? NULL : PQgetvalue(st->r, st->row, i);
}

/* A PostgreSQL boolean reads as SQLite's 1 or 0. */
int64_t
st_int(struct stmt *st, int i)
{
	const char *s;

	if (st->db->pg == NULL)
		return sqlite3_column_int64(st->sq, i);
	if ((s = st_text(st, i)) == NULL)
		return 0;
	if (strcmp(s, "t") == 0)
		return 1;
	return strtoll(s, NULL, 10);
}

int
db_changes(struct db *db)
{
	return db->pg != NULL ? db->changes : sqlite3_changes(db->h);
}

int
db_lost(struct db *db)
{
	return db->pg != NULL && (PQstatus(db->pg) != CONNECTION_OK ||
	    db->reconnect);
}

int
db_in_tx(struct db *db)
{
	if (db->pg != NULL)
		return PQtransactionStatus(db->pg) != PQTRANS_IDLE;
	return !sqlite3_get_autocommit(db->h);
}

/* Map an sqlite3 result to ours, logging the unexpected. */
enum db_res
db_res_of(struct db *db, int rc)
{
	const char *msg = db->pg != NULL ? db->err : sqlite3_errmsg(db->h);

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
		log_errx("database: %s (is its disk full?)", msg);
		return DB_ERR;
	default:
		log_warnx("database: %s", msg);
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
bind_text(struct db *db, struct stmt *st, int i, const char *s)
{
	if (db->pg != NULL) {
		if (i >= 1 && i <= st->nparams)
			st->vals[i - 1] = s;
		return 0;
	}
	if (i > sqlite3_bind_parameter_count(st->sq))
		return 0;
	if (s == NULL)
		return bound(db, sqlite3_bind_null(st->sq, i));
	return bound(db, sqlite3_bind_text(st->sq, i, s, -1, SQLITE_STATIC));
}

int
bind_int(struct db *db, struct stmt *st, int i, int64_t n)
{
	if (db->pg != NULL) {
		if (i >= 1 && i <= st->nparams) {
			snprintf(st->nums[i - 1], sizeof(st->nums[i - 1]),
			    "%lld", (long long)n);
			st->vals[i - 1] = st->nums[i - 1];
		}
		return 0;
	}
	if (i > sqlite3_bind_parameter_count(st->sq))
		return 0;
	return bound(db, sqlite3_bind_int64(st->sq, i, (sqlite3_int64)n));
}

int
bind_texts(struct db *db, struct stmt *st, const char *const *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (bind_text(db, st, (int)i + 1, v[i]) == -1)
			return -1;
	return 0;
}

char *
col_strdup(struct stmt *st, int i)
{
	const char *s = st_text(st, i);

	return s == NULL ? NULL : strdup(s);
}

void
col_copy(struct stmt *st, int i, char *dst, size_t dstsz)
{
	const char *s = st_text(st, i);

	snprintf(dst, dstsz, "%s", s ? s : "");
}

/* Run a one-row, one-column query; the text into out (or "" for NULL). */
int
query_text(struct db *db, struct stmt *st, char *out, size_t outsz)
{
	int rc;

	(void)db;
	out[0] = '\0';
	rc = st_step(st);
	if (rc == SQLITE_ROW)
		col_copy(st, 0, out, outsz);
	st_reset(st);
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
 * The generation is in the database, moved by triggers on every change
 * of a key, an app or a user, so a change made on any node (or with
 * referral-invitesctl) empties the caches of all at their next request.
 */
enum db_res
db_read_begin(struct db *db)
{
	struct stmt *st;
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
	if ((rc = st_step(st)) != SQLITE_ROW) {
		/* The error before the rollback replaces its message. */
		res = rc == SQLITE_DONE ? DB_ERR : db_res_of(db, rc);
		st_reset(st);
		step_simple(db, Q_ROLLBACK);
		return res;
	}
	gen = st_int(st, 0);
	st_reset(st);
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

/*
 * Checkpoints, the file's flush and the WAL's size are SQLite's: on
 * PostgreSQL the server does all of that, and these do nothing.
 */
int
db_checkpoint(struct db *db, int restart)
{
	int logged = 0, done = 0, rc;

	if (db->pg != NULL)
		return 0;
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

	if (db->pg != NULL)
		return 0;
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
	if (db->h != NULL)
		sqlite3_wal_hook(db->h, wal_count, db);
}

int
db_wal_frames(const struct db *db)
{
	return db->wal_frames;
}


/*
 * PostgreSQL's BEGIN IMMEDIATE: BEGIN and the write lock, taken at once
 * when free; else waited for up to lock_timeout, the wait and a timeout
 * counted as SQLite's busy handler counts them.
 */
static int
pg_begin(struct db *db)
{
	struct stmt *st;
	int rc, got;

	if ((st = db_stmt(db, Q_BEGIN)) == NULL)
		return SQLITE_ERROR;
	if ((rc = st_step(st)) != SQLITE_ROW) {
		st_reset(st);
		return rc;
	}
	got = st_int(st, 0) == 1;
	st_reset(st);
	if (got)
		return SQLITE_DONE;
	metrics_add(M_BUSY_WAITS);
	if ((st = db_stmt(db, Q_WRITE_LOCK)) == NULL)
		return SQLITE_ERROR;
	rc = st_step(st);
	st_reset(st);
	if (rc == SQLITE_ROW)
		return SQLITE_DONE;
	if (rc == SQLITE_BUSY)
		metrics_add(M_BUSY_TIMEOUTS);
	/* The transaction BEGIN opened is aborted now: end it. */
	(void)db_exec(db, "ROLLBACK");
	return rc;
}

int
step_simple(struct db *db, enum db_query q)
{
	struct stmt *st;
	int rc;

	if (db->pg != NULL && q == Q_BEGIN)
		return pg_begin(db);
	if ((st = db_stmt(db, q)) == NULL)
		return SQLITE_ERROR;
	rc = st_step(st);
	st_reset(st);
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
