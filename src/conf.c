/*
 * The configuration file: "key = value" lines, '#' comments, every key with
 * a default, unknown keys refused with their line number.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extern.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

const char *const conf_keys[] = {
	"database", "listen", "socket_mode", "socket_group", "user", "workers",
	"max_body", "synchronous", "templates_dir", "default_language",
	"mail_from", "public_url", "smtp_host", "smtp_port", "smtp_starttls",
	"smtp_user", "smtp_password_file", "smtp_helo", "smtp_timeout",
	"delivery_wait", "retry_initial", "retry_max", "retry_give_up",
	"limit_per_hour", "limit_per_day", "app_limit_per_minute", "cooldown",
	"log_level", NULL
};

void
conf_defaults(struct conf *c)
{
	char host[256];

	memset(c, 0, sizeof(*c));
	c->database = strdup(LOCALSTATEDIR "/lib/referral-invites/invites.db");
	c->listen = strdup(RUNSTATEDIR "/referral-invites/fcgi.sock");
	c->socket_mode = 0660;
	c->socket_group = strdup("www-data");
	c->user = strdup("referral-invites");
	c->workers = 4;
	c->max_body = 8192;
	c->synchronous = SYNC_FULL;
	c->default_language = strdup("en");
	c->smtp_host = strdup("localhost");
	c->smtp_port = 25;
	c->smtp_starttls = STARTTLS_OPPORTUNISTIC;
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	c->smtp_helo = strdup(host);
	c->smtp_timeout = 30;
	c->delivery_wait = 3;
	c->retry_initial = 60;
	c->retry_max = 3600;
	c->retry_give_up = 259200;
	c->limit_per_hour = 20;
	c->limit_per_day = 100;
	c->app_limit_per_minute = 600;
	c->cooldown = 86400;
	c->log_level = LOG_LVL_INFO;
}

void
conf_free(struct conf *c)
{
	free(c->database);
	free(c->listen);
	free(c->socket_group);
	free(c->user);
	free(c->templates_dir);
	free(c->default_language);
	free(c->mail_from);
	free(c->public_url);
	free(c->smtp_host);
	free(c->smtp_user);
	free(c->smtp_password_file);
	free(c->smtp_helo);
	memset(c, 0, sizeof(*c));
}

static int
set_str(char **dst, const char *v)
{
	char *n;

	if ((n = strdup(v)) == NULL)
		return -1;
	free(*dst);
	*dst = n;
	return 0;
}

static int
set_int(int *dst, const char *v, long long min, long long max)
{
	long long n;

	if (util_strtonum(v, min, max, &n) == -1)
		return -1;
	*dst = (int)n;
	return 0;
}

static int
set_enum(int *dst, const char *v, const char *const names[])
{
	int i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(v, names[i]) == 0) {
			*dst = i;
			return 0;
		}
	return -1;
}

static const char *const starttls_names[] = { "off", "opportunistic",
    "required", NULL };
static const char *const sync_names[] = { "full", "normal", NULL };
static const char *const level_names[] = { "debug", "info", "warning",
    "error", NULL };

/* Apply one key; -1 for a bad value, -2 for an unknown key. */
static int
conf_set(struct conf *c, const char *k, const char *v)
{
	char lang[LANG_MAX];
	long long n;
	int e;

	if (strcmp(k, "database") == 0)
		return *v == '/' ? set_str(&c->database, v) : -1;
	if (strcmp(k, "listen") == 0)
		return set_str(&c->listen, v);
	if (strcmp(k, "socket_mode") == 0) {
		if (strspn(v, "01234567") != strlen(v) || strlen(v) > 4 ||
		    *v == '\0')
			return -1;
		c->socket_mode = (mode_t)strtol(v, NULL, 8);
		return 0;
	}
	if (strcmp(k, "socket_group") == 0)
		return set_str(&c->socket_group, v);
	if (strcmp(k, "user") == 0)
		return set_str(&c->user, v);
	if (strcmp(k, "workers") == 0)
		return set_int(&c->workers, v, 1, 256);
	if (strcmp(k, "max_body") == 0) {
		if (util_strtonum(v, 64, 1048576, &n) == -1)
			return -1;
		c->max_body = (size_t)n;
		return 0;
	}
	if (strcmp(k, "synchronous") == 0) {
		if (set_enum(&e, v, sync_names) == -1)
			return -1;
		c->synchronous = (enum sync_mode)e;
		return 0;
	}
	if (strcmp(k, "templates_dir") == 0)
		return set_str(&c->templates_dir, v);
	if (strcmp(k, "default_language") == 0)
		return valid_language(v, lang) ? -1 :
		    set_str(&c->default_language, lang);
	if (strcmp(k, "mail_from") == 0) {
		char a[EMAIL_MAX + 1];
		return mail_addr_of(v, a) == -1 ? -1 : set_str(&c->mail_from, v);
	}
	if (strcmp(k, "public_url") == 0) {
		if (strncmp(v, "https://", 8) != 0 &&
		    strncmp(v, "http://", 7) != 0)
			return -1;
		if (set_str(&c->public_url, v) == -1)
			return -1;
		/* Links are built as public_url + "/api/...". */
		while (strlen(c->public_url) > 8 &&
		    c->public_url[strlen(c->public_url) - 1] == '/')
			c->public_url[strlen(c->public_url) - 1] = '\0';
		return 0;
	}
	if (strcmp(k, "smtp_host") == 0)
		return set_str(&c->smtp_host, v);
	if (strcmp(k, "smtp_port") == 0)
		return set_int(&c->smtp_port, v, 1, 65535);
	if (strcmp(k, "smtp_starttls") == 0) {
		if (set_enum(&e, v, starttls_names) == -1)
			return -1;
		c->smtp_starttls = (enum starttls)e;
		return 0;
	}
	if (strcmp(k, "smtp_user") == 0)
		return set_str(&c->smtp_user, v);
	if (strcmp(k, "smtp_password_file") == 0)
		return *v == '/' ? set_str(&c->smtp_password_file, v) : -1;
	if (strcmp(k, "smtp_helo") == 0)
		return set_str(&c->smtp_helo, v);
	if (strcmp(k, "smtp_timeout") == 0)
		return set_int(&c->smtp_timeout, v, 1, 3600);
	if (strcmp(k, "delivery_wait") == 0)
		return set_int(&c->delivery_wait, v, 0, 20);
	if (strcmp(k, "retry_initial") == 0)
		return set_int(&c->retry_initial, v, 1, 86400);
	if (strcmp(k, "retry_max") == 0)
		return set_int(&c->retry_max, v, 1, 604800);
	if (strcmp(k, "retry_give_up") == 0)
		return set_int(&c->retry_give_up, v, 1, 31536000);
	if (strcmp(k, "limit_per_hour") == 0)
		return set_int(&c->limit_per_hour, v, 0, 1000000000);
	if (strcmp(k, "limit_per_day") == 0)
		return set_int(&c->limit_per_day, v, 0, 1000000000);
	if (strcmp(k, "app_limit_per_minute") == 0)
		return set_int(&c->app_limit_per_minute, v, 0, 1000000000);
	if (strcmp(k, "cooldown") == 0)
		return set_int(&c->cooldown, v, 0, 31536000);
	if (strcmp(k, "log_level") == 0)
		return set_enum(&c->log_level, v, level_names);
	return -2;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	    e[-1] == '\r'))
		*--e = '\0';
	return s;
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
	char line[1024], *k, *v, *eq;
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
		k = trim(line);
		if (*k == '#' || *k == '\0')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			snprintf(err, errsz, "%s:%d: expected key = value",
			    path, lineno);
			goto fail;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		if ((rc = conf_set(c, k, v)) == -2) {
			snprintf(err, errsz, "%s:%d: unknown key \"%.64s\"",
			    path, lineno, k);
			goto fail;
		} else if (rc == -1) {
			snprintf(err, errsz, "%s:%d: bad value for %s", path,
			    lineno, k);
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
