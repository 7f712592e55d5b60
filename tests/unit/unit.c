/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Unit test runner: runs every table, prints one line per failure and the
 * summary "N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "unit.h"

int unit_failed;

extern const struct unit_test conf_tests[];	/* test_conf.c */
extern const struct unit_test park_tests[];	/* test_park.c */
extern const struct unit_test metrics_tests[];	/* test_metrics.c */
extern const struct unit_test dsn_tests[];	/* test_dsn.c */
extern const struct unit_test webhook_tests[];	/* test_webhook.c */

static const struct unit_test *const tables[] = {
	valid_tests, json_tests, jwt_tests, template_tests, mail_tests,
	db_tests, sandbox_tests, token_tests, conf_tests, route_tests,
	cache_tests, park_tests, metrics_tests, dsn_tests, webhook_tests, NULL
};

int
main(int argc, char *argv[])
{
	const struct unit_test *t;
	int i, passed = 0, failed = 0;

	log_init(1, LOG_LVL_ERROR, "unit");
	for (i = 0; tables[i] != NULL; i++)
		for (t = tables[i]; t->name != NULL; t++) {
			if (argc > 1 && strstr(t->name, argv[1]) == NULL)
				continue;
			unit_failed = 0;
			t->fn();
			if (unit_failed) {
				printf("FAIL %s\n", t->name);
				failed++;
			} else
				passed++;
		}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
