/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invites: the interfaces between the modules.
 *
 * Data flows one way: fcgi -> route -> invite (-> json, valid, auth, db,
 * mail) -> fcgi.  No module reaches back up.
 */
#ifndef EXTERN_H
#define EXTERN_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define UUID_LEN	36
#define LANG_MAX	16		/* "zh-Hant-TW" and room to spare */
#define EMAIL_MAX	254
#define REQID_MAX	64
#define JSON_DEPTH_MAX	4

/* ---------------------------------------------------------------- conf.c */

enum starttls { STARTTLS_OFF, STARTTLS_OPPORTUNISTIC, STARTTLS_REQUIRED };
enum sync_mode { SYNC_FULL, SYNC_NORMAL };

struct conf {
	char		*database;
	char		*listen;
	mode_t		 socket_mode;
	char		*socket_group;
	char		*user;
	int		 workers;
	size_t		 max_body;
	enum sync_mode	 synchronous;
	char		*templates_dir;		/* operator overrides, or NULL */
	char		*default_language;
	char		*mail_from;
	char		*public_url;
	char		*smtp_host;
	int		 smtp_port;
	enum starttls	 smtp_starttls;
	char		*smtp_user;
	char		*smtp_password_file;
	char		*smtp_helo;
	int		 smtp_timeout;
	int		 smtp_sessions;	/* the mailer's at once */
	int		 delivery_wait;
	int		 retry_initial;
	int		 retry_max;
	int		 retry_give_up;
	int		 limit_per_hour;
	int		 limit_per_day;
	int		 app_limit_per_minute;
	int		 cooldown;
	int		 log_level;
};

/*
 * Fill c with the defaults, then read path over them.  On failure returns
 * -1 and writes a one-line reason (with the line number) into err.
 * required: also insist on the keys without a default (mail_from, public_url).
 */
int	 conf_load(struct conf *c, const char *path, int required,
	    char *err, size_t errsz);
/* The same, the file read from directory dirfd when it is not -1. */
int	 conf_load_at(struct conf *c, int dirfd, const char *path,
	    int required, char *err, size_t errsz);
/*
 * What conf_load cannot see in the file: that user exists, and
 * socket_group when listen is a path.  -1 with the reason, naming path
 * (the file read), the key and the value, in err.  A lookup the process
 * cannot make (confined, on reload) is no error: both apply at start only.
 */
int	 conf_check_system(const struct conf *c, const char *path,
	    char *err, size_t errsz);
void	 conf_defaults(struct conf *c);
void	 conf_free(struct conf *c);
/* A config key (conf.c): how it is read, its range, its default. */
enum conf_type { K_STR, K_INT, K_SIZE, K_MODE, K_ENUM, K_LANG, K_URL };
struct conf_key {
	const char		*key;		/* NULL ends the table */
	enum conf_type		 type;
	size_t			 off;		/* in struct conf */
	long long		 min, max;	/* K_INT, K_SIZE */
	const char		*def;		/* as in the file; NULL: none */
	int			(*check)(const char *, char *);	/* K_STR */
	const char *const	*names;		/* K_ENUM: by value */
};
extern const struct conf_key conf_keys[];

/* The length of a string literal, counted by the compiler. */
#define LIT_LEN(s)	(sizeof(s) - 1)
/* A string into a char array, cut to fit (callers check lengths first). */
#define COPY(dst, src)	snprintf((dst), sizeof(dst), "%s", (src))

/* ----------------------------------------------------------------- log.c */

enum { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARNING, LOG_LVL_ERROR };

void	 log_init(int foreground, int level, const char *ident);
void	 log_setlevel(int level);
/* Messages are escaped: control characters never reach the log raw. */
void	 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Something an operator must act on: the service cannot do its job. */
void	 log_errx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* ---------------------------------------------------------------- util.c */

/* Fill buf with n cryptographically random bytes; aborts if impossible. */
void	 util_random(void *buf, size_t n);
/* Random version-4 UUID, lower case, NUL-terminated (37 bytes). */
void	 util_uuid(char out[UUID_LEN + 1]);
void	 util_uuid7(char out[UUID_LEN + 1]);
void	 util_uuid_str(const unsigned char b[16], char out[UUID_LEN + 1]);
int	 util_uuid_bytes(const char *id, unsigned char b[16]);
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

/* --------------------------------------------------------------- valid.c */

/*
 * Pure validators.  Each returns NULL when the input is good and writes the
 * normalised form into out; otherwise returns a short English reason.
 */

/* Strictly valid UTF-8: no overlong forms, surrogates or > U+10FFFF. */
int		 valid_utf8(const char *s, size_t len);
/* A UUID in any case; out receives it in lower case. */
const char	*valid_uuid(const char *s, char out[UUID_LEN + 1]);
/*
 * An address as SPEC section 2 defines it.  Surrounding white space is
 * trimmed; out receives the trimmed address as given, lower the same in
 * lower case.  Both buffers are EMAIL_MAX + 1 bytes.
 */
const char	*valid_email(const char *s, char out[EMAIL_MAX + 1],
		    char lower[EMAIL_MAX + 1]);
/* A BCP 47 tag of the shapes SPEC section 2 allows, normalised. */
const char	*valid_language(const char *s, char out[LANG_MAX]);
/*
 * The main language of a bare ISO 3166-1 alpha-2 country code (any case),
 * or NULL when cc is not one we know.
 */
const char	*lang_of_country(const char *cc);

/* ---------------------------------------------------------------- json.c */

enum json_err {
	JSON_OK, JSON_EUTF8, JSON_ENUL, JSON_ESYNTAX, JSON_ENOTOBJ, JSON_EDEPTH,
	JSON_EUNKNOWN, JSON_EDUP, JSON_ETYPE, JSON_EMISSING, JSON__MAX
};

/* The invite body, as plain strings (owned by the struct). */
struct invite_body {
	char	*email;
	char	*language;
};

/*
 * Parse an invite body of len bytes (not NUL-terminated).  Returns JSON_OK
 * and fills b, or an error with *what set to the offending member name
 * (static storage) where there is one.
 */
enum json_err	 json_invite_body(const char *buf, size_t len,
		    struct invite_body *b, const char **what);
void		 json_invite_body_free(struct invite_body *b);
/* Parse {"token": "..."}; *token is malloc'd. */
enum json_err	 json_token_body(const char *buf, size_t len, char **token,
		    const char **what);
/* A short English sentence for an error. */
const char	*json_strerror(enum json_err e, const char *what);
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
/*
 * Append s to b as a JSON string literal (quotes included), escaping
 * everything below 0x20, DEL, '"', '\\', and U+2028/U+2029; 0 or -1.
 */
int		 json_add_string(struct buf *b, const char *s);

/* ----------------------------------------------------------------- jwt.c */

enum jwt_alg { JWT_NONE, JWT_HS256, JWT_RS256, JWT_ES256 };

struct jwt_key {
	enum jwt_alg	 alg;
	const unsigned char *secret;	/* HS256 */
	size_t		 secretlen;
	const char	*pem;		/* RS256 / ES256 public key */
	const char	*issuer;	/* checked when not NULL */
	const char	*audience;	/* the app's client id */
};

struct jwt_claims {
	char	sub[UUID_LEN + 1];	/* lower case */
	time_t	exp;
};

/*
 * A compact JWS, decoded but not yet verified: the header's algorithm,
 * the signature, and the claims we use (json.c fills those).
 */
struct jwt {
	enum jwt_alg	 alg;		/* JWT_NONE for anything unknown */
	size_t		 signed_len;	/* bytes of "header.payload" */
	unsigned char	 sig[512];
	size_t		 siglen;
	char		*sub;
	char		*iss;
	char		**aud;
	size_t		 naud;
	int		 has_exp, has_nbf, has_iat;
	double		 exp, nbf, iat;
};

/*
 * Decode token (len bytes) into j without verifying it; -1 when it is not a
 * well-formed compact JWS with the claims we need (j is then empty).  Free
 * with jwt_free.
 */
int	 jwt_decode(const char *token, size_t len, struct jwt *j);
void	 jwt_free(struct jwt *j);
/*
 * Verify a decoded token against key at time now, with 60 s leeway: alg
 * pinned to the key's, signature, exp (required), nbf, iat, aud containing
 * key->audience, iss when key->issuer is set, sub a UUID (lower-cased into
 * claims).  Returns 0 or -1; the reason goes to log_debug only.
 */
int	 jwt_verify(const char *token, const struct jwt *j,
	    const struct jwt_key *key, time_t now, struct jwt_claims *claims);
/* The HS256 secret of an app, derived from the server secret. */
void	 jwt_app_secret(const unsigned char *server, size_t serverlen,
	    const char *app_id, int generation, unsigned char out[32]);
/* Mint an HS256 token (for referral-invitesctl token); malloc'd. */
char	*jwt_sign_hs256(const unsigned char *secret, size_t secretlen,
	    const char *iss, const char *aud, const char *sub, time_t iat,
	    time_t exp);
enum jwt_alg jwt_alg_parse(const char *s);
const char *jwt_alg_name(enum jwt_alg a);

/* ------------------------------------------------------------ template.c */

enum tmpl_part { TMPL_SUBJECT, TMPL_TEXT, TMPL_HTML, TMPL_OPTOUT, TMPL__MAX };

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
 * LANG.txt, LANG.html and LANG.optout.html.  Returns 0, or -1 with a reason
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
 * Render part of lang with v.  In TMPL_HTML and TMPL_OPTOUT every value is
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

/* ---------------------------------------------------------------- mail.c */

struct mail_msg {
	const char	*from;		/* "Name <addr>" or "addr", validated */
	const char	*to;		/* a validated address */
	const char	*subject;	/* UTF-8, no CR/LF */
	const char	*text;		/* UTF-8, LF or CRLF line ends */
	const char	*html;
	const char	*message_id;	/* without <> */
	const char	*unsub_url;	/* List-Unsubscribe target, or NULL */
	time_t		 date;
};

/*
 * Build a complete RFC 5322 message: CRLF line ends, RFC 2047-encoded
 * non-ASCII header text, multipart/alternative with quoted-printable UTF-8
 * parts.  Returns malloc'd bytes and their length, or NULL.
 */
char	*mail_build(const struct mail_msg *m, size_t *lenp);
/* Extract the bare address from "Name <addr>" or "addr"; 0 or -1. */
int	 mail_addr_of(const char *from, char out[EMAIL_MAX + 1]);

#endif /* EXTERN_H */
