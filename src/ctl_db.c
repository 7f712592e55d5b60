/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl's database: statements bound and run, refusals,
 * rows printed for people or as JSON, and init, which creates the
 * schema and the server secret and hands both to the service's user.
 */
#include <sys/stat.h>

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "extern.h"
#include "util.h"
#include "valid.h"
#include "json.h"
#include "token.h"
#include "db.h"
#include "ctl.h"

#define MAX_BIND	12

int ctl_fail_status = 1;

void
ctl_refuse(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "referral-invitesctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(ctl_fail_status);
}

void
ctl_now(char out[21])
{
	util_isotime(time(NULL), out);
}

sqlite3_stmt *
ctl_prep(const char *sql, int n, const char *const *vals)
{
	sqlite3_stmt *st;
	int i, rc;

	if (sqlite3_prepare_v2(db_handle(ctl_db), sql, -1, &st, NULL) !=
	    SQLITE_OK)
		ctl_refuse("database: %s", sqlite3_errmsg(db_handle(ctl_db)));
	for (i = 0; i < n; i++) {
		rc = vals[i] == NULL ? sqlite3_bind_null(st, i + 1) :
		    sqlite3_bind_text(st, i + 1, vals[i], -1,
		    SQLITE_TRANSIENT);
		if (rc != SQLITE_OK)
			ctl_refuse("database: %s",
			    sqlite3_errmsg(db_handle(ctl_db)));
	}
	return st;
}

/* The rows of sql on the n texts of ap. */
static struct ctl_res *
query_va(const char *sql, int n, va_list ap)
{
	const char *vals[MAX_BIND];
	int i;

	for (i = 0; i < n; i++)
		vals[i] = va_arg(ap, const char *);
	return ctl_query(sql, n, vals);
}

int
ctl_exec(const char *sql, int n, ...)
{
	struct ctl_res *res;
	va_list ap;
	int changes;

	va_start(ap, n);
	res = query_va(sql, n, ap);
	va_end(ap);
	while (ctl_next(res))
		;
	changes = ctl_changes(res);
	ctl_free(res);
	return changes;
}

static void
print_json_value(const struct ctl_res *res, int i)
{
	struct buf b = { 0 };
	const char *s = ctl_text(res, i);

	switch (ctl_kind(res, i)) {
	case CTL_NULL:
		printf("null");
		break;
	case CTL_INT:
		printf("%s", s);
		break;
	case CTL_REAL:
		printf("%g", strtod(s, NULL));
		break;
	default:
		json_add_string(&b, s);
		printf("%s", b.p ? b.p : "\"\"");
		buf_free(&b);
	}
}

/* One row for people: each value padded to its column's width w. */
static void
print_row(const struct ctl_res *res, int cols, const size_t w[])
{
	const char *s;
	int i;

	for (i = 0; i < cols; i++) {
		s = ctl_text(res, i);
		printf("%-*s%s", (int)w[i], s ? s : "-",
		    i + 1 < cols ? "  " : "\n");
	}
}

/* One row as a JSON object, after the first with a comma. */
static void
print_object(const struct ctl_res *res, int cols, int first)
{
	int i;

	printf("%s{", first ? "" : ",");
	for (i = 0; i < cols; i++) {
		printf("%s\"%s\":", i ? "," : "", ctl_name(res, i));
		print_json_value(res, i);
	}
	printf("}");
}

int
ctl_rows(const char *sql, int single, int n, ...)
{
	const char *s;
	struct ctl_res *res;
	size_t w[32] = { 0 }, l;
	int i, cols, rows = 0;
	va_list ap;

	va_start(ap, n);
	res = query_va(sql, n, ap);
	va_end(ap);
	if ((cols = ctl_ncols(res)) > 32)
		cols = 32;
	for (i = 0; i < cols; i++)
		w[i] = strlen(ctl_name(res, i));
	/* First pass: widths. */
	while (!ctl_json && ctl_next(res))
		for (i = 0; i < cols; i++) {
			s = ctl_text(res, i);
			if ((l = s ? strlen(s) : 1) > w[i])
				w[i] = l;
		}
	ctl_rewind(res);
	if (ctl_json && !single)
		printf("[");
	else if (!ctl_json)
		for (i = 0; i < cols; i++)
			printf("%-*s%s", (int)w[i], ctl_name(res, i),
			    i + 1 < cols ? "  " : "\n");
	for (; ctl_next(res); rows++)
		if (ctl_json)
			print_object(res, cols, rows == 0);
		else
			print_row(res, cols, w);
	if (ctl_json && !single)
		printf("]");
	if (ctl_json && (!single || rows))
		printf("\n");
	ctl_free(res);
	return rows;
}

void
ctl_created(const char *name, const char *value)
{
	struct buf b = { 0 };

	if (!ctl_json) {
		printf("%s\n", value);
		return;
	}
	json_add_string(&b, value);
	printf("{\"%s\":%s}\n", name, b.p);
	buf_free(&b);
}

int
ctl_exists(const char *sql, int n, ...)
{
	struct ctl_res *res;
	va_list ap;
	int found;

	va_start(ap, n);
	res = query_va(sql, n, ap);
	va_end(ap);
	found = ctl_next(res);
	ctl_free(res);
	return found;
}

int
ctl_value(const char *sql, char *out, size_t outsz, int n, ...)
{
	struct ctl_res *res;
	const char *s;
	va_list ap;
	int found;

	va_start(ap, n);
	res = query_va(sql, n, ap);
	va_end(ap);
	if ((found = ctl_next(res)) != 0) {
		s = ctl_text(res, 0);
		snprintf(out, outsz, "%s", s != NULL ? s : "");
	}
	ctl_free(res);
	return found;
}

void
ctl_need_app(const char *id, char out[UUID_LEN + 1])
{
	if (valid_uuid(id, out) != NULL)
		ctl_refuse("%s: not a client id", id);
	if (!ctl_exists("SELECT 1 FROM apps WHERE id = ?1", 1, out))
		ctl_refuse("%s: no such app", out);
}

/*
 * Run as root, hand the files to whoever owns their directory (the
 * service's user), so that the daemon can read them after it has dropped
 * its privileges, on start and on every reload: a SQLite database and
 * its -wal and -shm, and secret.key, on either engine.
 */
static void
give_files(void)
{
	static const char *const sfx[] = { "", "-wal", "-shm", NULL };
	char *copy, *dir, path[4096];
	struct stat st;
	int i;

	if (geteuid() != 0 || (copy = strdup(ctl_node)) == NULL)
		return;
	/* dirname(3) may write into copy: call it once. */
	dir = dirname(copy);
	if (stat(dir, &st) == 0 && st.st_uid != 0) {
		for (i = 0; !ctl_is_pg() && sfx[i] != NULL; i++) {
			snprintf(path, sizeof(path), "%s%s", ctl_node,
			    sfx[i]);
			if (chown(path, st.st_uid, st.st_gid) == -1 &&
			    errno != ENOENT)
				ctl_refuse("chown %s: %s", path,
				    strerror(errno));
		}
		snprintf(path, sizeof(path), "%s/secret.key", dir);
		if (chown(path, st.st_uid, st.st_gid) == -1)
			ctl_refuse("chown %s: %s", path, strerror(errno));
	}
	free(copy);
}

/* On PostgreSQL, ctl_pg_init says what it did; SQLite's prints nothing. */
int
cmd_init(const struct cmd_args *a)
{
	char err[512];
	unsigned char secret[32];

	if (ctl_is_pg())
		ctl_pg_init(ctl_dbpath);
	else if (db_migrate(ctl_db, err, sizeof(err)) == -1)
		ctl_refuse("%s", err);
	if (token_secret_load(ctl_node, 1, secret, err, sizeof(err)) == -1)
		ctl_refuse("%s", err);
	OPENSSL_cleanse(secret, sizeof(secret));
	give_files();
	return 0;
}
