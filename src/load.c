/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * What the supervisor reads at start and on every reload: the
 * configuration, the templates and the SMTP password file, each through
 * its directory, held open (O_PATH) from the start (daemon.h).
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "template.h"
#include "token.h"
#include "pg_uri.h"
#include "daemon.h"

#ifndef TEMPLATEDIR
#define TEMPLATEDIR "/usr/share/referral-invites/templates"
#endif

static const char *const held_what[HELD__MAX] = { "the configuration",
    "the shipped templates", "templates_dir", "smtp_password_file" };

void
load_dir_of(const char *path, char *out, size_t outsz)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, outsz, ".");
	else if (slash == path)
		snprintf(out, outsz, "/");
	else
		snprintf(out, outsz, "%.*s", (int)(slash - path), path);
}

/*
 * The directory dir held as which: opened now the first time, the same
 * descriptor while dir stays the same; -1 with the reason in err when a
 * reload names another one (only a restart can open that).
 */
static int
hold_dir(struct daemon *d, enum held which, const char *dir, char *err,
    size_t errsz)
{
	if (d->held_path[which] != NULL) {
		if (strcmp(d->held_path[which], dir) == 0)
			return d->held[which];
		snprintf(err, errsz, "%s moved to %s (from %s): that takes a "
		    "restart", held_what[which], dir, d->held_path[which]);
		return -1;
	}
	if ((d->held[which] = open(dir, O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		snprintf(err, errsz, "%s: %s (%s)", dir, strerror(errno),
		    held_what[which]);
		return -1;
	}
	if ((d->held_path[which] = strdup(dir)) == NULL) {
		snprintf(err, errsz, "out of memory");
		close(d->held[which]);
		d->held[which] = -1;
		return -1;
	}
	return d->held[which];
}

/* The held directory of file path, as which; -1 with err set. */
static int
hold_dir_of(struct daemon *d, enum held which, const char *path, char *err,
    size_t errsz)
{
	char dir[4096];

	load_dir_of(path, dir, sizeof(dir));
	return hold_dir(d, which, dir, err, errsz);
}

/* The SMTP password file: must exist and not be world-readable. */
static char *
read_password(int dfd, const char *path, char *err, size_t errsz)
{
	const char *base = strrchr(path, '/');
	char buf[512];
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = openat(dfd, base ? base + 1 : path, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || (st.st_mode & (S_IWGRP | S_IRWXO))) {
		snprintf(err, errsz, "%s: must not be group-writable or "
		    "world-accessible", path);
		close(fd);
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		snprintf(err, errsz, "%s: empty", path);
		return NULL;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

/* The templates: shipped, then the operator's over them. */
static int
load_templates(struct daemon *d, const struct conf *c, char *err,
    size_t errsz)
{
	int shipped, over = -1;

	if (c->templates_dir != NULL && (over = hold_dir(d, HELD_TEMPLATES,
	    c->templates_dir, err, errsz)) == -1)
		return -1;
	/* Run from the build tree, the operator's directory is the set. */
	if (d->held_path[HELD_SHIPPED] != NULL || access(TEMPLATEDIR,
	    F_OK) == 0 || c->templates_dir == NULL) {
		if ((shipped = hold_dir(d, HELD_SHIPPED, TEMPLATEDIR, err,
		    errsz)) == -1)
			return -1;
		return tmpl_load_at(shipped, TEMPLATEDIR, over,
		    c->templates_dir, err, errsz);
	}
	return tmpl_load_at(over, c->templates_dir, -1, NULL, err, errsz);
}

/* d->node and d->db_shown for database (daemon.h); -1 if too long. */
static int
load_node(struct daemon *d, const struct conf *c, char *err, size_t errsz)
{
	int n;

	if (!pg_uri_is(c->database))
		n = snprintf(d->node, sizeof(d->node), "%s", c->database);
	else
		n = snprintf(d->node, sizeof(d->node), "%s/postgresql",
		    c->state_directory);
	if (n < 0 || (size_t)n >= sizeof(d->node)) {
		snprintf(err, errsz, "%s: path too long", d->conf_path);
		return -1;
	}
	pg_uri_redact(c->database, d->db_shown, sizeof(d->db_shown));
	if (!pg_uri_is(c->database) ||
	    pg_uri_ports(c->database, d->db_ports) == 0)
		d->db_ports[0] = 0;
	return 0;
}

/* Config, templates and secrets; -1 with the reason in err. */
int
load_all(struct daemon *d, struct conf *c, char *err, size_t errsz)
{
	int dfd;

	if ((dfd = hold_dir_of(d, HELD_CONF, d->conf_path, err,
	    errsz)) == -1 || conf_load_at(c, dfd, d->conf_path, 1, err,
	    errsz) == -1)
		return -1;
	if (conf_check_system(c, d->conf_path, err, errsz) == -1)
		goto fail;
	if (load_node(d, c, err, errsz) == -1)
		goto fail;
	if (load_templates(d, c, err, errsz) == -1)
		goto fail;
	if (!tmpl_has(c->default_language)) {
		snprintf(err, errsz, "no template for default_language %s",
		    c->default_language);
		goto fail;
	}
	if (token_secret_load(d->node, 0, d->secret, err, errsz) == -1)
		goto fail;
	if (c->smtp_password_file != NULL && ((dfd = hold_dir_of(d,
	    HELD_PASSWORD, c->smtp_password_file, err, errsz)) == -1 ||
	    (d->smtp_password = read_password(dfd, c->smtp_password_file,
	    err, errsz)) == NULL))
		goto fail;
	return 0;
fail:
	conf_free(c);
	return -1;
}

