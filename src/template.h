/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Mail and page templates (template.c).
 */
#ifndef TEMPLATE_H
#define TEMPLATE_H

#include <stddef.h>

enum tmpl_part { TMPL_SUBJECT, TMPL_TEXT, TMPL_HTML, TMPL_OPTOUT,
    TMPL_OPTOUT_DONE, TMPL__MAX };

struct tmpl_vars {
	const char	*app_name;
	const char	*inviter_name;
	const char	*inviter_email;
	const char	*invitee_email;
	const char	*accept_url;
	const char	*optout_url;
};

/*
 * Load every template under shipped (the packaged directory) and then
 * overrides (an operator's directory, may be NULL), a file in overrides
 * replacing the same file in shipped.  Files are named LANG.subject,
 * LANG.txt, LANG.html, LANG.optout.html and LANG.optout-done.html (the
 * page a person's opt-out click gets).  Returns 0, or -1 with a reason
 * in err.  May be called again (SIGHUP): the old set is replaced only when
 * the new one loads.
 */
int		 tmpl_load(const char *shipped, const char *overrides,
		    char *err, size_t errsz);
/*
 * The same through directories opened earlier (a descriptor, or -1 to
 * open the path): a reload after the privilege drop still reads them when
 * the daemon's user cannot reach them by their paths.
 */
int		 tmpl_load_at(int shipped_fd, const char *shipped, int over_fd,
		    const char *overrides, char *err, size_t errsz);
void		 tmpl_free(void);
/* Whether subject, text and HTML all exist for lang (a normalised tag). */
int		 tmpl_has(const char *lang);
/*
 * The best available language for a requested (normalised) tag: exact tag,
 * primary language, country code's language, app default, server default.
 * Returns a pointer to static storage; never NULL once tmpl_load succeeded
 * for a set containing server_default.
 */
const char	*tmpl_resolve(const char *requested, const char *app_default,
		    const char *server_default);
/*
 * Render part of lang with v.  In the HTML parts every value is
 * HTML-escaped; in TMPL_SUBJECT CR, LF and other controls in values become
 * spaces.  Returns a malloc'd NUL-terminated string or NULL.
 */
char		*tmpl_render(const char *lang, enum tmpl_part part,
		    const struct tmpl_vars *v);
/*
 * What tmpl_render does, for the len bytes of any template text (for the
 * tests and the fuzz harness).  Unknown {{names}} are copied, values are
 * never scanned for variables.  Returns a malloc'd string or NULL.
 */
char		*tmpl_render_string(const char *tmpl, size_t len,
		    enum tmpl_part part, const struct tmpl_vars *v);

#endif
