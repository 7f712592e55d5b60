/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * A worker's cache of the rows every request reads: API keys, apps and
 * users.  db_request.c fills it and serves from it only inside a read
 * snapshot that has seen the same cache generation as the rows cached
 * (triggers bump the generation whenever one of those tables changes),
 * so a revoked key or a
 * disabled user is refused by the very next request, as without a cache.
 *
 * Tables of fixed size: a lookup is a hash and a compare or two, a
 * collision evicts, and the memory stays bounded whatever the traffic.
 * Keys and apps are few and direct-mapped; users, many, go in sets of
 * two, the one used less recently evicted (direct-mapped, collisions
 * displaced many users even with a slot for each).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "util.h"
#include "db.h"

#define KEY_SLOTS	64
#define APP_SLOTS	16
#define USER_SETS	2048		/* of two: 4,096 users */

struct key_slot {
	int	 used;
	char	 hash[64];		/* hex SHA-256 of the key */
	char	 app[UUID_LEN + 1];
	char	 type[8];
};

struct user_slot {
	int		 used;
	char		 app[UUID_LEN + 1];
	struct user	 u;
};

struct user_set {
	struct user_slot w[2];
	int		 old;		/* the way used less recently */
};

struct cache {
	struct key_slot	 keys[KEY_SLOTS];
	struct app	 apps[APP_SLOTS];	/* id[0] == '\0': empty */
	struct user_set	 users[USER_SETS];
};

/* FNV-1a over one or two strings, then the slot for it. */
static uint32_t
slot_of(const char *s, const char *t, uint32_t slots)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	for (; t != NULL && *t != '\0'; t++)
		h = (h ^ (unsigned char)*t) * 16777619u;
	return h & (slots - 1);
}

static char *
dup_or_null(const char *s, int *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*oom = 1;
	return d;
}

/* A deep copy of an app; -1 (nothing to free) when out of memory. */
static int
app_copy(struct app *dst, const struct app *src)
{
	int oom = 0;

	*dst = *src;
	dst->name = dup_or_null(src->name, &oom);
	dst->invite_url = dup_or_null(src->invite_url, &oom);
	dst->sender = dup_or_null(src->sender, &oom);
	dst->language = dup_or_null(src->language, &oom);
	dst->jwt_key = dup_or_null(src->jwt_key, &oom);
	dst->jwt_issuer = dup_or_null(src->jwt_issuer, &oom);
	dst->redirect_allow = dup_or_null(src->redirect_allow, &oom);
	if (oom) {
		db_app_free(dst);
		return -1;
	}
	return 0;
}

static int
user_copy(struct user *dst, const struct user *src)
{
	int oom = 0;

	*dst = *src;
	dst->email = dup_or_null(src->email, &oom);
	dst->name = dup_or_null(src->name, &oom);
	if (oom) {
		db_user_free(dst);
		return -1;
	}
	return 0;
}

struct cache *
cache_new(void)
{
	return calloc(1, sizeof(struct cache));
}

void
cache_flush(struct cache *c)
{
	size_t i;

	memset(c->keys, 0, sizeof(c->keys));
	for (i = 0; i < APP_SLOTS; i++)
		db_app_free(&c->apps[i]);
	for (i = 0; i < USER_SETS; i++) {
		db_user_free(&c->users[i].w[0].u);
		db_user_free(&c->users[i].w[1].u);
		c->users[i].w[0].used = c->users[i].w[1].used = 0;
	}
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	cache_flush(c);
	free(c);
}

int
cache_key_get(struct cache *c, const char *hash, char app[UUID_LEN + 1],
    char type[8])
{
	struct key_slot *k = &c->keys[slot_of(hash, NULL, KEY_SLOTS)];

	if (strlen(hash) != 64 || !k->used || !util_ct_eq(k->hash, hash, 64))
		return 0;
	memcpy(app, k->app, UUID_LEN + 1);
	memcpy(type, k->type, 8);
	return 1;
}

void
cache_key_put(struct cache *c, const char *hash, const char *app,
    const char *type)
{
	struct key_slot *k = &c->keys[slot_of(hash, NULL, KEY_SLOTS)];

	if (strlen(hash) != 64 || strlen(app) > UUID_LEN ||
	    strlen(type) >= sizeof(k->type))
		return;
	memcpy(k->hash, hash, 64);
	strcpy(k->app, app);
	strcpy(k->type, type);
	k->used = 1;
}

int
cache_app_get(struct cache *c, const char *id, struct app *out)
{
	struct app *a = &c->apps[slot_of(id, NULL, APP_SLOTS)];

	if (a->id[0] == '\0' || strcmp(a->id, id) != 0)
		return 0;
	return app_copy(out, a) == 0;
}

void
cache_app_put(struct cache *c, const struct app *a)
{
	struct app *s = &c->apps[slot_of(a->id, NULL, APP_SLOTS)];

	db_app_free(s);
	if (app_copy(s, a) == -1)
		memset(s, 0, sizeof(*s));
}

static int
user_is(const struct user_slot *s, const char *app, const char *id)
{
	return s->used && strcmp(s->u.id, id) == 0 && strcmp(s->app, app) == 0;
}

int
cache_user_get(struct cache *c, const char *app, const char *id,
    struct user *out)
{
	struct user_set *set = &c->users[slot_of(app, id, USER_SETS)];
	int w;

	for (w = 0; w < 2; w++)
		if (user_is(&set->w[w], app, id)) {
			set->old = !w;
			return user_copy(out, &set->w[w].u) == 0;
		}
	return 0;
}

void
cache_user_put(struct cache *c, const char *app, const struct user *u)
{
	struct user_set *set = &c->users[slot_of(app, u->id, USER_SETS)];
	struct user_slot *s;
	int w;

	/* The same user's way, else an empty one, else the older. */
	if (user_is(&set->w[0], app, u->id))
		w = 0;
	else if (user_is(&set->w[1], app, u->id))
		w = 1;
	else if (!set->w[0].used)
		w = 0;
	else if (!set->w[1].used)
		w = 1;
	else
		w = set->old;
	s = &set->w[w];
	set->old = !w;
	db_user_free(&s->u);
	s->used = 0;
	if (strlen(app) > UUID_LEN || user_copy(&s->u, u) == -1)
		return;
	strcpy(s->app, app);
	s->used = 1;
}
