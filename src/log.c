/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Logging to syslog, or to standard error in the foreground.  Every message
 * is escaped so that no control character (CR, LF, ESC...) from a request
 * can forge or garble a log line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static int	 log_fg = 1;
static int	 log_level = LOG_LVL_INFO;
static const char *log_ident = "referral-invites";

void
log_init(int foreground, int level, const char *ident)
{
	log_fg = foreground;
	log_level = level;
	log_ident = ident;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_setlevel(int level)
{
	log_level = level;
}

static void __attribute__((format(printf, 3, 0)))
log_emit(int lvl, int prio, const char *fmt, va_list ap, const char *suffix)
{
	char raw[1024], out[2048];
	size_t i, o = 0;
	unsigned char c;

	if (lvl < log_level)
		return;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	for (i = 0; raw[i] != '\0' && o + 5 < sizeof(out); i++) {
		c = (unsigned char)raw[i];
		if (c < 0x20 || c == 0x7f || c == '\\') {
			if (c == '\\')
				o += (size_t)snprintf(out + o, sizeof(out) - o,
				    "\\\\");
			else
				o += (size_t)snprintf(out + o, sizeof(out) - o,
				    "\\x%02x", c);
		} else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	if (log_fg)
		fprintf(stderr, "%s[%d]: %s%s%s\n", log_ident, (int)getpid(),
		    out, suffix ? ": " : "", suffix ? suffix : "");
	else
		syslog(prio, "%s%s%s", out, suffix ? ": " : "",
		    suffix ? suffix : "");
}

#define LOGFN(name, lvl, prio)						\
void									\
name(const char *fmt, ...)						\
{									\
	va_list ap;							\
									\
	va_start(ap, fmt);						\
	log_emit(lvl, prio, fmt, ap, NULL);				\
	va_end(ap);							\
}
LOGFN(log_debug, LOG_LVL_DEBUG, LOG_DEBUG)
LOGFN(log_info, LOG_LVL_INFO, LOG_INFO)
LOGFN(log_warnx, LOG_LVL_WARNING, LOG_WARNING)
LOGFN(log_errx, LOG_LVL_ERROR, LOG_ERR)

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	char e[128];
	int saved = errno;

	snprintf(e, sizeof(e), "%s", strerror(saved));
	va_start(ap, fmt);
	log_emit(LOG_LVL_WARNING, LOG_WARNING, fmt, ap, e);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	char e[128];

	snprintf(e, sizeof(e), "%s", strerror(errno));
	va_start(ap, fmt);
	log_emit(LOG_LVL_ERROR, LOG_CRIT, fmt, ap, e);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERROR, LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
