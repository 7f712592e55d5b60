/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/* Unit tests: the database layer on a temporary file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "extern.h"
#include "util.h"
#include "conf.h"
#include "db.h"
#include "unit.h"

#define APP	"6472c342-72bc-46ad-afe2-796a761c182c"
#define USER	"15c70661-3eff-41cd-bd90-435cabe71f3f"

static char dbdir[64];

static struct db *
fresh(void)
{
	char path[128], err[256];
	struct db *db;

	snprintf(dbdir, sizeof(dbdir), "/tmp/ri-unit-XXXXXX");
	if (mkdtemp(dbdir) == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/t.db", dbdir);
	if ((db = db_open(path, SYNC_NORMAL, 0)) == NULL)
		return NULL;
	if (db_migrate(db, err, sizeof(err)) == -1 ||
	    db_exec(db, "INSERT INTO apps (id, name, invite_url, created_at,"
	    " updated_at) VALUES ('" APP "', 'A', 'https://a.example/i', "
	    "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');"
	    "INSERT INTO users (id, app_id, email, created_at) VALUES ('"
	    USER "', '" APP "', 'me@a.example', '2026-01-01T00:00:00Z')")
	    == -1) {
		db_close(db);
		return NULL;
	}
	return db;
}

static void
gone(struct db *db)
{
	char cmd[128];

	db_close(db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dbdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dbdir);
}

/* The inviter's day limit for add(); off unless a test sets it. */
static int per_day = -1;
/* hide_existing_users for add(); off unless a test sets it. */
static enum invite_hide hide = HIDE_NO;
static int hide_ms;

static enum invite_res
add(struct db *db, const char *email, int per_hour, int cooldown, int *retry)
{
	struct invite in;

	memset(&in, 0, sizeof(in));
	util_uuid(in.id);
	util_sha256_hex(in.id, strlen(in.id), in.token_hash);
	COPY(in.app_id, APP);
	COPY(in.inviter_id, USER);
	COPY(in.email, email);
	COPY(in.email_norm, email);
	COPY(in.lang_req, "de");
	COPY(in.lang_res, "de");
	COPY(in.request_id, "r");
	in.limit_hour = per_hour;
	in.limit_day = per_day;
	in.limit_minute = -1;
	in.cooldown = cooldown;
	in.hide = hide;
	in.hide_ms = hide_ms;
	return db_invite_create(db, &in, retry);
}

static void
schema_version(void)
{
	struct db *db = fresh();
	char err[256];

	CHECK(db != NULL);
	CHECK(db_schema_current(db));
	/* Migrating again is a no-op. */
	CHECK(db_migrate(db, err, sizeof(err)) == 0);
	CHECK(db_version(db) >= 1);
	gone(db);
}

static void
limit_boundary(void)
{
	struct db *db = fresh();
	char email[64];
	int i, retry = 0;

	CHECK(db != NULL);
	for (i = 0; i < 3; i++) {
		snprintf(email, sizeof(email), "f%d@b.example", i);
		CHECK(add(db, email, 3, 0, &retry) == INV_OK);
	}
	CHECK(add(db, "f9@b.example", 3, 0, &retry) == INV_LIMIT);
	CHECK(retry > 3500 && retry <= 3600);
	gone(db);
}

/*
 * Both of the inviter's limits at once: the day's reached by invites
 * older than an hour, then the hour's too, each with its own Retry-After,
 * the later one when both are reached.
 */
static void
limit_hour_and_day(void)
{
	struct db *db = fresh();
	char email[64];
	int i, retry = 0;

	CHECK(db != NULL);
	per_day = 5;
	/* Four of them 90 minutes old: in the day's window, not the hour's. */
	for (i = 0; i < 4; i++) {
		snprintf(email, sizeof(email), "d%d@b.example", i);
		CHECK(add(db, email, -1, 0, &retry) == INV_OK);
	}
	CHECK(db_exec(db, "UPDATE invites SET created_at = strftime("
	    "'%Y-%m-%dT%H:%M:%SZ', 'now', '-90 minutes');"
	    "UPDATE invite_counts SET slot = slot - 5400") == 0);
	CHECK(add(db, "h0@b.example", 2, 0, &retry) == INV_OK);
	/* Five in the day: the day's limit, free again in 22.5 hours. */
	CHECK(add(db, "h1@b.example", 2, 0, &retry) == INV_LIMIT);
	CHECK(retry > 22 * 3600 && retry <= 81000);
	/* With the day's limit raised, one more fits in the hour. */
	per_day = 100;
	CHECK(add(db, "h1@b.example", 2, 0, &retry) == INV_OK);
	CHECK(add(db, "h2@b.example", 2, 0, &retry) == INV_LIMIT);
	CHECK(retry > 3500 && retry <= 3600);
	/* Both reached: the later of the two. */
	per_day = 6;
	CHECK(add(db, "h3@b.example", 2, 0, &retry) == INV_LIMIT);
	CHECK(retry > 22 * 3600 && retry <= 81000);
	/* Hour off, day on, and the other way round. */
	CHECK(add(db, "h4@b.example", -1, 0, &retry) == INV_LIMIT);
	CHECK(retry > 22 * 3600 && retry <= 81000);
	per_day = -1;
	CHECK(add(db, "h5@b.example", 2, 0, &retry) == INV_LIMIT);
	CHECK(retry > 3500 && retry <= 3600);
	CHECK(add(db, "h6@b.example", 3, 0, &retry) == INV_OK);
	gone(db);
}

/*
 * An SQL condition that must hold: the statement fails (integer overflow
 * of abs) when it does not, so db_exec returns -1.
 */
#define SQL_TRUE(cond) "SELECT CASE WHEN " cond " THEN 1 ELSE" \
	" abs(-9223372036854775807 - 1) END"

/* Age every invite by secs and count them again, as migration 4 does. */
static int
age(struct db *db, int secs)
{
	char sql[1024];

	snprintf(sql, sizeof(sql), "UPDATE invites SET created_at = strftime("
	    "'%%Y-%%m-%%dT%%H:%%M:%%SZ', created_at, '-%d seconds');"
	    "DELETE FROM invite_counts;"
	    "INSERT INTO invite_counts SELECT 'hour', inviter_id,"
	    " unixepoch(created_at) / 60 * 60, count(*) FROM invites"
	    " GROUP BY 2, 3;"
	    "INSERT INTO invite_counts SELECT 'day', inviter_id,"
	    " unixepoch(created_at) / 1800 * 1800, count(*) FROM invites"
	    " GROUP BY 2, 3;"
	    "INSERT INTO invite_counts SELECT 'minute', app_id,"
	    " unixepoch(created_at), count(*) FROM invites GROUP BY 2, 3",
	    secs);
	return db_exec(db, sql);
}

/*
 * The window's start cuts a slot: the invites of its older part no
 * longer count, those of its later part do, and Retry-After is exact to
 * the second, as counting every invite would give.
 */
static void
limit_slot_edge(void)
{
	struct db *db = fresh();
	char email[64];
	int i, retry = 0;

	CHECK(db != NULL);
	for (i = 0; i < 3; i++) {
		snprintf(email, sizeof(email), "e%d@b.example", i);
		CHECK(add(db, email, 3, 0, &retry) == INV_OK);
	}
	/* 3590 s old: still in the hour, leaving in 10 s. */
	CHECK(age(db, 3590) == 0);
	CHECK(add(db, "e9@b.example", 3, 0, &retry) == INV_LIMIT);
	CHECK(retry >= 9 && retry <= 11);
	/* One of them older (3605 s): it has left; one more fits. */
	CHECK(db_exec(db, "UPDATE invites SET created_at = strftime("
	    "'%Y-%m-%dT%H:%M:%SZ', created_at, '-15 seconds') WHERE email ="
	    " 'e0@b.example'") == 0);
	CHECK(age(db, 0) == 0);
	CHECK(add(db, "e9@b.example", 3, 0, &retry) == INV_OK);
	CHECK(add(db, "e8@b.example", 3, 0, &retry) == INV_LIMIT);
	CHECK(retry >= 9 && retry <= 11);
	gone(db);
}

/* A limit of a billion reads the same few slots as one of three. */
static void
limit_huge_and_purge(void)
{
	struct db *db = fresh();
	char email[64];
	int i, retry = 0;

	CHECK(db != NULL);
	for (i = 0; i < 50; i++) {
		snprintf(email, sizeof(email), "g%d@b.example", i);
		CHECK(add(db, email, 1000000000, 0, &retry) == INV_OK);
	}
	/* Counted: 50 in each of the three windows' current slots. */
	CHECK(db_exec(db, SQL_TRUE("(SELECT count(*) FROM (SELECT kind FROM"
	    " invite_counts GROUP BY kind HAVING sum(n) = 50)) = 3")) == 0);
	/* A day and an hour later, the purge drops every slot. */
	CHECK(age(db, 86400 + 3600) == 0);
	CHECK(db_counts_purge(db, time(NULL)) > 0);
	CHECK(db_exec(db, SQL_TRUE("(SELECT count(*) FROM invite_counts) = 0"))
	    == 0);
	CHECK(add(db, "g99@b.example", 1, 0, &retry) == INV_OK);
	gone(db);
}

static void
member_suppressed_cooldown(void)
{
	struct db *db = fresh();
	int retry;

	CHECK(db != NULL);
	CHECK(add(db, "me@a.example", -1, 0, &retry) == INV_MEMBER);
	CHECK(db_suppress_bounce(db, APP, "no@b.example") == 0);
	CHECK(add(db, "no@b.example", -1, 0, &retry) == INV_SUPPRESSED);
	CHECK(add(db, "x@b.example", -1, 3600, &retry) == INV_OK);
	CHECK(add(db, "x@b.example", -1, 3600, &retry) == INV_COOLDOWN);
	gone(db);
}

/* A listed row as db_invites_list gives it: status, createdAt, sentAt. */
static int
list_one(void *arg, const char *c[7], int64_t pos)
{
	char *out = arg;

	(void)pos;
	snprintf(out, 128, "%s %s %s", c[3], c[4], c[5] ? c[5] : "null");
	return 0;
}

/*
 * hide_existing_users: a member and a listed address are stored hidden,
 * with the reason, never due for the mailer, counted in the limits and
 * the cooldown like any invite, listed as sent, and not accepted.
 */
static void
hidden_invites(void)
{
	struct db *db = fresh();
	struct outbox *ob = NULL;
	struct accepted acc;
	sqlite3_stmt *st;
	char row[128], want[128], id[UUID_LEN + 1], hash[65];
	int retry;

	CHECK(db != NULL);
	hide = HIDE_ASK;
	hide_ms = 1500;
	CHECK(add(db, "me@a.example", 3, 3600, &retry) == INV_HIDDEN);
	CHECK(add(db, "me@a.example", 3, 3600, &retry) == INV_COOLDOWN);
	CHECK(db_suppress_bounce(db, APP, "no@b.example") == 0);
	CHECK(add(db, "no@b.example", 3, 3600, &retry) == INV_HIDDEN);
	CHECK(db_exec(db, SQL_TRUE("(SELECT group_concat(status || ':' ||"
	    " last_reply, '|') FROM (SELECT * FROM invites ORDER BY"
	    " email_normalized)) = 'hidden:not mailed: the address belongs"
	    " to a user of the app|hidden:not mailed: the address is on the"
	    " app''s do-not-invite list' AND (SELECT count(*) FROM invites"
	    " WHERE sent_at IS NULL AND attempts = 0 AND next_attempt_at ="
	    " created_at AND unixepoch(updated_at) - unixepoch(created_at)"
	    " BETWEEN 1 AND 2) = 2")) == 0);
	CHECK(db_outbox_due(db, time(NULL) + 1, 10) == 0);
	CHECK(db_outbox_claim(db, time(NULL) + 1, 10, &ob) == 0);
	db_outbox_free(ob, 0);
	/* Two hidden and one real: the hour's limit of 3 is reached. */
	CHECK(add(db, "new@b.example", 3, 3600, &retry) == INV_OK);
	CHECK(add(db, "new2@b.example", 3, 3600, &retry) == INV_LIMIT);
	/* Listed as sent, hide_ms after it was made. */
	CHECK(db_exec(db, "DELETE FROM invites WHERE status <> 'hidden'"
	    " OR email_normalized <> 'me@a.example'") == 0);
	row[0] = '\0';
	CHECK(db_invites_list(db, APP, USER, NULL, 0, 10, 86400, list_one,
	    row) == DB_OK);
	CHECK(sqlite3_prepare_v2(db_handle(db), "SELECT 'sent ' || created_at"
	    " || ' ' || updated_at FROM invites", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	COPY(want, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	CHECK(strlen(row) == 46);
	CHECK_STR(row, want);
	/* Its token (add's: the id's hash) is refused as a canceled one's. */
	CHECK(sqlite3_prepare_v2(db_handle(db), "SELECT id, accept_token_hash"
	    " FROM invites", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	COPY(id, (const char *)sqlite3_column_text(st, 0));
	COPY(hash, (const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	memset(&acc, 0, sizeof(acc));
	CHECK(db_invite_accept(db, APP, id, hash, 86400, &acc) == DB_OK);
	CHECK(acc.why == ACCEPT_CANCELED);
	/* A server key's invite (no HIDE_ASK) is still refused. */
	hide = HIDE_NO;
	hide_ms = 0;
	CHECK(add(db, "me@a.example", -1, 0, &retry) == INV_MEMBER);
	CHECK(add(db, "no@b.example", -1, 0, &retry) == INV_SUPPRESSED);
	gone(db);
}

static void
outbox_cycle(void)
{
	struct db *db = fresh();
	struct outbox *ob;
	char status[16], reply[64];
	int retry;

	CHECK(db != NULL);
	CHECK(add(db, "y@b.example", -1, 0, &retry) == INV_OK);
	CHECK(db_outbox_claim(db, time(NULL), 10, &ob) == 1);
	CHECK(ob[0].attempts == 1);
	CHECK_STR(ob[0].email, "y@b.example");
	/* A crash here: recovery puts it back. */
	CHECK(db_outbox_recover(db, time(NULL)) == 1);
	db_outbox_free(ob, 1);
	CHECK(db_outbox_claim(db, time(NULL), 10, &ob) == 1);
	CHECK(db_outbox_mark(db, ob[0].id, "sent", "250 OK", time(NULL)) == 0);
	CHECK(db_invite_status(db, ob[0].id, status, reply, sizeof(reply)) ==
	    DB_OK);
	CHECK_STR(status, "sent");
	CHECK_STR(reply, "250 OK");
	db_outbox_free(ob, 1);
	CHECK(db_outbox_claim(db, time(NULL), 10, &ob) == 0);
	free(ob);
	gone(db);
}

/*
 * A value SQLite refuses to bind (over its length limit here) fails the
 * call as any other database error does.  Unchecked, the bind left NULL
 * in its place: an app "not found", an invite stored without its
 * language, a verdict stored without its reply.
 */
static void
bind_refused(void)
{
	struct db *db = fresh();
	struct invite in;
	struct outbox *ob = NULL;
	struct app a;
	char big[2048], status[16], reply[64];
	int retry;

	CHECK(db != NULL);
	CHECK(add(db, "y@b.example", -1, 0, &retry) == INV_OK);
	CHECK(db_outbox_claim(db, time(NULL), 10, &ob) == 1);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sqlite3_limit(db_handle(db), SQLITE_LIMIT_LENGTH, 1024);
	CHECK(db_app_get(db, big, &a) == DB_ERR);
	CHECK(db_outbox_mark(db, ob[0].id, "sent", big, time(NULL)) == -1);
	CHECK(db_invite_status(db, ob[0].id, status, reply, sizeof(reply)) ==
	    DB_OK);
	CHECK_STR(status, "sending");
	memset(&in, 0, sizeof(in));
	util_uuid(in.id);
	COPY(in.app_id, APP);
	COPY(in.inviter_id, USER);
	COPY(in.email, "z@b.example");
	COPY(in.email_norm, "z@b.example");
	COPY(in.lang_req, "de");
	COPY(in.lang_res, "de");
	COPY(in.request_id, "r");
	COPY(in.token_hash, "h");
	/* The one value past the limit: its Idempotency-Key. */
	COPY(in.idem_cred, "c");
	memset(in.idem_key, 'k', 200);
	COPY(in.idem_hash, "h");
	in.limit_hour = in.limit_day = in.limit_minute = -1;
	sqlite3_limit(db_handle(db), SQLITE_LIMIT_LENGTH, 100);
	CHECK(db_invite_create(db, &in, &retry) == INV_ERR);
	CHECK(db_invite_status(db, in.id, status, reply, sizeof(reply)) ==
	    DB_NOTFOUND);
	db_outbox_free(ob, 1);
	gone(db);
}

/* A second connection to the file fresh() made, as another process. */
static struct db *
other(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/t.db", dbdir);
	return db_open(path, SYNC_NORMAL, 0);
}

#define KEYHASH	"a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"
#define KEYHASH2 "b665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"

static int
add_key(struct db *db, const char *id, const char *type)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "INSERT INTO api_keys (id, app_id, type,"
	    " key_hash, created_at) VALUES ('%s', '" APP "', '%s', '"
	    KEYHASH "', '2026-01-01T00:00:00Z')", id, type);
	return db_exec(db, sql);
}

/* A worker's connection with a cache, an admin's, and a write key. */
static int
cached_pair(struct db **db, struct db **admin)
{
	if ((*db = fresh()) == NULL || (*admin = other()) == NULL ||
	    db_cache_enable(*db) == -1)
		return -1;
	return add_key(*admin, "k1", "write");
}

/* What a worker's snapshot reads: key, app and inviter. */
struct seen {
	int	 rc;
	char	 app[UUID_LEN + 1], type[8], name[32], email[64];
	int	 active;
};

static struct seen
read_all(struct db *db)
{
	struct seen v;
	struct app a;
	struct user u;

	memset(&v, 0, sizeof(v));
	memset(&a, 0, sizeof(a));
	memset(&u, 0, sizeof(u));
	if (db_read_begin(db) != DB_OK) {
		v.rc = -2;
		return v;
	}
	v.rc = db_key_find(db, KEYHASH, v.app, v.type);
	if (v.rc == DB_OK && (v.rc = db_app_get(db, APP, &a)) == DB_OK)
		snprintf(v.name, sizeof(v.name), "%s", a.name);
	if (v.rc == DB_OK && (v.rc = db_user_get(db, APP, USER, &u)) == DB_OK) {
		snprintf(v.email, sizeof(v.email), "%s", u.email);
		v.active = u.active;
	}
	db_rollback(db);
	db_app_free(&a);
	db_user_free(&u);
	return v;
}

/*
 * A cached worker connection sees every change to keys, apps and users
 * made by another connection at its next snapshot: revocation is exact.
 */
static void
cache_sees_changes(void)
{
	struct db *db = NULL, *admin = NULL;
	struct seen v;

	CHECK(cached_pair(&db, &admin) == 0);
	v = read_all(db);
	CHECK(v.rc == DB_OK);
	CHECK_STR(v.app, APP);
	CHECK_STR(v.type, "write");
	CHECK_STR(v.name, "A");
	CHECK_STR(v.email, "me@a.example");
	CHECK(v.active == 1);
	/* Served from the cache now; changes elsewhere still show. */
	CHECK(db_exec(admin, "UPDATE apps SET name = 'B'") == 0);
	v = read_all(db);
	CHECK_STR(v.name, "B");
	CHECK(db_exec(admin, "UPDATE users SET active = 0") == 0);
	v = read_all(db);
	CHECK(v.rc == DB_OK && v.active == 0);
	CHECK(db_exec(admin, "UPDATE api_keys SET revoked_at ="
	    " '2026-01-02T00:00:00Z'") == 0);
	CHECK(read_all(db).rc == DB_NOTFOUND);
	CHECK(db_exec(admin, "DELETE FROM api_keys") == 0);
	CHECK(add_key(admin, "k2", "read") == 0);
	v = read_all(db);
	CHECK(v.rc == DB_OK);
	CHECK_STR(v.type, "read");
	db_close(admin);
	gone(db);
}

/*
 * The cache serves: with the generation held still behind its back, a
 * change is not seen.  (Shows the reads above came from the cache.)
 */
static void
cache_serves_reads(void)
{
	struct db *db = NULL, *admin = NULL;
	struct app a;
	struct seen v;
	char app[UUID_LEN + 1], type[8];

	CHECK(cached_pair(&db, &admin) == 0);
	CHECK(read_all(db).rc == DB_OK);
	CHECK(db_exec(admin, "UPDATE apps SET name = 'B';"
	    "UPDATE users SET email = 'new@a.example';"
	    "UPDATE cache_generation SET n = n - 2") == 0);
	v = read_all(db);
	CHECK(v.rc == DB_OK);
	CHECK_STR(v.name, "A");
	CHECK_STR(v.email, "me@a.example");
	/* Outside a snapshot that checked the generation: never cached. */
	CHECK(db_app_get(db, APP, &a) == DB_OK);
	CHECK_STR(a.name, "B");
	db_app_free(&a);
	/* An unknown key is never served, cached or not. */
	CHECK(db_read_begin(db) == DB_OK);
	CHECK(db_key_find(db, KEYHASH2, app, type) == DB_NOTFOUND);
	db_rollback(db);
	db_close(admin);
	gone(db);
}

/*
 * The writer's WAL: counted at each commit; a restart checkpoint never
 * waits for a reader still in the WAL, and once it succeeds the next
 * commit writes the WAL from its beginning again.
 */
static void
wal_restart(void)
{
	struct db *db = fresh(), *reader = NULL;
	sqlite3_stmt *st;
	char email[64];
	int i, retry, before;

	CHECK(db != NULL);
	/* Cached: its snapshots begin with a read, taking a WAL mark. */
	CHECK((reader = other()) != NULL && db_cache_enable(reader) == 0);
	db_wal_watch(db);
	for (i = 0; i < 4; i++) {
		before = db_wal_frames(db);
		snprintf(email, sizeof(email), "w%d@b.example", i);
		CHECK(add(db, email, -1, 0, &retry) == INV_OK);
		CHECK(db_wal_frames(db) > before);
	}
	/* A reader in the WAL: all but a restart, and no waiting. */
	CHECK(db_read_begin(reader) == DB_OK);
	CHECK(add(db, "w8@b.example", -1, 0, &retry) == INV_OK);
	before = db_wal_frames(db);
	CHECK(db_checkpoint(db, 1) == -1);
	CHECK(add(db, "w9@b.example", -1, 0, &retry) == INV_OK);
	CHECK(db_wal_frames(db) > before);
	db_rollback(reader);
	/*
	 * A reader on the latest commit: everything can be copied, but the
	 * WAL cannot start again while it is in there.
	 */
	CHECK(db_read_begin(reader) == DB_OK);
	CHECK(db_checkpoint(db, 0) == 0);
	CHECK(db_checkpoint(db, 1) == -1);
	before = db_wal_frames(db);
	CHECK(add(db, "w7@b.example", -1, 0, &retry) == INV_OK);
	CHECK(db_wal_frames(db) > before);
	/* The reader gone: everything copied, and the WAL starts again. */
	db_rollback(reader);
	CHECK(db_checkpoint(db, 0) == 0);
	CHECK(db_sync(db) == 0);
	before = db_wal_frames(db);
	CHECK(db_checkpoint(db, 1) == 0);
	CHECK(add(db, "w10@b.example", -1, 0, &retry) == INV_OK);
	CHECK(db_wal_frames(db) > 0);
	CHECK(db_wal_frames(db) < before / 2);
	/* Nothing lost on the way: the four, w8, w9, w7 and w10. */
	CHECK(sqlite3_prepare_v2(db_handle(reader), "SELECT count(*) FROM "
	    "invites", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK(sqlite3_column_int(st, 0) == 8);
	sqlite3_finalize(st);
	db_close(reader);
	gone(db);
}

/*
 * The users' cache keeps two users a set: 3,000 inviters leave more than
 * 2,048 of them cached (direct-mapped, 2,048 slots could not), a user put
 * again replaces itself, and every hit is the user asked for.
 */
static void
cache_user_sets(void)
{
	struct cache *c;
	struct user u, got;
	char id[UUID_LEN + 1], email[64];
	int i, hits = 0, ok = 1;

	CHECK((c = cache_new()) != NULL);
	for (i = 0; i < 3000; i++) {
		snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
		snprintf(email, sizeof(email), "u%d@a.example", i);
		memset(&u, 0, sizeof(u));
		memcpy(u.id, id, sizeof(u.id));
		u.email = email;
		u.active = 1;
		cache_user_put(c, APP, &u);
	}
	for (i = 0; i < 3000; i++) {
		snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
		snprintf(email, sizeof(email), "u%d@a.example", i);
		if (!cache_user_get(c, APP, id, &got))
			continue;
		hits++;
		ok &= strcmp(got.id, id) == 0 && strcmp(got.email, email) == 0;
		db_user_free(&got);
	}
	CHECK(ok);
	CHECK(hits > 2048 && hits < 3000);
	/* Another app's user of the same id is another user. */
	CHECK(!cache_user_get(c, USER, id, &got));
	memset(&u, 0, sizeof(u));
	memcpy(u.id, id, sizeof(u.id));
	snprintf(email, sizeof(email), "again@a.example");
	u.email = email;
	cache_user_put(c, APP, &u);
	CHECK(cache_user_get(c, APP, id, &got));
	CHECK_STR(got.email, "again@a.example");
	db_user_free(&got);
	cache_free(c);
}

/*
 * db_idem_peek sees what db_idem_begin and db_idem_end left, from another
 * connection (as a second worker), and claims nothing itself.
 */
static void
idem_peek(void)
{
	struct db *db, *w2;
	struct idem id;

	if ((db = fresh()) == NULL || (w2 = other()) == NULL) {
		CHECK(0);
		return;
	}
	CHECK(db_idem_peek(w2, APP, "c", "k", KEYHASH, &id) == DB_OK);
	CHECK(!id.found && id.body == NULL);
	CHECK(db_idem_peek(w2, APP, "c", "k", KEYHASH, &id) == DB_OK);
	CHECK(!id.found);			/* still nothing: no claim */
	CHECK(db_idem_begin(db, APP, "c", "k", KEYHASH, 60, &id) == DB_OK);
	CHECK(!id.found);			/* claimed */
	CHECK(db_idem_peek(w2, APP, "c", "k", KEYHASH, &id) == DB_OK);
	CHECK(id.found && id.same && id.status == 0 && id.body == NULL);
	CHECK(db_idem_peek(w2, APP, "c", "k", KEYHASH2, &id) == DB_OK);
	CHECK(id.found && !id.same);
	CHECK(db_idem_peek(w2, APP, "c2", "k", KEYHASH, &id) == DB_OK);
	CHECK(!id.found);			/* another credential's */
	CHECK(db_idem_end(db, APP, "c", "k", KEYHASH, 201, "{\"x\":1}",
	    "Location: /y\r\n") == DB_OK);
	CHECK(db_idem_peek(w2, APP, "c", "k", KEYHASH, &id) == DB_OK);
	CHECK(id.found && id.same && id.status == 201);
	CHECK(id.body != NULL && strcmp(id.body, "{\"x\":1}") == 0);
	CHECK(id.headers != NULL && strcmp(id.headers, "Location: /y\r\n") ==
	    0);
	free(id.body);
	free(id.headers);
	/* A released claim is gone. */
	CHECK(db_idem_begin(db, APP, "c", "k2", KEYHASH, 60, &id) == DB_OK);
	CHECK(db_idem_end(db, APP, "c", "k2", KEYHASH, 0, "", NULL) == DB_OK);
	CHECK(db_idem_peek(w2, APP, "c", "k2", KEYHASH, &id) == DB_OK);
	CHECK(!id.found);
	db_close(w2);
	gone(db);
}

const struct unit_test db_tests[] = {
	{ "db_cache_user_sets", cache_user_sets },
	{ "db_wal_restart", wal_restart },
	{ "db_cache_sees_changes", cache_sees_changes },
	{ "db_cache_serves_reads", cache_serves_reads },
	{ "db_schema_version", schema_version },
	{ "db_limit_boundary", limit_boundary },
	{ "db_limit_hour_and_day", limit_hour_and_day },
	{ "db_limit_slot_edge", limit_slot_edge },
	{ "db_limit_huge_and_purge", limit_huge_and_purge },
	{ "db_member_suppressed_cooldown", member_suppressed_cooldown },
	{ "db_hidden_invites", hidden_invites },
	{ "db_outbox_cycle", outbox_cycle },
	{ "db_bind_refused", bind_refused },
	{ "db_idem_peek", idem_peek },
	{ NULL, NULL }
};
