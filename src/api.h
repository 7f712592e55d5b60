/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The HTTP side of a worker: requests (fcgi.c), routing and answers
 * (route.c), credentials (auth.c), the routes (invite.c) and the tokens
 * they hand out (token.c).
 */
#ifndef API_H
#define API_H

#include <signal.h>

struct db;
struct req;

/* What every handler may use; one per worker process. */
struct ctx {
	const struct conf	*conf;
	struct db		*db;
	unsigned char		 secret[32];	/* the server secret */
	int			 commit_fd;	/* to the writer */
	int			 verdict_fd;	/* the mailer's verdicts, or -1 */
	volatile sig_atomic_t	*stopping;
};

/* ----------------------------------------------------------- worker.c */

struct invite;
struct idem_state;
struct parked;
struct wake;

/* Serve requests until *ctx->stopping; parked requests answered last. */
void		 worker_run(struct ctx *);
/*
 * Park r: send inv to the writer and leave r unanswered; the loop serves
 * other connections and calls fn (park.h) when the writer answers, the
 * mailer's verdict comes or the deadline does.  -1: r answered 503.
 */
int		 worker_store(struct ctx *, struct req *r,
		    const struct invite *inv, const struct idem_state *is,
		    int (*fn)(struct ctx *, struct parked *,
		    const struct wake *));
/* Write r's answer (500 when it has none) and end it. */
void		 worker_done(struct req *);

/* ------------------------------------------------------------ fcgi.c */

enum body_res { BODY_OK, BODY_TOOBIG, BODY_BAD };

#define CTYPE_JSON	"application/json; charset=utf-8"

/*
 * A request as fcgi.c reads it, once, before any handler runs: what the
 * service reads of it (NULL: not sent) and its body; then the answer a
 * handler gives (req_respond), which fcgi_finish writes.  Handlers never
 * call into fcgi.c.
 */
struct req {
	const char	*method;	/* REQUEST_METHOD */
	const char	*uri;		/* REQUEST_URI, with the query */
	const char	*path;		/* DOCUMENT_URI, or uri's path */
	const char	*query;		/* QUERY_STRING */
	const char	*content_type;
	const char	*authorization;	/* or Authentication, as some send */
	const char	*api_key;	/* X-API-KEY */
	const char	*api_key_type;	/* X-API-KEY-TYPE */
	const char	*client_id;	/* X-CLIENT-ID */
	const char	*idempotency_key;
	const char	*accept_language;
	char		 id[REQID_MAX + 1];	/* nginx's $request_id, or ours */
	/* BODY_OK: exactly CONTENT_LENGTH bytes, at most max_body, NUL. */
	enum body_res	 body_res;
	char		*body;
	size_t		 bodylen;
	/* The answer. */
	int		 nanswers;	/* req_respond calls: one, or a bug */
	int		 status;	/* 0: none yet */
	const char	*ctype;		/* a literal */
	char		*headers;	/* extra CRLF-terminated lines, or NULL */
	const char	*answer;	/* the body: out.p, or a literal */
	size_t		 answerlen;
	struct buf	 out;
	int		 fd;		/* its connection */
	int		 slot;		/* fcgi.c's */
	char		 pathbuf[1024];	/* fcgi.c's, for path */
};

/* Ready libfcgi: a request for each one a worker may have under way. */
int		 fcgi_init(void);
/*
 * Read the request waiting on connection fd whole (its body if at most
 * max_body bytes); NULL when libfcgi found none and closed fd.
 */
struct req	*fcgi_read(int fd, size_t max_body);
/* Write r's answer (it has one) and end it; -1 when fd was closed. */
int		 fcgi_finish(struct req *);

/* ----------------------------------------------------------- route.c */

/* Dispatch one request to its handler; it answers or parks r. */
void		 route_dispatch(struct ctx *, struct req *);
/* A route's handler: its ":param" segment as the third argument. */
typedef void	(*route_fn)(struct ctx *, struct req *, const char *);
/*
 * The handler of method (NULL: none) and path, its ":param" segment into
 * param (paramsz bytes, a longer segment matching nothing).  NULL when no
 * route matches both: allow (allowsz bytes) then lists the methods path
 * has, as for an Allow header, and is "" when it has none (404).
 */
route_fn	 route_find(const char *method, const char *path, char *param,
		    size_t paramsz, char *allow, size_t allowsz);
/* Status, our standard headers plus headers (CRLF-terminated lines). */
void		 req_respond(struct req *, int status, const char *ctype,
		    const char *headers, const char *body, size_t len);
/* The body as fcgi.c read it ("" unless BODY_OK). */
enum body_res	 req_body(const struct req *, const char **body, size_t *len);
/* The error envelope, with optional extra header lines. */
void		 api_fail_hdr(struct req *, int status, const char *msg,
		    const char *headers);
void		 api_fail(struct req *, int status, const char *msg);
/* The success envelope; data is raw JSON or NULL for null. */
void		 api_ok(struct req *, int status, const char *msg,
		    const char *data, const char *headers);

/* ------------------------------------------------------------ auth.c */

enum auth_res {
	AUTH_OK, AUTH_NONE, AUTH_BOTH, AUTH_BAD, AUTH_BADTOKEN, AUTH_BUSY,
	AUTH_ERR
};

struct principal {
	int	 token;			/* 1: access token, 0: API key */
	char	 app[UUID_LEN + 1];
	char	 key_type[8];		/* "read" or "write" for keys */
	char	 sub[UUID_LEN + 1];	/* the token's user */
	char	 cred[72];		/* names the credential, no secret */
};

/* Authenticate the caller by either of the two ways. */
enum auth_res	 auth_request(struct ctx *, struct req *, struct principal *);
/* Answer an authentication failure (400/401/500/503) for res. */
void		 auth_fail(struct req *, enum auth_res res);

/* ----------------------------------------------------------- invite.c */

void		 invite_post(struct ctx *, struct req *, const char *userid);
/* Answer 400/415/413 for a body that is not JSON within max_body. */
int		 api_json_body(struct ctx *, struct req *, const char **body,
		    size_t *len);
/* Answer 503 or 500 for a database result. */
void		 api_db_fail(struct req *, int busy);

/* ------------------------------------------------------------- loop.c */

void		 invite_list(struct ctx *, struct req *, const char *userid);
void		 invite_accept(struct ctx *, struct req *, const char *unused);

/* ----------------------------------------------------------- optout.c */

void		 optout_get(struct ctx *, struct req *, const char *unused);
void		 optout_post(struct ctx *, struct req *, const char *unused);

/* ------------------------------------------------------------- idem.c */

struct idem_state {
	int	 active;
	char	 app[UUID_LEN + 1];
	char	 cred[72];
	char	 key[256];
	char	 hash[65];	/* of the request (idem.c) */
};

/*
 * With an Idempotency-Key header: replay a stored answer (returns 1), or
 * answer 409/400 (returns -1), or claim the key (returns 0, st->active).
 * Without one returns 0.
 */
int		 idem_begin(struct ctx *, struct req *,
		    const struct principal *, struct idem_state *st);
/* Store the answer for later replays (or release the claim on a 5xx). */
void		 idem_end(struct ctx *, struct req *, struct idem_state *st);
/* Answer 409 "in progress" with Retry-After. */
void		 idem_busy(struct req *);

/* ----------------------------------------------------------- writer.c */

/*
 * The writer process: batches the workers' invites until *stopping;
 * checkpoints with ckdb, a second connection, from a thread of its own,
 * and restarts the WAL between two batches when it has grown long.
 */
void		 commit_run(struct db *db, struct db *ckdb, const int *fds,
		    int nfds, int wake_fd, volatile sig_atomic_t *stopping);

/* ------------------------------------------------------------ token.c */

#define TOKEN_LEN	43		/* base64url of 32 bytes */
#define ACCEPT_ID_LEN	22		/* base64url of an id's 16 bytes */
#define ACCEPT_LEN	(ACCEPT_ID_LEN + TOKEN_LEN)

/*
 * The accept token of an invite: its id, then an HMAC of the id with the
 * server secret.  The id lets the accept route find the row by its
 * primary key, so no index over the token hashes is needed.
 */
void		 token_accept(const unsigned char secret[32], const char *id,
		    char out[ACCEPT_LEN + 1]);
/*
 * The invite id an accept token names; -1 for any other shape (tokens
 * mailed before schema 2 are the TOKEN_LEN bytes of the HMAC alone).
 */
int		 token_accept_id(const char *tok, char id[UUID_LEN + 1]);
/*
 * The opt-out token for (app, address): the app id, the address and an
 * HMAC over both, so that it needs no row.  malloc'd.
 */
char		*token_optout(const unsigned char secret[32], const char *app,
		    const char *email_norm);
/* Check an opt-out token; 0 and the app and address, or -1. */
int		 token_optout_check(const unsigned char secret[32],
		    const char *tok, char app[UUID_LEN + 1],
		    char email[EMAIL_MAX + 1]);
/* Read (or with create, make) the server secret file beside the db. */
int		 token_secret_load(const char *dbpath, int create,
		    unsigned char out[32], char *err, size_t errsz);

#endif
