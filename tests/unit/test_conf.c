/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * conf.c: conf_load on temp files, every value checked where it is read,
 * with the line and the reason; and what the mailer builds from a URL
 * the check lets through.
 */
#include <sys/types.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extern.h"
#include "log.h"
#include "conf.h"
#include "template.h"
#include "mail.h"
#include "token.h"
#include "pg_uri.h"
#include "unit.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

#define OPTOUT	"/api/v1/referral-invites/opt-out?token="

static char path[64];
static char err[512];
static struct conf conf;

/* Write text to a fresh temp file and conf_load it: 0 or -1. */
static int
load_text(const char *text, int required)
{
	FILE *f;
	int fd, rc;

	snprintf(path, sizeof(path), "/tmp/ri-unit-conf-XXXXXX");
	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL)
		return -2;
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	rc = conf_load(&conf, path, required, err, sizeof(err));
	unlink(path);
	return rc;
}

/* One setting on line 2, after a comment. */
static int
load1(const char *key, const char *value)
{
	char text[1100];

	snprintf(text, sizeof(text), "# unit test\n%s = %s\n", key, value);
	return load_text(text, 0);
}

/* Whether key = value is refused on line 2 with exactly this reason. */
static int
refused(const char *key, const char *value, const char *why)
{
	char want[600];

	if (load1(key, value) != -1) {
		fprintf(stderr, "%s = %s: accepted\n", key, value);
		conf_free(&conf);
		return 0;
	}
	snprintf(want, sizeof(want), "%s:2: bad value for %s: %s", path, key,
	    why);
	if (strcmp(err, want) != 0) {
		fprintf(stderr, "%s = %s: \"%s\" != \"%s\"\n", key, value, err,
		    want);
		return 0;
	}
	return 1;
}

/* Whether key = value loads; conf holds it until conf_free. */
static int
accepted(const char *key, const char *value)
{
	if (load1(key, value) == 0)
		return 1;
	fprintf(stderr, "%s = %s: %s\n", key, value, err);
	return 0;
}

static const struct {
	const char	*key;
	size_t		 off;
	long long	 min, max;
} int_keys[] = {
	{ "workers", offsetof(struct conf, workers), 1, 256 },
	{ "smtp_port", offsetof(struct conf, smtp_port), 1, 65535 },
	{ "smtp_timeout", offsetof(struct conf, smtp_timeout), 1, 3600 },
	{ "delivery_wait", offsetof(struct conf, delivery_wait), 0, 20 },
	{ "retry_initial", offsetof(struct conf, retry_initial), 1, 86400 },
	{ "retry_max", offsetof(struct conf, retry_max), 1, 604800 },
	{ "retry_give_up", offsetof(struct conf, retry_give_up), 1, 31536000 },
	{ "limit_per_hour", offsetof(struct conf, limit_per_hour), 0,
	    1000000000 },
	{ "limit_per_day", offsetof(struct conf, limit_per_day), 0,
	    1000000000 },
	{ "app_limit_per_minute", offsetof(struct conf, app_limit_per_minute),
	    0, 1000000000 },
	{ "cooldown", offsetof(struct conf, cooldown), 0, 31536000 },
};

/* Every key of conf_keys[] (the documented set) is read, none unknown. */
static void
test_conf_every_key_known(void)
{
	const struct conf_key *k;

	for (k = conf_keys; k->key != NULL; k++) {
		CHECK(load1(k->key, "\x01") == -1);
		CHECK(strstr(err, "unknown key") == NULL);
		CHECK(strstr(err, k->key) != NULL);
	}
}

/* The defaults, spelt out apart from the table that sets them. */
static void
test_conf_defaults(void)
{
	struct conf c;

	conf_defaults(&c);
	CHECK(strcmp(c.database, LOCALSTATEDIR
	    "/lib/referral-invites/invites.db") == 0);
	CHECK(strcmp(c.listen, RUNSTATEDIR "/referral-invites/fcgi.sock") == 0);
	CHECK(c.socket_mode == 0660);
	CHECK(strcmp(c.socket_group, "www-data") == 0);
	CHECK(strcmp(c.user, "referral-invites") == 0);
	CHECK(c.workers == 4 && c.max_body == 8192);
	CHECK(c.synchronous == SYNC_FULL);
	CHECK(c.templates_dir == NULL && c.mail_from == NULL &&
	    c.public_url == NULL && c.smtp_user == NULL &&
	    c.smtp_password_file == NULL);
	CHECK(strcmp(c.default_language, "en") == 0);
	CHECK(strcmp(c.smtp_host, "localhost") == 0 && c.smtp_port == 25);
	CHECK(c.smtp_starttls == STARTTLS_OPPORTUNISTIC);
	CHECK(c.smtp_helo != NULL && c.smtp_helo[0] != '\0');
	CHECK(c.smtp_timeout == 30 && c.smtp_sessions == 4);
	CHECK(c.delivery_wait == 3 && c.retry_initial == 60 &&
	    c.retry_max == 3600 && c.retry_give_up == 259200);
	CHECK(c.limit_per_hour == 20 && c.limit_per_day == 100 &&
	    c.app_limit_per_minute == 600 && c.cooldown == 86400);
	CHECK(c.log_level == LOG_LVL_INFO);
	conf_free(&c);
}

/* A default path as the page gives it (a build for /var and /run). */
static void
doc_default(const char *def, char *out, size_t outsz)
{
	size_t n;

	/* RUNSTATEDIR first: it may be LOCALSTATEDIR/run. */
	if (strncmp(def, RUNSTATEDIR "/", (n = strlen(RUNSTATEDIR)) + 1) == 0)
		snprintf(out, outsz, "/run%s", def + n);
	else if (strncmp(def, LOCALSTATEDIR "/",
	    (n = strlen(LOCALSTATEDIR)) + 1) == 0)
		snprintf(out, outsz, "/var%s", def + n);
	else
		snprintf(out, outsz, "%s", def);
}

/*
 * referral-invites.conf(5) agrees with the table: each key's paragraph
 * (".It Ic KEY" to the next key) gives its range as "MIN to MAX" and
 * its default after "Default:" (past a .Pa, .Ql or .Cm).
 */
static void
test_conf_man_page(void)
{
	const struct conf_key *k;
	char *page, *p, *end, *para, want[64], def[256], *d;
	size_t n, w;
	FILE *f;
	long sz;

	f = fopen(TOP_SRCDIR "/man/referral-invites.conf.5", "r");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	rewind(f);
	page = calloc(1, (size_t)sz + 1);
	CHECK(page != NULL && fread(page, 1, (size_t)sz, f) == (size_t)sz);
	fclose(f);
	for (k = conf_keys; k->key != NULL; k++) {
		snprintf(want, sizeof(want), "\n.It Ic %s ", k->key);
		if ((p = strstr(page, want)) == NULL) {
			snprintf(want, sizeof(want), "\n.It Ic %s\n", k->key);
			p = strstr(page, want);
		}
		CHECK(p != NULL);
		if (p == NULL) {
			fprintf(stderr, "  %s: not in the page\n", k->key);
			continue;
		}
		p += strlen(want);
		end = strstr(p, "\n.It Ic ");
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		/* The paragraph's lines joined by spaces. */
		para = strndup(p, n);
		for (d = para; *d != '\0'; d++)
			if (*d == '\n')
				*d = ' ';
		if (k->type == K_INT || k->type == K_SIZE) {
			snprintf(want, sizeof(want), " %lld to %lld", k->min,
			    k->max);
			if (strstr(para, want) == NULL)
				fprintf(stderr, "  %s: no \"%s\"\n", k->key,
				    want + 1);
			CHECK(strstr(para, want) != NULL);
		}
		if (k->def != NULL) {
			d = strstr(para, "Default: ");
			CHECK(d != NULL);
			if (d == NULL)
				continue;
			d += strlen("Default: ");
			if (strncmp(d, ".Pa ", 4) == 0 ||
			    strncmp(d, ".Ql ", 4) == 0 ||
			    strncmp(d, ".Cm ", 4) == 0)
				d += 4;
			/* The page gives the paths of a /usr build. */
			doc_default(k->def, def, sizeof(def));
			w = strlen(def);
			if (strncmp(d, def, w) != 0 ||
			    strchr(" .", d[w]) == NULL || d[w] == '\0')
				fprintf(stderr, "  %s: default not %s: %.20s\n",
				    k->key, def, d);
			CHECK(strncmp(d, def, w) == 0 && d[w] != '\0' &&
			    strchr(" .", d[w]) != NULL);
		}
		free(para);
	}
	free(page);
}

/* min and max load and are stored; min - 1, max + 1 and junk are not. */
static void
test_conf_int_edges(void)
{
	char v[32], why[64];
	size_t i;
	int *field;

	for (i = 0; i < sizeof(int_keys) / sizeof(int_keys[0]); i++) {
		field = (int *)(void *)((char *)&conf + int_keys[i].off);
		snprintf(v, sizeof(v), "%lld", int_keys[i].min);
		CHECK(accepted(int_keys[i].key, v));
		/* retry_max is raised to retry_initial, 60 by default. */
		CHECK(*field == (strcmp(int_keys[i].key, "retry_max") == 0 ?
		    60 : int_keys[i].min));
		conf_free(&conf);
		snprintf(v, sizeof(v), "%lld", int_keys[i].max);
		CHECK(accepted(int_keys[i].key, v));
		CHECK(*field == int_keys[i].max);
		conf_free(&conf);
		snprintf(why, sizeof(why), "expected an integer from %lld to "
		    "%lld", int_keys[i].min, int_keys[i].max);
		snprintf(v, sizeof(v), "%lld", int_keys[i].min - 1);
		CHECK(refused(int_keys[i].key, v, why));
		snprintf(v, sizeof(v), "%lld", int_keys[i].max + 1);
		CHECK(refused(int_keys[i].key, v, why));
		CHECK(refused(int_keys[i].key, "", why));
		CHECK(refused(int_keys[i].key, "3s", why));
		CHECK(refused(int_keys[i].key, "+1", why));
	}
}

/* A file with key = n on line (after comments and blank lines). */
static void
at_line(char *text, size_t textsz, int line, const char *key, long long n)
{
	static const char *const filler[] = { "# a comment\n", "\n",
	    "   \t\n", "  # indented\n" };
	size_t len = 0;
	int i;

	text[0] = '\0';
	for (i = 1; i < line && len < textsz; i++)
		len += (size_t)snprintf(text + len, textsz - len, "%s",
		    filler[i % 4]);
	if (len < textsz)
		snprintf(text + len, textsz - len, "%s = %lld\n", key, n);
}

/* What a number loaded for k is stored as. */
static long long
stored(const struct conf_key *k)
{
	const void *field = (const char *)&conf + k->off;

	return k->type == K_SIZE ? (long long)*(const size_t *)field :
	    *(const int *)field;
}

/*
 * Every number of conf_keys[], its range from the table itself: MIN and
 * MAX load and are stored, MIN - 1 and MAX + 1 are refused with the
 * range, naming the key's line.
 */
static void
test_conf_table_ranges(void)
{
	const struct conf_key *k;
	char text[512], want[600];
	long long v[4], got;
	int i, line, rc, n = 0;

	for (k = conf_keys; k->key != NULL; k++) {
		if (k->type != K_INT && k->type != K_SIZE)
			continue;
		line = 1 + n++ % 9;
		v[0] = k->min;
		v[1] = k->max;
		v[2] = k->min - 1;
		v[3] = k->max + 1;
		for (i = 0; i < 4; i++) {
			at_line(text, sizeof(text), line, k->key, v[i]);
			if (i < 2) {
				if ((rc = load_text(text, 0)) != 0)
					fprintf(stderr, "  %s = %lld: %s\n",
					    k->key, v[i], err);
				CHECK(rc == 0);
				got = stored(k);
				/* The one rule across keys (conf.c). */
				if (strcmp(k->key, "retry_max") == 0 &&
				    v[i] < conf.retry_initial)
					v[i] = conf.retry_initial;
				conf_free(&conf);
				CHECK(got == v[i]);
				continue;
			}
			CHECK(load_text(text, 0) == -1);
			snprintf(want, sizeof(want), "%s:%d: bad value for %s: "
			    "expected an integer from %lld to %lld", path,
			    line, k->key, k->min, k->max);
			CHECK_STR(err, want);
		}
	}
	/* At least the numbers int_keys[] and max_body know of. */
	CHECK(n > (int)(sizeof(int_keys) / sizeof(int_keys[0])));
}

static void
test_conf_retry_max_raised(void)
{
	CHECK(load_text("retry_initial = 100\nretry_max = 50\n", 0) == 0);
	CHECK(conf.retry_max == 100);
	conf_free(&conf);
	CHECK(load_text("retry_initial = 1\nretry_max = 1\n", 0) == 0);
	CHECK(conf.retry_max == 1);
	conf_free(&conf);
}

static void
test_conf_max_body_edges(void)
{
	const char *why = "expected an integer from 64 to 1048576";

	CHECK(accepted("max_body", "64"));
	CHECK(conf.max_body == 64);
	conf_free(&conf);
	CHECK(accepted("max_body", "1048576"));
	CHECK(conf.max_body == 1048576);
	conf_free(&conf);
	CHECK(refused("max_body", "63", why));
	CHECK(refused("max_body", "1048577", why));
	CHECK(refused("max_body", "8k", why));
}

static void
test_conf_socket_mode(void)
{
	const char *why = "expected 1 to 4 octal digits, such as 0660";

	CHECK(accepted("socket_mode", "0"));
	CHECK(conf.socket_mode == 0);
	conf_free(&conf);
	CHECK(accepted("socket_mode", "7777"));
	CHECK(conf.socket_mode == 07777);
	conf_free(&conf);
	CHECK(accepted("socket_mode", "660"));
	CHECK(conf.socket_mode == 0660);
	conf_free(&conf);
	CHECK(refused("socket_mode", "07777", why));
	CHECK(refused("socket_mode", "0668", why));
	CHECK(refused("socket_mode", "", why));
	CHECK(refused("socket_mode", "rw", why));
}

static void
test_conf_enums(void)
{
	CHECK(accepted("synchronous", "normal"));
	CHECK(conf.synchronous == SYNC_NORMAL);
	conf_free(&conf);
	CHECK(accepted("smtp_starttls", "required"));
	CHECK(conf.smtp_starttls == STARTTLS_REQUIRED);
	conf_free(&conf);
	CHECK(accepted("log_level", "error"));
	CHECK(conf.log_level == LOG_LVL_ERROR);
	conf_free(&conf);
	CHECK(refused("synchronous", "FULL", "expected full or normal"));
	CHECK(refused("smtp_starttls", "on",
	    "expected off, opportunistic or required"));
	CHECK(refused("log_level", "",
	    "expected debug, info, warning or error"));
}

/* The line of the first bad setting counts comments and blank lines. */
static void
test_conf_error_line(void)
{
	char want[600];

	CHECK(load_text("# one\n\nworkers = 2\n   # four\n\t\n"
	    "smtp_port = 0\nworkers = x\n", 0) == -1);
	snprintf(want, sizeof(want), "%s:6: bad value for smtp_port: "
	    "expected an integer from 1 to 65535", path);
	CHECK_STR(err, want);
	CHECK(load_text("workers = 2\nfrobnicate = 1\n", 0) == -1);
	snprintf(want, sizeof(want), "%s:2: unknown key \"frobnicate\"", path);
	CHECK_STR(err, want);
	CHECK(load_text("workers = 2\nworkers\n", 0) == -1);
	snprintf(want, sizeof(want), "%s:2: expected key = value", path);
	CHECK_STR(err, want);
}

static void
test_conf_required(void)
{
	char want[600];

	CHECK(load_text("mail_from = a@b.example\n", 1) == -1);
	snprintf(want, sizeof(want), "%s: public_url is required", path);
	CHECK_STR(err, want);
	CHECK(load_text("mail_from = a@b.example\n"
	    "public_url = https://b.example\n", 1) == 0);
	conf_free(&conf);
}

/* Accepted URLs, as stored (trailing slashes dropped). */
static const char *const good_urls[][2] = {
	{ "https://invites.example.org", "https://invites.example.org" },
	{ "https://invites.example.org/", "https://invites.example.org" },
	{ "http://127.0.0.1:8080", "http://127.0.0.1:8080" },
	{ "https://127.0.0.1:9443//", "https://127.0.0.1:9443" },
	{ "https://h:1", "https://h:1" },
	{ "https://h:65535/", "https://h:65535" },
	{ "https://[::1]:9443/a", "https://[::1]:9443/a" },
	{ "https://[2001:db8::1]", "https://[2001:db8::1]" },
	{ "https://x-1.example/p%20q/r", "https://x-1.example/p%20q/r" },
	{ "https://h/-._~!$&()*+,;=:@/", "https://h/-._~!$&()*+,;=:@" },
};

static const char *const bad_urls[][2] = {
	{ "", "expected https://host[:port][/path]" },
	{ "ftp://h.example", "expected https://host[:port][/path]" },
	{ "HTTPS://h.example", "expected https://host[:port][/path]" },
	{ "https:/h.example", "expected https://host[:port][/path]" },
	{ "https://", "expected a host name, IPv4 address or [IPv6 address] "
	    "after //" },
	{ "https:///x", "expected a host name, IPv4 address or [IPv6 address] "
	    "after //" },
	{ "https://:443", "expected a host name, IPv4 address or "
	    "[IPv6 address] after //" },
	{ "https://a b", "expected a host name, IPv4 address or "
	    "[IPv6 address] after //" },
	{ "https://user@h", "expected a host name, IPv4 address or "
	    "[IPv6 address] after //" },
	{ "https://-h.example", "expected a host name, IPv4 address or "
	    "[IPv6 address] after //" },
	{ "https://h..example", "expected a host name, IPv4 address or "
	    "[IPv6 address] after //" },
	{ "https://h_1.example", "expected a host name, IPv4 address or "
	    "[IPv6 address] after //" },
	{ "https://127.0.0.256", "expected a host name, IPv4 address or "
	    "[IPv6 address] after //" },
	{ "https://[::1", "expected a host name, IPv4 address or "
	    "[IPv6 address] after //" },
	{ "https://[h.example]", "expected a host name, IPv4 address or "
	    "[IPv6 address] after //" },
	{ "https://h?x=1", "expected a host name, IPv4 address or "
	    "[IPv6 address] after //" },
	{ "https://h:0", "expected a port from 1 to 65535 after the host" },
	{ "https://h:65536", "expected a port from 1 to 65535 after the host" },
	{ "https://h:", "expected a port from 1 to 65535 after the host" },
	{ "https://h:https", "expected a port from 1 to 65535 after the host" },
	{ "https://[::1]x", "expected a port from 1 to 65535 after the host" },
	{ "https://127.0.0.1:9443/a b", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
	{ "https://h/a\"b", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
	{ "https://h/a'b", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
	{ "https://h/<b>", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
	{ "https://h/a?b", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
	{ "https://h/a#b", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
	{ "https://h/a\\b", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
	{ "https://h/%zz", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
	{ "https://h/%2", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
	{ "https://h/\xc3\xa9", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
	{ "https://h/a\tb", "expected a path of letters, digits, "
	    "%XX and -._~!$&()*+,;=:@/ only" },
};

static void
test_conf_public_url_forms(void)
{
	size_t i;

	for (i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++) {
		CHECK(accepted("public_url", good_urls[i][0]));
		CHECK_STR(conf.public_url, good_urls[i][1]);
		conf_free(&conf);
	}
	for (i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++)
		CHECK(refused("public_url", bad_urls[i][0], bad_urls[i][1]));
}

/* 255 bytes pass, 256 do not. */
static void
test_conf_public_url_length(void)
{
	char url[300];

	memset(url, 'a', sizeof(url));
	memcpy(url, "https://h.example/", 18);
	url[255] = '\0';
	CHECK(accepted("public_url", url));
	conf_free(&conf);
	url[255] = 'a';
	url[256] = '\0';
	CHECK(refused("public_url", url, "expected at most 255 bytes"));
}

/* Whether every line of the message is at most 998 octets. */
static int
lines_fit(const char *p)
{
	const char *e;

	for (; (e = strstr(p, "\r\n")) != NULL; p = e + 2)
		if (e - p > 998)
			return 0;
	return strlen(p) <= 998;
}

/*
 * The mail the mailer builds on public_url, as build_one in mailer.c
 * does: the opt-out URL of the longest address, rendered into the
 * shipped templates and given to mail_build.
 */
static int
builds_mail(const char *public_url)
{
	static const unsigned char secret[32] = { 1, 2, 3 };
	char email[EMAIL_MAX + 1], *tok, *unsub = NULL, *msg = NULL;
	char *text = NULL, *html = NULL;
	struct tmpl_vars v;
	struct mail_msg m;
	size_t len;
	int ok = 0;

	memset(email, 'a', 64);
	memcpy(email + 64, "@", 1);
	memset(email + 65, 'b', EMAIL_MAX - 65);
	memcpy(email + EMAIL_MAX - 8, ".example", 9);
	tok = token_optout(secret, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
	    email);
	if (tok == NULL || asprintf(&unsub, "%s" OPTOUT "%s", public_url,
	    tok) == -1)
		goto out;
	memset(&v, 0, sizeof(v));
	v.app_name = "Acme";
	v.inviter_name = v.inviter_email = "jane@example.org";
	v.invitee_email = email;
	v.accept_url = "https://app.example/accept?token=abc";
	v.optout_url = unsub;
	if ((text = tmpl_render("en", TMPL_TEXT, &v)) == NULL ||
	    (html = tmpl_render("en", TMPL_HTML, &v)) == NULL)
		goto out;
	memset(&m, 0, sizeof(m));
	m.from = "Acme <invites@acme.example>";
	m.to = email;
	m.subject = "Hello";
	m.text = text;
	m.html = html;
	m.message_id = "invite-1@acme.example";
	m.unsub_url = unsub;
	m.date = 1700000000;
	/* List-Unsubscribe carries the URL whole, on one line. */
	ok = (msg = mail_build(&m, &len)) != NULL && lines_fit(msg) &&
	    strstr(msg, unsub) != NULL;
	if (!ok)
		fprintf(stderr, "no message for public_url %s\n", public_url);
out:
	free(msg);
	free(text);
	free(html);
	free(unsub);
	free(tok);
	return ok;
}

/* Every public_url the check accepts gives a message the relay takes. */
static void
test_conf_public_url_builds_mail(void)
{
	char url[256];
	size_t i;

	CHECK(tmpl_load(TOP_SRCDIR "/templates", NULL, err,
	    sizeof(err)) == 0);
	for (i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++) {
		CHECK(accepted("public_url", good_urls[i][0]));
		CHECK(builds_mail(conf.public_url));
		conf_free(&conf);
	}
	memset(url, '~', sizeof(url));
	memcpy(url, "https://[2001:db8::1]:65535/", 28);
	url[255] = '\0';
	CHECK(accepted("public_url", url));
	CHECK(builds_mail(conf.public_url));
	conf_free(&conf);
	tmpl_free();
}

static void
test_conf_listen_forms(void)
{
	const char *const good[] = { "/run/referral-invites/fcgi.sock",
	    "127.0.0.1:9000", "localhost:1", "fcgi.example:65535",
	    "::1:9000", "0.0.0.0:9000", NULL };
	const char *port = "expected a port from 1 to 65535 after the last "
	    "colon", *host = "expected a host name or IP address before the "
	    "port", *form = "expected an absolute path or host:port";
	char sock[120];
	int i;

	for (i = 0; good[i] != NULL; i++) {
		CHECK(accepted("listen", good[i]));
		CHECK_STR(conf.listen, good[i]);
		conf_free(&conf);
	}
	memset(sock, 'a', sizeof(sock));
	sock[0] = '/';
	sock[107] = '\0';
	CHECK(accepted("listen", sock));
	conf_free(&conf);
	sock[107] = 'a';
	sock[108] = '\0';
	CHECK(refused("listen", sock, "expected a socket path of at most "
	    "107 bytes"));
	CHECK(refused("listen", "nohostport", form));
	CHECK(refused("listen", "", form));
	CHECK(refused("listen", "run/fcgi.sock", form));
	CHECK(refused("listen", "127.0.0.1:99999", port));
	CHECK(refused("listen", "127.0.0.1:0", port));
	CHECK(refused("listen", "127.0.0.1:", port));
	CHECK(refused("listen", "127.0.0.1:fcgi", port));
	CHECK(refused("listen", ":9000", host));
	CHECK(refused("listen", "[::1]:9000", host));
	CHECK(refused("listen", "a b:9000", host));
	CHECK(refused("listen", "run/a:9000", host));
	CHECK(refused("listen", "1.2.3:9000", host));
}

static void
test_conf_bounce_address_forms(void)
{
	const char *form = "expected an address such as bounces@example.org";
	char longest[80];

	CHECK(accepted("bounce_address", "bounces@example.org"));
	CHECK_STR(conf.bounce_address, "bounces@example.org");
	conf_free(&conf);
	/* 15 octets of local part: with "+" and the tag, 64. */
	snprintf(longest, sizeof(longest), "%s@example.org",
	    "abcdefghijklmno");
	CHECK(accepted("bounce_address", longest));
	conf_free(&conf);
	snprintf(longest, sizeof(longest), "%s@example.org",
	    "abcdefghijklmnop");
	CHECK(refused("bounce_address", longest, "the local part may have "
	    "at most 15 characters"));
	CHECK(refused("bounce_address", "bounces+x@example.org",
	    "the local part must not contain '+'"));
	CHECK(refused("bounce_address", "Bounces <bounces@example.org>",
	    form));
	CHECK(refused("bounce_address", "bounces", form));
	CHECK(refused("bounce_address", "", form));
	CHECK(refused("bounce_address", "b\r\n@example.org", form));
}

static void
test_conf_smtp_helo_forms(void)
{
	const char *const good[] = { "mail.example.org", "localhost",
	    "a-1.b2.example", "[192.0.2.1]", "[IPv6:2001:db8::1]",
	    "[ipv6:::1]", NULL };
	const char *name = "expected a host name such as mail.example.org or "
	    "an address literal such as [192.0.2.1]", *lit = "expected an "
	    "address literal such as [192.0.2.1] or [IPv6:2001:db8::1]";
	int i;

	for (i = 0; good[i] != NULL; i++) {
		CHECK(accepted("smtp_helo", good[i]));
		CHECK_STR(conf.smtp_helo, good[i]);
		conf_free(&conf);
	}
	CHECK(refused("smtp_helo", "", name));
	CHECK(refused("smtp_helo", "mail example", name));
	CHECK(refused("smtp_helo", "-mail.example", name));
	CHECK(refused("smtp_helo", "mail-.example", name));
	CHECK(refused("smtp_helo", "mail..example", name));
	CHECK(refused("smtp_helo", "mail.example.", name));
	CHECK(refused("smtp_helo", "mail_1.example", name));
	CHECK(refused("smtp_helo", "1.2.3", name));
	CHECK(refused("smtp_helo", "127.0.0.1",
	    "expected an address in brackets, such as [127.0.0.1]"));
	CHECK(refused("smtp_helo", "[1.2.3]", lit));
	CHECK(refused("smtp_helo", "[2001:db8::1]", lit));
	CHECK(refused("smtp_helo", "[IPv6:192.0.2.1]", lit));
	CHECK(refused("smtp_helo", "[]", name));
}

/* A label of 63 and a name of 253 bytes are the limits. */
static void
test_conf_host_lengths(void)
{
	char name[300];
	int i;

	memset(name, 'a', 64);
	name[63] = '\0';
	CHECK(accepted("smtp_host", name));
	conf_free(&conf);
	name[63] = 'a';
	name[64] = '\0';
	CHECK(refused("smtp_host", name, "expected a host name or IPv4 "
	    "address"));
	for (i = 0; i < 253; i++)
		name[i] = i % 2 ? '.' : 'a';
	name[253] = '\0';
	CHECK(accepted("smtp_host", name));
	conf_free(&conf);
	name[253] = '.';
	name[254] = 'a';
	name[255] = '\0';
	CHECK(refused("smtp_host", name, "expected a host name or IPv4 "
	    "address"));
}

static void
test_conf_smtp_host_forms(void)
{
	const char *why = "expected a host name or IPv4 address";

	CHECK(accepted("smtp_host", "smtp.example.org"));
	conf_free(&conf);
	CHECK(accepted("smtp_host", "127.0.0.1"));
	conf_free(&conf);
	CHECK(refused("smtp_host", "", why));
	CHECK(refused("smtp_host", "smtp.example.org:587", why));
	CHECK(refused("smtp_host", "::1", why));
	CHECK(refused("smtp_host", "smtp example", why));
	CHECK(refused("smtp_host", "127.0.0.1.2", why));
}

static void
test_conf_names(void)
{
	const char *why = "expected a name without white space or control "
	    "characters";

	CHECK(accepted("user", "referral-invites"));
	CHECK_STR(conf.user, "referral-invites");
	conf_free(&conf);
	CHECK(accepted("socket_group", "www-data"));
	CHECK_STR(conf.socket_group, "www-data");
	conf_free(&conf);
	CHECK(refused("user", "", why));
	CHECK(refused("user", "a b", why));
	CHECK(refused("socket_group", "", why));
	CHECK(refused("socket_group", "a\tb", why));
	CHECK(refused("socket_group", "a\x01", why));
}

static void
test_conf_smtp_user(void)
{
	const char *why = "expected UTF-8 text without control characters";

	CHECK(accepted("smtp_user", "invites@example.org"));
	CHECK_STR(conf.smtp_user, "invites@example.org");
	conf_free(&conf);
	CHECK(accepted("smtp_user", "J\xc3\xb6rg Relay"));
	conf_free(&conf);
	CHECK(refused("smtp_user", "", why));
	CHECK(refused("smtp_user", "a\tb", why));
	CHECK(refused("smtp_user", "a\x7f", why));
	CHECK(refused("smtp_user", "\xff", why));
}

static void
test_conf_paths(void)
{
	const char *why = "expected an absolute path";

	CHECK(accepted("templates_dir", "/etc/referral-invites/templates"));
	CHECK_STR(conf.templates_dir, "/etc/referral-invites/templates");
	conf_free(&conf);
	CHECK(refused("templates_dir", "templates", why));
	CHECK(refused("templates_dir", "", why));
	CHECK(refused("database", "invites.db",
	    "expected an absolute path or a postgresql:// URI"));
	CHECK(refused("smtp_password_file", "./pw", why));
}

/* database: a PostgreSQL URI as libpq parses it (issue 21). */
static void
test_conf_database_uri(void)
{
	const char *bad = "not a PostgreSQL connection URI: ";
	char why[300];

	CHECK(accepted("database", "postgresql://ri:pw@db.example:5433/ri"
	    "?sslmode=verify-full&target_session_attrs=read-write"));
	CHECK_STR(conf.database, "postgresql://ri:pw@db.example:5433/ri"
	    "?sslmode=verify-full&target_session_attrs=read-write");
	conf_free(&conf);
	CHECK(accepted("database", "postgres:///ri?host=/run/postgresql"));
	conf_free(&conf);
	CHECK(accepted("database", "postgresql://a:1,b:2/ri"));
	conf_free(&conf);
	snprintf(why, sizeof(why), "%sinvalid URI query parameter: "
	    "\"nosuch\"", bad);
	CHECK(refused("database", "postgresql://h/ri?nosuch=1", why));
	/* libpq quotes the bad token: the password's is never shown. */
	snprintf(why, sizeof(why), "%sinvalid percent-encoded token: "
	    "\"xxxxx\"", bad);
	CHECK(refused("database", "postgresql://ri:se%zzcret@h/ri", why));
	CHECK(strstr(err, "se%zz") == NULL);
	/* A password with '/' and '?' unencoded: libpq quotes a piece. */
	snprintf(why, sizeof(why), "%sinvalid URI query parameter: "
	    "\"xxxxx\"", bad);
	CHECK(refused("database", "postgresql://ri:pw/x?y@/ri?a=1", why));
}

/* Every password of a URI redacted, in the URI and in a message. */
static void
test_pg_uri_redact(void)
{
	static const struct {
		const char	*uri, *shown;
	} t[] = {
		{ "postgresql://ri:pw@h/db", "postgresql://ri:xxxxx@h/db" },
		{ "postgresql://ri@h/db", "postgresql://ri@h/db" },
		{ "postgresql://h/db", "postgresql://h/db" },
		{ "postgres://ri:@h/db", "postgres://ri:@h/db" },
		{ "postgresql:///db?host=/tmp&password=pw&user=ri",
		    "postgresql:///db?host=/tmp&password=xxxxx&user=ri" },
		{ "postgresql://ri:a/b?c@h/db?password=d",
		    "postgresql://ri:xxxxx@h/db?password=xxxxx" },
		{ "postgresql://ri:a%40b@h:1,k:2/db",
		    "postgresql://ri:xxxxx@h:1,k:2/db" },
		/* Malformed: more is taken rather than less. */
		{ "postgresql://ri:pw@h/db?x=y@z", "postgresql://ri:xxxxx@z" },
		/* An '@' in the query, before or after the password. */
		{ "postgresql://db.example/app?user=admin@corp&password=pw",
		    "postgresql://db.example/app?user=admin@corp&password=xxxxx" },
		{ "postgresql://h/db?password=pw&user=a@b",
		    "postgresql://h/db?password=xxxxx&user=a@b" },
	};
	char out[256];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		pg_uri_redact(t[i].uri, out, sizeof(out));
		CHECK_STR(out, t[i].shown);
	}
	pg_uri_redact_text("postgresql://ri:pw@h/db", "user ri, pw: pw!", out,
	    sizeof(out));
	CHECK_STR(out, "user ri, xxxxx: xxxxx!");
	pg_uri_redact("postgresql://ri:pw@h/db", out, 16);
	CHECK_STR(out, "postgresql://ri");
	/* libpq quotes a malformed URI whole: no piece of a password past
	 * the cut of a long message. */
	{
		char uri[700], why[1024];

		snprintf(uri, sizeof(uri), "postgresql://[::1/db?"
		    "application_name=%0335d&password=hunter2hunter2", 0);
		CHECK(pg_uri_check(uri, why, sizeof(why)) == -1);
		CHECK(strstr(why, "hunter") == NULL);
		CHECK(strstr(why, "not a PostgreSQL connection URI") == why);
	}
	CHECK(pg_uri_is("postgresql://x") && pg_uri_is("postgres://x"));
	CHECK(!pg_uri_is("/var/lib/x.db") && !pg_uri_is("postgresql:x"));
}

/* The TCP ports Landlock must allow: unix sockets need none. */
static void
test_pg_uri_ports(void)
{
	int p[PG_URI_PORTS_MAX + 1];

	CHECK(pg_uri_ports("postgresql://ri@/db?host=/run/pg", p) == 0 &&
	    p[0] == 0);
	CHECK(pg_uri_ports("postgresql:///db", p) == 0);
	CHECK(pg_uri_ports("postgresql://ri:pw@db.example/x", p) == 1 &&
	    p[0] == 5432 && p[1] == 0);
	CHECK(pg_uri_ports("postgresql://h1:5433,h2:6000/x", p) == 2 &&
	    p[0] == 5433 && p[1] == 6000 && p[2] == 0);
	/* One port for every host; a unix socket among them left out. */
	CHECK(pg_uri_ports("postgresql:///x?host=h1,/run/pg,h3&port=7000",
	    p) == 2 && p[0] == 7000 && p[1] == 7000);
	CHECK(pg_uri_ports("postgresql://[::1/x", p) == 0 && p[0] == 0);
}

static void
test_conf_mail_from_and_language(void)
{
	const char *from = "expected Name <addr> or addr";

	CHECK(accepted("mail_from", "J\xc3\xb6rg <a@b.example>"));
	conf_free(&conf);
	CHECK(refused("mail_from", "", from));
	CHECK(refused("mail_from", "a b@c.example", from));
	CHECK(refused("mail_from", "\xff <a@b.example>", from));
	CHECK(accepted("default_language", "pt-br"));
	CHECK_STR(conf.default_language, "pt-BR");
	conf_free(&conf);
	CHECK(refused("default_language", "pt_BR",
	    "expected a language tag such as en or pt-BR"));
}

/* Accounts that exist here pass; others are named with the file. */
static void
test_conf_check_system(void)
{
	char want[600];

	CHECK(load_text("user = root\nsocket_group = root\n", 0) == 0);
	CHECK(conf_check_system(&conf, "x.conf", err, sizeof(err)) == 0);
	conf_free(&conf);
	CHECK(load_text("user = nosuchuser\nsocket_group = root\n", 0) == 0);
	CHECK(conf_check_system(&conf, "x.conf", err, sizeof(err)) == -1);
	CHECK_STR(err, "x.conf: bad value for user: no such user "
	    "\"nosuchuser\"");
	conf_free(&conf);
	CHECK(load_text("user = root\nsocket_group = nosuchgroup\n", 0) == 0);
	CHECK(conf_check_system(&conf, "x.conf", err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "x.conf: bad value for socket_group: "
	    "no such group \"nosuchgroup\"");
	CHECK_STR(err, want);
	conf_free(&conf);
	/* A TCP socket has no group. */
	CHECK(load_text("user = root\nsocket_group = nosuchgroup\n"
	    "listen = 127.0.0.1:9000\n", 0) == 0);
	CHECK(conf_check_system(&conf, "x.conf", err, sizeof(err)) == 0);
	conf_free(&conf);
}

const struct unit_test conf_tests[] = {
	{ "conf_every_key_known", test_conf_every_key_known },
	{ "conf_database_uri", test_conf_database_uri },
	{ "pg_uri_redact", test_pg_uri_redact },
	{ "pg_uri_ports", test_pg_uri_ports },
	{ "conf_defaults", test_conf_defaults },
	{ "conf_man_page", test_conf_man_page },
	{ "conf_int_edges", test_conf_int_edges },
	{ "conf_table_ranges", test_conf_table_ranges },
	{ "conf_retry_max_raised", test_conf_retry_max_raised },
	{ "conf_max_body_edges", test_conf_max_body_edges },
	{ "conf_socket_mode", test_conf_socket_mode },
	{ "conf_enums", test_conf_enums },
	{ "conf_error_line", test_conf_error_line },
	{ "conf_required", test_conf_required },
	{ "conf_public_url_forms", test_conf_public_url_forms },
	{ "conf_public_url_length", test_conf_public_url_length },
	{ "conf_public_url_builds_mail", test_conf_public_url_builds_mail },
	{ "conf_listen_forms", test_conf_listen_forms },
	{ "conf_smtp_helo_forms", test_conf_smtp_helo_forms },
	{ "conf_bounce_address_forms", test_conf_bounce_address_forms },
	{ "conf_host_lengths", test_conf_host_lengths },
	{ "conf_smtp_host_forms", test_conf_smtp_host_forms },
	{ "conf_names", test_conf_names },
	{ "conf_smtp_user", test_conf_smtp_user },
	{ "conf_paths", test_conf_paths },
	{ "conf_mail_from_and_language", test_conf_mail_from_and_language },
	{ "conf_check_system", test_conf_check_system },
	{ NULL, NULL }
};
