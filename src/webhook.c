/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Webhooks: secrets, signatures and URLs (webhook.h).  URLs are taken
 * apart by libcurl's own parser (curl_url), the one that will fetch
 * them, so that what is checked is what is connected to.
 */
#include <sys/types.h>

#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "webhook.h"

int
webhook_secret(const unsigned char server[32], const char *app, int gen,
    unsigned char out[32])
{
	char label[96];
	unsigned int n = 32;

	snprintf(label, sizeof(label), "referral-invites webhook %s %d", app,
	    gen);
	return HMAC(EVP_sha256(), server, 32, (unsigned char *)label,
	    strlen(label), out, &n) == NULL ? -1 : 0;
}

void
webhook_secret_text(const unsigned char secret[32],
    char out[WEBHOOK_SECRET_LEN + 1])
{
	memcpy(out, "whsec_", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, secret, 32);
}

int
webhook_sign(const unsigned char secret[32], const char *id, const char *ts,
    const char *body, size_t len, char out[WEBHOOK_SIG_LEN + 1])
{
	unsigned char mac[32];
	unsigned int n = sizeof(mac);
	size_t il = strlen(id), tl = strlen(ts);
	unsigned char *msg;
	int rc = -1;

	if ((msg = malloc(il + tl + len + 2)) == NULL)
		return -1;
	memcpy(msg, id, il);
	msg[il] = '.';
	memcpy(msg + il + 1, ts, tl);
	msg[il + 1 + tl] = '.';
	memcpy(msg + il + tl + 2, body, len);
	if (HMAC(EVP_sha256(), secret, 32, msg, il + tl + len + 2, mac,
	    &n) != NULL) {
		memcpy(out, "v1,", 3);
		EVP_EncodeBlock((unsigned char *)out + 3, mac, 32);
		rc = 0;
	}
	free(msg);
	return rc;
}

int
webhook_ports_parse(const char *ports, int out[])
{
	const char *s = ports;
	char *end;
	long v;
	int n = 0;

	do {
		if (*s < '0' || *s > '9' || n == WEBHOOK_PORTS_MAX)
			return -1;
		v = strtol(s, &end, 10);
		if (v < 1 || v > 65535 || (*end != ',' && *end != '\0'))
			return -1;
		if (out != NULL)
			out[n] = (int)v;
		n++;
		s = end + (*end == ',');
	} while (*end != '\0');
	if (out != NULL)
		out[n] = 0;
	return 0;
}

/*
 * Whether host (as curl_url gives it: IPv6 in brackets) is loopback: an
 * IPv4 address in 127.0.0.0/8, [::1] or localhost, never another name.
 */
static int
loopback(const char *host)
{
	struct in_addr a;

	if (inet_pton(AF_INET, host, &a) == 1)
		return (ntohl(a.s_addr) >> 24) == 127;
	return strcasecmp(host, "localhost") == 0 ||
	    strcmp(host, "[::1]") == 0;
}

/* The URL's part, or NULL when it has none or curl cannot say. */
static char *
part(CURLU *u, CURLUPart what)
{
	char *v = NULL;

	if (curl_url_get(u, what, &v, 0) != CURLUE_OK)
		return NULL;
	return v;
}

static int
why_is(char why[WEBHOOK_WHY_MAX], const char *s)
{
	snprintf(why, WEBHOOK_WHY_MAX, "%s", s);
	return -1;
}

int
webhook_url_check(const char *url, int allow_http, const char *ports,
    char why[WEBHOOK_WHY_MAX])
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *port = NULL, *x = NULL;
	int list[WEBHOOK_PORTS_MAX + 1], i, n, rc = -1;
	const char *p;

	if (strlen(url) > WEBHOOK_URL_MAX)
		return why_is(why, "longer than 2048 bytes");
	for (p = url; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return why_is(why, "not printable ASCII without spaces");
	if (webhook_ports_parse(ports, list) == -1)
		return why_is(why, "webhook_ports is not a list of ports");
	if ((u = curl_url()) == NULL)
		return why_is(why, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		why_is(why, "not an absolute URL");
		goto out;
	}
	scheme = part(u, CURLUPART_SCHEME);
	host = part(u, CURLUPART_HOST);
	port = part(u, CURLUPART_PORT);
	if (scheme == NULL || host == NULL) {
		why_is(why, "not an absolute URL");
		goto out;
	}
	if ((x = part(u, CURLUPART_USER)) != NULL ||
	    (x = part(u, CURLUPART_PASSWORD)) != NULL) {
		why_is(why, "a user name or password in it");
		goto out;
	}
	if ((x = part(u, CURLUPART_FRAGMENT)) != NULL) {
		why_is(why, "a fragment (#) in it");
		goto out;
	}
	if (strcmp(scheme, "http") == 0) {
		if (!allow_http || !loopback(host)) {
			why_is(why, allow_http ? "http only to a loopback "
			    "address" : "not https (webhook_allow_http is no)");
			goto out;
		}
	} else if (strcmp(scheme, "https") != 0) {
		why_is(why, "not https");
		goto out;
	}
	n = port != NULL ? atoi(port) : strcmp(scheme, "https") == 0 ? 443 : 80;
	for (i = 0; list[i] != 0; i++)
		if (list[i] == n)
			rc = 0;
	if (rc == -1)
		snprintf(why, WEBHOOK_WHY_MAX, "port %d is not in webhook_ports",
		    n);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(x);
	curl_url_cleanup(u);
	return rc;
}

int
webhook_backoff(int n)
{
	/* About what hosted webhook services do: quick, then hours. */
	static const int delay[] = { 5, 30, 120, 600, 1800, 3600, 7200,
	    14400, 28800 };
	int last = (int)(sizeof(delay) / sizeof(delay[0]));

	if (n < 1)
		n = 1;
	return delay[n > last ? last - 1 : n - 1];
}
