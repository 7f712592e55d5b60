/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The database layer's whole interface (db*.c), for the daemon's
 * processes and referral-invitesctl: every SQL statement stays behind it.
 */
#ifndef DB_H
#define DB_H

#include <sys/types.h>
#include <time.h>

#include "extern.h"
#include "conf.h"
#include "jwt.h"

struct sqlite3;
struct db;
struct metrics_db;

/*
 * Open path with WAL, the given synchronous mode, foreign keys and a fair
 * busy handler.  Returns NULL with a reason logged.
 */
struct db	*db_open(const char *path, enum sync_mode sync, int readonly);
void		 db_close(struct db *);
/* Create or migrate the schema; 0 or -1. */
int		 db_migrate(struct db *, char *err, size_t errsz);
struct sqlite3	*db_handle(struct db *);	/* NULL on PostgreSQL */
/*
 * Whether the database is PostgreSQL, shared with other nodes: no
 * PRAGMAs, no checkpoints, and the mailer's claims are leases.
 */
int		 db_shared(const struct db *);
/* PostgreSQL: whether the connection is lost (made again at the next). */
int		 db_lost(struct db *);

enum db_res { DB_OK, DB_NOTFOUND, DB_BUSY, DB_ERR, DB_CONFLICT };

struct app {
	char		 id[UUID_LEN + 1];
	char		*name;
	char		*invite_url;
	char		*sender;
	char		*language;
	enum jwt_alg	 jwt_alg;
	char		*jwt_key;	/* PEM for RS256/ES256 */
	char		*jwt_issuer;
	int		 jwt_generation;	/* HS256 secret derivation */
	int		 accept_ttl;
	int		 limit_per_hour, limit_per_day, limit_per_minute;
	int		 cooldown;	/* -1 where unset: use the server's */
	char		*redirect_allow;	/* PREFIX[,PREFIX] or NULL */
};
void		 db_app_free(struct app *);

struct user {
	char	 id[UUID_LEN + 1];
	char	*email;
	char	*name;
	int	 active;
};
void		 db_user_free(struct user *);

enum db_res	 db_app_get(struct db *, const char *id, struct app *out);
enum db_res	 db_user_get(struct db *, const char *app, const char *id,
		    struct user *out);
/* An active key with this hash; its app id and type into the buffers. */
enum db_res	 db_key_find(struct db *, const char *hash_hex,
		    char app[UUID_LEN + 1], char type[8]);


/* Run SQL without results; -1 with the error logged. */
int		 db_exec(struct db *, const char *sql);
/* PRAGMA user_version, or -1. */
int		 db_version(struct db *);
/* Whether the file's schema is the one this program writes. */
int		 db_schema_current(struct db *);
/*
 * PostgreSQL: record check (token_secret_check) as the nodes' secret if
 * none is yet, else compare it with the one recorded: 0 when the same,
 * -1 with the reason in err.  SQLite: 0 (its secret is beside it).
 */
int		 db_secret_check(struct db *, const char check[65], char *err,
		    size_t errsz);

/* What the writer does with an invite. */
enum invite_op {
	INVITE_NEW,		/* check and insert it */
	INVITE_RESEND		/* check and queue it again, new token */
};

/*
 * hide_existing_users for a token's invite: HIDE_ASK has the writer store
 * an invite to a user of the app or a listed address as a row that is
 * never mailed (status "hidden", INV_HIDDEN) where it would refuse it,
 * its updated_at hide_ms after the commit (when a real one would have
 * been sent); the route notes HIDE_DONE when that happened.
 */
enum invite_hide { HIDE_NO, HIDE_ASK, HIDE_DONE };

/*
 * The limits' windows and the slots invite_counts keeps each in, in
 * seconds (a slot divides its window): counted by db_writer.c, counted
 * again from the invites by referral-invitesctl migrate (ctl_pg.c).
 */
#define HOUR_WINDOW	3600
#define HOUR_SLOT	60
#define DAY_WINDOW	86400
#define DAY_SLOT	1800
#define MINUTE_WINDOW	60
#define MINUTE_SLOT	1

/*
 * One invite along its way: filled by the route (invite.c, life.c),
 * carried to the writer in its channel message (writer.h), checked and
 * stored by db_invite_add.  Limits of 0 are off.
 */
struct invite {
	enum invite_op	 op;
	char		 id[UUID_LEN + 1];
	char		 app_id[UUID_LEN + 1];
	char		 inviter_id[UUID_LEN + 1];
	char		 email[EMAIL_MAX + 1];
	char		 email_norm[EMAIL_MAX + 1];
	char		 lang_req[LANG_MAX];
	char		 lang_res[LANG_MAX];
	char		 request_id[REQID_MAX + 1];
	char		 token_hash[65];
	/*
	 * With an Idempotency-Key: the claim the invite must turn into its
	 * answer in the same transaction ("" key: none).
	 */
	char		 idem_cred[72];
	char		 idem_key[256];
	char		 idem_hash[65];
	int		 limit_hour;
	int		 limit_day;
	int		 limit_minute;
	int		 cooldown;
	/* INVITE_NEW: the optional members ("" and 0: not given). */
	int		 expires_in;	/* seconds */
	char		 metadata[META_MAX + 1];
	char		 redirect_url[REDIRECT_MAX + 1];
	/*
	 * INVITE_RESEND: the generation token_hash was made for (the
	 * invite's resends + 1), and the seconds a resend must wait.
	 */
	int		 generation;
	int		 resend_interval;
	/* INVITE_NEW with hide_existing_users. */
	enum invite_hide	 hide;
	int		 hide_ms;	/* the wait the answer mimics */
	int		 hide_queued;	/* it says "Invite queued" */
};

enum invite_res {
	INV_OK, INV_MEMBER, INV_SUPPRESSED, INV_COOLDOWN, INV_LIMIT,
	INV_IDEM,	/* the key's claim was lost to another request */
	INV_BUSY, INV_ERR,
	/* INVITE_RESEND only. */
	INV_NOTFOUND,	/* no such invite of this inviter in the app */
	INV_ACCEPTED, INV_REVOKED,
	INV_SENDING,	/* the mailer holds it, or another resend won */
	INV_TOOSOON,	/* within resend_interval: *retry seconds */
	INV_HIDDEN	/* stored, never to be mailed (HIDE_ASK) */
};

/*
 * Check the limits, membership, do-not-invite list and cooldown and insert
 * the invite, all in one BEGIN IMMEDIATE transaction.  On INV_LIMIT *retry
 * holds the seconds until a slot frees.  With HIDE_ASK, a member or a
 * listed address passes on to the cooldown like a new one, and is stored
 * hidden: INV_HIDDEN, which is a success like INV_OK.
 */
enum invite_res	 db_invite_create(struct db *, const struct invite *,
		    int *retry);
/*
 * The same checks and insert inside a transaction the caller holds (the
 * group-commit writer runs many in one).
 */
enum invite_res	 db_invite_add(struct db *, const struct invite *,
		    time_t now, int *retry);
/*
 * Drop the limit counters no window reads any more (the writer, now and
 * then, inside its transaction); count or -1.
 */
int		 db_counts_purge(struct db *, time_t now);
/* BEGIN IMMEDIATE, COMMIT (rolling back when it fails), ROLLBACK. */
enum db_res	 db_begin(struct db *);
/* BEGIN: several reads from one snapshot, one WAL read lock; db_commit. */
enum db_res	 db_read_begin(struct db *);
enum db_res	 db_commit(struct db *);
void		 db_rollback(struct db *);

/* The status and last SMTP reply of an invite. */
enum db_res	 db_invite_status(struct db *, const char *id,
		    char status[16], char *reply, size_t replysz);

/* A message the mailer has claimed (status 'sending'). */
struct outbox {
	char	 id[UUID_LEN + 1];
	char	 app_id[UUID_LEN + 1];
	char	*email;
	char	*email_norm;
	char	 language[LANG_MAX];
	char	*app_name;
	char	*sender;
	char	*invite_url;
	char	*inviter_name;
	char	*inviter_email;
	int	 attempts;		/* including this one */
	char	 created_at[32];	/* or of its last resend */
	int	 resends;		/* its accept token's generation */
};

/*
 * Put rows left in 'sending' by a crash back to 'queued'; count or -1.
 * SQLite: every such row (one pool per file, start_lock; before is not
 * used).  PostgreSQL, shared by the nodes' mailers: only the claims
 * whose lease lapsed before "before" (now), their mailer gone.
 */
int		 db_outbox_recover(struct db *, time_t before);
/*
 * PostgreSQL: the seconds a claim holds (claim_lease), and the leases of
 * the n claims ids, still held, moved on to now + that; 0 or -1.
 */
void		 db_outbox_lease(struct db *, int seconds);
int		 db_outbox_touch(struct db *, const char (*ids)[UUID_LEN + 1],
		    size_t n, time_t now);
/*
 * PostgreSQL, where several nodes' mailers share the queue: every
 * verdict recorded (db_outbox_keep) is heard by every mailer that
 * listens, so that the node whose worker waits for the invite answers
 * it, whichever node sent it.  listen: from now on, and again after a
 * reconnection; fd: the connection's descriptor to poll (-1: none, as
 * for SQLite); heard: fn for each verdict another connection recorded
 * since the last call, -1 when the connection is lost.
 */
int		 db_verdicts_listen(struct db *);
int		 db_verdicts_fd(struct db *);
int		 db_verdicts_heard(struct db *, void (*)(void *, const char *id,
		    const char *status, const char *reply), void *);
/* Put claimed row id, never tried, back to 'queued' (a mailer's stop). */
int		 db_outbox_unclaim(struct db *, const char *id);
/* Claim up to max due rows as 'sending'; count (array in *out) or -1. */
/*
 * A verdict to record: the row's new status, the relay's reply and the
 * next attempt; bounce: "failed", and the address on the app's list too
 * (so that the 400 a worker answers always comes with the listing).
 */
struct outbox_verdict {
	const char	*id;
	const char	*status;
	const char	*reply;
	const char	*app;
	const char	*email_norm;
	time_t		 next;
	int		 bounce;
};
/*
 * In one transaction: record the nv verdicts, then claim up to max due
 * invites as db_outbox_claim does.  The number claimed, or -1 when the
 * transaction failed and nothing was recorded or claimed.
 */
ssize_t		 db_outbox_keep(struct db *, const struct outbox_verdict *v,
		    size_t nv, time_t now, size_t max, struct outbox **out);
ssize_t		 db_outbox_claim(struct db *, time_t now, size_t max,
		    struct outbox **out);
void		 db_outbox_free(struct outbox *, size_t);
/* How many rows are due now, counting up to max; -1 on error. */
ssize_t		 db_outbox_due(struct db *, time_t now, size_t max);
/* Record the verdict of a claimed row; next is the next attempt time. */
int		 db_outbox_mark(struct db *, const char *id, const char *status,
		    const char *reply, time_t next);
int		 db_suppress_bounce(struct db *, const char *app,
		    const char *email_norm);
/* Mark a claimed row failed and list its address, atomically; 0 or -1. */
int		 db_outbox_bounce(struct db *, const char *id, const char *reply,
		    const char *app, const char *email_norm);
/*
 * Copy committed WAL frames back into the database file, without waiting
 * for any lock or reader.  With restart, also take the write lock for
 * the time of it and make sure no reader still uses the WAL, so that the
 * next commit, from any process, starts the WAL again from its
 * beginning.  0 when all was done; -1 when something was in the way.
 */
int		 db_checkpoint(struct db *, int restart);
/*
 * Flush what checkpoints wrote to the database file to disk, holding no
 * lock, so that the next checkpoint's own flush has little left.
 */
int		 db_sync(struct db *);
/* Count the WAL's frames at each of our commits, for db_wal_frames(). */
void		 db_wal_watch(struct db *);
/* How many frames our last commit left in the WAL. */
int		 db_wal_frames(const struct db *);
/* The earliest next_attempt_at of a queued row, or 0 when none. */
time_t		 db_outbox_next_due(struct db *);

/* An event of the webhook outbox taken for one try (db_hook.c). */
struct event {
	char	 id[40];		/* msg_ and 32 hex digits */
	char	 app[UUID_LEN + 1];
	char	*payload;		/* the JSON document sent */
	int	 attempts;		/* including this one */
	time_t	 give_up;		/* no try after this */
	char	*url;			/* the app's, or NULL: none now */
	int	 generation;		/* of the app's signing secret */
};
/*
 * In one transaction: take up to max pending events due at now, each due
 * again at now + lease should its try never be recorded (the process
 * died).  The number taken (array in *out), or -1.
 */
ssize_t		 db_events_take(struct db *, time_t now, int lease, size_t max,
		    struct event **out);
void		 db_events_free(struct event *, size_t);
/*
 * Record the try of taken event e: status "delivered", "failed" (no more
 * tries) or "pending" (again at next); reply what the receiver or curl
 * said.  Nothing changes when the event was taken again since (event
 * retry).  0 or -1.
 */
int		 db_event_done(struct db *, const struct event *e,
		    const char *status, const char *reply, time_t next,
		    time_t now);
/* The earliest next try of a pending event, or 0 when none. */
time_t		 db_events_next(struct db *);
/* Delete the delivered and failed events made before before; count or -1. */
int		 db_events_purge(struct db *, time_t before);

#define LIST_COLS	9
/*
 * Called per listed row with id, email, language, status, createdAt,
 * sentAt, acceptedAt, expiresAt, metadata (a JSON object) (NULL where
 * unset) and the row's position; -1 stops.
 */
typedef int (*db_row_fn)(void *arg, const char *cols[LIST_COLS],
    int64_t pos);

/*
 * A user's invites, newest first (ties in insertion order), only those
 * before (before_time, before) when before_time is not NULL; ttl is the
 * app's accept TTL, for the expiry of invites without their own.
 */
enum db_res	 db_invites_list(struct db *, const char *app,
		    const char *user, const char *before_time, int64_t before,
		    int limit, int ttl, db_row_fn fn, void *arg);

enum accept_why {
	ACCEPT_OK, ACCEPT_USED, ACCEPT_EXPIRED, ACCEPT_CANCELED,
	ACCEPT_REPLACED		/* a token a resend replaced */
};

struct accepted {
	enum accept_why	 why;
	char		 id[UUID_LEN + 1];
	char		 inviter[UUID_LEN + 1];
	char		 email[EMAIL_MAX + 1];
	char		 accepted_at[21];
	char		 metadata[META_MAX + 1];	/* "": none */
	char		 redirect_url[REDIRECT_MAX + 1]; /* "": none */
};

/*
 * Mark invite id accepted if hash is its accept token's, once: of two
 * racing calls exactly one gets ACCEPT_OK.  DB_NOTFOUND for no such token
 * in the app.  A NULL id looks up a token mailed before schema 2 by hash.
 */
enum db_res	 db_invite_accept(struct db *, const char *app,
		    const char *id, const char *hash, int ttl,
		    struct accepted *out);
/* Where an invite of inviter in app is in its life (revoke, resend). */
struct invite_life {
	char	 status[16];
	int	 accepted;
	int	 resends;
	char	 email_norm[EMAIL_MAX + 1];
	time_t	 last_mail;	/* its creation or last resend */
	char	 token_hash[65];
};
/* DB_NOTFOUND when the invite is not the inviter's in app. */
enum db_res	 db_invite_life(struct db *, const char *app,
		    const char *inviter, const char *id, struct invite_life *);
/*
 * Revoke invite id of inviter in app, in one transaction: DB_OK (also
 * when it was revoked already), DB_CONFLICT when it was accepted,
 * DB_NOTFOUND when it is not the inviter's in app.
 */
enum db_res	 db_invite_revoke(struct db *, const char *app,
		    const char *inviter, const char *id);
/* Put the address on the app's list and cancel its queued invites. */
enum db_res	 db_optout(struct db *, const char *app, const char *email,
		    int *canceled);

/*
 * What db_idem_begin found for an Idempotency-Key.  status 0 is a claim
 * (a request acting); a status with no body, the invite that request
 * stored in the claim's transaction, its answer not yet recorded.
 */
struct idem {
	int	 found;		/* a live entry exists */
	int	 same;		/* for the same request */
	int	 status;	/* 0: still being answered */
	long	 age;		/* seconds since the claim */
	char	*body;		/* the stored answer (malloc'd), or NULL */
	char	*headers;
};

/*
 * Look up (app, credential, key): the stored answer if any, else claim
 * the key for this request (hash of method, path and body).  A claim
 * older than stale seconds was left by a request that died before it
 * acted: it lapses and is taken anew.
 */
enum db_res	 db_idem_begin(struct db *, const char *app, const char *cred,
		    const char *key, const char *hash, int stale,
		    struct idem *out);
/*
 * Look up (app, credential, key) and claim nothing: out->found with what
 * is stored (its age not read), or not found.
 */
enum db_res	 db_idem_peek(struct db *, const char *app, const char *cred,
		    const char *key, const char *hash, struct idem *out);
/*
 * Store the answer (status != 0) or release the claim (status 0).  Only
 * a claim, or an entry whose answer is not yet recorded, changes: a
 * stored invite's entry is never released.
 */
enum db_res	 db_idem_end(struct db *, const char *app, const char *cred,
		    const char *key, const char *hash, int status,
		    const char *body, const char *headers);
/* Drop entries older than 24 h; count or -1. */
int		 db_idem_purge(struct db *);

/*
 * db_ops.c, for health and metrics; reads only.  The queued invites and
 * the age at now of the oldest (-1: none), from the queue's index.
 */
enum db_res	 db_ops_queue(struct db *, time_t now, int64_t *queued,
		    int64_t *oldest);
/*
 * That, and invites by status and suppressions by source (each a scan of
 * its table) into out, in one snapshot; out->ok says whether it worked.
 */
enum db_res	 db_ops_counts(struct db *, time_t now, struct metrics_db *out);

/*
 * Cache API keys, apps and users in this connection (a worker's): each
 * db_read_begin reads the cache generation and empties the cache when it
 * moved; reads inside that snapshot are then served from it.  -1 when out
 * of memory.
 */
int		 db_cache_enable(struct db *);

/* cache.c: the tables behind it; db.c's own. */
struct cache;
struct cache	*cache_new(void);
void		 cache_flush(struct cache *);
void		 cache_free(struct cache *);
int		 cache_key_get(struct cache *, const char *hash,
		    char app[UUID_LEN + 1], char type[8]);
void		 cache_key_put(struct cache *, const char *hash,
		    const char *app, const char *type);
int		 cache_app_get(struct cache *, const char *id, struct app *);
void		 cache_app_put(struct cache *, const struct app *);
int		 cache_user_get(struct cache *, const char *app, const char *id,
		    struct user *);
void		 cache_user_put(struct cache *, const char *app,
		    const struct user *);

#endif
