/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The HTTP side of a worker, as handlers see it: struct ctx, struct req
 * (read by fcgi.c), the answers (route.c) and the routes' handlers.
 */
#ifndef API_H
#define API_H

#include <signal.h>

#include "util.h"

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
	const char	*accept;	/* Accept */
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
	int		 route;		/* route.c's index, for metrics */
	char		 pathbuf[1024];	/* fcgi.c's, for path */
};


/* ----------------------------------------------------------- route.c */

/* Dispatch one request to its handler; it answers or parks r. */
void		 route_dispatch(struct ctx *, struct req *);
/*
 * A route's handler: its ":param" segment as the third argument (two
 * segments joined by '/').
 */
typedef void	(*route_fn)(struct ctx *, struct req *, const char *);
/*
 * The handler of method (NULL: none) and path, its ":param" segment into
 * param (paramsz bytes, a longer segment matching nothing).  NULL when no
 * route matches both: allow (allowsz bytes) then lists the methods path
 * has, as for an Allow header, and is "" when it has none (404).
 */
route_fn	 route_find(const char *method, const char *path, char *param,
		    size_t paramsz, char *allow, size_t allowsz);
/* How many routes the table has; route i's method and pattern. */
int		 route_count(void);
void		 route_name(int i, const char **method, const char **pattern);
/* Status, our standard headers plus headers (CRLF-terminated lines). */
void		 req_respond(struct req *, int status, const char *ctype,
		    const char *headers, const char *body, size_t len);
/* The body as fcgi.c read it ("" unless BODY_OK). */
enum body_res	 req_body(const struct req *, const char **body, size_t *len);
/* The error envelope, with optional extra header lines. */
void		 api_fail_hdr(struct req *, int status, const char *msg,
		    const char *headers);
void		 api_fail(struct req *, int status, const char *msg);
/* The error envelope with data (raw JSON, NULL for null). */
void		 api_fail_data(struct req *, int status, const char *msg,
		    const char *data, const char *headers);
/* The success envelope; data is raw JSON or NULL for null. */
void		 api_ok(struct req *, int status, const char *msg,
		    const char *data, const char *headers);

/* ----------------------------------------------------------- invite.c */

struct parked;
struct wake;
struct principal;
struct invite;

void		 invite_post(struct ctx *, struct req *, const char *userid);
/*
 * The park_fn (park.h) of an invite or a resend parked by worker_store:
 * answers as the POST does, 201 for a new invite and 200 for a resend.
 */
int		 invite_resumed(struct ctx *, struct parked *,
		    const struct wake *);
/*
 * hide_existing_users: a token's invite or resend (principal pr) is one
 * the writer may hide; what its answer will then mimic (invite.c).
 */
void		 invite_hide_ask(const struct ctx *, const struct principal *,
		    struct invite *);
/* Answer 400/415/413 for a body that is not JSON within max_body. */
int		 api_json_body(struct ctx *, struct req *, const char **body,
		    size_t *len);
/* Answer 503 or 500 for a database result. */
void		 api_db_fail(struct req *, int busy);

/* ------------------------------------------------------------- life.c */

/* DELETE and POST .../resend: ":userId/:inviteId" as the third argument. */
void		 invite_revoke(struct ctx *, struct req *, const char *ids);
void		 invite_resend(struct ctx *, struct req *, const char *ids);

/* ------------------------------------------------------------- loop.c */

void		 invite_list(struct ctx *, struct req *, const char *userid);
void		 invite_accept(struct ctx *, struct req *, const char *unused);

/* ----------------------------------------------------------- optout.c */

void		 optout_get(struct ctx *, struct req *, const char *unused);
void		 optout_post(struct ctx *, struct req *, const char *unused);

/* -------------------------------------------------------------- ops.c */

/* GET .../health: 200 or 503, no credentials, nothing written. */
void		 ops_health(struct ctx *, struct req *, const char *unused);
/* GET .../metrics: the Prometheus text (nginx lets loopback only). */
void		 ops_metrics(struct ctx *, struct req *, const char *unused);

#endif
