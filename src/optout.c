/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The invitee's way out (RFC 8058): POST .../opt-out?token=... puts the
 * address on the app's do-not-invite list and cancels its queued invites;
 * GET shows a small page whose one button POSTs, so that a scanner that
 * follows links opts no one out.  The token carries app and address with
 * an HMAC, so it needs no row and never expires.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "log.h"
#include "util.h"
#include "valid.h"
#include "template.h"
#include "token.h"
#include "db.h"
#include "api.h"

#define TOKEN_MAX	512

/* The token from the query string; 0, or -1 when missing or odd. */
static int
optout_token(struct ctx *ctx, struct req *r, char app[UUID_LEN + 1],
    char email[EMAIL_MAX + 1], char tok[TOKEN_MAX])
{
	const char *q = r->query, *v;
	size_t n;

	for (v = q; v != NULL && *v != '\0'; v += strcspn(v, "&"),
	    v += *v == '&') {
		if (strncmp(v, "token=", 6) != 0)
			continue;
		v += 6;
		n = strcspn(v, "&");
		if (n == 0 || n >= TOKEN_MAX)
			break;
		memcpy(tok, v, n);
		tok[n] = '\0';
		if (strspn(tok, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != n)
			break;
		if (token_optout_check(ctx->secret, tok, app, email) == 0)
			return 0;
		break;
	}
	return -1;
}

static const char bad_link[] = "This opt-out link is not valid";

/* GET answers people, so a bad link gets a page, not JSON. */
static void
bad_page(struct req *r)
{
	static const char page[] = "<!DOCTYPE html>\n<html lang=\"en\">"
	    "<head><meta charset=\"utf-8\"><title>Invalid link</title>"
	    "</head>\n<body><p>This opt-out link is not valid.</p></body>"
	    "</html>\n";

	req_respond(r, 400, "text/html; charset=utf-8", NULL, page,
	    sizeof(page) - 1);
}

/* The first tag of Accept-Language, normalised, or "" for none. */
static void
accept_language(struct req *r, char out[LANG_MAX])
{
	const char *h = r->accept_language;
	char tag[LANG_MAX];
	size_t n;

	out[0] = '\0';
	if (h == NULL)
		return;
	h += strspn(h, " ");
	n = strcspn(h, ",; ");
	if (n == 0 || n >= sizeof(tag))
		return;
	memcpy(tag, h, n);
	tag[n] = '\0';
	if (valid_language(tag, out) != NULL)
		out[0] = '\0';
}

/* The headers of the pages people open: nothing runs, nothing frames. */
#define PAGE_HEADERS \
	"Content-Security-Policy: default-src 'none'; " \
	"style-src 'unsafe-inline'; form-action 'self'\r\n" \
	"X-Frame-Options: DENY\r\n" \
	"Referrer-Policy: no-referrer\r\n"

/* part for the app in the reader's language (Accept-Language), or NULL. */
static char *
page_of(struct ctx *ctx, struct req *r, const struct app *a,
    enum tmpl_part part, const struct tmpl_vars *v)
{
	char lang[LANG_MAX], *page;

	accept_language(r, lang);
	page = tmpl_render(tmpl_resolve(lang, a->language,
	    ctx->conf->default_language), part, v);
	if (page == NULL)
		page = tmpl_render(ctx->conf->default_language, part, v);
	return page;
}

/*
 * Whether the POST came from a person's browser (the page's button, no
 * JavaScript): it asks for HTML.  One-click POSTs of mail providers and
 * API clients do not, and get the envelope.
 */
static int
wants_html(const struct req *r)
{
	return r->accept != NULL && strstr(r->accept, "text/html") != NULL;
}

void
optout_get(struct ctx *ctx, struct req *r, const char *unused)
{
	char app[UUID_LEN + 1], email[EMAIL_MAX + 1], tok[TOKEN_MAX];
	char *page = NULL;
	struct buf url = { 0 };
	struct tmpl_vars v;
	struct app a;
	enum db_res res;

	if (optout_token(ctx, r, app, email, tok) == -1) {
		bad_page(r);
		return;
	}
	if ((res = db_app_get(ctx->db, app, &a)) != DB_OK) {
		if (res == DB_NOTFOUND)
			bad_page(r);
		else
			api_db_fail(r, res == DB_BUSY);
		return;
	}
	memset(&v, 0, sizeof(v));
	v.app_name = a.name;
	v.invitee_email = email;
	if (buf_printf(&url, "%s/api/v1/referral-invites/opt-out?token=%s",
	    ctx->conf->public_url, tok) == 0) {
		v.optout_url = url.p;
		page = page_of(ctx, r, &a, TMPL_OPTOUT, &v);
	}
	if (page == NULL)
		api_fail(r, 500, "Internal error");
	else
		req_respond(r, 200, "text/html; charset=utf-8", PAGE_HEADERS,
		    page, strlen(page));
	free(page);
	buf_free(&url);
	db_app_free(&a);
}

/*
 * The answer to an opt-out that was recorded: the envelope, or for a
 * browser the page LANG.optout-done.html in its language (the envelope
 * when the templates have none).
 */
static void
done(struct ctx *ctx, struct req *r, const char *app, const char *email)
{
	struct tmpl_vars v;
	struct app a;
	char *page = NULL;

	if (wants_html(r) && db_app_get(ctx->db, app, &a) == DB_OK) {
		memset(&v, 0, sizeof(v));
		v.app_name = a.name;
		v.invitee_email = email;
		page = page_of(ctx, r, &a, TMPL_OPTOUT_DONE, &v);
		db_app_free(&a);
	}
	if (page != NULL)
		req_respond(r, 200, "text/html; charset=utf-8", PAGE_HEADERS,
		    page, strlen(page));
	else
		api_ok(r, 200, "You will not receive invites from this app "
		    "again", NULL, NULL);
	free(page);
}

void
optout_post(struct ctx *ctx, struct req *r, const char *unused)
{
	char app[UUID_LEN + 1], email[EMAIL_MAX + 1], tok[TOKEN_MAX];
	const char *body;
	size_t len;
	enum db_res res;
	int canceled = 0;

	if (optout_token(ctx, r, app, email, tok) == -1) {
		api_fail(r, 400, bad_link);
		return;
	}
	/* The body (List-Unsubscribe=One-Click, or empty) carries nothing. */
	switch (req_body(r, &body, &len)) {
	case BODY_OK:
		break;
	case BODY_TOOBIG:
		api_fail(r, 413, "Request body is too large");
		return;
	default:
		api_fail(r, 400, "Request body is not valid");
		return;
	}
	res = db_optout(ctx->db, app, email, &canceled);
	if (res == DB_CONFLICT)		/* the app is gone */
		api_fail(r, 400, bad_link);
	else if (res != DB_OK)
		api_db_fail(r, res == DB_BUSY);
	else {
		log_info("request %s: an address opted out of app %s (%d "
		    "queued invites canceled)", r->id, app, canceled);
		done(ctx, r, app, email);
	}
}
