/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invites: the limits and macros every module shares.  Each
 * module's interface is in a header of its own (conf.h, util.h, db.h,
 * api.h, ...), which includes what it needs.
 *
 * One request: nginx -> conn.c (the connection has a request) -> fcgi.c
 * (read into struct req) -> worker.c -> route.c -> a handler (invite.c,
 * loop.c, optout.c), which reads through auth.c, valid.c, json.c and
 * db.h and answers in route.c, or parks the request in worker.c with its
 * invite for the writer (writer.c); the writer's answer and the mailer's
 * verdict (mailer.c, relay.c) come back to worker.c, which wakes the
 * handler's park_fn; fcgi.c writes the answer.  The supervisor (main.c,
 * start.c, load.c, child.c) only starts and restarts these processes.
 */
#ifndef EXTERN_H
#define EXTERN_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define UUID_LEN	36
#define LANG_MAX	16		/* "zh-Hant-TW" and room to spare */
#define EMAIL_MAX	254
#define REQID_MAX	64
#define JSON_DEPTH_MAX	4
#define META_MAX	1024	/* bytes of an invite's metadata, answered */
#define META_MEMBERS	16
#define REDIRECT_MAX	2048	/* bytes of a redirectUrl */
#define DAYS_MAX	30	/* expiresInDays */

/* The length of a string literal, counted by the compiler. */
#define LIT_LEN(s)	(sizeof(s) - 1)
/* A string into a char array, cut to fit (callers check lengths first). */
#define COPY(dst, src)	snprintf((dst), sizeof(dst), "%s", (src))

#endif
