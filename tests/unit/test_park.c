/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/* The parked-request table (park.c): entries, lookups, deadlines. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "extern.h"
#include "api.h"
#include "mailer.h"
#include "park.h"
#include "unit.h"

static struct park_table t;
static struct req reqs[PARK_MAX + 1];

static int
never(struct ctx *ctx, struct parked *p, const struct wake *w)
{
	return 0;
}

static void
fresh(void)
{
	memset(&t, 0, sizeof(t));
}

/* Every entry once, then none; a freed one is given again. */
static void
park_fills_and_frees(void)
{
	struct parked *p[PARK_MAX], *q;
	int i;

	fresh();
	CHECK(park_next_ms(&t, 0) == -1);
	for (i = 0; i < PARK_MAX; i++) {
		p[i] = park_add(&t, &reqs[i], never, (uint64_t)i + 1, 1000);
		CHECK(p[i] != NULL);
		CHECK(p[i]->wait == PARK_SEND && p[i]->r == &reqs[i]);
		CHECK(p[i]->resume == never && p[i]->seq == (uint64_t)i + 1);
	}
	CHECK(t.n == PARK_MAX);
	CHECK(park_add(&t, &reqs[PARK_MAX], never, 999, 1000) == NULL);
	park_free(&t, p[7]);
	park_free(&t, p[7]);		/* twice: counted once */
	CHECK(t.n == PARK_MAX - 1);
	CHECK(p[7]->wait == PARK_FREE && p[7]->r == NULL);
	q = park_add(&t, &reqs[PARK_MAX], never, 1000, 5);
	CHECK(q == p[7] && q->r == &reqs[PARK_MAX] && q->deadline == 5);
	CHECK(q->early == 0 && q->inv.id[0] == '\0');
	CHECK(t.n == PARK_MAX);
}

/* The writer's answer finds only a sent entry with its sequence number. */
static void
park_answers_by_seq(void)
{
	struct parked *a, *b;

	fresh();
	a = park_add(&t, &reqs[0], never, 41, 1000);
	b = park_add(&t, &reqs[1], never, 42, 1000);
	CHECK(a != NULL && b != NULL);
	CHECK(park_by_seq(&t, 41) == NULL);	/* not sent yet */
	a->wait = PARK_WRITER;
	b->wait = PARK_WRITER;
	CHECK(park_by_seq(&t, 41) == a);
	CHECK(park_by_seq(&t, 42) == b);
	CHECK(park_by_seq(&t, 43) == NULL);
	b->wait = PARK_VERDICT;			/* answered already */
	CHECK(park_by_seq(&t, 42) == NULL);
	park_free(&t, a);
	CHECK(park_by_seq(&t, 41) == NULL);
}

/* A verdict finds the entry of its invite once it was sent. */
static void
park_verdicts_by_invite(void)
{
	struct parked *a, *b;

	fresh();
	a = park_add(&t, &reqs[0], never, 1, 1000);
	b = park_add(&t, &reqs[1], never, 2, 1000);
	COPY(a->inv.id, "0190a4c2-0000-7000-8000-000000000001");
	COPY(b->inv.id, "0190a4c2-0000-7000-8000-000000000002");
	CHECK(park_by_invite(&t, a->inv.id) == NULL);	/* PARK_SEND */
	a->wait = PARK_WRITER;
	b->wait = PARK_VERDICT;
	CHECK(park_by_invite(&t, "0190a4c2-0000-7000-8000-000000000001") == a);
	CHECK(park_by_invite(&t, "0190a4c2-0000-7000-8000-000000000002") == b);
	CHECK(park_by_invite(&t, "0190a4c2-0000-7000-8000-000000000003") ==
	    NULL);
	CHECK(park_by_invite(&t, "") == NULL);
	park_free(&t, b);
	CHECK(park_by_invite(&t, "0190a4c2-0000-7000-8000-000000000002") ==
	    NULL);
}

/* Unsent entries go to the writer in the order they were parked. */
static void
park_unsent_in_order(void)
{
	struct parked *a, *b, *c;

	fresh();
	CHECK(park_unsent(&t) == NULL);
	a = park_add(&t, &reqs[0], never, 30, 1000);
	b = park_add(&t, &reqs[1], never, 10, 1000);
	c = park_add(&t, &reqs[2], never, 20, 1000);
	CHECK(park_unsent(&t) == b);
	b->wait = PARK_WRITER;
	CHECK(park_unsent(&t) == c);
	park_free(&t, c);
	CHECK(park_unsent(&t) == a);
	a->wait = PARK_WRITER;
	CHECK(park_unsent(&t) == NULL);
}

/* The next deadline in ms, and which entries are due, at the edges. */
static void
park_deadlines(void)
{
	struct parked *a, *b;

	fresh();
	a = park_add(&t, &reqs[0], never, 1, 5000);
	b = park_add(&t, &reqs[1], never, 2, 3000);
	CHECK(park_next_ms(&t, 1000) == 2000);		/* b's */
	CHECK(park_next_ms(&t, 2999) == 1);
	CHECK(park_due(&t, 2999) == NULL);
	CHECK(park_next_ms(&t, 3000) == 0);
	CHECK(park_due(&t, 3000) == b);			/* at its deadline */
	CHECK(park_next_ms(&t, 9000) == 0);
	park_free(&t, b);
	CHECK(park_due(&t, 4999) == NULL);
	CHECK(park_next_ms(&t, 1000) == 4000);		/* a's now */
	CHECK(park_due(&t, 5000) == a);
	a->deadline = INT64_MAX;			/* far: clamped */
	CHECK(park_next_ms(&t, 0) == INT32_MAX);
	park_free(&t, a);
	CHECK(park_next_ms(&t, 0) == -1);
	CHECK(park_due(&t, INT64_MAX) == NULL);
}

/*
 * An entry waiting for a key's first answer (PARK_IDEM) is found by its
 * deadline only: never as unsent, by a writer's answer or by a verdict.
 */
static void
park_idem_by_deadline_only(void)
{
	struct parked *p;

	fresh();
	p = park_add(&t, &reqs[0], never, 0, 50);
	CHECK(p != NULL);
	p->wait = PARK_IDEM;
	p->until = 3000;
	CHECK(park_unsent(&t) == NULL);
	CHECK(park_by_seq(&t, 0) == NULL);
	CHECK(park_by_invite(&t, "") == NULL);
	CHECK(park_next_ms(&t, 0) == 50);
	CHECK(park_due(&t, 49) == NULL);
	CHECK(park_due(&t, 50) == p);
	park_free(&t, p);
	CHECK(t.n == 0 && park_next_ms(&t, 0) == -1);
}

const struct unit_test park_tests[] = {
	{ "park_fills_and_frees", park_fills_and_frees },
	{ "park_answers_by_seq", park_answers_by_seq },
	{ "park_verdicts_by_invite", park_verdicts_by_invite },
	{ "park_unsent_in_order", park_unsent_in_order },
	{ "park_deadlines", park_deadlines },
	{ "park_idem_by_deadline_only", park_idem_by_deadline_only },
	{ NULL, NULL }
};
