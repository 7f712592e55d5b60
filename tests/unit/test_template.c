/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/* template.c: loading, overriding, language fallback, rendering. */
#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "template.h"
#include "unit.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif
#define SHIPPED	TOP_SRCDIR "/templates"

static const char *const langs[] = {
	"en", "de", "fr", "es", "it", "pt", "pt-BR", "nl", "pl", NULL
};

static const struct tmpl_vars vars = {
	"Acme",
	"Jane Doe",
	"jane@example.org",
	"friend@example.net",
	"https://app.example/accept?t=abc&x=1",
	"https://invites.example/api/v1/referral-invites/opt-out?token=xyz"
};

static int
load_shipped(void)
{
	char err[256];

	return tmpl_load(SHIPPED, NULL, err, sizeof(err));
}

static int
put_file(const char *dir, const char *name, const char *data, size_t len)
{
	char path[512];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	rc = fwrite(data, 1, len, f) == len ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

static int
put_str(const char *dir, const char *name, const char *data)
{
	return put_file(dir, name, data, strlen(data));
}

static void
rm_dir(const char *dir)
{
	char path[512];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Whether s (a rendered part) still holds a {{variable}} of ours. */
static int
has_var(const char *s)
{
	return strstr(s, "{{app_name}}") != NULL ||
	    strstr(s, "{{inviter_name}}") != NULL ||
	    strstr(s, "{{inviter_email}}") != NULL ||
	    strstr(s, "{{invitee_email}}") != NULL ||
	    strstr(s, "{{accept_url}}") != NULL ||
	    strstr(s, "{{optout_url}}") != NULL;
}

static void
test_tmpl_load_shipped(void)
{
	char err[256] = "";

	CHECK(tmpl_load(SHIPPED, NULL, err, sizeof(err)) == 0);
	CHECK_STR(err, "");
	CHECK(tmpl_has("en"));
}

static void
test_tmpl_every_language_complete(void)
{
	char *p[TMPL__MAX], want[64];
	int i, k, ok;

	CHECK(load_shipped() == 0);
	for (i = 0; langs[i] != NULL; i++) {
		CHECK(tmpl_has(langs[i]));
		ok = 1;
		for (k = 0; k < TMPL__MAX; k++)
			if ((p[k] = tmpl_render(langs[i], k, &vars)) == NULL ||
			    p[k][0] == '\0' || has_var(p[k]))
				ok = 0;
		snprintf(want, sizeof(want), "<html lang=\"%s\">", langs[i]);
		ok = ok && strchr(p[TMPL_SUBJECT], '\n') == NULL &&
		    strstr(p[TMPL_SUBJECT], "Jane Doe") != NULL &&
		    strstr(p[TMPL_TEXT], vars.accept_url) != NULL &&
		    strstr(p[TMPL_TEXT], vars.optout_url) != NULL &&
		    strstr(p[TMPL_HTML], "accept?t=abc&amp;x=1") != NULL &&
		    strstr(p[TMPL_HTML], vars.optout_url) != NULL &&
		    strstr(p[TMPL_HTML], want) != NULL &&
		    strstr(p[TMPL_OPTOUT], want) != NULL &&
		    strstr(p[TMPL_OPTOUT], "<form method=\"post\" action=\""
		    "https://invites.example/api/v1/referral-invites/opt-out"
		    "?token=xyz\"><button type=\"submit\"") != NULL &&
		    strstr(p[TMPL_OPTOUT], "<script") == NULL &&
		    strstr(p[TMPL_OPTOUT_DONE], want) != NULL &&
		    strstr(p[TMPL_OPTOUT_DONE], "<form") == NULL &&
		    strstr(p[TMPL_OPTOUT_DONE], "<script") == NULL;
		for (k = 0; k < TMPL__MAX; k++)
			free(p[k]);
		if (!ok)
			fprintf(stderr, "language %s\n", langs[i]);
		CHECK(ok);
	}
}

static void
test_tmpl_languages_differ(void)
{
	char *a, *b;
	int i, same;

	CHECK(load_shipped() == 0);
	a = tmpl_render("en", TMPL_TEXT, &vars);
	for (i = 1; langs[i] != NULL; i++) {
		b = tmpl_render(langs[i], TMPL_TEXT, &vars);
		same = b == NULL || strcmp(a, b) == 0;
		free(b);
		if (same)
			free(a);
		CHECK(!same);
	}
	free(a);
	a = tmpl_render("pt", TMPL_SUBJECT, &vars);
	b = tmpl_render("pt-BR", TMPL_SUBJECT, &vars);
	same = strcmp(a, b) == 0;
	free(a);
	free(b);
	CHECK(!same);
}

static void
test_tmpl_resolve_exact(void)
{
	CHECK(load_shipped() == 0);
	CHECK_STR(tmpl_resolve("pt-BR", "en", "en"), "pt-BR");
	CHECK_STR(tmpl_resolve("pt", "en", "en"), "pt");
	CHECK_STR(tmpl_resolve("pl", "en", "en"), "pl");
	/* Tags compare without regard to case. */
	CHECK_STR(tmpl_resolve("PT-br", "en", "en"), "pt-BR");
}

static void
test_tmpl_resolve_primary(void)
{
	CHECK(load_shipped() == 0);
	CHECK_STR(tmpl_resolve("de-AT", "en", "en"), "de");
	CHECK_STR(tmpl_resolve("pt-PT", "en", "en"), "pt");
	CHECK_STR(tmpl_resolve("es-419", "en", "en"), "es");
	CHECK_STR(tmpl_resolve("sr-Latn-RS", "fr", "en"), "fr");
}

static void
test_tmpl_resolve_country(void)
{
	CHECK(load_shipped() == 0);
	CHECK_STR(tmpl_resolve("DE", "fr", "fr"), "de");
	CHECK_STR(tmpl_resolve("AT", "fr", "fr"), "de");
	CHECK_STR(tmpl_resolve("at", "fr", "fr"), "de");
	CHECK_STR(tmpl_resolve("US", "fr", "fr"), "en");
	/* A country's own variant wins over the bare language. */
	CHECK_STR(tmpl_resolve("BR", "fr", "fr"), "pt-BR");
	CHECK_STR(tmpl_resolve("PT", "fr", "fr"), "pt");
	CHECK_STR(tmpl_resolve("CH", "fr", "fr"), "de");
	/* Only a bare two-letter code is a country. */
	CHECK_STR(tmpl_resolve("xx-AT", "fr", "en"), "fr");
}

static void
test_tmpl_resolve_defaults(void)
{
	CHECK(load_shipped() == 0);
	CHECK_STR(tmpl_resolve("xx", "fr", "en"), "fr");
	CHECK_STR(tmpl_resolve("xx", "zz", "en"), "en");
	CHECK_STR(tmpl_resolve("xx", NULL, "en"), "en");
	CHECK_STR(tmpl_resolve(NULL, "nl", "en"), "nl");
	CHECK_STR(tmpl_resolve("xx", "de-AT", "en"), "en");
	CHECK(tmpl_resolve("xx", "zz", "yy") == NULL);
	CHECK(tmpl_resolve("xx", NULL, NULL) == NULL);
}

static void
test_tmpl_html_escaped_text_raw(void)
{
	struct tmpl_vars v = vars;
	char *html, *text, *opt;
	int ok;

	CHECK(load_shipped() == 0);
	v.inviter_name = "<script>alert('x')</script> & \"q\"";
	v.app_name = "<b>Acme</b>";
	html = tmpl_render("en", TMPL_HTML, &v);
	text = tmpl_render("en", TMPL_TEXT, &v);
	opt = tmpl_render("en", TMPL_OPTOUT, &v);
	ok = html != NULL && text != NULL && opt != NULL &&
	    strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; "
	    "&amp; &quot;q&quot;") != NULL &&
	    strstr(html, "<script") == NULL &&
	    strstr(html, "<b>") == NULL &&
	    strstr(opt, "&lt;b&gt;Acme&lt;/b&gt;") != NULL &&
	    strstr(opt, "<b>") == NULL &&
	    strstr(text, "<script>alert('x')</script> & \"q\"") != NULL;
	free(html);
	free(text);
	free(opt);
	CHECK(ok);
}

static void
test_tmpl_subject_controls_to_spaces(void)
{
	struct tmpl_vars v = vars;
	char *s;
	size_t i;
	int ok;

	CHECK(load_shipped() == 0);
	v.inviter_name = "Eve\r\nBcc: victim@example.org\t\x7f\xc2\x85!";
	s = tmpl_render("en", TMPL_SUBJECT, &v);
	CHECK(s != NULL);
	ok = strstr(s, "Eve  Bcc: victim@example.org   !") != NULL;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			ok = 0;
	free(s);
	CHECK(ok);
}

static void
test_tmpl_render_string_rules(void)
{
	static const char t[] = "{{app_name}}|{{unknown}}|{{ app_name }}|"
	    "{{{app_name}}}|{{inviter_name}}|{{app_name";
	struct tmpl_vars v = vars;
	char *s;

	v.inviter_name = NULL;
	s = tmpl_render_string(t, sizeof(t) - 1, TMPL_TEXT, &v);
	CHECK_STR(s, "Acme|{{unknown}}|{{ app_name }}|{Acme}||{{app_name");
	free(s);
	/* A value is never read as a template. */
	v.app_name = "{{accept_url}}";
	s = tmpl_render_string("{{app_name}}", 12, TMPL_TEXT, &v);
	CHECK_STR(s, "{{accept_url}}");
	free(s);
	s = tmpl_render_string("", 0, TMPL_HTML, &v);
	CHECK_STR(s, "");
	free(s);
	/* Bytes after a NUL still count. */
	s = tmpl_render_string("a\0{{app_name}}", 14, TMPL_TEXT, &v);
	CHECK(s != NULL && s[0] == 'a' && s[1] == '\0' &&
	    strcmp(s + 2, "{{accept_url}}") == 0);
	free(s);
}

static void
test_tmpl_render_unknown(void)
{
	CHECK(load_shipped() == 0);
	CHECK(tmpl_render("xx", TMPL_TEXT, &vars) == NULL);
	CHECK(tmpl_render("en", TMPL__MAX, &vars) == NULL);
	CHECK(!tmpl_has("xx"));
	CHECK(!tmpl_has(NULL));
}

static void
test_tmpl_override_one_file(void)
{
	char dir[] = "/tmp/ri-tmpl-XXXXXX", err[256];
	char *txt0, *txt1, *subj, *en;
	int ok;

	CHECK(load_shipped() == 0);
	txt0 = tmpl_render("de", TMPL_TEXT, &vars);
	CHECK(mkdtemp(dir) != NULL);
	ok = put_str(dir, "de.subject", "Neu für {{app_name}}\n") == 0 &&
	    tmpl_load(SHIPPED, dir, err, sizeof(err)) == 0;
	rm_dir(dir);
	txt1 = tmpl_render("de", TMPL_TEXT, &vars);
	subj = tmpl_render("de", TMPL_SUBJECT, &vars);
	en = tmpl_render("en", TMPL_SUBJECT, &vars);
	ok = ok && txt0 != NULL && txt1 != NULL && strcmp(txt0, txt1) == 0 &&
	    subj != NULL && strcmp(subj, "Neu für Acme") == 0 &&
	    en != NULL && strcmp(en, "Jane Doe invited you to join Acme") == 0;
	free(txt0);
	free(txt1);
	free(subj);
	free(en);
	CHECK(ok);
}

static void
test_tmpl_override_new_language(void)
{
	char dir[] = "/tmp/ri-tmpl-XXXXXX", err[256];
	int ok;

	CHECK(mkdtemp(dir) != NULL);
	ok = put_str(dir, "sv.subject", "{{inviter_name}} bjuder in dig\n") ==
	    0 && put_str(dir, "sv.txt", "{{accept_url}} {{optout_url}}\n") ==
	    0 && put_str(dir, "sv.html", "<p>{{accept_url}} {{optout_url}}\n")
	    == 0 && put_str(dir, "fi.txt", "only a body\n") == 0 &&
	    tmpl_load(SHIPPED, dir, err, sizeof(err)) == 0;
	rm_dir(dir);
	CHECK(ok);
	CHECK(tmpl_has("sv"));
	CHECK(!tmpl_has("fi"));		/* incomplete: not used */
	CHECK_STR(tmpl_resolve("sv-FI", "en", "en"), "sv");
	CHECK_STR(tmpl_resolve("fi", "en", "en"), "en");
	CHECK(load_shipped() == 0);
	CHECK(!tmpl_has("sv"));
}

static void
test_tmpl_reload_keeps_old_on_error(void)
{
	char dir[] = "/tmp/ri-tmpl-XXXXXX", err[256] = "";
	char *before, *after;
	int rc, ok;

	CHECK(load_shipped() == 0);
	before = tmpl_render("de", TMPL_TEXT, &vars);
	CHECK(mkdtemp(dir) != NULL);
	rc = put_str(dir, "de.txt", "kaputt \xff\n") == 0 ?
	    tmpl_load(SHIPPED, dir, err, sizeof(err)) : 0;
	rm_dir(dir);
	after = tmpl_render("de", TMPL_TEXT, &vars);
	ok = rc == -1 && strstr(err, "de.txt") != NULL && before != NULL &&
	    after != NULL && strcmp(before, after) == 0;
	free(before);
	free(after);
	CHECK(ok);
	CHECK(tmpl_load("/nonexistent/templates", NULL, err,
	    sizeof(err)) == -1);
	CHECK(tmpl_has("de"));
}

static void
test_tmpl_size_cap(void)
{
	char dir[] = "/tmp/ri-tmpl-XXXXXX", err[256];
	char *big, *s;
	size_t n = 64 * 1024;
	int rc1, rc2, ok;

	CHECK((big = malloc(n + 1)) != NULL);
	memset(big, 'a', n + 1);
	memcpy(big, "{{accept_url}}{{optout_url}}", 28);
	if (mkdtemp(dir) == NULL) {
		free(big);
		CHECK(0);
	}
	rc1 = put_file(dir, "en.txt", big, n + 1) == 0 ?
	    tmpl_load(SHIPPED, dir, err, sizeof(err)) : 0;
	rc2 = put_file(dir, "en.txt", big, n) == 0 ?
	    tmpl_load(SHIPPED, dir, err, sizeof(err)) : -1;
	rm_dir(dir);
	free(big);
	s = tmpl_render("en", TMPL_TEXT, &vars);
	ok = rc1 == -1 && rc2 == 0 && s != NULL &&
	    strlen(s) == n - 28 + strlen(vars.accept_url) +
	    strlen(vars.optout_url);
	free(s);
	CHECK(ok);
}

static void
test_tmpl_ignored_names(void)
{
	char dir[] = "/tmp/ri-tmpl-XXXXXX", err[256];
	char *before, *after;
	int rc, ok;

	CHECK(load_shipped() == 0);
	before = tmpl_render("pt-BR", TMPL_TEXT, &vars);
	CHECK(mkdtemp(dir) != NULL);
	rc = put_str(dir, "README", "x") == 0 &&
	    put_str(dir, "pt-br.txt", "lower-case region\n") == 0 &&
	    put_str(dir, "de_AT.txt", "underscore\n") == 0 &&
	    put_str(dir, ".pt-BR.txt.swp", "\xff") == 0 &&
	    put_str(dir, "pt-BR.txt~", "backup\n") == 0 &&
	    put_str(dir, "toolongtag-Abcd-XY.txt", "x\n") == 0 ?
	    tmpl_load(SHIPPED, dir, err, sizeof(err)) : -1;
	rm_dir(dir);
	after = tmpl_render("pt-BR", TMPL_TEXT, &vars);
	ok = rc == 0 && before != NULL && after != NULL &&
	    strcmp(before, after) == 0 && !tmpl_has("de_AT");
	free(before);
	free(after);
	CHECK(ok);
}

static void
test_tmpl_subject_file_rules(void)
{
	char dir[] = "/tmp/ri-tmpl-XXXXXX", err[256];
	char *s;
	int rc1, rc2, rc3;

	CHECK(mkdtemp(dir) != NULL);
	rc1 = put_str(dir, "en.subject", "two\nlines\n") == 0 ?
	    tmpl_load(SHIPPED, dir, err, sizeof(err)) : 0;
	rc2 = put_str(dir, "en.subject", "tab\there\n") == 0 ?
	    tmpl_load(SHIPPED, dir, err, sizeof(err)) : 0;
	rc3 = put_str(dir, "en.subject", "\xef\xbb\xbfWith BOM\r\n") == 0 ?
	    tmpl_load(SHIPPED, dir, err, sizeof(err)) : -1;
	rm_dir(dir);
	CHECK(rc1 == -1);
	CHECK(rc2 == -1);
	CHECK(rc3 == 0);
	s = tmpl_render("en", TMPL_SUBJECT, &vars);
	CHECK_STR(s, "With BOM");
	free(s);
}

static void
test_tmpl_free_empties(void)
{
	CHECK(load_shipped() == 0);
	tmpl_free();
	CHECK(!tmpl_has("en"));
	CHECK(tmpl_resolve("en", "en", "en") == NULL);
	CHECK(tmpl_render("en", TMPL_TEXT, &vars) == NULL);
	tmpl_free();
	CHECK(load_shipped() == 0);
	CHECK(tmpl_has("en"));
	tmpl_free();
}

const struct unit_test template_tests[] = {
	{ "tmpl_load_shipped", test_tmpl_load_shipped },
	{ "tmpl_every_language_complete", test_tmpl_every_language_complete },
	{ "tmpl_languages_differ", test_tmpl_languages_differ },
	{ "tmpl_resolve_exact", test_tmpl_resolve_exact },
	{ "tmpl_resolve_primary", test_tmpl_resolve_primary },
	{ "tmpl_resolve_country", test_tmpl_resolve_country },
	{ "tmpl_resolve_defaults", test_tmpl_resolve_defaults },
	{ "tmpl_html_escaped_text_raw", test_tmpl_html_escaped_text_raw },
	{ "tmpl_subject_controls_to_spaces",
	    test_tmpl_subject_controls_to_spaces },
	{ "tmpl_render_string_rules", test_tmpl_render_string_rules },
	{ "tmpl_render_unknown", test_tmpl_render_unknown },
	{ "tmpl_override_one_file", test_tmpl_override_one_file },
	{ "tmpl_override_new_language", test_tmpl_override_new_language },
	{ "tmpl_reload_keeps_old_on_error",
	    test_tmpl_reload_keeps_old_on_error },
	{ "tmpl_size_cap", test_tmpl_size_cap },
	{ "tmpl_ignored_names", test_tmpl_ignored_names },
	{ "tmpl_subject_file_rules", test_tmpl_subject_file_rules },
	{ "tmpl_free_empties", test_tmpl_free_empties },
	{ NULL, NULL }
};
