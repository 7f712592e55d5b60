/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * cache.c on its own: hits and misses of keys, apps and users, copies
 * that own their strings, a flush, and tables that stay within their
 * size, a collision evicting and a user's set evicting the one used
 * less recently.  (When db.c flushes it, on a new cache generation, is
 * test_db.c's db_cache_sees_changes.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "db.h"
#include "unit.h"

#define APP	"6472c342-72bc-46ad-afe2-796a761c182c"
#define APP2	"0b5bd43e-94a4-4c5e-a6a7-43b7d1d4ef6a"
#define USER	"15c70661-3eff-41cd-bd90-435cabe71f3f"
#define HASH	"a665a45920422f9d417e4867efdc4fb8" \
		"a04a1f3fff1fa07e998e86f7f7a27ae3"
#define HASH2	"b665a45920422f9d417e4867efdc4fb8" \
		"a04a1f3fff1fa07e998e86f7f7a27ae3"

#define KEY_SLOTS	64		/* as in cache.c */
#define APP_SLOTS	16
#define USER_WAYS	4096

/* The n-th of many distinct ids: a key's hash, an app's or a user's id. */
static void
nth_hash(int n, char out[65])
{
	snprintf(out, 65, "%064d", n);
}

static void
nth_id(int n, char out[UUID_LEN + 1])
{
	snprintf(out, UUID_LEN + 1, "00000000-0000-4000-8000-%012d", n);
}

static void
put_user(struct cache *c, const char *app, const char *id, const char *email)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", id);
	u.email = (char *)email;
	u.active = 1;
	cache_user_put(c, app, &u);
}

/* Whether app's user id is cached; its email into email if so. */
static int
has_user(struct cache *c, const char *app, const char *id, char email[64])
{
	struct user u;

	if (!cache_user_get(c, app, id, &u))
		return 0;
	if (email != NULL)
		snprintf(email, 64, "%s", u.email);
	db_user_free(&u);
	return 1;
}

static void
put_app(struct cache *c, const char *id, const char *name)
{
	struct app a;

	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "%s", id);
	a.name = strdup(name);
	a.invite_url = strdup("https://a.example/i");
	a.jwt_generation = 3;
	cache_app_put(c, &a);
	/* The cache keeps its own copy. */
	db_app_free(&a);
}

static int
has_app(struct cache *c, const char *id)
{
	struct app a;

	if (!cache_app_get(c, id, &a))
		return 0;
	db_app_free(&a);
	return 1;
}

static int
has_key(struct cache *c, const char *hash)
{
	char app[UUID_LEN + 1], type[8];

	return cache_key_get(c, hash, app, type);
}

static void
test_cache_key(void)
{
	struct cache *c;
	char app[UUID_LEN + 1] = "", type[8] = "";

	CHECK((c = cache_new()) != NULL);
	CHECK(!cache_key_get(c, HASH, app, type));
	cache_key_put(c, HASH, APP, "write");
	CHECK(cache_key_get(c, HASH, app, type));
	CHECK_STR(app, APP);
	CHECK_STR(type, "write");
	CHECK(!has_key(c, HASH2));
	/* Only a whole hash: a prefix or a longer one is another key. */
	CHECK(!has_key(c, "a665a459"));
	CHECK(!has_key(c, HASH "0"));
	/* What no key can be is never stored. */
	cache_key_put(c, "a665", APP, "write");
	CHECK(!has_key(c, "a665"));
	cache_key_put(c, HASH2, APP, "readwrite");
	CHECK(!has_key(c, HASH2));
	cache_key_put(c, HASH2, APP "0", "read");
	CHECK(!has_key(c, HASH2));
	/* The same key again: its new row. */
	cache_key_put(c, HASH, APP2, "read");
	CHECK(cache_key_get(c, HASH, app, type));
	CHECK_STR(app, APP2);
	CHECK_STR(type, "read");
	cache_free(c);
}

static void
test_cache_app(void)
{
	struct cache *c;
	struct app a;

	CHECK((c = cache_new()) != NULL);
	CHECK(!has_app(c, APP));
	put_app(c, APP, "Acme");
	CHECK(cache_app_get(c, APP, &a));
	CHECK_STR(a.id, APP);
	CHECK_STR(a.name, "Acme");
	CHECK_STR(a.invite_url, "https://a.example/i");
	CHECK(a.sender == NULL && a.jwt_key == NULL);
	CHECK(a.jwt_generation == 3);
	/* A copy of its own: freeing it leaves the cached row. */
	db_app_free(&a);
	CHECK(cache_app_get(c, APP, &a));
	CHECK_STR(a.name, "Acme");
	db_app_free(&a);
	CHECK(!has_app(c, APP2));
	CHECK(!has_app(c, ""));
	put_app(c, APP, "Acme 2");
	CHECK(cache_app_get(c, APP, &a));
	CHECK_STR(a.name, "Acme 2");
	db_app_free(&a);
	cache_free(c);
}

static void
test_cache_user(void)
{
	struct cache *c;
	char email[64];

	CHECK((c = cache_new()) != NULL);
	CHECK(!has_user(c, APP, USER, NULL));
	put_user(c, APP, USER, "me@a.example");
	CHECK(has_user(c, APP, USER, email));
	CHECK_STR(email, "me@a.example");
	/* The same id in another app is another user. */
	CHECK(!has_user(c, APP2, USER, NULL));
	put_user(c, APP2, USER, "other@b.example");
	CHECK(has_user(c, APP2, USER, email));
	CHECK_STR(email, "other@b.example");
	CHECK(has_user(c, APP, USER, email));
	CHECK_STR(email, "me@a.example");
	/* Put again: replaced, not kept twice. */
	put_user(c, APP, USER, "new@a.example");
	CHECK(has_user(c, APP, USER, email));
	CHECK_STR(email, "new@a.example");
	/* An app id no app has is never stored. */
	put_user(c, APP "0", USER, "x@a.example");
	CHECK(!has_user(c, APP "0", USER, NULL));
	cache_free(c);
}

/* A flush empties every table; the cache fills again after. */
static void
test_cache_flush(void)
{
	struct cache *c;

	CHECK((c = cache_new()) != NULL);
	cache_key_put(c, HASH, APP, "write");
	put_app(c, APP, "Acme");
	put_user(c, APP, USER, "me@a.example");
	CHECK(has_key(c, HASH) && has_app(c, APP) &&
	    has_user(c, APP, USER, NULL));
	cache_flush(c);
	CHECK(!has_key(c, HASH));
	CHECK(!has_app(c, APP));
	CHECK(!has_user(c, APP, USER, NULL));
	cache_flush(c);
	cache_key_put(c, HASH, APP, "write");
	put_app(c, APP, "Acme");
	put_user(c, APP, USER, "me@a.example");
	CHECK(has_key(c, HASH) && has_app(c, APP) &&
	    has_user(c, APP, USER, NULL));
	cache_free(c);
	cache_free(NULL);
}

/*
 * However many rows are put, no table holds more than its slots, and
 * the row put last is always there.
 */
static void
test_cache_capacity(void)
{
	struct cache *c;
	char h[65], id[UUID_LEN + 1];
	int i, keys = 0, apps = 0, users = 0;

	CHECK((c = cache_new()) != NULL);
	for (i = 0; i < 20 * KEY_SLOTS; i++) {
		nth_hash(i, h);
		cache_key_put(c, h, APP, "read");
		nth_id(i, id);
		put_app(c, id, "A");
	}
	CHECK(has_key(c, h) && has_app(c, id));
	for (i = 0; i < 20 * KEY_SLOTS; i++) {
		nth_hash(i, h);
		keys += has_key(c, h);
		nth_id(i, id);
		apps += has_app(c, id);
	}
	CHECK(keys >= 1 && keys <= KEY_SLOTS);
	CHECK(apps >= 1 && apps <= APP_SLOTS);
	for (i = 0; i < 3 * USER_WAYS; i++) {
		nth_id(i, id);
		put_user(c, APP, id, "u@a.example");
	}
	CHECK(has_user(c, APP, id, NULL));
	for (i = 0; i < 3 * USER_WAYS; i++) {
		nth_id(i, id);
		users += has_user(c, APP, id, NULL);
	}
	CHECK(users > USER_WAYS / 2 && users <= USER_WAYS);
	cache_free(c);
}

/* Direct-mapped keys and apps: the row that takes a slot evicts. */
static void
test_cache_collision(void)
{
	struct cache *c;
	char h0[65], h[65], id0[UUID_LEN + 1], id[UUID_LEN + 1];
	int i;

	CHECK((c = cache_new()) != NULL);
	nth_hash(0, h0);
	cache_key_put(c, h0, APP, "read");
	for (i = 1; i < 100 * KEY_SLOTS && has_key(c, h0); i++) {
		nth_hash(i, h);
		cache_key_put(c, h, APP, "write");
	}
	/* h took h0's slot: the one of them put last is cached. */
	CHECK(!has_key(c, h0) && has_key(c, h));
	cache_key_put(c, h0, APP, "read");
	CHECK(has_key(c, h0) && !has_key(c, h));

	nth_id(0, id0);
	put_app(c, id0, "A");
	for (i = 1; i < 100 * APP_SLOTS && has_app(c, id0); i++) {
		nth_id(i, id);
		put_app(c, id, "B");
	}
	CHECK(!has_app(c, id0) && has_app(c, id));
	put_app(c, id0, "A");
	CHECK(has_app(c, id0) && !has_app(c, id));
	cache_free(c);
}

#define CANDIDATES	(8 * USER_WAYS)

/*
 * Whether USER is gone from a fresh cache after putting it, then the
 * first n candidates, then candidate last (unless -1).  Nothing is read
 * before the end, so no way is made more recent than its put.
 */
static int
evicted(int n, int last)
{
	struct cache *c;
	char id[UUID_LEN + 1];
	int i, gone;

	if ((c = cache_new()) == NULL)
		return -1;
	put_user(c, APP, USER, "me@a.example");
	for (i = 0; i < n; i++) {
		nth_id(i, id);
		put_user(c, APP, id, "u@a.example");
	}
	if (last != -1) {
		nth_id(last, id);
		put_user(c, APP, id, "u@a.example");
	}
	gone = !has_user(c, APP, USER, NULL);
	cache_free(c);
	return gone;
}

/*
 * Two candidates that share USER's set, found from the outside: USER
 * goes once two others of its set came after it, so the second is where
 * the candidates put in order first evict it, and the first is where
 * those put before the second start to.  -1 if there are none.
 */
static int
set_mates(int *first, int *second)
{
	int lo, hi, mid;

	if (evicted(CANDIDATES, -1) != 1)
		return -1;
	for (lo = 1, hi = CANDIDATES; lo < hi; ) {
		mid = lo + (hi - lo) / 2;
		if (evicted(mid, -1))
			hi = mid;
		else
			lo = mid + 1;
	}
	*second = lo - 1;
	for (lo = 1, hi = *second; lo < hi; ) {
		mid = lo + (hi - lo) / 2;
		if (evicted(mid, *second))
			hi = mid;
		else
			lo = mid + 1;
	}
	*first = lo - 1;
	/* With the first among those put before the second, and only then. */
	return evicted(*first + 1, *second) == 1 &&
	    evicted(*first, *second) == 0 ? 0 : -1;
}

/*
 * Users go in sets of two: a third user of a set evicts the one used
 * less recently, a read counting as a use; a user put again takes its
 * own way.
 */
static void
test_cache_user_lru(void)
{
	struct cache *c;
	char b[UUID_LEN + 1], d[UUID_LEN + 1], email[64];
	int first, second;

	CHECK(set_mates(&first, &second) == 0);
	nth_id(first, b);
	nth_id(second, d);
	/* Put USER, b, d: USER is the older of the two when d comes. */
	CHECK((c = cache_new()) != NULL);
	put_user(c, APP, USER, "me@a.example");
	put_user(c, APP, b, "b@a.example");
	put_user(c, APP, d, "d@a.example");
	CHECK(!has_user(c, APP, USER, NULL));
	CHECK(has_user(c, APP, b, NULL) && has_user(c, APP, d, NULL));
	cache_free(c);
	/* USER read after b: b is the older, and goes. */
	CHECK((c = cache_new()) != NULL);
	put_user(c, APP, USER, "me@a.example");
	put_user(c, APP, b, "b@a.example");
	CHECK(has_user(c, APP, USER, NULL));
	put_user(c, APP, d, "d@a.example");
	CHECK(has_user(c, APP, USER, NULL));
	CHECK(!has_user(c, APP, b, NULL));
	CHECK(has_user(c, APP, d, NULL));
	cache_free(c);
	/* USER put again in a full set replaces itself, evicting nobody. */
	CHECK((c = cache_new()) != NULL);
	put_user(c, APP, USER, "me@a.example");
	put_user(c, APP, b, "b@a.example");
	put_user(c, APP, USER, "again@a.example");
	CHECK(has_user(c, APP, USER, email));
	CHECK_STR(email, "again@a.example");
	CHECK(has_user(c, APP, b, email));
	CHECK_STR(email, "b@a.example");
	cache_free(c);
}

const struct unit_test cache_tests[] = {
	{ "cache_key", test_cache_key },
	{ "cache_app", test_cache_app },
	{ "cache_user", test_cache_user },
	{ "cache_flush", test_cache_flush },
	{ "cache_capacity", test_cache_capacity },
	{ "cache_collision", test_cache_collision },
	{ "cache_user_lru", test_cache_user_lru },
	{ NULL, NULL }
};
