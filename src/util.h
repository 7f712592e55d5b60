/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Small pure helpers (util.c): ids, hex, base64url, time, buffers.
 */
#ifndef UTIL_H
#define UTIL_H

#include <sys/types.h>
#include <stdint.h>
#include <time.h>

#include "extern.h"

/* A macro's value as a string literal: STRINGIFY(HOUR_WINDOW) is "3600". */
#define STRINGIFY(n)	STRINGIFY_(n)
#define STRINGIFY_(n)	#n

/* Fill buf with n cryptographically random bytes; aborts if impossible. */
void	 util_random(void *buf, size_t n);
/* Random version-4 UUID, lower case, NUL-terminated (37 bytes). */
void	 util_uuid(char out[UUID_LEN + 1]);
void	 util_uuid7(char out[UUID_LEN + 1]);
void	 util_uuid_str(const unsigned char b[16], char out[UUID_LEN + 1]);
int	 util_uuid_bytes(const char *id, unsigned char b[16]);
/* s without leading and trailing blanks (space, tab, CR, LF), in place. */
char	*util_trim(char *s);
/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void	 util_hex(const unsigned char *in, size_t n, char *out);
/* SHA-256 of s as lower-case hex (65 bytes). */
void	 util_sha256_hex(const void *s, size_t n, char out[65]);
/* base64url without padding; returns bytes written (excluding NUL). */
size_t	 util_b64url_enc(const unsigned char *in, size_t n, char *out,
	    size_t outsz);
/* Strict base64url decode (no padding, no white space); -1 on error. */
ssize_t	 util_b64url_dec(const char *in, size_t n, unsigned char *out,
	    size_t outsz);
/* ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ" (21 bytes). */
void	 util_isotime(time_t t, char out[21]);
/* CLOCK_MONOTONIC in ms: for deadlines. */
int64_t	 util_now_ms(void);
/* Constant-time equality of two equal-length buffers. */
int	 util_ct_eq(const void *a, const void *b, size_t n);
/* Parse a whole decimal string in [min, max]; -1 on error. */
int	 util_strtonum(const char *s, long long min, long long max,
	    long long *out);

/*
 * A growable, always NUL-terminated byte buffer (util.c); start it zeroed.
 * The add functions return 0, or -1 when memory runs out.
 */
struct buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};
int		 buf_add(struct buf *b, const void *p, size_t n);
int		 buf_adds(struct buf *b, const char *s);
int		 buf_printf(struct buf *b, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
void		 buf_free(struct buf *b);

#endif
