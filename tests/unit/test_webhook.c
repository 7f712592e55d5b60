/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Unit tests: webhook secrets, signatures (vectors computed with
 * Python's hmac and base64), URLs and ports, the retry delays.
 */
#include <string.h>

#include "webhook.h"
#include "unit.h"

static void
test_sign_vector(void)
{
	unsigned char k[32];
	char sig[WEBHOOK_SIG_LEN + 1];
	int i;

	for (i = 0; i < 32; i++)
		k[i] = (unsigned char)(i + 1);
	CHECK(webhook_sign(k, "msg_abc", "1700000000", "{\"a\":1}", 7,
	    sig) == 0);
	CHECK_STR(sig, "v1,MU4y9Gp6kEc137Ba3BXYq72HDItizyboMkRupp3Lerk=");
	/* The body's length counts, not a NUL. */
	CHECK(webhook_sign(k, "msg_abc", "1700000000", "{\"a\":1}x", 7,
	    sig) == 0);
	CHECK_STR(sig, "v1,MU4y9Gp6kEc137Ba3BXYq72HDItizyboMkRupp3Lerk=");
}

static void
test_secret_derived_and_shown(void)
{
	unsigned char server[32], s1[32], s2[32], k[32];
	char text[WEBHOOK_SECRET_LEN + 1];
	int i;

	memset(server, 0, sizeof(server));
	webhook_secret(server, "app-1", 1, s1);
	webhook_secret_text(s1, text);
	CHECK_STR(text, "whsec_73143qLm8qsz52IYHWBsZiUvj3CcHypWWEbbxTx5x34=");
	CHECK(strlen(text) == WEBHOOK_SECRET_LEN);
	webhook_secret(server, "app-1", 2, s2);
	CHECK(memcmp(s1, s2, 32) != 0);
	webhook_secret(server, "app-2", 1, s2);
	CHECK(memcmp(s1, s2, 32) != 0);
	for (i = 0; i < 32; i++)
		k[i] = (unsigned char)(i + 1);
	webhook_secret_text(k, text);
	CHECK_STR(text, "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=");
}

static void
test_ports(void)
{
	int p[WEBHOOK_PORTS_MAX + 1];

	CHECK(webhook_ports_parse("443", p) == 0 && p[0] == 443 && p[1] == 0);
	CHECK(webhook_ports_parse("443,8443,1", p) == 0 && p[0] == 443 &&
	    p[1] == 8443 && p[2] == 1 && p[3] == 0);
	CHECK(webhook_ports_parse("65535", NULL) == 0);
	CHECK(webhook_ports_parse("", NULL) == -1);
	CHECK(webhook_ports_parse("0", NULL) == -1);
	CHECK(webhook_ports_parse("65536", NULL) == -1);
	CHECK(webhook_ports_parse("443,", NULL) == -1);
	CHECK(webhook_ports_parse(",443", NULL) == -1);
	CHECK(webhook_ports_parse("443 ,80", NULL) == -1);
	CHECK(webhook_ports_parse("-1", NULL) == -1);
	CHECK(webhook_ports_parse("+443", NULL) == -1);
	CHECK(webhook_ports_parse("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
	    p) == 0 && p[15] == 16 && p[16] == 0);
	CHECK(webhook_ports_parse("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
	    NULL) == -1);
}

/* webhook_url_check's verdict on u: "" when taken, else the reason. */
static const char *
url(const char *u, int http, const char *ports)
{
	static char why[WEBHOOK_WHY_MAX];

	if (webhook_url_check(u, http, ports, why) == 0)
		return "";
	return why;
}

static void
test_urls(void)
{
	char longurl[WEBHOOK_URL_MAX + 2];

	CHECK_STR(url("https://hooks.example.org/ri", 0, "443"), "");
	CHECK_STR(url("https://hooks.example.org:8443/ri?x=1", 0, "443,8443"),
	    "");
	CHECK_STR(url("https://hooks.example.org:8443/", 0, "443"),
	    "port 8443 is not in webhook_ports");
	CHECK_STR(url("http://127.0.0.1:8080/", 0, "8080"),
	    "not https (webhook_allow_http is no)");
	CHECK_STR(url("http://127.0.0.1:8080/", 1, "8080"), "");
	CHECK_STR(url("http://127.9.9.9:8080/", 1, "8080"), "");
	CHECK_STR(url("http://localhost:8080/", 1, "8080"), "");
	CHECK_STR(url("http://[::1]:8080/", 1, "8080"), "");
	CHECK_STR(url("http://128.0.0.1:8080/", 1, "8080"),
	    "http only to a loopback address");
	/* A name that looks like 127.x is a name, anywhere. */
	CHECK_STR(url("http://127.evil.example:8080/", 1, "8080"),
	    "http only to a loopback address");
	CHECK_STR(url("http://127.0.0.1.nip.example:8080/", 1, "8080"),
	    "http only to a loopback address");
	CHECK_STR(url("http://LocalHost:8080/", 1, "8080"), "");
	CHECK_STR(url("http://hooks.example.org/", 1, "80"),
	    "http only to a loopback address");
	CHECK_STR(url("http://127.0.0.1/", 1, "443"),
	    "port 80 is not in webhook_ports");
	CHECK_STR(url("ftp://hooks.example.org/", 1, "443"), "not https");
	CHECK_STR(url("https://u:p@hooks.example.org/", 0, "443"),
	    "a user name or password in it");
	CHECK_STR(url("https://u@hooks.example.org/", 0, "443"),
	    "a user name or password in it");
	CHECK_STR(url("https://hooks.example.org/#f", 0, "443"),
	    "a fragment (#) in it");
	CHECK_STR(url("https://hooks.example.org/a b", 0, "443"),
	    "not printable ASCII without spaces");
	CHECK_STR(url("https://hooks.example.org/\r\nX: y", 0, "443"),
	    "not printable ASCII without spaces");
	CHECK_STR(url("https://hooks.example.org/\xc3\xa9", 0, "443"),
	    "not printable ASCII without spaces");
	CHECK_STR(url("/relative", 0, "443"), "not an absolute URL");
	CHECK_STR(url("hooks.example.org", 0, "443"), "not an absolute URL");
	CHECK_STR(url("https://", 0, "443"), "not an absolute URL");
	CHECK_STR(url("https://h:99999/", 0, "443"), "not an absolute URL");
	CHECK_STR(url("https://hooks.example.org/", 0, "x"),
	    "webhook_ports is not a list of ports");
	memset(longurl, 'a', sizeof(longurl) - 1);
	longurl[sizeof(longurl) - 1] = '\0';
	memcpy(longurl, "https://h/", 10);
	CHECK_STR(url(longurl, 0, "443"), "longer than 2048 bytes");
	longurl[WEBHOOK_URL_MAX] = '\0';
	CHECK_STR(url(longurl, 0, "443"), "");
}

static void
test_backoff(void)
{
	CHECK(webhook_backoff(1) == 5);
	CHECK(webhook_backoff(2) == 30);
	CHECK(webhook_backoff(8) == 14400);
	CHECK(webhook_backoff(9) == 28800);
	CHECK(webhook_backoff(10) == 28800);
	CHECK(webhook_backoff(1000) == 28800);
	CHECK(webhook_backoff(0) == 5);
}

const struct unit_test webhook_tests[] = {
	{ "webhook_sign_vector", test_sign_vector },
	{ "webhook_secret_derived_and_shown", test_secret_derived_and_shown },
	{ "webhook_ports", test_ports },
	{ "webhook_urls", test_urls },
	{ "webhook_backoff", test_backoff },
	{ NULL, NULL }
};
