/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Webhooks signed the Standard Webhooks way (webhook.c): each app's
 * signing secret, derived from the server secret and the app's secret
 * generation (so never stored), the signature of one delivery, and the
 * check of a webhook URL against the configuration.  Pure functions;
 * the process that delivers is hook.c.
 */
#ifndef WEBHOOK_H
#define WEBHOOK_H

#include <sys/types.h>

/* "whsec_" and the base64 of 32 bytes. */
#define WEBHOOK_SECRET_LEN	(6 + 44)
/* "v1," and the base64 of an HMAC-SHA256. */
#define WEBHOOK_SIG_LEN		(3 + 44)
#define WEBHOOK_URL_MAX		2048
#define WEBHOOK_WHY_MAX		128

/* The signing secret of app's generation gen (gen >= 1); 0 or -1. */
int	 webhook_secret(const unsigned char server[32], const char *app,
	    int gen, unsigned char out[32]);
/* The secret as shown to the app's developers: whsec_BASE64. */
void	 webhook_secret_text(const unsigned char secret[32],
	    char out[WEBHOOK_SECRET_LEN + 1]);
/*
 * webhook-signature's value for message id, webhook-timestamp ts (Unix
 * seconds as text) and the body: "v1," and the base64 of
 * HMAC-SHA256(secret, id "." ts "." body).  0, or -1 when out of memory.
 */
int	 webhook_sign(const unsigned char secret[32], const char *id,
	    const char *ts, const char *body, size_t len,
	    char out[WEBHOOK_SIG_LEN + 1]);
/*
 * Whether url may receive webhooks: an absolute https URL (http only when
 * allow_http, and then only to a loopback host) without user name,
 * password or fragment, at most WEBHOOK_URL_MAX bytes of printable
 * ASCII, whose port (443 or 80 when not given) is one of ports, a
 * comma-separated list of port numbers.  0, or -1 with the reason in
 * why.
 */
int	 webhook_url_check(const char *url, int allow_http, const char *ports,
	    char why[WEBHOOK_WHY_MAX]);
/*
 * Whether ports is a list the config takes: 1 to 16 port numbers from 1
 * to 65535, comma-separated, no spaces.  Fills out[] (0-terminated, room
 * for 17) when out is not NULL.  0 or -1.
 */
int	 webhook_ports_parse(const char *ports, int out[]);
#define WEBHOOK_PORTS_MAX	16
/* The delay before the next try after attempt n (1: the first) failed. */
int	 webhook_backoff(int n);

#endif
