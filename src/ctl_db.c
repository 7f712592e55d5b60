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

/* ctl_prep on the n texts of ap. */
static sqlite3_stmt *
prep_va(const char *sql, int n, va_list ap)
{
	const char *vals[MAX_BIND];
	int i;

	for (i = 0; i < n; i++)
		vals[i] = va_arg(ap, const char *);
	return ctl_prep(sql, n, vals);
}

/* Prepare sql with the n texts of ap, step it once: the step's result. */
static int
step_va(const char *sql, int n, va_list ap)
{
	sqlite3_stmt *st = prep_va(sql, n, ap);
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc;
}

int
ctl_exec(const char *sql, int n, ...)
{
	va_list ap;
	int rc;

	va_start(ap, n);
	rc = step_va(sql, n, ap);
	va_end(ap);
	if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT)
		ctl_refuse("refused by the database: %s",
		    sqlite3_errmsg(db_handle(ctl_db)));
	if (rc != SQLITE_DONE)
		ctl_refuse("database: %s", sqlite3_errmsg(db_handle(ctl_db)));
	return sqlite3_changes(db_handle(ctl_db));
}

static void
print_json_value(sqlite3_stmt *st, int i)
{
	struct buf b = { 0 };

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		printf("null");
		break;
	case SQLITE_INTEGER:
		printf("%lld", (long long)sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		printf("%g", sqlite3_column_double(st, i));
		break;
	default:
		json_add_string(&b, (const char *)sqlite3_column_text(st, i));
		printf("%s", b.p ? b.p : "\"\"");
		buf_free(&b);
	}
}

int
ctl_rows(const char *sql, int single, int n, ...)
{
	const char *s;
	sqlite3_stmt *st;
	size_t w[32] = { 0 }, l;
	int i, cols, rows = 0, rc;
	va_list ap;

	va_start(ap, n);
	st = prep_va(sql, n, ap);
	va_end(ap);
	cols = sqlite3_column_count(st);
	if (cols > 32)
		cols = 32;
	for (i = 0; i < cols; i++)
		w[i] = strlen(sqlite3_column_name(st, i));
	/* First pass: widths. */
	while (!ctl_json && (rc = sqlite3_step(st)) == SQLITE_ROW)
		for (i = 0; i < cols; i++) {
			s = (const char *)sqlite3_column_text(st, i);
			if ((l = s ? strlen(s) : 1) > w[i])
				w[i] = l;
		}
	sqlite3_reset(st);
	if (ctl_json && !single)
		printf("[");
	else if (!ctl_json)
		for (i = 0; i < cols; i++)
			printf("%-*s%s", (int)w[i], sqlite3_column_name(st, i),
			    i + 1 < cols ? "  " : "\n");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (ctl_json) {
			printf("%s{", rows ? "," : "");
			for (i = 0; i < cols; i++) {
				printf("%s\"%s\":", i ? "," : "",
				    sqlite3_column_name(st, i));
				print_json_value(st, i);
			}
			printf("}");
		} else
			for (i = 0; i < cols; i++) {
				s = (const char *)sqlite3_column_text(st, i);
				printf("%-*s%s", (int)w[i], s ? s : "-",
				    i + 1 < cols ? "  " : "\n");
			}
		rows++;
	}
	if (ctl_json && !single)
		printf("]");
	if (ctl_json && (!single || rows))
		printf("\n");
	if (rc != SQLITE_DONE)
		ctl_refuse("database: %s", sqlite3_errmsg(db_handle(ctl_db)));
	sqlite3_finalize(st);
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
	va_list ap;
	int rc;

	va_start(ap, n);
	rc = step_va(sql, n, ap);
	va_end(ap);
	return rc == SQLITE_ROW;
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
 * Run as root, hand the files to whoever owns the database's directory
 * (the service's user), so that the daemon can read them after it has
 * dropped its privileges, on start and on every reload.
 */
static void
give_files(void)
{
	static const char *const sfx[] = { "", "-wal", "-shm", NULL };
	char *copy, *dir, path[4096];
	struct stat st;
	int i;

	if (geteuid() != 0 || (copy = strdup(ctl_dbpath)) == NULL)
		return;
	/* dirname(3) may write into copy: call it once. */
	dir = dirname(copy);
	if (stat(dir, &st) == 0 && st.st_uid != 0) {
		for (i = 0; sfx[i] != NULL; i++) {
			snprintf(path, sizeof(path), "%s%s", ctl_dbpath,
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

int
cmd_init(const struct cmd_args *a)
{
	char err[512];
	unsigned char secret[32];

	if (db_migrate(ctl_db, err, sizeof(err)) == -1)
		ctl_refuse("%s", err);
	if (token_secret_load(ctl_dbpath, 1, secret, err, sizeof(err)) == -1)
		ctl_refuse("%s", err);
	OPENSSL_cleanse(secret, sizeof(secret));
	give_files();
	return 0;
}
