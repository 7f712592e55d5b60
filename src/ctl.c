/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl: the admin tool.  Manages apps, keys, users and
 * invites in the database named by -d or by the config given with -c.
 * Secrets it creates are printed once and stored only hashed or derived.
 * Exit 0 on success, 1 on a refused operation, 2 on a usage error.
 */
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>

#include "extern.h"
#include "api.h"
#include "db.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define CONF_DEFAULT	SYSCONFDIR "/referral-invites/referral-invites.conf"
#define MAX_BIND	12

static int		 json_out;
static struct db	*db;
static const char	*dbpath;

static void	 usage(const char *) __attribute__((noreturn));

static void __attribute__((noreturn, format(printf, 1, 2)))
refuse(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "referral-invitesctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static void
now_iso(char out[21])
{
	util_isotime(time(NULL), out);
}

/* Prepare sql and bind n text values (NULL binds NULL). */
static sqlite3_stmt *
prep(const char *sql, int n, const char *const *vals)
{
	sqlite3_stmt *st;
	int i;

	if (sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL) != SQLITE_OK)
		refuse("database: %s", sqlite3_errmsg(db_handle(db)));
	for (i = 0; i < n; i++)
		if (vals[i] == NULL)
			sqlite3_bind_null(st, i + 1);
		else
			sqlite3_bind_text(st, i + 1, vals[i], -1,
			    SQLITE_TRANSIENT);
	return st;
}

/* Run a statement without results; the number of rows changed. */
static int
exec_n(const char *sql, int n, ...)
{
	const char *vals[MAX_BIND];
	sqlite3_stmt *st;
	va_list ap;
	int i, rc;

	va_start(ap, n);
	for (i = 0; i < n; i++)
		vals[i] = va_arg(ap, const char *);
	va_end(ap);
	st = prep(sql, n, vals);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT)
		refuse("refused by the database: %s",
		    sqlite3_errmsg(db_handle(db)));
	if (rc != SQLITE_DONE)
		refuse("database: %s", sqlite3_errmsg(db_handle(db)));
	return sqlite3_changes(db_handle(db));
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

/*
 * Print every row of a query: a JSON array of objects with --json (or one
 * object with single), otherwise an aligned table for people.
 */
static int
print_rows(const char *sql, int single, int n, ...)
{
	const char *vals[MAX_BIND], *s;
	sqlite3_stmt *st;
	size_t w[32] = { 0 }, l;
	int i, cols, rows = 0, rc;
	va_list ap;

	va_start(ap, n);
	for (i = 0; i < n; i++)
		vals[i] = va_arg(ap, const char *);
	va_end(ap);
	st = prep(sql, n, vals);
	cols = sqlite3_column_count(st);
	if (cols > 32)
		cols = 32;
	for (i = 0; i < cols; i++)
		w[i] = strlen(sqlite3_column_name(st, i));
	/* First pass: widths. */
	while (!json_out && (rc = sqlite3_step(st)) == SQLITE_ROW)
		for (i = 0; i < cols; i++) {
			s = (const char *)sqlite3_column_text(st, i);
			if ((l = s ? strlen(s) : 1) > w[i])
				w[i] = l;
		}
	sqlite3_reset(st);
	if (json_out && !single)
		printf("[");
	else if (!json_out)
		for (i = 0; i < cols; i++)
			printf("%-*s%s", (int)w[i], sqlite3_column_name(st, i),
			    i + 1 < cols ? "  " : "\n");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json_out) {
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
	if (json_out && !single)
		printf("]");
	if (json_out && (!single || rows))
		printf("\n");
	if (rc != SQLITE_DONE)
		refuse("database: %s", sqlite3_errmsg(db_handle(db)));
	sqlite3_finalize(st);
	return rows;
}

/* Print a created value: alone, or as {"name": value} with --json. */
static void
print_created(const char *name, const char *value)
{
	struct buf b = { 0 };

	if (!json_out) {
		printf("%s\n", value);
		return;
	}
	json_add_string(&b, value);
	printf("{\"%s\":%s}\n", name, b.p);
	buf_free(&b);
}

static int
exists(const char *sql, const char *val)
{
	sqlite3_stmt *st = prep(sql, 1, &val);
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_ROW;
}

static int
exists2(const char *sql, const char *a, const char *b)
{
	const char *vals[2] = { a, b };
	sqlite3_stmt *st = prep(sql, 2, vals);
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_ROW;
}

static void
need_app(const char *id, char out[UUID_LEN + 1])
{
	if (valid_uuid(id, out) != NULL)
		refuse("%s: not a client id", id);
	if (!exists("SELECT 1 FROM apps WHERE id = ?1", out))
		refuse("%s: no such app", out);
}

/* ------------------------------------------------------------ options */

struct opts {
	const char	*name, *invite_url, *sender, *language, *type, *email;
	const char	*id, *alg, *public_key, *issuer, *status, *since;
	const char	*app;
	const char	*accept_ttl, *per_hour, *per_day, *per_minute;
	const char	*cooldown, *ttl;
	int		 nset;
};

/* What a command gets: its words, its positional arguments, its options. */
struct cmd_args {
	const char	*noun;
	const char	*verb;
	char		**pos;
	int		 npos;
	struct opts	*o;
};

/* Parse --option value pairs into o; positional arguments stay in argv. */
static int
parse_opts(int argc, char *argv[], struct opts *o, char *pos[], int maxpos)
{
	static const struct option lo[] = {
		{ "name", 1, NULL, 'n' }, { "invite-url", 1, NULL, 'u' },
		{ "sender", 1, NULL, 's' }, { "language", 1, NULL, 'l' },
		{ "type", 1, NULL, 't' }, { "email", 1, NULL, 'e' },
		{ "id", 1, NULL, 'i' }, { "alg", 1, NULL, 'a' },
		{ "public-key", 1, NULL, 'k' }, { "issuer", 1, NULL, 'I' },
		{ "status", 1, NULL, 'S' }, { "since", 1, NULL, 'T' },
		{ "app", 1, NULL, 'A' }, { "accept-ttl", 1, NULL, 2 },
		{ "limit-per-hour", 1, NULL, 3 }, { "limit-per-day", 1, NULL, 4 },
		{ "limit-per-minute", 1, NULL, 5 }, { "cooldown", 1, NULL, 6 },
		{ "ttl", 1, NULL, 7 }, { NULL, 0, NULL, 0 }
	};
	int ch, npos = 0;

	memset(o, 0, sizeof(*o));
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "-", lo, NULL)) != -1) {
		o->nset++;
		switch (ch) {
		case 2: o->accept_ttl = optarg; break;
		case 3: o->per_hour = optarg; break;
		case 4: o->per_day = optarg; break;
		case 5: o->per_minute = optarg; break;
		case 6: o->cooldown = optarg; break;
		case 7: o->ttl = optarg; break;
		case 'n': o->name = optarg; break;
		case 'u': o->invite_url = optarg; break;
		case 's': o->sender = optarg; break;
		case 'l': o->language = optarg; break;
		case 't': o->type = optarg; break;
		case 'e': o->email = optarg; break;
		case 'i': o->id = optarg; break;
		case 'a': o->alg = optarg; break;
		case 'k': o->public_key = optarg; break;
		case 'I': o->issuer = optarg; break;
		case 'S': o->status = optarg; break;
		case 'T': o->since = optarg; break;
		case 'A': o->app = optarg; break;
		case 1:
			o->nset--;
			if (npos >= maxpos)
				usage("too many arguments");
			pos[npos++] = optarg;
			break;
		default:
			usage("unknown option");
		}
	}
	return npos;
}

static void
check_url(const char *u)
{
	if (u == NULL || (strncmp(u, "https://", LIT_LEN("https://")) != 0 &&
	    strncmp(u, "http://", LIT_LEN("http://")) != 0) || strpbrk(u, " \t\r\n\"<>") != NULL)
		refuse("invite URL must be an http(s) URL");
}

/* A name shown in mail and pages: UTF-8, no control characters. */
static void
check_name(const char *s)
{
	const unsigned char *p;

	if (s == NULL)
		return;
	if (*s == '\0' || strlen(s) > 200 || !valid_utf8(s, strlen(s)))
		refuse("a name must be 1 to 200 bytes of UTF-8");
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			refuse("a name must not contain control characters");
}

static void
check_sender(const char *s)
{
	char a[EMAIL_MAX + 1];

	if (s == NULL)
		return;
	check_name(s);
	if (mail_addr_of(s, a) == -1)
		refuse("%s: not a sender address", s);
}

static const char *
norm_lang(const char *s, char out[LANG_MAX])
{
	if (s == NULL)
		return NULL;
	if (valid_language(s, out) != NULL)
		refuse("%s: not a language tag", s);
	return out;
}

static void
check_num(const char *s, const char *what)
{
	long long n;

	if (s != NULL && util_strtonum(s, 0, 1000000000, &n) == -1)
		refuse("%s: not a number for %s", s, what);
}

/* ---------------------------------------------------------- commands */

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

	if (geteuid() != 0 || (copy = strdup(dbpath)) == NULL)
		return;
	/* dirname(3) may write into copy: call it once. */
	dir = dirname(copy);
	if (stat(dir, &st) == 0 && st.st_uid != 0) {
		for (i = 0; sfx[i] != NULL; i++) {
			snprintf(path, sizeof(path), "%s%s", dbpath, sfx[i]);
			if (chown(path, st.st_uid, st.st_gid) == -1 &&
			    errno != ENOENT)
				refuse("chown %s: %s", path, strerror(errno));
		}
		snprintf(path, sizeof(path), "%s/secret.key", dir);
		if (chown(path, st.st_uid, st.st_gid) == -1)
			refuse("chown %s: %s", path, strerror(errno));
	}
	free(copy);
}

static int
cmd_init(const struct cmd_args *a)
{
	char err[512];
	unsigned char secret[32];

	if (db_migrate(db, err, sizeof(err)) == -1)
		refuse("%s", err);
	if (token_secret_load(dbpath, 1, secret, err, sizeof(err)) == -1)
		refuse("%s", err);
	OPENSSL_cleanse(secret, sizeof(secret));
	give_files();
	return 0;
}

static int
cmd_app_add(const struct cmd_args *a)
{
	struct opts *o = a->o;
	char id[UUID_LEN + 1], ts[21], lang[LANG_MAX];

	if (o->name == NULL || o->invite_url == NULL)
		usage("app add needs --name and --invite-url");
	check_name(o->name);
	check_url(o->invite_url);
	check_sender(o->sender);
	util_uuid(id);
	now_iso(ts);
	exec_n("INSERT INTO apps (id, name, invite_url, sender, language, "
	    "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)", 6,
	    id, o->name, o->invite_url, o->sender, norm_lang(o->language,
	    lang), ts);
	print_created("clientId", id);
	return 0;
}

#define APP_COLUMNS "id, name, invite_url, sender, language, jwt_alg, " \
	"jwt_issuer, accept_ttl, limit_per_hour, limit_per_day, " \
	"limit_per_minute, cooldown, created_at, updated_at"

static int
cmd_app_set(const struct cmd_args *a)
{
	const char *idarg = a->pos[0];
	struct opts *o = a->o;
	char id[UUID_LEN + 1], ts[21], lang[LANG_MAX];

	need_app(idarg, id);
	if (o->nset == 0)
		usage("app set needs at least one option");
	check_name(o->name);
	if (o->invite_url)
		check_url(o->invite_url);
	check_sender(o->sender);
	check_num(o->accept_ttl, "--accept-ttl");
	check_num(o->per_hour, "--limit-per-hour");
	check_num(o->per_day, "--limit-per-day");
	check_num(o->per_minute, "--limit-per-minute");
	check_num(o->cooldown, "--cooldown");
	now_iso(ts);
	exec_n("UPDATE apps SET name = coalesce(?2, name), "
	    "invite_url = coalesce(?3, invite_url), "
	    "sender = coalesce(?4, sender), "
	    "language = coalesce(?5, language), "
	    "accept_ttl = coalesce(CAST(?6 AS INTEGER), accept_ttl), "
	    "limit_per_hour = coalesce(CAST(?7 AS INTEGER), limit_per_hour), "
	    "limit_per_day = coalesce(CAST(?8 AS INTEGER), limit_per_day), "
	    "limit_per_minute = coalesce(CAST(?9 AS INTEGER), "
	    "limit_per_minute), "
	    "cooldown = coalesce(CAST(?10 AS INTEGER), cooldown), "
	    "updated_at = ?11 WHERE id = ?1", 11, id, o->name, o->invite_url,
	    o->sender, norm_lang(o->language, lang), o->accept_ttl,
	    o->per_hour, o->per_day, o->per_minute, o->cooldown, ts);
	return 0;
}

static char *
read_file(const char *path)
{
	FILE *f;
	char *s;
	long n;

	if ((f = fopen(path, "r")) == NULL)
		refuse("%s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) == -1 || (n = ftell(f)) <= 0 ||
	    n > 65536 || fseek(f, 0, SEEK_SET) == -1 ||
	    (s = calloc(1, (size_t)n + 1)) == NULL ||
	    fread(s, 1, (size_t)n, f) != (size_t)n)
		refuse("%s: cannot read", path);
	fclose(f);
	return s;
}

/* Refuse now a key that could never verify a token of alg. */
static void
check_public_key(const char *pem, enum jwt_alg alg, const char *path)
{
	BIO *bio;
	EVP_PKEY *pk = NULL;
	int ok;

	if ((bio = BIO_new_mem_buf(pem, -1)) != NULL)
		pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk == NULL)
		refuse("%s: not a PEM public key", path);
	if (alg == JWT_RS256)
		ok = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA &&
		    EVP_PKEY_get_bits(pk) >= 2048;
	else
		ok = EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
		    EVP_PKEY_get_bits(pk) == 256;
	EVP_PKEY_free(pk);
	if (!ok)
		refuse("%s: not an %s key (RSA of 2048 bits or more, or EC "
		    "P-256)", path, jwt_alg_name(alg));
}

static int
cmd_app_jwt_key(const struct cmd_args *a)
{
	const char *idarg = a->pos[0];
	struct opts *o = a->o;
	char id[UUID_LEN + 1], ts[21], *pem = NULL, enc[64];
	unsigned char server[32], secret[32];
	char err[512];
	enum jwt_alg alg = jwt_alg_parse(o->alg);
	sqlite3_stmt *st;

	need_app(idarg, id);
	now_iso(ts);
	if (alg == JWT_HS256) {
		/* A new generation: the previous secret stops working. */
		exec_n("UPDATE apps SET jwt_alg = 'HS256', jwt_public_key = NULL,"
		    " jwt_generation = jwt_generation + 1, jwt_issuer = ?2,"
		    " updated_at = ?3 WHERE id = ?1", 3, id, o->issuer, ts);
		if (token_secret_load(dbpath, 0, server, err,
		    sizeof(err)) == -1)
			refuse("%s", err);
		st = prep("SELECT jwt_generation FROM apps WHERE id = ?1", 1,
		    (const char *const[]){ id });
		sqlite3_step(st);
		jwt_app_secret(server, 32, id, sqlite3_column_int(st, 0),
		    secret);
		sqlite3_finalize(st);
		util_b64url_enc(secret, 32, enc, sizeof(enc));
		print_created("secret", enc);
		OPENSSL_cleanse(secret, 32);
		OPENSSL_cleanse(server, 32);
		OPENSSL_cleanse(enc, sizeof(enc));
		return 0;
	}
	if (alg != JWT_RS256 && alg != JWT_ES256)
		usage("--alg must be RS256, ES256 or HS256");
	if (o->public_key == NULL)
		usage("--public-key FILE is required");
	pem = read_file(o->public_key);
	check_public_key(pem, alg, o->public_key);
	exec_n("UPDATE apps SET jwt_alg = ?2, jwt_public_key = ?3, "
	    "jwt_issuer = ?4, updated_at = ?5 WHERE id = ?1", 5, id,
	    jwt_alg_name(alg), pem, o->issuer, ts);
	free(pem);
	return 0;
}

static int
cmd_key_add(const struct cmd_args *a)
{
	const char *idarg = a->pos[0];
	struct opts *o = a->o;
	char id[UUID_LEN + 1], kid[20], key[64], hash[65], ts[21];
	unsigned char raw[32], kraw[6];

	need_app(idarg, id);
	if (o->type == NULL ||
	    (strcmp(o->type, "read") != 0 && strcmp(o->type, "write") != 0))
		usage("key add needs --type read|write");
	util_random(raw, sizeof(raw));
	util_random(kraw, sizeof(kraw));
	strcpy(kid, "key_");
	util_hex(kraw, sizeof(kraw), kid + 4);
	util_b64url_enc(raw, sizeof(raw), key, sizeof(key));
	util_sha256_hex(key, strlen(key), hash);
	now_iso(ts);
	exec_n("INSERT INTO api_keys (id, app_id, type, key_hash, created_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)", 5, kid, id, o->type, hash, ts);
	if (json_out)
		printf("{\"id\":\"%s\",\"type\":\"%s\",\"key\":\"%s\"}\n", kid,
		    o->type, key);
	else
		printf("%s\n", key);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

static int
cmd_user_add(const struct cmd_args *a)
{
	const char *idarg = a->pos[0];
	struct opts *o = a->o;
	char app[UUID_LEN + 1], uid[UUID_LEN + 1], ts[21];
	char email[EMAIL_MAX + 1], lower[EMAIL_MAX + 1];

	need_app(idarg, app);
	if (o->email == NULL)
		usage("user add needs --email");
	check_name(o->name);
	if (valid_email(o->email, email, lower) != NULL)
		refuse("%s: not a valid address", o->email);
	if (o->id != NULL) {
		if (valid_uuid(o->id, uid) != NULL)
			refuse("%s: not a UUID", o->id);
	} else
		util_uuid(uid);
	if (exists("SELECT 1 FROM users WHERE id = ?1", uid))
		refuse("user %s exists", uid);
	now_iso(ts);
	exec_n("INSERT INTO users (id, app_id, email, name, created_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)", 5, uid, app, lower, o->name, ts);
	print_created("userId", uid);
	return 0;
}

static int
cmd_token(const struct cmd_args *args)
{
	const char *apparg = args->pos[0], *userarg = args->pos[1];
	struct opts *o = args->o;
	char app[UUID_LEN + 1], uid[UUID_LEN + 1], err[512], *tok;
	unsigned char server[32], secret[32];
	long long ttl = 3600;
	struct app a;
	time_t now = time(NULL);

	need_app(apparg, app);
	if (valid_uuid(userarg, uid) != NULL)
		refuse("%s: not a user id", userarg);
	if (o->ttl != NULL && util_strtonum(o->ttl, 1, 31536000, &ttl) == -1)
		refuse("%s: not a TTL in seconds", o->ttl);
	if (db_app_get(db, app, &a) != DB_OK)
		refuse("%s: cannot read the app", app);
	if (a.jwt_alg != JWT_HS256)
		refuse("app %s verifies %s tokens from its own identity "
		    "provider", app, jwt_alg_name(a.jwt_alg));
	if (!exists2("SELECT 1 FROM users WHERE id = ?1 AND app_id = ?2",
	    uid, app))
		refuse("%s: no such user in app %s", uid, app);
	if (!exists("SELECT 1 FROM users WHERE id = ?1 AND active = 1", uid))
		refuse("%s: the user is disabled", uid);
	if (token_secret_load(dbpath, 0, server, err, sizeof(err)) == -1)
		refuse("%s", err);
	jwt_app_secret(server, 32, app, a.jwt_generation, secret);
	tok = jwt_sign_hs256(secret, 32, a.jwt_issuer ? a.jwt_issuer :
	    "referral-invites", app, uid, now, now + ttl);
	OPENSSL_cleanse(secret, 32);
	OPENSSL_cleanse(server, 32);
	db_app_free(&a);
	if (tok == NULL)
		refuse("cannot sign the token");
	print_created("token", tok);
	free(tok);
	return 0;
}

/* --since: a date or an ISO 8601 UTC time, as the database writes them. */
static const char *
norm_since(const char *s, char out[21])
{
	struct tm tm;
	const char *end;

	if (s == NULL)
		return NULL;
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL ||
	    *end != '\0') {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL ||
		    *end != '\0')
			refuse("%s: --since takes YYYY-MM-DD or "
			    "YYYY-MM-DDTHH:MM:SSZ", s);
	}
	util_isotime(timegm(&tm), out);
	/* strptime accepts 2026-02-31; the round trip must be exact. */
	if (strncmp(out, s, strlen(s) < 20 ? strlen(s) : 20) != 0)
		refuse("%s: not a valid date", s);
	return out;
}

static int
cmd_invites(const struct cmd_args *a)
{
	struct opts *o = a->o;
	static const char *const statuses[] = { "queued", "sending", "sent",
	    "failed", "canceled", NULL };
	char app[UUID_LEN + 1], sincebuf[21];
	const char *since;
	int i;

	if (o->app != NULL && valid_uuid(o->app, app) != NULL)
		refuse("%s: not a client id", o->app);
	for (i = 0; o->status != NULL && statuses[i] != NULL; i++)
		if (strcmp(o->status, statuses[i]) == 0)
			break;
	if (o->status != NULL && statuses[i] == NULL)
		refuse("%s: --status takes queued, sending, sent, failed or "
		    "canceled", o->status);
	since = norm_since(o->since, sincebuf);
	print_rows("SELECT i.id, a.name AS app, u.email AS inviter, i.email "
	    "AS invitee, i.language_resolved AS language, i.status, "
	    "i.attempts, i.created_at, i.sent_at, i.accepted_at "
	    "FROM invites i JOIN apps a ON a.id = i.app_id "
	    "JOIN users u ON u.id = i.inviter_id "
	    "WHERE (?1 IS NULL OR i.app_id = ?1) "
	    "AND (?2 IS NULL OR i.status = ?2) "
	    "AND (?3 IS NULL OR i.created_at >= ?3) "
	    "ORDER BY i.created_at DESC, i.id", 0, 3,
	    o->app ? app : NULL, o->status, since);
	return 0;
}

static int
cmd_invite(const struct cmd_args *a)
{
	const char *verb = a->verb, *idarg = a->pos[0];
	char id[UUID_LEN + 1], ts[21];

	if (valid_uuid(idarg, id) != NULL)
		refuse("%s: not an invite id", idarg);
	if (!exists("SELECT 1 FROM invites WHERE id = ?1", id))
		refuse("%s: no such invite", id);
	now_iso(ts);
	if (strcmp(verb, "show") == 0) {
		print_rows("SELECT id, app_id, inviter_id, email, "
		    "email_normalized, language_requested, language_resolved,"
		    " status, attempts, last_reply, request_id, created_at, "
		    "updated_at, sent_at, accepted_at, next_attempt_at "
		    "FROM invites WHERE id = ?1", 1, 1, id);
		return 0;
	}
	if (strcmp(verb, "retry") == 0) {
		if (exists("SELECT 1 FROM invites i JOIN suppressions s ON "
		    "s.app_id = i.app_id AND s.email_normalized = "
		    "i.email_normalized WHERE i.id = ?1", id))
			refuse("invite %s: the address is on the do-not-invite "
			    "list", id);
		if (exec_n("UPDATE invites SET status = 'queued', "
		    "next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1 AND "
		    "status IN ('failed', 'queued')", 2, id, ts) == 0)
			refuse("invite %s is not failed or queued", id);
		return 0;
	}
	if (exec_n("UPDATE invites SET status = 'canceled', updated_at = ?2 "
	    "WHERE id = ?1 AND status IN ('queued', 'failed')", 2, id,
	    ts) == 0)
		refuse("invite %s is being sent or was sent", id);
	return 0;
}

static int
cmd_suppress(const struct cmd_args *a)
{
	const char *verb = a->verb, *appid = a->pos[0];
	const char *addr = a->npos > 1 ? a->pos[1] : NULL;
	char app[UUID_LEN + 1], email[EMAIL_MAX + 1], lower[EMAIL_MAX + 1];
	char ts[21];

	need_app(appid, app);
	if (strcmp(verb, "list") == 0) {
		print_rows("SELECT email_normalized AS email, source, "
		    "created_at FROM suppressions WHERE app_id = ?1 "
		    "ORDER BY created_at DESC, email_normalized", 0, 1, app);
		return 0;
	}
	if (addr == NULL)
		usage("suppress add|remove needs an address");
	if (valid_email(addr, email, lower) != NULL)
		refuse("%s: not a valid address", addr);
	now_iso(ts);
	if (strcmp(verb, "add") == 0) {
		exec_n("INSERT OR IGNORE INTO suppressions (app_id, "
		    "email_normalized, source, created_at) VALUES "
		    "(?1, ?2, 'admin', ?3)", 3, app, lower, ts);
		exec_n("UPDATE invites SET status = 'canceled', updated_at = ?3"
		    " WHERE app_id = ?1 AND email_normalized = ?2 AND "
		    "status = 'queued'", 3, app, lower, ts);
	} else if (exec_n("DELETE FROM suppressions WHERE app_id = ?1 AND "
	    "email_normalized = ?2", 2, app, lower) == 0)
		refuse("%s is not on the list", lower);
	return 0;
}

/* The commands the table names in place. */
static int
cmd_app_list(const struct cmd_args *a)
{
	(void)a;
	print_rows("SELECT id, name, invite_url, sender, language, jwt_alg, "
	    "created_at FROM apps ORDER BY created_at, id", 0, 0);
	return 0;
}

/* The rows of an app (or the app itself): app show, key list, user list. */
static int
cmd_of_app(const struct cmd_args *a)
{
	static const struct {
		const char	*noun;
		const char	*sql;
		int		 single;
	} q[] = {
		{ "app", "SELECT " APP_COLUMNS " FROM apps WHERE id = ?1", 1 },
		{ "key", "SELECT id, type, created_at, revoked_at FROM "
		    "api_keys WHERE app_id = ?1 ORDER BY created_at, id", 0 },
		{ "user", "SELECT id, email, name, active, created_at FROM "
		    "users WHERE app_id = ?1 ORDER BY created_at, id", 0 },
	};
	char id[UUID_LEN + 1];
	size_t i;

	need_app(a->pos[0], id);
	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		if (strcmp(q[i].noun, a->noun) == 0)
			print_rows(q[i].sql, q[i].single, 1, id);
	return 0;
}

static int
cmd_key_revoke(const struct cmd_args *a)
{
	char ts[21];

	now_iso(ts);
	if (exec_n("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND "
	    "revoked_at IS NULL", 2, a->pos[0], ts) == 0)
		refuse("%s: no such active key", a->pos[0]);
	return 0;
}

/* user disable, user enable. */
static int
cmd_user_active(const struct cmd_args *a)
{
	char id[UUID_LEN + 1];

	if (valid_uuid(a->pos[0], id) != NULL)
		refuse("%s: not a user id", a->pos[0]);
	if (exec_n("UPDATE users SET active = ?2 WHERE id = ?1", 2, id,
	    strcmp(a->verb, "enable") == 0 ? "1" : "0") == 0)
		refuse("%s: no such user", id);
	return 0;
}

/* ------------------------------------------------------------ dispatch */

/*
 * Every command: its words, how many positional arguments it takes, its
 * handler.  Usage, dispatch and the documentation test (tests/manlint.sh)
 * read this table; adding a command is a row here and its entry in
 * referral-invitesctl(8).
 */
static const struct cmd {
	const char	*noun;
	const char	*verb;		/* NULL: the noun alone */
	int		 npos;
	int		(*fn)(const struct cmd_args *);
} commands[] = {
	{ "init", NULL, 0, cmd_init },
	{ "app", "add", 0, cmd_app_add },
	{ "app", "list", 0, cmd_app_list },
	{ "app", "show", 1, cmd_of_app },
	{ "app", "set", 1, cmd_app_set },
	{ "app", "jwt-key", 1, cmd_app_jwt_key },
	{ "key", "add", 1, cmd_key_add },
	{ "key", "list", 1, cmd_of_app },
	{ "key", "revoke", 1, cmd_key_revoke },
	{ "user", "add", 1, cmd_user_add },
	{ "user", "list", 1, cmd_of_app },
	{ "user", "disable", 1, cmd_user_active },
	{ "user", "enable", 1, cmd_user_active },
	{ "token", NULL, 2, cmd_token },
	{ "invites", NULL, 0, cmd_invites },
	{ "invite", "show", 1, cmd_invite },
	{ "invite", "retry", 1, cmd_invite },
	{ "invite", "cancel", 1, cmd_invite },
	{ "suppress", "add", 2, cmd_suppress },
	{ "suppress", "remove", 2, cmd_suppress },
	{ "suppress", "list", 1, cmd_suppress },
	{ NULL, NULL, 0, NULL }
};

static void
usage(const char *why)
{
	const struct cmd *c;

	if (why != NULL)
		fprintf(stderr, "referral-invitesctl: %s\n", why);
	fprintf(stderr, "usage: referral-invitesctl [-c file | -d database] "
	    "[--json] command [args]\ncommands:");
	for (c = commands; c->noun != NULL; c++)
		fprintf(stderr, "%s %s%s%s", c == commands ? "" : ",", c->noun,
		    c->verb ? " " : "", c->verb ? c->verb : "");
	fprintf(stderr, "\n(see referral-invitesctl(8))\n");
	exit(2);
}

/* Whether noun takes a verb (app add), or stands alone (init). */
static int
has_verbs(const char *noun)
{
	const struct cmd *c;

	for (c = commands; c->noun != NULL; c++)
		if (strcmp(c->noun, noun) == 0)
			return c->verb != NULL;
	return 0;
}

static int
dispatch(const char *c1, const char *c2, struct opts *o, char *pos[],
    int npos)
{
	const struct cmd *c;
	struct cmd_args a = { c1, c2, pos, npos, o };

	for (c = commands; c->noun != NULL; c++) {
		if (strcmp(c->noun, c1) != 0 || (c->verb == NULL) !=
		    (c2 == NULL) || (c2 != NULL && strcmp(c->verb, c2) != 0))
			continue;
		if (npos != c->npos)
			usage("wrong number of arguments");
		return c->fn(&a);
	}
	usage("unknown command");
}

int
main(int argc, char *argv[])
{
	struct conf c;
	struct opts o;
	const char *conf_path = NULL, *c1, *c2 = NULL;
	char err[512], *pos[4];
	int i, npos, rest, rc;

	log_init(1, LOG_LVL_WARNING, "referral-invitesctl");
	umask(027);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json_out = 1;
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf_path = argv[++i];
		else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
			dbpath = argv[++i];
		else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			usage(NULL);
		else
			usage("unknown option");
	}
	if (i >= argc)
		usage(NULL);
	if (dbpath != NULL && conf_path != NULL)
		usage("-c and -d exclude each other");
	memset(&c, 0, sizeof(c));
	if (dbpath == NULL) {
		if (conf_load(&c, conf_path ? conf_path : CONF_DEFAULT, 0, err,
		    sizeof(err)) == -1)
			refuse("%s", err);
		dbpath = c.database;
	}
	c1 = argv[i++];
	if (has_verbs(c1)) {
		if (i >= argc)
			usage("missing subcommand");
		c2 = argv[i++];
	}
	rest = argc - i + 1;
	/* Remaining words: options and positional arguments. */
	argv[i - 1] = (char *)"referral-invitesctl";
	npos = parse_opts(rest, argv + i - 1, &o, pos, 4);
	if ((db = db_open(dbpath, SYNC_FULL, 0)) == NULL)
		refuse("%s: cannot open the database", dbpath);
	if (strcmp(c1, "init") != 0 && !db_schema_current(db))
		refuse("%s: schema missing or old: run referral-invitesctl "
		    "init", dbpath);
	rc = dispatch(c1, c2, &o, pos, npos);
	db_close(db);
	conf_free(&c);
	return rc;
}
