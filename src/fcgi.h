/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The libfcgi adapter (fcgi.c), used by worker.c alone.
 */
#ifndef FCGI_H
#define FCGI_H

#include <stddef.h>

struct req;

/* Ready libfcgi: a request for each one a worker may have under way. */
int		 fcgi_init(void);
/*
 * Read the request waiting on connection fd whole (its body if at most
 * max_body bytes); NULL when libfcgi found none and closed fd.
 */
struct req	*fcgi_read(int fd, size_t max_body);
/* Write r's answer (it has one) and end it; -1 when fd was closed. */
int		 fcgi_finish(struct req *);

#endif
