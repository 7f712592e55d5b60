/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/* A small test harness: one behaviour per test, exact assertions. */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

extern int unit_failed;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n",	\
		    __FILE__, __LINE__, __func__, #cond);		\
		unit_failed = 1;					\
		return;							\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *a_ = (a), *b_ = (b);				\
	if (a_ == NULL || b_ == NULL ? a_ != b_ : strcmp(a_, b_) != 0) { \
		fprintf(stderr, "%s:%d: %s: \"%s\" != \"%s\"\n",	\
		    __FILE__, __LINE__, __func__, a_ ? a_ : "(null)",	\
		    b_ ? b_ : "(null)");				\
		unit_failed = 1;					\
		return;							\
	}								\
} while (0)

struct unit_test {
	const char	*name;
	void		(*fn)(void);
};

/* Each test file defines one table, NULL-terminated. */
extern const struct unit_test valid_tests[];
extern const struct unit_test json_tests[];
extern const struct unit_test jwt_tests[];
extern const struct unit_test template_tests[];
extern const struct unit_test mail_tests[];
extern const struct unit_test db_tests[];
extern const struct unit_test sandbox_tests[];
extern const struct unit_test token_tests[];
extern const struct unit_test route_tests[];
extern const struct unit_test cache_tests[];

#endif
