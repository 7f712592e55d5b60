/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Mail templates: one file per language and part (LANG.subject, LANG.txt,
 * LANG.html, LANG.optout.html), loaded at start-up and again on SIGHUP,
 * rendered with a fixed set of {{variables}}.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "extern.h"
#include "log.h"
#include "util.h"
#include "valid.h"
#include "template.h"

#define TMPL_FILE_MAX	(64 * 1024)

struct tmpl_lang {
	char	 name[LANG_MAX];
	char	*part[TMPL__MAX];
	size_t	 len[TMPL__MAX];
};

struct tmpl_set {
	struct tmpl_lang *v;
	size_t		  n;
};

/* The set in use; replaced as a whole by a successful tmpl_load(). */
static struct tmpl_set	 tmpl_cur;

/* Longest suffix first: "de.optout.html" is not an HTML body. */
static const struct {
	const char	*suffix;
	enum tmpl_part	 part;
} tmpl_files[] = {
	{ ".optout-done.html", TMPL_OPTOUT_DONE },
	{ ".optout.html", TMPL_OPTOUT },
	{ ".subject", TMPL_SUBJECT },
	{ ".txt", TMPL_TEXT },
	{ ".html", TMPL_HTML },
};

static const struct {
	const char	*name;
	size_t		 len;
	size_t		 off;
} tmpl_vars[] = {
#define V(n) { #n, sizeof(#n) - 1, offsetof(struct tmpl_vars, n) }
	V(app_name), V(inviter_name), V(inviter_email), V(invitee_email),
	V(accept_url), V(optout_url),
#undef V
};

static void
tmpl_set_free(struct tmpl_set *set)
{
	size_t i;
	int p;

	for (i = 0; i < set->n; i++)
		for (p = 0; p < TMPL__MAX; p++)
			free(set->v[i].part[p]);
	free(set->v);
	set->v = NULL;
	set->n = 0;
}

static struct tmpl_lang *
tmpl_find(const struct tmpl_set *set, const char *lang)
{
	size_t i;

	if (lang == NULL)
		return NULL;
	for (i = 0; i < set->n; i++)
		if (strcasecmp(set->v[i].name, lang) == 0)
			return &set->v[i];
	return NULL;
}

static int
tmpl_complete(const struct tmpl_lang *l)
{
	return l != NULL && l->part[TMPL_SUBJECT] != NULL &&
	    l->part[TMPL_TEXT] != NULL && l->part[TMPL_HTML] != NULL;
}

/* Store text (owned from now on) as part of lang, replacing any earlier. */
static int
tmpl_store(struct tmpl_set *set, const char *lang, enum tmpl_part part,
    char *text, size_t len)
{
	struct tmpl_lang *l, *nv;

	if ((l = tmpl_find(set, lang)) == NULL) {
		nv = reallocarray(set->v, set->n + 1, sizeof(*nv));
		if (nv == NULL)
			return -1;
		set->v = nv;
		l = &set->v[set->n++];
		memset(l, 0, sizeof(*l));
		memcpy(l->name, lang, strlen(lang) + 1);
	}
	free(l->part[part]);
	l->part[part] = text;
	l->len[part] = len;
	return 0;
}

/*
 * The whole regular file name in directory dfd (path names it in
 * messages), at most TMPL_FILE_MAX bytes.
 */
static char *
tmpl_read(int dfd, const char *name, const char *path, size_t *lenp,
    char *err, size_t errsz)
{
	struct stat st;
	char *p = NULL, *np;
	size_t len = 0;
	ssize_t r;
	int fd;

	if ((fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "%s: not a regular file", path);
		goto fail;
	}
	if ((p = malloc(TMPL_FILE_MAX + 2)) == NULL) {
		snprintf(err, errsz, "%s: out of memory", path);
		goto fail;
	}
	while (len <= TMPL_FILE_MAX) {
		r = read(fd, p + len, TMPL_FILE_MAX + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errsz, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > TMPL_FILE_MAX) {
		snprintf(err, errsz, "%s: larger than %d KiB", path,
		    TMPL_FILE_MAX / 1024);
		goto fail;
	}
	close(fd);
	p[len] = '\0';
	*lenp = len;
	/* Templates are small; give back the room reserved for 64 KiB. */
	if ((np = realloc(p, len + 1)) != NULL)
		p = np;
	return p;
fail:
	free(p);
	close(fd);
	return NULL;
}

/*
 * Make the file's text a usable template: UTF-8 without NUL, without a
 * byte order mark, and for a subject one line without control characters
 * (the trailing newline of the file is dropped).
 */
static int
tmpl_check(const char *path, enum tmpl_part part, char *p, size_t *lenp,
    char *err, size_t errsz)
{
	size_t i, len = *lenp;

	if (memchr(p, '\0', len) != NULL || !valid_utf8(p, len)) {
		snprintf(err, errsz, "%s: not valid UTF-8 text", path);
		return -1;
	}
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
		memmove(p, p + 3, len - 3 + 1);
		len -= 3;
	}
	if (part == TMPL_SUBJECT) {
		while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
			p[--len] = '\0';
		for (i = 0; i < len; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
				snprintf(err, errsz, "%s: a subject is one "
				    "line without control characters", path);
				return -1;
			}
	}
	*lenp = len;
	return 0;
}

/* The invitee's two links are a promise (SPEC 5, 12): say when one is gone. */
static void
tmpl_lint(const char *path, enum tmpl_part part, const char *p)
{
	if ((part == TMPL_TEXT || part == TMPL_HTML) &&
	    strstr(p, "{{accept_url}}") == NULL)
		log_warnx("%s: has no {{accept_url}}", path);
	if (part != TMPL_SUBJECT && part != TMPL_OPTOUT_DONE &&
	    strstr(p, "{{optout_url}}") == NULL)
		log_warnx("%s: has no {{optout_url}} (the opt-out link)", path);
}

/*
 * The part and the normalised language a file name stands for, or -1 for
 * a name that is not a template's (ignored: README, editor backups).
 */
static int
tmpl_name(const char *dir, const char *name, char lang[LANG_MAX],
    enum tmpl_part *part)
{
	char norm[LANG_MAX];
	size_t i, n, slen = 0;

	n = strlen(name);
	for (i = 0; i < sizeof(tmpl_files) / sizeof(tmpl_files[0]); i++) {
		slen = strlen(tmpl_files[i].suffix);
		if (n > slen && strcmp(name + n - slen,
		    tmpl_files[i].suffix) == 0)
			break;
	}
	if (name[0] == '.' ||
	    i == sizeof(tmpl_files) / sizeof(tmpl_files[0]))
		return -1;
	n -= slen;
	if (n >= LANG_MAX)
		goto bad;
	memcpy(lang, name, n);
	lang[n] = '\0';
	if (valid_language(lang, norm) != NULL || strcmp(norm, lang) != 0)
		goto bad;
	*part = tmpl_files[i].part;
	return 0;
bad:
	log_warnx("%s/%s: not named after a normalised language tag, ignored",
	    dir, name);
	return -1;
}

static int
tmpl_load_file(struct tmpl_set *set, int dfd, const char *dir,
    const char *name, char *err, size_t errsz)
{
	char path[PATH_MAX], lang[LANG_MAX], *p;
	enum tmpl_part part;
	size_t len;
	int n;

	if (tmpl_name(dir, name, lang, &part) == -1)
		return 0;
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errsz, "%s/%s: path too long", dir, name);
		return -1;
	}
	if ((p = tmpl_read(dfd, name, path, &len, err, errsz)) == NULL)
		return -1;
	if (tmpl_check(path, part, p, &len, err, errsz) == -1) {
		free(p);
		return -1;
	}
	tmpl_lint(path, part, p);
	if (tmpl_store(set, lang, part, p, len) == -1) {
		free(p);
		snprintf(err, errsz, "%s: out of memory", path);
		return -1;
	}
	return 0;
}

/*
 * The templates of directory dir, reached through dfd when it is not -1:
 * a descriptor opened before the privilege drop, so that a directory the
 * daemon's user could not reach by its path still loads on reload.
 */
static int
tmpl_load_dir(struct tmpl_set *set, int dfd, const char *dir, char *err,
    size_t errsz)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = -1;

	fd = dfd == -1 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) :
	    openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (tmpl_load_file(set, dirfd(d), dir, de->d_name, err,
		    errsz) == -1)
			goto out;
	}
	if (errno != 0) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	closedir(d);
	return rc;
}

/* At least one usable language; incomplete ones are named in the log. */
static int
tmpl_usable(const struct tmpl_set *set, const char *dir, char *err,
    size_t errsz)
{
	size_t i, good = 0;

	for (i = 0; i < set->n; i++) {
		if (!tmpl_complete(&set->v[i]))
			log_warnx("templates %s: needs .subject, .txt and "
			    ".html, not used", set->v[i].name);
		else {
			good++;
			if (set->v[i].part[TMPL_OPTOUT] == NULL)
				log_warnx("templates %s: no .optout.html",
				    set->v[i].name);
		}
	}
	if (good == 0) {
		snprintf(err, errsz, "%s: no complete template set", dir);
		return -1;
	}
	return 0;
}

/*
 * Load LANG.{subject,txt,html,optout.html} from shipped, then from
 * overrides (may be NULL) file by file over them.  On success the new set
 * replaces the old one and 0 is returned; on failure the old set stays in
 * use and -1 comes back with a reason in err.  Files whose names are not
 * templates', or not a normalised tag, are ignored (with a warning for
 * the latter); a template that is unreadable, over 64 KiB or not UTF-8
 * fails the whole load.
 */
int
tmpl_load(const char *shipped, const char *overrides, char *err,
    size_t errsz)
{
	return tmpl_load_at(-1, shipped, -1, overrides, err, errsz);
}

/* tmpl_load through directory descriptors (-1: by the path). */
int
tmpl_load_at(int shipped_fd, const char *shipped, int over_fd,
    const char *overrides, char *err, size_t errsz)
{
	struct tmpl_set set = { NULL, 0 };

	if (tmpl_load_dir(&set, shipped_fd, shipped, err, errsz) == -1 ||
	    (overrides != NULL &&
	    tmpl_load_dir(&set, over_fd, overrides, err, errsz) == -1) ||
	    tmpl_usable(&set, shipped, err, errsz) == -1) {
		tmpl_set_free(&set);
		return -1;
	}
	tmpl_set_free(&tmpl_cur);
	tmpl_cur = set;
	return 0;
}

/* Release the loaded set; tmpl_has() is false for everything afterwards. */
void
tmpl_free(void)
{
	tmpl_set_free(&tmpl_cur);
}

/* Whether lang (compared without regard to case) has its three parts. */
int
tmpl_has(const char *lang)
{
	return tmpl_complete(tmpl_find(&tmpl_cur, lang));
}

/* The loaded spelling of lang when it is usable, else NULL. */
static const char *
tmpl_pick(const char *lang)
{
	struct tmpl_lang *l;

	l = tmpl_find(&tmpl_cur, lang);
	return tmpl_complete(l) ? l->name : NULL;
}

/*
 * The language of the country cc.  A country-specific variant of it is
 * preferred when there is one: "BR" gives pt-BR, "AT" de (no de-AT).
 */
static const char *
tmpl_country(const char *cc)
{
	const char *lang, *l;
	char tag[LANG_MAX];
	int n;

	if ((lang = lang_of_country(cc)) == NULL)
		return NULL;
	if (strchr(lang, '-') == NULL) {
		n = snprintf(tag, sizeof(tag), "%s-%c%c", lang,
		    cc[0] & ~0x20, cc[1] & ~0x20);
		if (n > 0 && (size_t)n < sizeof(tag) &&
		    (l = tmpl_pick(tag)) != NULL)
			return l;
	}
	return tmpl_pick(lang);
}

static const char *
tmpl_pick_requested(const char *req)
{
	char primary[LANG_MAX];
	const char *l;
	size_t n;

	if ((l = tmpl_pick(req)) != NULL)
		return l;
	n = strcspn(req, "-");
	if (n < sizeof(primary) && req[n] == '-') {
		memcpy(primary, req, n);
		primary[n] = '\0';
		if ((l = tmpl_pick(primary)) != NULL)
			return l;
	}
	if (strlen(req) == 2)
		return tmpl_country(req);
	return NULL;
}

/*
 * The language to send in, first usable of: requested, its primary
 * subtag, the language of requested as a bare country code, app_default,
 * server_default (each may be NULL).  Returns static storage, valid until
 * the next call, or NULL when not even server_default is loaded.
 */
const char *
tmpl_resolve(const char *requested, const char *app_default,
    const char *server_default)
{
	static char out[LANG_MAX];
	const char *l = NULL;

	if (requested != NULL)
		l = tmpl_pick_requested(requested);
	if (l == NULL)
		l = tmpl_pick(app_default);
	if (l == NULL)
		l = tmpl_pick(server_default);
	if (l == NULL)
		return NULL;
	memcpy(out, l, strlen(l) + 1);
	return out;
}

static int
tmpl_add_html(struct buf *b, const char *s)
{
	const char *e;
	int rc = 0;

	for (; rc == 0 && *s != '\0'; s = e) {
		e = s + strcspn(s, "&<>\"'");
		rc = buf_add(b, s, (size_t)(e - s));
		if (rc != 0 || *e == '\0')
			break;
		switch (*e++) {
		case '&':
			rc = buf_adds(b, "&amp;");
			break;
		case '<':
			rc = buf_adds(b, "&lt;");
			break;
		case '>':
			rc = buf_adds(b, "&gt;");
			break;
		case '"':
			rc = buf_adds(b, "&quot;");
			break;
		default:
			rc = buf_adds(b, "&#39;");
			break;
		}
	}
	return rc;
}

/* C0 controls, DEL and C1 controls (U+0080 to U+009F) become spaces. */
static int
tmpl_add_line(struct buf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && u[i] != '\0'; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			rc = buf_adds(b, " ");
		else if (u[i] == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f) {
			rc = buf_adds(b, " ");
			i++;
		} else
			rc = buf_add(b, &u[i], 1);
	}
	return rc;
}

static int
tmpl_add_value(struct buf *b, const char *val, enum tmpl_part part)
{
	if (val == NULL)
		return 0;
	switch (part) {
	case TMPL_HTML:
	case TMPL_OPTOUT:
	case TMPL_OPTOUT_DONE:
		return tmpl_add_html(b, val);
	case TMPL_SUBJECT:
		return tmpl_add_line(b, val);
	default:
		return buf_adds(b, val);
	}
}

/* The length of the {{variable}} at t (0 if none) and its value. */
static size_t
tmpl_var_at(const char *t, size_t len, const struct tmpl_vars *v,
    const char **val)
{
	size_t i, n;

	if (len < 4 || t[0] != '{' || t[1] != '{')
		return 0;
	for (i = 0; i < sizeof(tmpl_vars) / sizeof(tmpl_vars[0]); i++) {
		n = tmpl_vars[i].len;
		if (len >= n + 4 && memcmp(t + 2, tmpl_vars[i].name, n) == 0 &&
		    t[n + 2] == '}' && t[n + 3] == '}') {
			*val = *(const char *const *)(const void *)
			    ((const char *)v + tmpl_vars[i].off);
			return n + 4;
		}
	}
	return 0;
}

/*
 * Render the len bytes of tmpl (NUL bytes allowed) as part would be: each
 * {{variable}} of struct tmpl_vars is replaced by its value (NULL: empty),
 * escaped for the part; anything else, unknown {{names}} included, is
 * copied.  Values are never scanned for variables.  Returns a malloc'd
 * NUL-terminated string, or NULL when out of memory.
 */
char *
tmpl_render_string(const char *tmpl, size_t len, enum tmpl_part part,
    const struct tmpl_vars *v)
{
	struct buf b = { NULL, 0, 0 };
	const char *val;
	size_t i = 0, start = 0, n;

	while (i < len) {
		if ((n = tmpl_var_at(tmpl + i, len - i, v, &val)) == 0) {
			i++;
			continue;
		}
		if (buf_add(&b, tmpl + start, i - start) == -1 ||
		    tmpl_add_value(&b, val, part) == -1)
			goto fail;
		i += n;
		start = i;
	}
	if (buf_add(&b, tmpl + start, len - start) == -1)
		goto fail;
	return b.p;
fail:
	buf_free(&b);
	return NULL;
}

/*
 * Render part of lang (as loaded) with v; see tmpl_render_string().
 * Returns a malloc'd string, or NULL when lang has no such part or memory
 * ran out.
 */
char *
tmpl_render(const char *lang, enum tmpl_part part, const struct tmpl_vars *v)
{
	struct tmpl_lang *l;

	if ((unsigned)part >= TMPL__MAX ||
	    (l = tmpl_find(&tmpl_cur, lang)) == NULL ||
	    l->part[part] == NULL)
		return NULL;
	return tmpl_render_string(l->part[part], l->len[part], part, v);
}
