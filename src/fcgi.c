/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * FastCGI: the only file that includes fcgiapp.h, a plain adapter.
 * fcgi_read reads the request waiting on a connection (conn.c found it)
 * whole into a plain struct req (api.h): the parameters the service
 * reads and the body, under a hard limit; fcgi_finish writes the answer
 * a handler set there.  Every failure still answers HTTP.  libfcgi keeps
 * all of a request's state in its FCGX_Request, so one for each request
 * under way (served or parked) is all it takes.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "extern.h"
#include "util.h"
#include "api.h"
#include "fcgi.h"
#include "conn.h"

/* A request under way: libfcgi's and the handlers' halves. */
struct slot {
	FCGX_Request	 fr;
	int		 busy;
	struct req	 req;
};

/* At most one request a connection, and one being read. */
static struct slot slots[CONN_MAX + 1];

static const char oom_body[] = "Status: 500 Internal Server Error\r\n"
    "Content-Type: text/plain\r\n\r\nout of memory\n";

int
fcgi_init(void)
{
	int i;

	if (FCGX_Init() != 0)
		return -1;
	/* libfcgi never accepts: conn.c does. */
	for (i = 0; i < CONN_MAX + 1; i++) {
		if (FCGX_InitRequest(&slots[i].fr, -1, 0) != 0)
			return -1;
		slots[i].req.slot = i;
	}
	return 0;
}

/* nginx's $request_id is 32 hex digits; accept only a short safe token. */
static void
req_set_id(struct req *r, const char *s)
{
	unsigned char rnd[16];
	size_t n;

	if (s != NULL && (n = strlen(s)) > 0 && n <= REQID_MAX &&
	    strspn(s, "0123456789abcdefABCDEF-") == n) {
		memcpy(r->id, s, n + 1);
		return;
	}
	util_random(rnd, sizeof(rnd));
	util_hex(rnd, sizeof(rnd), r->id);
}

/* The body: exactly CONTENT_LENGTH bytes, at most max. */
static enum body_res
req_read_body(struct slot *sl, size_t max)
{
	struct req *r = &sl->req;
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", sl->fr.envp);
	long long n = 0;
	int got;
	char extra;

	if (cl != NULL && *cl != '\0' &&
	    (strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 18 ||
	    util_strtonum(cl, 0, 1LL << 40, &n) == -1))
		return BODY_BAD;
	if ((size_t)n > max)
		return BODY_TOOBIG;
	if ((r->body = malloc((size_t)n + 1)) == NULL)
		return BODY_BAD;
	got = n > 0 ? FCGX_GetStr(r->body, (int)n, sl->fr.in) : 0;
	/* Fewer or more bytes than announced is a broken peer. */
	if (got != (int)n || FCGX_GetStr(&extra, 1, sl->fr.in) != 0) {
		free(r->body);
		r->body = NULL;
		return BODY_BAD;
	}
	r->body[n] = '\0';
	r->bodylen = (size_t)n;
	return BODY_OK;
}

/* Everything a handler reads, once. */
static void
req_read(struct slot *sl, size_t max_body)
{
	struct req *r = &sl->req;
	char **env = sl->fr.envp;
	size_t n;

	r->method = FCGX_GetParam("REQUEST_METHOD", env);
	r->uri = FCGX_GetParam("REQUEST_URI", env);
	r->path = FCGX_GetParam("DOCUMENT_URI", env);
	if (r->path == NULL) {
		/* Without the query string. */
		n = r->uri != NULL ? strcspn(r->uri, "?") : 0;
		if (n >= sizeof(r->pathbuf))
			n = sizeof(r->pathbuf) - 1;
		memcpy(r->pathbuf, r->uri != NULL ? r->uri : "", n);
		r->pathbuf[n] = '\0';
		r->path = r->pathbuf;
	}
	r->query = FCGX_GetParam("QUERY_STRING", env);
	r->content_type = FCGX_GetParam("CONTENT_TYPE", env);
	if ((r->authorization = FCGX_GetParam("HTTP_AUTHORIZATION",
	    env)) == NULL)
		r->authorization = FCGX_GetParam("HTTP_AUTHENTICATION", env);
	r->api_key = FCGX_GetParam("HTTP_X_API_KEY", env);
	r->api_key_type = FCGX_GetParam("HTTP_X_API_KEY_TYPE", env);
	r->client_id = FCGX_GetParam("HTTP_X_CLIENT_ID", env);
	r->idempotency_key = FCGX_GetParam("HTTP_IDEMPOTENCY_KEY", env);
	r->accept_language = FCGX_GetParam("HTTP_ACCEPT_LANGUAGE", env);
	r->accept = FCGX_GetParam("HTTP_ACCEPT", env);
	req_set_id(r, FCGX_GetParam("REQUEST_ID", env));
	r->body_res = req_read_body(sl, max_body);
}

struct req *
fcgi_read(int fd, size_t max_body)
{
	struct slot *sl = slots;
	struct req *r;
	int slot;

	while (sl < slots + CONN_MAX + 1 && sl->busy)
		sl++;
	if (sl == slots + CONN_MAX + 1)
		return NULL;		/* cannot be: one a connection */
	/* Its buffers went in fcgi_finish. */
	r = &sl->req;
	slot = r->slot;
	memset(r, 0, sizeof(*r));
	r->slot = slot;
	/* Kept, so that the Finish inside Accept leaves fd open. */
	sl->fr.ipcFd = fd;
	sl->fr.keepConnection = 1;
	if (FCGX_Accept_r(&sl->fr) != 0)
		return NULL;	/* nginx closed it, or sent garbage */
	sl->busy = 1;
	r->fd = fd;
	req_read(sl, max_body);
	return r;
}

static const char *
status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* Status, our standard headers, the handler's, the body. */
static void
req_write(struct slot *sl)
{
	struct req *r = &sl->req;
	char head[1024];
	int n;

	/* libfcgi's own printf lacks %zu: format here. */
	n = snprintf(head, sizeof(head), "Status: %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Request-Id: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "%s\r\n", r->status, status_text(r->status), r->ctype, r->id,
	    r->answerlen, r->headers ? r->headers : "");
	if (r->status == 0 || r->answer == NULL || n < 0 ||
	    (size_t)n >= sizeof(head)) {
		FCGX_PutStr(oom_body, (int)sizeof(oom_body) - 1, sl->fr.out);
		return;
	}
	FCGX_PutStr(head, n, sl->fr.out);
	FCGX_PutStr(r->answer, (int)r->answerlen, sl->fr.out);
}

int
fcgi_finish(struct req *r)
{
	struct slot *sl = &slots[r->slot];
	char sink[1024];
	int kept;

	req_write(sl);
	/*
	 * The rest of the body, whatever the answer: the next request on a
	 * kept connection starts after it (nginx bounds it with
	 * client_max_body_size).  With no unread input, a connection libfcgi
	 * closes is closed at once (detached), without its wait for nginx.
	 */
	while (FCGX_GetStr(sink, sizeof(sink), sl->fr.in) > 0)
		;
	FCGX_Detach(&sl->fr);
	FCGX_Finish_r(&sl->fr);
	sl->fr.detached = 0;
	kept = sl->fr.ipcFd != -1;
	sl->fr.ipcFd = -1;
	sl->busy = 0;
	free(r->body);
	r->body = NULL;
	free(r->headers);
	r->headers = NULL;
	buf_free(&r->out);
	return kept ? 0 : -1;
}
