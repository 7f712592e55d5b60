/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * route.c: which method and path give which handler, with which
 * :userId, and which give 404 or 405 with which Allow (route_find).
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "unit.h"

#define USERS	"/api/v1/users/"
#define INVITES	"/referral-invites"
#define ACCEPT	"/api/v1/referral-invites/accept"
#define OPTOUT	"/api/v1/referral-invites/opt-out"

static char param[128], allow[64];

static route_fn
find(const char *method, const char *path)
{
	memset(param, 'x', sizeof(param));
	memset(allow, 'x', sizeof(allow));
	return route_find(method, path, param, sizeof(param), allow,
	    sizeof(allow));
}

/* Every route, with its own method: its handler, and the user id. */
static void
test_route_handlers(void)
{
	CHECK(find("GET", USERS "15c70661-3eff-41cd-bd90-435cabe71f3f"
	    INVITES) == invite_list);
	CHECK_STR(param, "15c70661-3eff-41cd-bd90-435cabe71f3f");
	CHECK(find("POST", USERS "u1" INVITES) == invite_post);
	CHECK_STR(param, "u1");
	CHECK(find("POST", ACCEPT) == invite_accept);
	CHECK_STR(param, "");
	CHECK(find("GET", OPTOUT) == optout_get);
	CHECK_STR(param, "");
	CHECK(find("POST", OPTOUT) == optout_post);
	CHECK_STR(param, "");
	CHECK(find("GET", "/api/v1/referral-invites/health") == ops_health);
	CHECK(find("GET", "/api/v1/referral-invites/metrics") == ops_metrics);
	CHECK(find("POST", "/api/v1/referral-invites/health") == NULL);
	CHECK_STR(allow, "GET");
}

/* The segment is passed as it is: route.c checks no UUID. */
static void
test_route_param_as_is(void)
{
	CHECK(find("GET", USERS "NOT-a-uuid%20" INVITES) == invite_list);
	CHECK_STR(param, "NOT-a-uuid%20");
	CHECK(find("GET", USERS "-" INVITES) == invite_list);
	CHECK_STR(param, "-");
}

/* A known path with another method: 405, its methods in table order. */
static void
test_route_405(void)
{
	CHECK(find("DELETE", USERS "u1" INVITES) == NULL);
	CHECK_STR(allow, "GET, POST");
	CHECK(find("GET", ACCEPT) == NULL);
	CHECK_STR(allow, "POST");
	CHECK(find("PUT", OPTOUT) == NULL);
	CHECK_STR(allow, "GET, POST");
	/* Methods are case-sensitive (RFC 9110 section 9.1). */
	CHECK(find("get", OPTOUT) == NULL);
	CHECK_STR(allow, "GET, POST");
	CHECK(find("", ACCEPT) == NULL);
	CHECK_STR(allow, "POST");
	CHECK(find(NULL, ACCEPT) == NULL);
	CHECK_STR(allow, "POST");
}

/* Paths no route has: 404 (no method at all), whatever the method. */
static void
test_route_404(void)
{
	static const char *const paths[] = {
		"", "/", "/api/v1", "/api/v1/users", USERS, USERS "u1",
		USERS "u1/", USERS INVITES,
		USERS "u1/u2" INVITES, USERS "u1" INVITES "/",
		USERS "u1" INVITES "x", "/API/v1/users/u1" INVITES,
		"/api/v2/users/u1" INVITES, "//api/v1/users/u1" INVITES,
		ACCEPT "/", ACCEPT "x", "/api/v1/referral-invites/accep",
		"/api/v1/referral-invites", "/api/v1/referral-invites/",
		OPTOUT "?token=a", "api/v1/referral-invites/accept", NULL
	};
	size_t i;

	for (i = 0; paths[i] != NULL; i++) {
		if (find("GET", paths[i]) != NULL || allow[0] != '\0')
			fprintf(stderr, "  GET %s: not 404\n", paths[i]);
		CHECK(find("GET", paths[i]) == NULL);
		CHECK_STR(allow, "");
		CHECK(find("POST", paths[i]) == NULL);
		CHECK_STR(allow, "");
	}
}

/* A :userId of paramsz - 1 bytes matches; one byte more is no route. */
static void
test_route_param_size(void)
{
	char path[512], id[sizeof(param) + 1];

	memset(id, 'a', sizeof(id));
	id[sizeof(param) - 1] = '\0';
	snprintf(path, sizeof(path), USERS "%s" INVITES, id);
	CHECK(find("POST", path) == invite_post);
	CHECK_STR(param, id);
	id[sizeof(param) - 1] = 'a';
	id[sizeof(param)] = '\0';
	snprintf(path, sizeof(path), USERS "%s" INVITES, id);
	CHECK(find("POST", path) == NULL);
	CHECK_STR(allow, "");
}

/* An invite's paths: both segments, joined by '/'; their methods. */
static void
test_route_invite_paths(void)
{
	CHECK(find("DELETE", USERS "me" INVITES "/i1") == invite_revoke);
	CHECK_STR(param, "me/i1");
	CHECK(find("POST", USERS "u1" INVITES "/i1/resend") == invite_resend);
	CHECK_STR(param, "u1/i1");
	CHECK(find("GET", USERS "u1" INVITES "/i1") == NULL);
	CHECK_STR(allow, "DELETE");
	CHECK(find("DELETE", USERS "u1" INVITES "/i1/resend") == NULL);
	CHECK_STR(allow, "POST");
	CHECK(find("DELETE", USERS "u1" INVITES "/i1/other") == NULL);
	CHECK_STR(allow, "");
	CHECK(find("DELETE", USERS "u1" INVITES "//resend") == NULL);
	CHECK_STR(allow, "");
}

/* Both segments and their '/' share param: one byte too many, no route. */
static void
test_route_two_params_size(void)
{
	char path[512], id[sizeof(param)];

	memset(id, 'a', sizeof(id));
	id[sizeof(param) - 3] = '\0';	/* "u/" + id + NUL fill param */
	snprintf(path, sizeof(path), USERS "u" INVITES "/%s", id);
	CHECK(find("DELETE", path) == invite_revoke);
	CHECK(strlen(param) == sizeof(param) - 1);
	id[sizeof(param) - 3] = 'a';
	id[sizeof(param) - 2] = '\0';
	snprintf(path, sizeof(path), USERS "u" INVITES "/%s", id);
	CHECK(find("DELETE", path) == NULL);
	CHECK_STR(allow, "");
}

const struct unit_test route_tests[] = {
	{ "route_handlers", test_route_handlers },
	{ "route_param_as_is", test_route_param_as_is },
	{ "route_405", test_route_405 },
	{ "route_404", test_route_404 },
	{ "route_param_size", test_route_param_size },
	{ "route_invite_paths", test_route_invite_paths },
	{ "route_two_params_size", test_route_two_params_size },
	{ NULL, NULL }
};
