/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The configuration file: "key = value" lines, '#' comments, every key with
 * a default, unknown keys refused with their line number, and each value
 * checked where it is read, so that what -t passes also runs: a value the
 * mailer cannot use would otherwise fail every mail, not the start.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "extern.h"
#include "log.h"
#include "util.h"
#include "conf.h"
#include "valid.h"
#include "mail.h"
#include "token.h"
#include "webhook.h"
#include "pg_uri.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

#define WHY_MAX		128	/* what is wrong with a value */
#define URL_MAX		255	/* an opt-out URL stays far within 998 octets */
#define HOST_MAX	253	/* RFC 1035 2.3.4, without the root's dot */
#define LABEL_MAX	63
#define TCP_SPEC_MAX	255	/* listen_tcp's copy of host:port */
#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define OFF(f)		offsetof(struct conf, f)

enum host_kind { HOST_BAD, HOST_NAME, HOST_IP4 };

/* Write the reason for a bad value into why; returns -1 for conf_set. */
static int __attribute__((format(printf, 2, 3)))
conf_why(char why[WHY_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, WHY_MAX, fmt, ap);
	va_end(ap);
	return -1;
}

static int
set_str(char **dst, const char *v, char why[WHY_MAX])
{
	char *n;

	if ((n = strdup(v)) == NULL)
		return conf_why(why, "out of memory");
	free(*dst);
	*dst = n;
	return 0;
}

/* An integer of key k's range, stored as an int or (K_SIZE) a size_t. */
static int
set_number(void *dst, const struct conf_key *k, const char *v,
    char why[WHY_MAX])
{
	long long n;

	if (util_strtonum(v, k->min, k->max, &n) == -1)
		return conf_why(why, "expected an integer from %lld to %lld",
		    k->min, k->max);
	if (k->type == K_SIZE)
		*(size_t *)dst = (size_t)n;
	else
		*(int *)dst = (int)n;
	return 0;
}

/* The reason lists the names: "expected a, b or c". */
static int
set_enum(int *dst, const char *v, const char *const names[],
    char why[WHY_MAX])
{
	size_t len;
	int i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(v, names[i]) == 0) {
			*dst = i;
			return 0;
		}
	len = (size_t)snprintf(why, WHY_MAX, "expected %s", names[0]);
	for (i = 1; names[i] != NULL && len < WHY_MAX; i++)
		len += (size_t)snprintf(why + len, WHY_MAX - len, "%s%s",
		    names[i + 1] == NULL ? " or " : ", ", names[i]);
	return -1;
}

static int
ascii_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9');
}

static int
ascii_xdigit(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
	    (ch >= 'A' && ch <= 'F');
}

/* Whether s holds a C0 control character or DEL. */
static int
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* n bytes of s as an address of family af (inet_pton wants a string). */
static int
ip_ok(int af, const char *s, size_t n)
{
	char a[INET6_ADDRSTRLEN];
	struct in6_addr in;

	if (n == 0 || n >= sizeof(a))
		return 0;
	memcpy(a, s, n);
	a[n] = '\0';
	return inet_pton(af, a, &in) == 1;
}

/*
 * n bytes of s as dot-separated LDH labels (RFC 1123 2.1).  A name whose
 * last label is all digits is taken for an IPv4 address and must be one,
 * so that "127.0.0.256" is refused here and not by the resolver later.
 */
static enum host_kind
host_kind(const char *s, size_t n)
{
	size_t i, len = 0, digits = 0;

	if (n == 0 || n > HOST_MAX)
		return HOST_BAD;
	for (i = 0; i < n; i++) {
		if (s[i] == '.' && len > 0 && s[i - 1] != '-')
			len = digits = 0;
		else if (ascii_alnum(s[i]) || (s[i] == '-' && len > 0)) {
			len++;
			digits += s[i] >= '0' && s[i] <= '9';
		} else
			return HOST_BAD;
		if (len > LABEL_MAX)
			return HOST_BAD;
	}
	if (len == 0 || s[n - 1] == '-')
		return HOST_BAD;
	if (digits < len)
		return HOST_NAME;
	return ip_ok(AF_INET, s, n) ? HOST_IP4 : HOST_BAD;
}

/* n decimal digits of a port, 1 to 65535. */
static int
port_ok(const char *s, size_t n)
{
	long port = 0;
	size_t i;

	if (n == 0 || n > 5)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		port = port * 10 + (s[i] - '0');
	}
	return port >= 1 && port <= 65535;
}

static int
check_path(const char *v, char why[WHY_MAX])
{
	return *v == '/' ? 0 : conf_why(why, "expected an absolute path");
}

/*
 * A unix socket's path, or host:port split at the last colon as
 * listen_tcp in main.c splits it: an IPv6 address goes without brackets.
 */
static int
check_listen(const char *v, char why[WHY_MAX])
{
	struct sockaddr_un sun;
	const char *colon;
	size_t n;

	if (*v == '/')
		return strlen(v) < sizeof(sun.sun_path) ? 0 : conf_why(why,
		    "expected a socket path of at most %zu bytes",
		    sizeof(sun.sun_path) - 1);
	if ((colon = strrchr(v, ':')) == NULL)
		return conf_why(why, "expected an absolute path or host:port");
	if (!port_ok(colon + 1, strlen(colon + 1)))
		return conf_why(why, "expected a port from 1 to 65535 after "
		    "the last colon");
	n = (size_t)(colon - v);
	if (strlen(v) > TCP_SPEC_MAX || (host_kind(v, n) == HOST_BAD &&
	    !ip_ok(AF_INET6, v, n)))
		return conf_why(why, "expected a host name or IP address "
		    "before the port");
	return 0;
}

/* An account or group name; getpwnam and getgrnam judge the rest. */
static int
check_name(const char *v, char why[WHY_MAX])
{
	if (*v == '\0' || has_ctl(v) || strpbrk(v, " \t") != NULL)
		return conf_why(why, "expected a name without white space or "
		    "control characters");
	return 0;
}

/* What mail_build puts into From: a plain address, UTF-8 around it. */
static int
check_from(const char *v, char why[WHY_MAX])
{
	char a[EMAIL_MAX + 1];

	if (mail_addr_of(v, a) == -1 || !valid_utf8(v, strlen(v)))
		return conf_why(why, "expected Name <addr> or addr");
	return 0;
}

/*
 * bounce_address: a bare address whose local part takes "+" and a
 * token_bounce tag within RFC 5321's 64 octets, and has no "+" itself
 * (the relay's recipient_delimiter must find the tag's).
 */
static int
check_bounce(const char *v, char why[WHY_MAX])
{
	char a[EMAIL_MAX + 1];
	const char *at;

	if (mail_addr_of(v, a) == -1 || strcmp(a, v) != 0 ||
	    (at = strrchr(v, '@')) == NULL)
		return conf_why(why, "expected an address such as "
		    "bounces@example.org");
	if (memchr(v, '+', (size_t)(at - v)) != NULL)
		return conf_why(why, "the local part must not contain '+'");
	if (strlen(v) + 1 + BOUNCE_TAG_LEN > EMAIL_MAX)
		return conf_why(why, "too long for a tag to be added");
	if (at - v > 64 - 1 - BOUNCE_TAG_LEN)
		return conf_why(why, "the local part may have at most %d "
		    "characters", 64 - 1 - BOUNCE_TAG_LEN);
	return 0;
}

/*
 * RFC 3986 path characters without "'", for links in HTML, and without
 * '?' and '#': "/api/..." is appended to the path.  mail_build takes
 * any of them in List-Unsubscribe.
 */
static int
url_path_ok(const char *p)
{
	for (; *p != '\0'; p++) {
		if (*p == '%') {
			if (!ascii_xdigit(p[1]) || !ascii_xdigit(p[2]))
				return 0;
			p += 2;
		} else if (!ascii_alnum(*p) &&
		    strchr("-._~!$&()*+,;=:@/", *p) == NULL)
			return 0;
	}
	return 1;
}

/* The host of a URL: a name, an IPv4 address or [IPv6]; *endp after it. */
static int
url_host_ok(const char *h, const char *p, const char **endp)
{
	const char *e;

	if (*h == '[') {
		if ((e = memchr(h, ']', (size_t)(p - h))) == NULL ||
		    !ip_ok(AF_INET6, h + 1, (size_t)(e - h - 1)))
			return 0;
		*endp = e + 1;
		return 1;
	}
	e = h + strcspn(h, ":/");
	*endp = e;
	return host_kind(h, (size_t)(e - h)) != HOST_BAD;
}

/* http(s)://host[:port][/path]: every link and header built on it. */
static int
check_url(const char *v, char why[WHY_MAX])
{
	const char *h, *p, *e;

	if (strncmp(v, "https://", LIT_LEN("https://")) == 0)
		h = v + LIT_LEN("https://");
	else if (strncmp(v, "http://", LIT_LEN("http://")) == 0)
		h = v + LIT_LEN("http://");
	else
		return conf_why(why, "expected https://host[:port][/path]");
	if (strlen(v) > URL_MAX)
		return conf_why(why, "expected at most %d bytes", URL_MAX);
	p = h + strcspn(h, "/");
	if (!url_host_ok(h, p, &e))
		return conf_why(why, "expected a host name, IPv4 address or "
		    "[IPv6 address] after //");
	if (e < p && (*e != ':' || !port_ok(e + 1, (size_t)(p - e - 1))))
		return conf_why(why, "expected a port from 1 to 65535 after "
		    "the host");
	if (!url_path_ok(p))
		return conf_why(why, "expected a path of letters, digits, %%XX "
		    "and -._~!$&()*+,;=:@/ only");
	return 0;
}

/* The relay as the mailer gives it to libesmtp ("host:port"). */
static int
check_host(const char *v, char why[WHY_MAX])
{
	if (host_kind(v, strlen(v)) == HOST_BAD)
		return conf_why(why, "expected a host name or IPv4 address");
	return 0;
}

/* An AUTH user name goes to the relay base64-encoded, but as text. */
static int
check_login(const char *v, char why[WHY_MAX])
{
	if (*v == '\0' || has_ctl(v) || !valid_utf8(v, strlen(v)))
		return conf_why(why, "expected UTF-8 text without control "
		    "characters");
	return 0;
}

/* The inside of an RFC 5321 4.1.3 address literal. */
static int
helo_literal_ok(const char *s, size_t n)
{
	if (n > LIT_LEN("IPv6:") && strncasecmp(s, "IPv6:",
	    LIT_LEN("IPv6:")) == 0)
		return ip_ok(AF_INET6, s + LIT_LEN("IPv6:"),
		    n - LIT_LEN("IPv6:"));
	return ip_ok(AF_INET, s, n);
}

/* EHLO's argument: a domain or an address literal (RFC 5321 4.1.1.1). */
static int
check_helo(const char *v, char why[WHY_MAX])
{
	size_t n = strlen(v);
	enum host_kind k;

	if (n > 2 && v[0] == '[' && v[n - 1] == ']') {
		if (helo_literal_ok(v + 1, n - 2))
			return 0;
		return conf_why(why, "expected an address literal such as "
		    "[192.0.2.1] or [IPv6:2001:db8::1]");
	}
	if ((k = host_kind(v, n)) == HOST_NAME)
		return 0;
	if (k == HOST_IP4)
		return conf_why(why, "expected an address in brackets, "
		    "such as [%s]", v);
	return conf_why(why, "expected a host name such as mail.example.org "
	    "or an address literal such as [192.0.2.1]");
}

static const char *const starttls_names[] = { "off", "opportunistic",
    "required", NULL };
static const char *const sync_names[] = { "full", "normal", NULL };
static const char *const yesno_names[] = { "no", "yes", NULL };
static const char *const level_names[] = { "debug", "info", "warning",
    "error", NULL };

static int
set_public_url(struct conf *c, const char *v, char why[WHY_MAX])
{
	size_t n;

	if (check_url(v, why) == -1 || set_str(&c->public_url, v, why) == -1)
		return -1;
	/* Links are built as public_url + "/api/..."; the host has no '/'. */
	n = strlen(c->public_url);
	while (c->public_url[n - 1] == '/')
		c->public_url[--n] = '\0';
	return 0;
}

/* The default language, normalised as a request's would be. */
static int
set_language(char **dst, const char *v, char why[WHY_MAX])
{
	char lang[LANG_MAX];

	if (valid_language(v, lang) != NULL)
		return conf_why(why, "expected a language tag such as en or "
		    "pt-BR");
	return set_str(dst, lang, why);
}

static int
set_mode(mode_t *dst, const char *v, char why[WHY_MAX])
{
	if (strspn(v, "01234567") != strlen(v) || strlen(v) > 4 || *v == '\0')
		return conf_why(why, "expected 1 to 4 octal digits, such as "
		    "0660");
	*dst = (mode_t)strtol(v, NULL, 8);
	return 0;
}

/*
 * database: a SQLite file's absolute path, or a PostgreSQL connection URI
 * that libpq can parse (issue 21; the daemon refuses one for now, load.c).
 */
static int
check_database(const char *v, char why[WHY_MAX])
{
	if (pg_uri_is(v))
		return pg_uri_check(v, why, WHY_MAX);
	return *v == '/' ? 0 : conf_why(why, "expected an absolute path or "
	    "a postgresql:// URI");
}

/* webhook_ports: the ports webhook URLs may name (webhook.h). */
static int
check_ports(const char *v, char why[WHY_MAX])
{
	if (webhook_ports_parse(v, NULL) == -1)
		return conf_why(why, "expected 1 to %d port numbers, "
		    "comma-separated", WEBHOOK_PORTS_MAX);
	return 0;
}

#define STR(k, check, def)	{ #k, K_STR, OFF(k), 0, 0, def, check, NULL }
#define INT(k, min, max, def)	{ #k, K_INT, OFF(k), min, max, def, NULL, NULL }
#define ENUM(k, names, def)	{ #k, K_ENUM, OFF(k), 0, 0, def, NULL, names }

/*
 * Every key: its type, where it goes in struct conf, its range or check,
 * its default as it would be written in the file (NULL: none, or one
 * conf_defaults computes).  Parsing, defaults, -t and the man-page check
 * (tests/unit/test_conf.c) all read this table; adding a key is a row
 * here and its entry in referral-invites.conf(5).
 */
const struct conf_key conf_keys[] = {
	STR(database, check_database,
	    LOCALSTATEDIR "/lib/referral-invites/invites.db"),
	STR(state_directory, check_path, LOCALSTATEDIR "/lib/referral-invites"),
	STR(listen, check_listen, RUNSTATEDIR "/referral-invites/fcgi.sock"),
	{ "socket_mode", K_MODE, OFF(socket_mode), 0, 0, "0660", NULL, NULL },
	STR(socket_group, check_name, "www-data"),
	STR(user, check_name, "referral-invites"),
	INT(workers, 1, 256, "4"),
	{ "max_body", K_SIZE, OFF(max_body), 64, 1048576, "8192", NULL, NULL },
	ENUM(synchronous, sync_names, "full"),
	STR(templates_dir, check_path, NULL),
	{ "default_language", K_LANG, OFF(default_language), 0, 0, "en", NULL,
	    NULL },
	STR(mail_from, check_from, NULL),
	{ "public_url", K_URL, OFF(public_url), 0, 0, NULL, NULL, NULL },
	STR(smtp_host, check_host, "localhost"),
	INT(smtp_port, 1, 65535, "25"),
	ENUM(smtp_starttls, starttls_names, "opportunistic"),
	STR(smtp_user, check_login, NULL),
	STR(smtp_password_file, check_path, NULL),
	STR(smtp_helo, check_helo, NULL),	/* the host name */
	STR(bounce_address, check_bounce, NULL),
	INT(smtp_timeout, 1, 3600, "30"),
	INT(smtp_sessions, 1, 64, "4"),
	INT(claim_lease, 5, 3600, "60"),
	/* With the writer's 10 s, within nginx's 30 s read timeout. */
	INT(delivery_wait, 0, 20, "3"),
	INT(retry_initial, 1, 86400, "60"),
	INT(retry_max, 1, 604800, "3600"),
	INT(retry_give_up, 1, 31536000, "259200"),
	INT(limit_per_hour, 0, 1000000000, "20"),
	INT(limit_per_day, 0, 1000000000, "100"),
	INT(app_limit_per_minute, 0, 1000000000, "600"),
	INT(cooldown, 0, 31536000, "86400"),
	INT(resend_interval, 0, 31536000, "3600"),
	ENUM(hide_existing_users, yesno_names, "no"),
	STR(webhook_ports, check_ports, "443"),
	ENUM(webhook_allow_http, yesno_names, "no"),
	ENUM(log_level, level_names, "info"),
	{ NULL, K_STR, 0, 0, 0, NULL, NULL, NULL }
};

/* Every string the table's keys hold (K_STR, K_LANG, K_URL). */
void
conf_free(struct conf *c)
{
	const struct conf_key *k;

	for (k = conf_keys; k->key != NULL; k++)
		if (k->type == K_STR || k->type == K_LANG || k->type == K_URL)
			free(*(char **)((char *)c + k->off));
	memset(c, 0, sizeof(*c));
}

/* Apply value v of key k to c; -1 with why set for a bad value. */
static int
key_set(struct conf *c, const struct conf_key *k, const char *v,
    char why[WHY_MAX])
{
	void *field = (char *)c + k->off;

	switch (k->type) {
	case K_STR:
		if (k->check(v, why) == -1)
			return -1;
		return set_str(field, v, why);
	case K_INT:
	case K_SIZE:
		return set_number(field, k, v, why);
	case K_MODE:
		return set_mode(field, v, why);
	case K_ENUM:
		return set_enum(field, v, k->names, why);
	case K_LANG:
		return set_language(field, v, why);
	case K_URL:
		return set_public_url(c, v, why);
	}
	return conf_why(why, "no such type");
}

/* Apply one key; -1 for a bad value (why says what is wrong), -2 unknown. */
static int
conf_set(struct conf *c, const char *k, const char *v, char why[WHY_MAX])
{
	const struct conf_key *key;

	for (key = conf_keys; key->key != NULL; key++)
		if (strcmp(k, key->key) == 0)
			return key_set(c, key, v, why);
	return -2;
}

void
conf_defaults(struct conf *c)
{
	const struct conf_key *k;
	char host[256], why[WHY_MAX];

	memset(c, 0, sizeof(*c));
	for (k = conf_keys; k->key != NULL; k++)
		if (k->def != NULL && key_set(c, k, k->def, why) == -1)
			fatalx("the default of %s: %s", k->key, why);
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	c->smtp_helo = strdup(host);
}

int
conf_load(struct conf *c, const char *path, int required, char *err,
    size_t errsz)
{
	return conf_load_at(c, -1, path, required, err, errsz);
}

/* The file at path, or its last component in directory dirfd. */
static FILE *
conf_open(int dirfd, const char *path)
{
	const char *base = strrchr(path, '/');
	FILE *f;
	int fd;

	fd = dirfd == -1 ? open(path, O_RDONLY | O_CLOEXEC) :
	    openat(dirfd, base ? base + 1 : path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return NULL;
	if ((f = fdopen(fd, "r")) == NULL)
		close(fd);
	return f;
}

int
conf_load_at(struct conf *c, int dirfd, const char *path, int required,
    char *err, size_t errsz)
{
	FILE *f;
	char line[1024], why[WHY_MAX], *k, *v, *eq;
	int lineno = 0, rc;

	conf_defaults(c);
	if ((f = conf_open(dirfd, path)) == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		conf_free(c);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errsz, "%s:%d: line too long", path,
			    lineno);
			goto fail;
		}
		k = util_trim(line);
		if (*k == '#' || *k == '\0')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			snprintf(err, errsz, "%s:%d: expected key = value",
			    path, lineno);
			goto fail;
		}
		*eq = '\0';
		k = util_trim(k);
		v = util_trim(eq + 1);
		if ((rc = conf_set(c, k, v, why)) == -2) {
			snprintf(err, errsz, "%s:%d: unknown key \"%.64s\"",
			    path, lineno, k);
			goto fail;
		} else if (rc == -1) {
			snprintf(err, errsz, "%s:%d: bad value for %s: %s",
			    path, lineno, k, why);
			goto fail;
		}
	}
	fclose(f);
	if (c->retry_max < c->retry_initial)
		c->retry_max = c->retry_initial;
	if (required && (c->mail_from == NULL || c->public_url == NULL)) {
		snprintf(err, errsz, "%s: %s is required", path,
		    c->mail_from == NULL ? "mail_from" : "public_url");
		conf_free(c);
		return -1;
	}
	return 0;
fail:
	fclose(f);
	conf_free(c);
	return -1;
}

/*
 * Whether the account database can be read at all.  The supervisor cannot
 * once confined (reload), and there a name not found tells nothing: such
 * a lookup is skipped, and user and socket_group only apply at a start.
 */
static int
accounts_readable(const char *file)
{
	int fd;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1)
		return errno != EACCES && errno != EPERM;
	close(fd);
	return 1;
}

int
conf_check_system(const struct conf *c, const char *path, char *err,
    size_t errsz)
{
	if (getpwnam(c->user) == NULL && accounts_readable("/etc/passwd")) {
		snprintf(err, errsz, "%s: bad value for user: no such user "
		    "\"%.64s\"", path, c->user);
		return -1;
	}
	/* Only a socket the daemon creates is given to socket_group. */
	if (c->listen[0] == '/' && getgrnam(c->socket_group) == NULL &&
	    accounts_readable("/etc/group")) {
		snprintf(err, errsz, "%s: bad value for socket_group: no such "
		    "group \"%.64s\"", path, c->socket_group);
		return -1;
	}
	return 0;
}
