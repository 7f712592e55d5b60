/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Routing: a table of {method, pattern, handler}; ":param" matches one
 * non-empty path segment.  Unknown paths are 404, known paths with another
 * method 405 with an Allow header.  Also the JSON envelope every answer
 * uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "util.h"
#include "json.h"
#include "api.h"
#include "metrics.h"

/* The answer when not even an error's envelope can be built. */
static const char oom_body[] = "{\"success\":false,\"error\":"
    "\"Internal error\",\"message\":null,\"data\":null}";

struct route {
	const char	*method;
	const char	*pattern;
	route_fn	 fn;
};

static const struct route routes[] = {
	{ "GET", "/api/v1/users/:userId/referral-invites", invite_list },
	{ "POST", "/api/v1/users/:userId/referral-invites", invite_post },
	{ "POST", "/api/v1/referral-invites/accept", invite_accept },
	{ "GET", "/api/v1/referral-invites/opt-out", optout_get },
	{ "POST", "/api/v1/referral-invites/opt-out", optout_post },
	{ "GET", "/api/v1/referral-invites/health", ops_health },
	{ "GET", "/api/v1/referral-invites/metrics", ops_metrics },
	{ "DELETE", "/api/v1/users/:userId/referral-invites/:inviteId",
	    invite_revoke },
	{ "POST", "/api/v1/users/:userId/referral-invites/:inviteId/resend",
	    invite_resend },
};
#define NROUTES	(sizeof(routes) / sizeof(routes[0]))
/* metrics.c counts requests by route, and "none of them" last. */
_Static_assert(NROUTES < METRICS_ROUTES, "METRICS_ROUTES is too small");

int
route_count(void)
{
	return (int)NROUTES;
}

void
route_name(int i, const char **method, const char **pattern)
{
	*method = routes[i].method;
	*pattern = routes[i].pattern;
}

void
req_respond(struct req *r, int status, const char *ctype,
    const char *headers, const char *body, size_t len)
{
	free(r->headers);
	r->headers = NULL;
	buf_free(&r->out);
	r->nanswers++;
	r->status = status;
	r->ctype = ctype;
	r->answer = body;
	r->answerlen = len;
	/* The answer may be replayed (idem.c): keep its own copy. */
	if ((headers != NULL && (r->headers = strdup(headers)) == NULL) ||
	    buf_add(&r->out, body, len) == -1) {
		free(r->headers);
		r->headers = NULL;
		r->status = 500;
		r->ctype = CTYPE_JSON;
		r->answer = oom_body;
		r->answerlen = LIT_LEN(oom_body);
		return;
	}
	r->answer = r->out.p != NULL ? r->out.p : "";
}

enum body_res
req_body(const struct req *r, const char **body, size_t *len)
{
	*body = r->body_res == BODY_OK ? r->body : "";
	*len = r->body_res == BODY_OK ? r->bodylen : 0;
	return r->body_res;
}

void
api_fail_data(struct req *r, int status, const char *msg, const char *data,
    const char *headers)
{
	struct buf b = { 0 };

	if (buf_adds(&b, "{\"success\":false,\"error\":") ||
	    json_add_string(&b, msg) ||
	    buf_adds(&b, ",\"message\":null,\"data\":") ||
	    buf_adds(&b, data ? data : "null") || buf_adds(&b, "}")) {
		buf_free(&b);
		req_respond(r, 500, CTYPE_JSON, NULL, oom_body,
		    LIT_LEN(oom_body));
		return;
	}
	req_respond(r, status, CTYPE_JSON, headers, b.p, b.len);
	buf_free(&b);
}

void
api_fail_hdr(struct req *r, int status, const char *msg, const char *headers)
{
	api_fail_data(r, status, msg, NULL, headers);
}

void
api_fail(struct req *r, int status, const char *msg)
{
	api_fail_hdr(r, status, msg, NULL);
}

void
api_ok(struct req *r, int status, const char *msg, const char *data,
    const char *headers)
{
	struct buf b = { 0 };

	if (buf_adds(&b, "{\"success\":true,\"message\":") ||
	    json_add_string(&b, msg) ||
	    buf_adds(&b, ",\"error\":null,\"data\":") ||
	    buf_adds(&b, data ? data : "null") || buf_adds(&b, "}")) {
		buf_free(&b);
		api_fail(r, 500, "Internal error");
		return;
	}
	req_respond(r, status, CTYPE_JSON, headers, b.p, b.len);
	buf_free(&b);
}

/*
 * Match path against pattern; on success the ":param" segments (if any)
 * are copied into param, joined by '/'.
 */
static int
route_match(const char *pattern, const char *path, char *param,
    size_t paramsz)
{
	const char *seg;
	size_t n, used = 0;

	param[0] = '\0';
	while (*pattern != '\0') {
		if (*pattern == ':') {
			seg = path;
			while (*path != '\0' && *path != '/')
				path++;
			n = (size_t)(path - seg);
			if (used > 0)
				param[used++] = '/';
			if (n == 0 || used + n >= paramsz)
				return 0;
			memcpy(param + used, seg, n);
			param[used += n] = '\0';
			while (*pattern != '\0' && *pattern != '/')
				pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return 0;
	}
	return *path == '\0';
}

/* route_find, giving the route's index in routes[] (-1: none). */
static int
route_index(const char *method, const char *path, char *param,
    size_t paramsz, char *allow, size_t allowsz)
{
	size_t i, n;

	if (method == NULL)
		method = "";
	allow[0] = '\0';
	for (i = 0; i < NROUTES; i++) {
		if (!route_match(routes[i].pattern, path, param, paramsz))
			continue;
		if (strcmp(routes[i].method, method) == 0)
			return (int)i;
		n = strlen(allow);
		snprintf(allow + n, allowsz - n, "%s%s", n ? ", " : "",
		    routes[i].method);
	}
	return -1;
}

route_fn
route_find(const char *method, const char *path, char *param,
    size_t paramsz, char *allow, size_t allowsz)
{
	int i;

	i = route_index(method, path, param, paramsz, allow, allowsz);
	return i == -1 ? NULL : routes[i].fn;
}

void
route_dispatch(struct ctx *ctx, struct req *r)
{
	char param[128], allow[64], hdr[96];
	int i;

	i = route_index(r->method, r->path, param, sizeof(param), allow,
	    sizeof(allow));
	r->route = i == -1 ? (int)NROUTES : i;
	if (i != -1) {
		routes[i].fn(ctx, r, param);
		return;
	}
	if (allow[0] == '\0') {
		api_fail(r, 404, "Not found");
		return;
	}
	snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
	api_fail_hdr(r, 405, "Method not allowed", hdr);
}
