/*
 * FastCGI: the only file that includes fcgiapp.h.  Reads request
 * parameters and the body under a hard limit, and writes status, headers
 * and body.  Every failure still answers HTTP.
 */
#include <sys/types.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "extern.h"
#include "api.h"

struct req {
	FCGX_Request	 fr;
	char		*body;
	size_t		 bodylen;
	char		 id[REQID_MAX + 1];
	int		 answered;
	int		 body_read;
	/* The answer, kept for Idempotency-Key replays. */
	int		 status;
	struct buf	 out;
	char		*headers;
};

static struct req the_req;

int
fcgi_init(void)
{
	return FCGX_Init();
}

const char *
req_param(struct req *r, const char *name)
{
	return FCGX_GetParam(name, r->fr.envp);
}

const char *
req_id(struct req *r)
{
	return r->id;
}

/* nginx's $request_id is 32 hex digits; accept only a short safe token. */
static void
req_set_id(struct req *r)
{
	const char *s = req_param(r, "REQUEST_ID");
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

struct req *
fcgi_accept(int sock)
{
	struct req *r = &the_req;
	sigset_t set, old;
	int rc;

	if (r->fr.listen_sock == 0 && r->fr.envp == NULL)
		FCGX_InitRequest(&r->fr, sock, FCGI_FAIL_ACCEPT_ON_INTR);
	free(r->body);
	r->body = NULL;
	r->bodylen = 0;
	r->answered = 0;
	r->body_read = 0;
	r->status = 0;
	buf_free(&r->out);
	free(r->headers);
	r->headers = NULL;
	/* Signals are delivered only while waiting for a connection. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_UNBLOCK, &set, &old);
	/* A SIGTERM delivered just now closed the socket for us (main.c). */
	rc = FCGX_Accept_r(&r->fr);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (rc < 0)
		return NULL;
	req_set_id(r);
	return r;
}

void
fcgi_finish(struct req *r)
{
	if (!r->answered)
		api_fail(r, 500, "Internal error");
	/*
	 * libfcgi closes with shutdown() and then waits for nginx to close
	 * its end, so that unread input never turns into a reset that could
	 * cut the answer short.  With the body read to its end there is no
	 * unread input: close at once and take the next request sooner.
	 */
	if (!r->body_read) {
		const char *b;
		size_t n;

		/* A request without a body still ends with an empty record. */
		(void)req_read_body(r, 0, &b, &n);
	}
	if (r->body != NULL)
		FCGX_Detach(&r->fr);
	FCGX_Finish_r(&r->fr);
	r->fr.detached = 0;
	free(r->body);
	r->body = NULL;
}

enum body_res
req_read_body(struct req *r, size_t max, const char **body, size_t *len)
{
	const char *cl = req_param(r, "CONTENT_LENGTH");
	long long n = 0;
	int got;
	char extra;

	if (r->body_read) {
		*body = r->body ? r->body : "";
		*len = r->bodylen;
		return r->body ? BODY_OK : BODY_BAD;
	}
	r->body_read = 1;
	*body = "";
	*len = 0;
	if (cl != NULL && *cl != '\0' &&
	    (strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 18 ||
	    util_strtonum(cl, 0, 1LL << 40, &n) == -1))
		return BODY_BAD;
	if ((size_t)n > max)
		return BODY_TOOBIG;
	if ((r->body = malloc((size_t)n + 1)) == NULL)
		return BODY_BAD;
	got = n > 0 ? FCGX_GetStr(r->body, (int)n, r->fr.in) : 0;
	/* Fewer or more bytes than announced is a broken peer. */
	if (got != (int)n || FCGX_GetStr(&extra, 1, r->fr.in) != 0) {
		free(r->body);
		r->body = NULL;
		return BODY_BAD;
	}
	r->body[n] = '\0';
	r->bodylen = (size_t)n;
	*body = r->body;
	*len = r->bodylen;
	return BODY_OK;
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

void
req_respond(struct req *r, int status, const char *ctype,
    const char *headers, const char *body, size_t len)
{
	char head[1024];
	int n;

	/* libfcgi's own printf lacks %zu: format here. */
	n = snprintf(head, sizeof(head), "Status: %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Request-Id: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "%s\r\n", status, status_text(status), ctype, r->id, len,
	    headers ? headers : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		n = snprintf(head, sizeof(head), "Status: 500 Internal Server "
		    "Error\r\n\r\n");
	FCGX_PutStr(head, n, r->fr.out);
	FCGX_PutStr(body, (int)len, r->fr.out);
	r->answered = 1;
	r->status = status;
	buf_free(&r->out);
	free(r->headers);
	r->headers = headers ? strdup(headers) : NULL;
	if (buf_add(&r->out, body, len) == -1)
		r->status = 500;
}

int
req_answer(struct req *r, const char **body, const char **headers)
{
	*body = r->out.p ? r->out.p : "";
	*headers = r->headers;
	return r->status;
}
