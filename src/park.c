/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The table of parked requests (park.h).  PARK_MAX entries searched
 * linearly: a few hundred compares a wake-up, against the system calls
 * around it, is nothing.
 */
#include <stdint.h>
#include <string.h>

#include "api.h"
#include "mailer.h"
#include "park.h"

struct parked *
park_add(struct park_table *t, struct req *r, park_fn *fn, uint64_t seq,
    int64_t deadline)
{
	struct parked *p;

	for (p = t->e; p < t->e + PARK_MAX; p++)
		if (p->wait == PARK_FREE) {
			memset(p, 0, sizeof(*p));
			p->wait = PARK_SEND;
			p->r = r;
			p->resume = fn;
			p->seq = seq;
			p->deadline = deadline;
			t->n++;
			return p;
		}
	return NULL;
}

void
park_free(struct park_table *t, struct parked *p)
{
	if (p->wait == PARK_FREE)
		return;
	p->wait = PARK_FREE;
	p->r = NULL;
	t->n--;
}

struct parked *
park_by_seq(struct park_table *t, uint64_t seq)
{
	struct parked *p;

	for (p = t->e; p < t->e + PARK_MAX && t->n > 0; p++)
		if (p->wait == PARK_WRITER && p->seq == seq)
			return p;
	return NULL;
}

struct parked *
park_by_invite(struct park_table *t, const char *id)
{
	struct parked *p;

	for (p = t->e; p < t->e + PARK_MAX && t->n > 0; p++)
		if ((p->wait == PARK_WRITER || p->wait == PARK_VERDICT) &&
		    strcmp(p->inv.id, id) == 0)
			return p;
	return NULL;
}

struct parked *
park_unsent(struct park_table *t)
{
	struct parked *p, *first = NULL;

	for (p = t->e; p < t->e + PARK_MAX && t->n > 0; p++)
		if (p->wait == PARK_SEND && (first == NULL ||
		    p->seq < first->seq))
			first = p;
	return first;
}

struct parked *
park_due(struct park_table *t, int64_t now)
{
	struct parked *p;

	for (p = t->e; p < t->e + PARK_MAX && t->n > 0; p++)
		if (p->wait != PARK_FREE && p->deadline <= now)
			return p;
	return NULL;
}

int
park_next_ms(const struct park_table *t, int64_t now)
{
	const struct parked *p;
	int64_t first = INT64_MAX;

	if (t->n == 0)
		return -1;
	for (p = t->e; p < t->e + PARK_MAX; p++)
		if (p->wait != PARK_FREE && p->deadline < first)
			first = p->deadline;
	if (first <= now)
		return 0;
	return first - now > INT32_MAX ? INT32_MAX : (int)(first - now);
}
