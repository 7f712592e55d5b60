/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * JSON: the only file that touches cJSON.  Untrusted documents are checked
 * before cJSON sees them (UTF-8, NUL, depth) and after (duplicates, types,
 * unknown members), and come out as plain structs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "extern.h"
#include "util.h"
#include "valid.h"
#include "json.h"
#include "jwt.h"

static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/*
 * What cJSON does not check: nesting depth, "\u" escapes (cJSON reads a
 * malformed one, and "\u0000", as U+0000 and silently cuts the string
 * there), raw control characters in strings, and control characters other
 * than RFC 8259's white space outside them.
 */
static enum json_err
json_prescan(const char *buf, size_t len)
{
	size_t i;
	int depth = 0, instr = 0;

	for (i = 0; i < len; i++) {
		if (instr) {
			if (buf[i] == '\\' && i + 1 < len) {
				if (buf[i + 1] == 'u') {
					if (i + 5 >= len || !is_hex(buf[i + 2]) ||
					    !is_hex(buf[i + 3]) ||
					    !is_hex(buf[i + 4]) ||
					    !is_hex(buf[i + 5]))
						return JSON_ESYNTAX;
					if (strncmp(buf + i + 2, "0000", LIT_LEN("0000")) == 0)
						return JSON_ENUL;
				}
				i++;
			} else if (buf[i] == '"')
				instr = 0;
			else if ((unsigned char)buf[i] < 0x20)
				return JSON_ESYNTAX;
			continue;
		}
		if ((unsigned char)buf[i] < 0x20 && buf[i] != '\t' &&
		    buf[i] != '\n' && buf[i] != '\r')
			return JSON_ESYNTAX;
		switch (buf[i]) {
		case '"':
			instr = 1;
			break;
		case '{':
		case '[':
			if (++depth > JSON_DEPTH_MAX)
				return JSON_EDEPTH;
			break;
		case '}':
		case ']':
			depth--;
			break;
		}
	}
	return JSON_OK;
}

/* Parse buf into a cJSON object after every check cJSON itself lacks. */
static enum json_err
json_parse_object(const char *buf, size_t len, cJSON **out)
{
	enum json_err e;
	const char *end = NULL;
	char *copy;
	cJSON *root;

	*out = NULL;
	if (memchr(buf, '\0', len) != NULL)
		return JSON_ENUL;
	if (!valid_utf8(buf, len))
		return JSON_EUTF8;
	/* A byte order mark is not JSON (RFC 8259 section 8.1). */
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		return JSON_ESYNTAX;
	if ((e = json_prescan(buf, len)) != JSON_OK)
		return e;
	if ((copy = malloc(len + 1)) == NULL)
		return JSON_ESYNTAX;
	memcpy(copy, buf, len);
	copy[len] = '\0';
	root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
	free(copy);
	if (root == NULL)
		return JSON_ESYNTAX;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return JSON_ENOTOBJ;
	}
	*out = root;
	return JSON_OK;
}

/*
 * Take the string members named in names[] (n of them) into vals[], all
 * required, refusing duplicates, other members and other types.
 */
static enum json_err
json_take_strings(cJSON *root, const char *const names[], char *vals[],
    size_t n, const char **what)
{
	cJSON *it;
	size_t i;

	for (it = root->child; it != NULL; it = it->next) {
		for (i = 0; i < n; i++)
			if (strcmp(it->string, names[i]) == 0)
				break;
		*what = it->string;
		if (i == n)
			return JSON_EUNKNOWN;
		*what = names[i];
		if (vals[i] != NULL)
			return JSON_EDUP;
		if (!cJSON_IsString(it))
			return JSON_ETYPE;
		if ((vals[i] = strdup(it->valuestring)) == NULL)
			return JSON_ESYNTAX;
	}
	for (i = 0; i < n; i++)
		if (vals[i] == NULL) {
			*what = names[i];
			return JSON_EMISSING;
		}
	return JSON_OK;
}

/* Keep the offending member name for the error, bounded and owned. */
static char json_what[33];

static const char *
json_keep_name(const char *s)
{
	size_t n;

	snprintf(json_what, sizeof(json_what), "%s", s ? s : "");
	/*
	 * Never end inside a UTF-8 sequence: the name goes into a JSON
	 * answer.  Drop the last sequence only when it lacks bytes.
	 */
	n = strlen(json_what);
	if (n == sizeof(json_what) - 1) {
		size_t lead = n, want;
		unsigned char c;

		while (lead > 0 &&
		    ((unsigned char)json_what[lead - 1] & 0xc0) == 0x80)
			lead--;
		if (lead > 0 && (c = (unsigned char)json_what[lead - 1]) >=
		    0xc0) {
			want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			if (n - (lead - 1) < want)
				json_what[lead - 1] = '\0';
		}
	}
	return json_what;
}

static enum json_err
json_strings(const char *buf, size_t len, const char *const names[],
    char *vals[], size_t n, const char **what)
{
	enum json_err e;
	cJSON *root;
	size_t i;

	*what = NULL;
	if ((e = json_parse_object(buf, len, &root)) != JSON_OK)
		return e;
	e = json_take_strings(root, names, vals, n, what);
	if (*what != NULL)
		*what = json_keep_name(*what);
	cJSON_Delete(root);
	if (e != JSON_OK)
		for (i = 0; i < n; i++) {
			free(vals[i]);
			vals[i] = NULL;
		}
	return e;
}

/* expiresInDays: a whole number from 1 to DAYS_MAX (7.0 is 7). */
static enum json_err
take_days(const cJSON *it, int *days)
{
	double d;

	if (!cJSON_IsNumber(it))
		return JSON_EDAYS;
	d = it->valuedouble;
	if (!(d >= 1 && d <= DAYS_MAX) || d != (double)(int)d)
		return JSON_EDAYS;
	*days = (int)d;
	return JSON_OK;
}

/* The checks of metadata's members: count, type, duplicates. */
static enum json_err
meta_check(const cJSON *it)
{
	const cJSON *m, *o;
	int n = 0;

	if (!cJSON_IsObject(it))
		return JSON_EMETA;
	for (m = it->child; m != NULL; m = m->next) {
		if (++n > META_MEMBERS)
			return JSON_EMETA_MANY;
		if (!cJSON_IsString(m))
			return JSON_EMETA_VALUE;
		for (o = it->child; o != m; o = o->next)
			if (strcmp(o->string, m->string) == 0)
				return JSON_EMETA_DUP;
	}
	return JSON_OK;
}

/*
 * metadata: an object of at most META_MEMBERS string values, into *out
 * as it is answered later, which must be at most META_MAX bytes.
 */
static enum json_err
take_meta(const cJSON *it, char **out)
{
	const cJSON *m;
	struct buf b = { 0 };
	enum json_err e;

	if ((e = meta_check(it)) != JSON_OK)
		return e;
	e = JSON_ESYNTAX;
	if (buf_adds(&b, "{") == -1)
		goto out;
	for (m = it->child; m != NULL; m = m->next)
		if ((m != it->child && buf_adds(&b, ",") == -1) ||
		    json_add_string(&b, m->string) == -1 ||
		    buf_adds(&b, ":") == -1 ||
		    json_add_string(&b, m->valuestring) == -1)
			goto out;
	if (buf_adds(&b, "}") == -1)
		goto out;
	if (b.len > META_MAX)
		e = JSON_EMETA_SIZE;
	else if ((*out = strdup(b.p)) != NULL)
		e = JSON_OK;
out:
	buf_free(&b);
	return e;
}

/* The members of an invite body, each once; email and language needed. */
static enum json_err
take_invite(cJSON *root, struct invite_body *b, const char **what)
{
	static const char *const names[] = { "email", "language",
	    "redirectUrl", "expiresInDays", "metadata" };
	char **strs[] = { &b->email, &b->language, &b->redirect_url };
	int seen[5] = { 0 };
	enum json_err e;
	cJSON *it;
	size_t i;

	for (it = root->child; it != NULL; it = it->next) {
		for (i = 0; i < 5; i++)
			if (strcmp(it->string, names[i]) == 0)
				break;
		*what = it->string;
		if (i == 5)
			return JSON_EUNKNOWN;
		*what = names[i];
		if (seen[i]++)
			return JSON_EDUP;
		if (i < 3 && !cJSON_IsString(it))
			return JSON_ETYPE;
		if (i < 3 && (*strs[i] = strdup(it->valuestring)) == NULL)
			return JSON_ESYNTAX;
		e = i == 3 ? take_days(it, &b->expires_days) : i == 4 ?
		    take_meta(it, &b->metadata) : JSON_OK;
		if (e != JSON_OK)
			return e;
	}
	for (i = 0; i < 2; i++)
		if (!seen[i]) {
			*what = names[i];
			return JSON_EMISSING;
		}
	return JSON_OK;
}

enum json_err
json_invite_body(const char *buf, size_t len, struct invite_body *b,
    const char **what)
{
	enum json_err e;
	cJSON *root;

	memset(b, 0, sizeof(*b));
	*what = NULL;
	if ((e = json_parse_object(buf, len, &root)) != JSON_OK)
		return e;
	e = take_invite(root, b, what);
	if (*what != NULL)
		*what = json_keep_name(*what);
	cJSON_Delete(root);
	if (e != JSON_OK)
		json_invite_body_free(b);
	return e;
}

void
json_invite_body_free(struct invite_body *b)
{
	free(b->email);
	free(b->language);
	free(b->metadata);
	free(b->redirect_url);
	memset(b, 0, sizeof(*b));
}

enum json_err
json_empty_body(const char *buf, size_t len, const char **what)
{
	return json_strings(buf, len, NULL, NULL, 0, what);
}

enum json_err
json_token_body(const char *buf, size_t len, char **token, const char **what)
{
	static const char *const names[] = { "token" };

	*token = NULL;
	return json_strings(buf, len, names, token, 1, what);
}

const char *
json_strerror(enum json_err e, const char *what)
{
	static char msg[128];

	switch (e) {
	case JSON_OK:
		return "ok";
	case JSON_EUTF8:
		return "Request body is not valid UTF-8";
	case JSON_ENUL:
		return "Request body contains a NUL character";
	case JSON_ESYNTAX:
		return "Request body is not valid JSON";
	case JSON_ENOTOBJ:
		return "Request body must be a JSON object";
	case JSON_EDEPTH:
		return "Request body is nested too deeply";
	case JSON_EUNKNOWN:
		snprintf(msg, sizeof(msg),
		    "Unexpected member in request body: %s", what);
		return msg;
	case JSON_EDUP:
		snprintf(msg, sizeof(msg),
		    "Duplicate member in request body: %s", what);
		return msg;
	case JSON_ETYPE:
		snprintf(msg, sizeof(msg), "%s must be a string", what);
		return msg;
	case JSON_EMISSING:
		snprintf(msg, sizeof(msg), "%s is required", what);
		return msg;
	case JSON_EDAYS:
		return "expiresInDays must be a whole number from 1 to 30";
	case JSON_EMETA:
		return "metadata must be a JSON object";
	case JSON_EMETA_MANY:
		return "metadata may have at most 16 members";
	case JSON_EMETA_VALUE:
		return "metadata values must be strings";
	case JSON_EMETA_DUP:
		return "metadata has a duplicate member";
	case JSON_EMETA_SIZE:
		return "metadata must be at most 1024 bytes";
	default:
		return "Request body is not valid JSON";
	}
}

int
json_add_string(struct buf *b, const char *s)
{
	const unsigned char *p;
	char esc[8];
	int rc = buf_adds(b, "\"");

	for (p = (const unsigned char *)s; rc == 0 && *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			rc = buf_add(b, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			rc = buf_add(b, esc, 6);
		} else if (p[0] == 0xe2 && p[1] == 0x80 &&
		    (p[2] == 0xa8 || p[2] == 0xa9)) {
			rc = buf_adds(b, p[2] == 0xa8 ? "\\u2028" : "\\u2029");
			p += 2;
		} else
			rc = buf_add(b, p, 1);
	}
	return rc == 0 ? buf_adds(b, "\"") : -1;
}

/* ------------------------------------------------------------- JWT JSON */

/*
 * A repeated member name: RFC 7515 section 4 lets us refuse, and we must,
 * or {"alg":"HS256","alg":"none"} means one thing here and another
 * elsewhere.
 */
static int
has_duplicates(const cJSON *root)
{
	const cJSON *a, *b;
	int n = 0;

	for (a = root->child; a != NULL; a = a->next) {
		if (++n > 64)
			return 1;
		for (b = a->next; b != NULL; b = b->next)
			if (strcmp(a->string, b->string) == 0)
				return 1;
	}
	return 0;
}

int
json_jwt_header(const char *buf, size_t len, char alg[16])
{
	cJSON *root, *it;
	int rc = -1;

	if (json_parse_object(buf, len, &root) != JSON_OK)
		return -1;
	if (has_duplicates(root)) {
		cJSON_Delete(root);
		return -1;
	}
	it = cJSON_GetObjectItemCaseSensitive(root, "alg");
	/* "crit" names extensions we do not implement: refuse (RFC 7515). */
	if (cJSON_IsString(it) && strlen(it->valuestring) < 16 &&
	    cJSON_GetObjectItemCaseSensitive(root, "crit") == NULL) {
		strcpy(alg, it->valuestring);
		rc = 0;
	}
	cJSON_Delete(root);
	return rc;
}

static int
jwt_time(cJSON *root, const char *name, int *has, double *v)
{
	cJSON *it = cJSON_GetObjectItemCaseSensitive(root, name);

	*has = it != NULL;
	if (it == NULL)
		return 0;
	if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
	    it->valuedouble > 1e13)
		return -1;
	*v = it->valuedouble;
	return 0;
}

static int
jwt_aud(cJSON *root, struct jwt *j)
{
	cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "aud"), *a;
	int n;

	if (cJSON_IsString(it)) {
		if ((j->aud = calloc(1, sizeof(char *))) == NULL ||
		    (j->aud[0] = strdup(it->valuestring)) == NULL)
			return -1;
		j->naud = 1;
		return 0;
	}
	if (!cJSON_IsArray(it) || (n = cJSON_GetArraySize(it)) < 1 || n > 16)
		return -1;
	if ((j->aud = calloc((size_t)n, sizeof(char *))) == NULL)
		return -1;
	cJSON_ArrayForEach(a, it) {
		if (!cJSON_IsString(a) ||
		    (j->aud[j->naud] = strdup(a->valuestring)) == NULL)
			return -1;
		j->naud++;
	}
	return 0;
}

int
json_jwt_payload(const char *buf, size_t len, struct jwt *j)
{
	cJSON *root, *it;
	int rc = -1;

	if (json_parse_object(buf, len, &root) != JSON_OK)
		return -1;
	if (has_duplicates(root) || jwt_aud(root, j) == -1)
		goto out;
	it = cJSON_GetObjectItemCaseSensitive(root, "sub");
	if (!cJSON_IsString(it) || (j->sub = strdup(it->valuestring)) == NULL)
		goto out;
	it = cJSON_GetObjectItemCaseSensitive(root, "iss");
	if (it != NULL && (!cJSON_IsString(it) ||
	    (j->iss = strdup(it->valuestring)) == NULL))
		goto out;
	if (jwt_time(root, "exp", &j->has_exp, &j->exp) == -1 ||
	    jwt_time(root, "nbf", &j->has_nbf, &j->nbf) == -1 ||
	    jwt_time(root, "iat", &j->has_iat, &j->iat) == -1)
		goto out;
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}
