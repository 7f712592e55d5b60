/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The mailer process: claims every due invite, renders and sends them over
 * one SMTP session with libesmtp, and records each verdict.  Only this
 * process talks SMTP, so a slow or dead relay never holds up a worker.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <auth-client.h>
#include <libesmtp.h>

#include "extern.h"
#include "api.h"
#include "db.h"
#include "mailer.h"
#include "daemon.h"

/*
 * Invites a session claims at once: small enough that a burst spreads
 * over the sessions, large enough that one connection carries several.
 */
#define SESSION_BATCH	1000
#define SESSION_IDLE_MS	1000	/* a connection kept open with nothing due */
#define IDLE_POLL	10	/* seconds between looks for due retries */
#define MAILER_NICE	10	/* the mailer's nice value above the pool's */

/* One message of a session: its bytes and where libesmtp is in them. */
struct outmsg {
	struct outbox	*ob;
	char		*data;
	size_t		 len;
	int		 done;
	smtp_message_t	 msg;
	smtp_recipient_t rcpt;
	int		 decided;
};

/* Invites claimed together and their messages. */
struct chunk {
	struct outbox	*ob;
	struct outmsg	*m;
	size_t		 n;
	struct chunk	*next;
};

/*
 * The connection under way, for the event callback: the chunks it
 * carries, the first claimed before it opened and more appended while
 * it stays open (more()).
 */
struct batch {
	struct session	*ss;
	smtp_session_t	 s;
	struct chunk	*first, *last;
	struct chunk	*cur;		/* where the next verdict is */
	size_t		 at;
	size_t		 total;		/* messages on this connection */
	smtp_message_t	 last_msg;	/* the last one added */
	const char	*why;		/* a TLS failure, for the rows */
};

/* TLS trouble libesmtp reports only as an event: say it, loudly. */
static const char *
tls_event(int event)
{
	switch (event) {
	case SMTP_EV_INVALID_PEER_CERTIFICATE:
		return "the relay's certificate does not verify";
	case SMTP_EV_NO_PEER_CERTIFICATE:
		return "the relay sent no certificate";
	case SMTP_EV_WRONG_PEER_CERTIFICATE:
		return "the relay's certificate is for another name";
	case SMTP_EV_UNUSABLE_CA_LIST:
		return "no usable CA certificates";
	case SMTP_EV_EXTNA_STARTTLS:
		return "the relay does not offer STARTTLS (smtp_starttls = "
		    "required)";
	default:
		return NULL;
	}
}

/*
 * One SMTP session of the mailer's smtp_sessions, each a thread with its
 * own database connection: claims due invites, sends them, records each
 * verdict (keeping those the database would not take).
 */
struct session {
	struct mailer	*ml;
	struct db	*db;
	struct unrecorded *unrec;	/* verdicts not yet stored */
	size_t		 nunrec;
	time_t		 unrec_said;	/* when the log last said so */
	unsigned long	 seen;		/* the pool's last round it saw */
	pthread_t	 th;
};

static void verdict(struct session *, struct outmsg *, const char *);
static void defer(struct session *, struct outbox *, const char *);
static void more(struct batch *);

/*
 * The sessions' writes to the database, one at a time: SQLite lets one
 * writer in, and sessions that waited for each other in its busy handler
 * (sleeps of up to a millisecond) sent at a fifth of one session's rate.
 */
static pthread_mutex_t db_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t build_mu = PTHREAD_MUTEX_INITIALIZER;

/*
 * libesmtp writes each command with its own write(2) and leaves Nagle on,
 * so every message stalls on the relay's delayed ACK, however fast the
 * relay.  It never shows us its socket; the SMTP connection
 * and its siblings are this process's only TCP sockets: find them and set
 * TCP_NODELAY.
 */
static void
nodelay(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, type, one = 1;

	/* Below the pool's channels and connections, whatever its size. */
	for (fd = 3; fd < 1024; fd++) {
		len = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
		    type != SOCK_STREAM)
			continue;
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
		    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
	}
}

/*
 * The undecided message of msg (or of rcpt).  libesmtp sends them in the
 * order they were added, so the search starts past those decided.
 */
static struct outmsg *
find_msg(struct batch *b, smtp_message_t msg, smtp_recipient_t rcpt)
{
	struct chunk *ch;
	struct outmsg *m;
	size_t i;

	for (; b->cur != NULL; b->cur = b->cur->next, b->at = 0) {
		while (b->at < b->cur->n && b->cur->m[b->at].decided)
			b->at++;
		if (b->at < b->cur->n)
			break;
	}
	for (ch = b->cur, i = b->at; ch != NULL; ch = ch->next, i = 0)
		for (; i < ch->n; i++) {
			m = &ch->m[i];
			if (!m->decided && (rcpt != NULL ? m->rcpt == rcpt :
			    m->msg == msg))
				return m;
		}
	return NULL;
}

/*
 * Record each message as soon as the server has taken it, so that a crash
 * later in the session can send at most the one message in flight twice.
 */
static void
event_cb(smtp_session_t s, int event, void *arg, ...)
{
	struct batch *b = arg;
	struct outmsg *m;
	const char *why;
	smtp_message_t msg = NULL;
	smtp_recipient_t rcpt = NULL;
	va_list ap;

	if (event == SMTP_EV_CONNECT)
		nodelay();
	if ((why = tls_event(event)) != NULL) {
		log_warnx("SMTP: %s", why);
		if (b->why == NULL)
			b->why = why;
	}
	if (event != SMTP_EV_MESSAGESENT && event != SMTP_EV_RCPTSTATUS)
		return;
	va_start(ap, arg);
	if (event == SMTP_EV_RCPTSTATUS) {
		(void)va_arg(ap, const char *);
		rcpt = va_arg(ap, smtp_recipient_t);
	} else
		msg = va_arg(ap, smtp_message_t);
	va_end(ap);
	/* Refused: no MESSAGESENT comes for it, so decide it now. */
	if (rcpt != NULL && smtp_recipient_status(rcpt)->code / 100 == 2)
		return;
	if ((m = find_msg(b, msg, rcpt)) == NULL)
		return;		/* one decided already */
	verdict(b->ss, m, NULL);
	m->decided = 1;
	free(m->data);
	m->data = NULL;
	if (m->msg == b->last_msg)
		more(b);
}

static const char *
msg_cb(void **ctx, int *len, void *arg)
{
	struct outmsg *m = arg;

	if (len == NULL) {		/* rewind before each DATA */
		m->done = 0;
		return NULL;
	}
	if (m->done) {
		*len = 0;
		return NULL;
	}
	m->done = 1;
	*len = (int)m->len;
	return m->data;
}

static int
auth_interact(auth_client_request_t req, char **result, int fields,
    void *arg)
{
	const struct mailer *ml = arg;
	int i;

	for (i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_USER)
			result[i] = ml->conf->smtp_user;
		else if (req[i].flags & AUTH_PASS)
			result[i] = (char *)ml->smtp_password;
		else
			return 0;
		if (result[i] == NULL)
			return 0;
	}
	return 1;
}

/*
 * libesmtp's connect() has no timeout: a blackholed relay would hold this
 * process for minutes.  Probe with a bounded non-blocking connect first.
 */
static int
probe_connect(const char *host, int port, int timeout)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct pollfd pfd;
	char portstr[8];
	socklen_t elen;
	int fd, err, ok = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL && !ok; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			ok = 1;
		else if (errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			elen = sizeof(err);
			if (poll(&pfd, 1, timeout * 1000) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
			    &elen) == 0 && err == 0)
				ok = 1;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return ok ? 0 : -1;
}

static SSL_CTX *
tls_ctx(void)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	/* libesmtp misreads TLS 1.3 session tickets: stay at 1.2. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_default_verify_paths(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

static void
session_setup(struct mailer *ml, smtp_session_t s, auth_context_t *authctx)
{
	const struct conf *c = ml->conf;
	char hostport[300];
	long t = (long)c->smtp_timeout * 1000;
	int w;

	snprintf(hostport, sizeof(hostport), "%s:%d", c->smtp_host,
	    c->smtp_port);
	smtp_set_server(s, hostport);
	smtp_set_hostname(s, c->smtp_helo);
	for (w = Timeout_GREETING; w <= Timeout_DATA2; w++)
		smtp_set_timeout(s, w | Timeout_OVERRIDE_RFC2822_MINIMUM, t);
	if (c->smtp_starttls != STARTTLS_OFF) {
		smtp_starttls_set_ctx(s, ml->tls);
		smtp_starttls_enable(s, c->smtp_starttls ==
		    STARTTLS_REQUIRED ? Starttls_REQUIRED : Starttls_ENABLED);
	}
	*authctx = NULL;
	if (c->smtp_user != NULL && ml->smtp_password != NULL) {
		*authctx = auth_create_context();
		auth_set_mechanism_flags(*authctx, AUTH_PLUGIN_PLAIN, 0);
		auth_set_interact_cb(*authctx, auth_interact, ml);
		smtp_auth_set_context(s, *authctx);
	}
}

/* Render and build the message of one claimed invite. */
static int
build_one(struct mailer *ml, struct outmsg *m, const char *from,
    char *envfrom, size_t envsz)
{
	const struct conf *c = ml->conf;
	struct outbox *ob = m->ob;
	struct tmpl_vars v;
	struct mail_msg mm;
	char tok[ACCEPT_LEN + 1], addr[EMAIL_MAX + 1], msgid[UUID_LEN + 300];
	char *subject = NULL, *text = NULL, *html = NULL, *optout = NULL;
	struct buf accept = { 0 }, unsub = { 0 };
	const char *at;
	int rc = -1;

	token_accept(ml->secret, ob->id, tok);
	if ((optout = token_optout(ml->secret, ob->app_id,
	    ob->email_norm)) == NULL ||
	    buf_printf(&accept, "%s%ctoken=%s", ob->invite_url,
	    strchr(ob->invite_url, '?') ? '&' : '?', tok) == -1 ||
	    buf_printf(&unsub, "%s/api/v1/referral-invites/opt-out?token=%s",
	    c->public_url, optout) == -1 || mail_addr_of(from, addr) == -1)
		goto out;
	memset(&v, 0, sizeof(v));
	v.app_name = ob->app_name;
	v.inviter_name = ob->inviter_name ? ob->inviter_name :
	    ob->inviter_email;
	v.inviter_email = ob->inviter_email;
	v.invitee_email = ob->email;
	v.accept_url = accept.p;
	v.optout_url = unsub.p;
	if ((subject = tmpl_render(ob->language, TMPL_SUBJECT, &v)) == NULL ||
	    (text = tmpl_render(ob->language, TMPL_TEXT, &v)) == NULL ||
	    (html = tmpl_render(ob->language, TMPL_HTML, &v)) == NULL)
		goto out;
	at = strrchr(addr, '@');
	snprintf(msgid, sizeof(msgid), "invite-%s@%s", ob->id, at + 1);
	memset(&mm, 0, sizeof(mm));
	mm.from = from;
	mm.to = ob->email;
	mm.subject = subject;
	mm.text = text;
	mm.html = html;
	mm.message_id = msgid;
	mm.unsub_url = unsub.p;
	mm.date = time(NULL);
	if ((m->data = mail_build(&mm, &m->len)) != NULL) {
		snprintf(envfrom, envsz, "%s", addr);
		rc = 0;
	}
out:
	free(subject);
	free(text);
	free(html);
	free(optout);
	buf_free(&accept);
	buf_free(&unsub);
	return rc;
}

/* "550 5.1.1 text" without control characters, bounded. */
static void
reply_text(const smtp_status_t *st, char *out, size_t outsz)
{
	size_t i, o;

	o = (size_t)snprintf(out, outsz, "%d ", st->code);
	for (i = 0; st->text != NULL && st->text[i] != '\0' &&
	    o + 1 < outsz; i++)
		if ((unsigned char)st->text[i] >= 0x20 && st->text[i] != 0x7f)
			out[o++] = st->text[i];
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/*
 * A verdict the database would not take (its disk full, an I/O error) is
 * kept here and written again before anything new is claimed.  Its row
 * stays "sending" meanwhile; the mail is never sent again for it, which
 * it would be if the row were left for the next mailer's recovery.
 */
struct unrecorded {
	char	 id[UUID_LEN + 1];
	char	 app[UUID_LEN + 1];
	char	 email_norm[EMAIL_MAX + 1];
	char	 status[8];
	char	 reply[256];
	time_t	 next;
	int	 bounce;		/* also list the address */
};

/*
 * Tell every worker a recorded verdict, without waiting: one whose
 * channel is full answers its request "Invite queued" at the deadline.
 */
static void
tell_workers(struct mailer *ml, const struct unrecorded *u)
{
	struct verdict_msg v;
	int i;

	memset(&v, 0, sizeof(v));
	snprintf(v.id, sizeof(v.id), "%s", u->id);
	v.kind = strcmp(u->status, "sent") == 0 ? VERDICT_SENT :
	    strcmp(u->status, "failed") == 0 ? VERDICT_FAILED :
	    VERDICT_DEFERRED;
	snprintf(v.reply, sizeof(v.reply), "%s", u->reply);
	for (i = 0; i < ml->nverdict; i++)
		(void)send(ml->verdict_fds[i], &v, sizeof(v), MSG_DONTWAIT);
}

static int
store_verdict(struct session *ss, const struct unrecorded *u)
{
	struct mailer *ml = ss->ml;
	int rc;

	pthread_mutex_lock(&db_mu);
	if (u->bounce)
		rc = db_outbox_bounce(ss->db, u->id, u->reply, u->app,
		    u->email_norm);
	else
		rc = db_outbox_mark(ss->db, u->id, u->status, u->reply,
		    u->next);
	pthread_mutex_unlock(&db_mu);
	/* The worker's answer never runs ahead of the row. */
	if (rc == 0)
		tell_workers(ml, u);
	return rc;
}

/* Record a claimed row's verdict now, or keep it to record later. */
static void
record(struct session *ss, const struct outbox *ob, const char *status,
    const char *reply, time_t next, int bounce)
{
	struct unrecorded u, *k;

	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", ob->id);
	snprintf(u.app, sizeof(u.app), "%s", ob->app_id);
	snprintf(u.email_norm, sizeof(u.email_norm), "%s", ob->email_norm);
	snprintf(u.status, sizeof(u.status), "%s", status);
	snprintf(u.reply, sizeof(u.reply), "%s", reply);
	u.next = next;
	u.bounce = bounce;
	if (store_verdict(ss, &u) == 0)
		return;
	/* At most one batch is ever kept: none is claimed meanwhile. */
	if (ss->nunrec == SESSION_BATCH) {
		log_errx("invite %s: cannot record \"%s\", and too many "
		    "verdicts wait already; it may be sent again", u.id,
		    status);
		return;
	}
	k = &ss->unrec[ss->nunrec++];
	*k = u;
	log_errx("invite %s: cannot record \"%s\" in the database; kept "
	    "to record again, not sent again", u.id, status);
}

/* Store the verdicts kept by record(); how many are still waiting. */
static size_t
record_kept(struct session *ss)
{
	size_t i, n = 0;
	time_t now;

	for (i = 0; i < ss->nunrec; i++)
		if (store_verdict(ss, &ss->unrec[i]) == -1)
			ss->unrec[n++] = ss->unrec[i];
		else
			log_info("invite %s: \"%s\" recorded at last",
			    ss->unrec[i].id, ss->unrec[i].status);
	ss->nunrec = n;
	now = time(NULL);
	if (n > 0 && now - ss->unrec_said >= 10) {
		ss->unrec_said = now;
		log_errx("mailer: %zu verdicts wait for the database (is its "
		    "disk full?); nothing new is sent until they are "
		    "recorded", n);
	}
	return n;
}

/* Requeue with backoff, or give up when the invite is too old. */
static void
defer(struct session *ss, struct outbox *ob, const char *reply)
{
	struct mailer *ml = ss->ml;
	const struct conf *c = ml->conf;
	struct tm tm;
	time_t now = time(NULL), created, delay;
	int i;

	memset(&tm, 0, sizeof(tm));
	strptime(ob->created_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
	created = timegm(&tm);
	if (now - created >= c->retry_give_up) {
		log_warnx("invite %s: giving up after %d attempts: %s", ob->id,
		    ob->attempts, reply);
		record(ss, ob, "failed", reply, now, 0);
		return;
	}
	delay = c->retry_initial;
	for (i = 1; i < ob->attempts && delay < c->retry_max; i++)
		delay *= 2;
	if (delay > c->retry_max)
		delay = c->retry_max;
	log_info("invite %s: deferred %lds: %s", ob->id, (long)delay, reply);
	record(ss, ob, "queued", reply, now + delay, 0);
}

static void
verdict(struct session *ss, struct outmsg *m, const char *failure)
{
	const smtp_status_t *rs, *ms, *rp;
	char reply[256];

	if (failure != NULL) {
		defer(ss, m->ob, failure);
		return;
	}
	rs = smtp_recipient_status(m->rcpt);
	ms = smtp_message_transfer_status(m->msg);
	rp = smtp_reverse_path_status(m->msg);
	if (rs->code / 100 == 2 && ms->code / 100 == 2) {
		reply_text(ms, reply, sizeof(reply));
		log_info("invite %s: sent: %s", m->ob->id, reply);
		record(ss, m->ob, "sent", reply, time(NULL), 0);
	} else if (rp->code / 100 == 2 && rs->code / 100 == 5) {
		reply_text(rs, reply, sizeof(reply));
		log_info("invite %s: refused: %s", m->ob->id, reply);
		record(ss, m->ob, "failed", reply, time(NULL), 1);
	} else if (rs->code == 0 && rp->code == 0 && ms->code == 0) {
		/* No reply at all: TLS, AUTH or the connection failed. */
		smtp_strerror(smtp_errno(), reply, sizeof(reply));
		defer(ss, m->ob, reply[0] ? reply : "no reply from the server");
	} else {
		reply_text(rs->code ? rs : rp->code ? rp : ms, reply,
		    sizeof(reply));
		if (rp->code == 530 || rp->code == 535)
			log_warnx("SMTP authentication failed: %s (check "
			    "smtp_user and smtp_password_file)", reply);
		defer(ss, m->ob, reply);
	}
}

/*
 * What the sessions and the mailer's own thread share: a round number
 * that each wake-up moves on, and the order to stop.
 */
static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	unsigned long	 round;
	int		 stop;
	int		 busy;		/* sessions sending */
	int		 poke[2];	/* a session done: look at the clock */
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0,
    { -1, -1 } };

static int
pool_stopping(void)
{
	int stop;

	pthread_mutex_lock(&pool.mu);
	stop = pool.stop;
	pthread_mutex_unlock(&pool.mu);
	return stop;
}

/*
 * This session's share of what is due: a burst spreads over every
 * session instead of going to the first to look (a slow relay would then
 * send it at one message a round trip).
 */
static size_t
share(struct session *ss)
{
	int k = ss->ml->nsessions;
	ssize_t due = db_outbox_due(ss->db, time(NULL),
	    (size_t)SESSION_BATCH * (size_t)k);

	if (due <= 0)
		return SESSION_BATCH;
	due = (due + k - 1) / k;
	return due < SESSION_BATCH ? (size_t)due : SESSION_BATCH;
}

/*
 * Build the messages of n claimed invites and add them to the connection;
 * how many it took (one that cannot be built is deferred now).  ob is
 * the chunk's, freed with it.
 */
static size_t
add_chunk(struct batch *b, struct outbox *ob, size_t n)
{
	struct mailer *ml = b->ss->ml;
	struct chunk *ch;
	struct outmsg *m;
	char envfrom[EMAIL_MAX + 1];
	const char *from;
	size_t i, added = 0;

	if ((ch = calloc(1, sizeof(*ch))) == NULL ||
	    (ch->m = calloc(n, sizeof(*ch->m))) == NULL) {
		free(ch);
		for (i = 0; i < n; i++)
			defer(b->ss, &ob[i], "out of memory");
		db_outbox_free(ob, n);
		return 0;
	}
	ch->ob = ob;
	ch->n = n;
	/* token.c keeps one HMAC context: one session builds at a time. */
	pthread_mutex_lock(&build_mu);
	for (i = 0; i < n; i++) {
		m = &ch->m[i];
		m->ob = &ob[i];
		from = ob[i].sender ? ob[i].sender : ml->conf->mail_from;
		if (build_one(ml, m, from, envfrom, sizeof(envfrom)) == -1) {
			log_errx("invite %s: cannot build the message (check "
			    "mail_from, public_url and the templates)",
			    ob[i].id);
			defer(b->ss, &ob[i], "cannot build the message");
			m->decided = 1;
			continue;
		}
		m->msg = smtp_add_message(b->s);
		smtp_set_reverse_path(m->msg, envfrom);
		smtp_set_messagecb(m->msg, msg_cb, m);
		m->rcpt = smtp_add_recipient(m->msg, ob[i].email);
		b->last_msg = m->msg;
		added++;
	}
	pthread_mutex_unlock(&build_mu);
	if (b->last == NULL)
		b->first = b->cur = ch;
	else
		b->last->next = ch;
	b->last = ch;
	b->total += n;
	return added;
}

/*
 * Wait up to until (CLOCK_REALTIME) for a new round: more invites
 * committed.  0 on a stop or when the time is up.
 */
static int
wait_round(struct session *ss, const struct timespec *until)
{
	int got, rc = 0;

	pthread_mutex_lock(&pool.mu);
	while (!pool.stop && pool.round == ss->seen && rc == 0)
		rc = pthread_cond_timedwait(&pool.cv, &pool.mu, until);
	got = !pool.stop && pool.round != ss->seen;
	ss->seen = pool.round;
	pthread_mutex_unlock(&pool.mu);
	return got;
}

/*
 * The connection's last message is done: claim what has come due since
 * and send it over the same connection, waiting up to SESSION_IDLE_MS
 * for it; without any, libesmtp ends the session (QUIT).  A relay is
 * spared a connection, EHLO, STARTTLS and AUTH a message, and a burst
 * flows through the open connections instead of one batch after another.
 */
static void
more(struct batch *b)
{
	struct session *ss = b->ss;
	struct timespec until;
	struct outbox *ob;
	size_t want;
	ssize_t n;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += SESSION_IDLE_MS % 1000 * 1000000L;
	until.tv_sec += SESSION_IDLE_MS / 1000 + until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	while (b->total < SESSION_BATCH && b->why == NULL &&
	    ss->nunrec == 0 && !pool_stopping()) {
		pthread_mutex_lock(&db_mu);
		want = share(ss);
		if (want > SESSION_BATCH - b->total)
			want = SESSION_BATCH - b->total;
		n = db_outbox_claim(ss->db, time(NULL), want, &ob);
		pthread_mutex_unlock(&db_mu);
		if (n < 0)
			return;
		if (n > 0 && add_chunk(b, ob, (size_t)n) > 0)
			return;
		if (n == 0 && !wait_round(ss, &until))
			return;
	}
}

/*
 * Send n claimed invites over one SMTP connection, and what comes due
 * while it is open (more()); record each verdict.
 */
static void
send_batch(struct session *ss, struct outbox *ob, size_t n)
{
	struct mailer *ml = ss->ml;
	auth_context_t authctx;
	struct chunk *ch, *next;
	struct batch b;
	char err[200];
	const char *failure = NULL;
	size_t i;

	memset(&b, 0, sizeof(b));
	b.ss = ss;
	if ((b.s = smtp_create_session()) == NULL) {
		for (i = 0; i < n; i++)
			defer(ss, &ob[i], "out of memory");
		db_outbox_free(ob, n);
		return;
	}
	session_setup(ml, b.s, &authctx);
	smtp_set_eventcb(b.s, event_cb, &b);
	if (add_chunk(&b, ob, n) == 0)
		;	/* nothing to send: every one deferred */
	else if (probe_connect(ml->conf->smtp_host, ml->conf->smtp_port,
	    ml->conf->smtp_timeout) == -1)
		failure = "cannot connect to the SMTP server";
	else if (!smtp_start_session(b.s)) {
		smtp_strerror(smtp_errno(), err, sizeof(err));
		failure = err;
	}
	if (b.why != NULL)
		failure = b.why;
	for (ch = b.first; ch != NULL; ch = next) {
		next = ch->next;
		for (i = 0; i < ch->n; i++) {
			if (!ch->m[i].decided)
				verdict(ss, &ch->m[i], failure);
			free(ch->m[i].data);
		}
		db_outbox_free(ch->ob, ch->n);
		free(ch->m);
		free(ch);
	}
	smtp_destroy_session(b.s);
	if (authctx != NULL)
		auth_destroy_context(authctx);
}

/* SIGTERM stays blocked during a session: look for it between batches. */
static int
term_pending(void)
{
	sigset_t set;

	return sigpending(&set) == 0 && (sigismember(&set, SIGTERM) == 1 ||
	    sigismember(&set, SIGINT) == 1);
}

/* Send what is due until nothing is left (or a stop). */
static void
session_drain(struct session *ss)
{
	struct outbox *ob;
	ssize_t n;

	while (!pool_stopping()) {
		if (record_kept(ss) > 0) {
			sleep(1);
			continue;
		}
		pthread_mutex_lock(&db_mu);
		n = db_outbox_claim(ss->db, time(NULL), share(ss), &ob);
		pthread_mutex_unlock(&db_mu);
		if (n <= 0) {
			if (n < 0)
				sleep(1);
			return;
		}
		send_batch(ss, ob, (size_t)n);
	}
}

static void *
session_main(void *arg)
{
	struct session *ss = arg;

	for (;;) {
		pthread_mutex_lock(&pool.mu);
		while (!pool.stop && pool.round == ss->seen)
			pthread_cond_wait(&pool.cv, &pool.mu);
		ss->seen = pool.round;
		if (pool.stop) {
			pthread_mutex_unlock(&pool.mu);
			break;
		}
		pool.busy++;
		pthread_mutex_unlock(&pool.mu);
		session_drain(ss);
		pthread_mutex_lock(&pool.mu);
		pool.busy--;
		pthread_mutex_unlock(&pool.mu);
		if (write(pool.poke[1], "p", 1) == -1 && errno != EAGAIN)
			log_warn("mailer: poke");
	}
	/*
	 * Left to the next mailer, a kept verdict's row would be sent
	 * again: wait for the database (the supervisor's grace period is
	 * the limit).
	 */
	while (record_kept(ss) > 0)
		sleep(1);
	return NULL;
}

static void
pool_tell(int stop)
{
	pthread_mutex_lock(&pool.mu);
	pool.round++;
	pool.stop |= stop;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
}

/* Start the sessions, signals blocked in them: they stay this thread's. */
static struct session *
sessions_start(struct mailer *ml)
{
	struct session *ss;
	sigset_t all, old;
	int i, e;

	if ((ss = calloc((size_t)ml->nsessions, sizeof(*ss))) == NULL)
		fatal("mailer: calloc");
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < ml->nsessions; i++) {
		ss[i].ml = ml;
		ss[i].db = ml->session_db[i];
		if ((ss[i].unrec = calloc(SESSION_BATCH,
		    sizeof(*ss[i].unrec))) == NULL)
			fatal("mailer: calloc");
		if ((e = pthread_create(&ss[i].th, NULL, session_main,
		    &ss[i])) != 0) {
			errno = e;
			fatal("mailer: session thread");
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ss;
}

/*
 * Wait for a wake-up (an invite committed), the next due retry, or a
 * session that finished (then only the clock is looked at again).  The
 * retry's time counts only while no session sends: a busy one claims
 * what comes due itself.  1 when a round should start.
 */
static int
idle(struct mailer *ml)
{
	struct pollfd pfd[2];
	struct timespec ts;
	sigset_t none;
	char drain[64];
	time_t due, now;
	int timeout = IDLE_POLL, busy, n;

	pthread_mutex_lock(&pool.mu);
	busy = pool.busy;
	pthread_mutex_unlock(&pool.mu);
	if (!busy && (due = db_outbox_next_due(ml->db)) != 0) {
		now = time(NULL);
		if (due - now < timeout)
			timeout = due > now ? (int)(due - now) : 0;
	}
	pfd[0].fd = ml->wake_fd;
	pfd[1].fd = pool.poke[0];
	pfd[0].events = pfd[1].events = POLLIN;
	sigemptyset(&none);
	/* Due now: a moment for the round just started to take it. */
	ts.tv_sec = timeout;
	ts.tv_nsec = timeout == 0 ? 100 * 1000000L : 0;
	if ((n = ppoll(pfd, 2, &ts, &none)) == 0)
		return 1;
	if (n < 0)
		return 0;
	if (pfd[1].revents & POLLIN)
		while (read(pool.poke[0], drain, sizeof(drain)) > 0)
			;
	if (!(pfd[0].revents & POLLIN))
		return 0;
	while (read(ml->wake_fd, drain, sizeof(drain)) > 0)
		;
	return 1;
}

void
mailer_run(struct mailer *ml)
{
	struct session *ss;
	sigset_t set;
	int i, r, start;

	/* Signals only interrupt the idle wait, never an SMTP session. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	auth_client_init();
	if ((ml->tls = tls_ctx()) == NULL)
		fatalx("mailer: cannot create a TLS context");
	if ((r = db_outbox_recover(ml->db)) > 0)
		log_warnx("mailer: %d invites left sending by a crash are "
		    "queued again", r);
	if (pipe2(pool.poke, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("mailer: pipe");
	ss = sessions_start(ml);
	/* Each wake-up (a batch committed, a retry due) starts a round. */
	start = 1;
	while (!*ml->stopping && !term_pending()) {
		if (start)
			pool_tell(0);
		start = idle(ml);
	}
	pool_tell(1);
	for (i = 0; i < ml->nsessions; i++) {
		pthread_join(ss[i].th, NULL);
		free(ss[i].unrec);
	}
	free(ss);
	close(pool.poke[0]);
	close(pool.poke[1]);
	SSL_CTX_free(ml->tls);
	auth_client_exit();
}

void
mailer_main(struct daemon *d)
{
	struct mailer ml;
	int i, prio;

	child_signals();
	close(d->sock);
	close(d->wake[1]);
	child_channels(d, ROLE_MAILER, -1);
	memset(&ml, 0, sizeof(ml));
	ml.conf = &d->conf;
	/*
	 * With delivery_wait 0 sending yields to answering: when the
	 * workers and the writer need both cores, the mailer (and the SMTP
	 * server it feeds, when that is on this host) takes what they leave,
	 * and catches up once the burst is over.  With a wait, the verdict
	 * is part of the answer: the mailer runs as the pool does.
	 */
	errno = 0;
	prio = getpriority(PRIO_PROCESS, 0);
	if (d->conf.delivery_wait == 0 && (errno != 0 ||
	    setpriority(PRIO_PROCESS, 0, prio + MAILER_NICE > 19 ? 19 :
	    prio + MAILER_NICE) == -1))
		log_warn("mailer: cannot lower its priority");
	child_confine(d, "mailer", 1);
	/*
	 * The mailer's commits only move stored invites along (claimed,
	 * sent, retried, failed); none of them is a promise to a client.
	 * Without an fsync each, a power cut can at worst roll a mark back
	 * and send that mail again, never lose an invite; a process crash
	 * loses nothing either way.  The writer's next fsync makes them
	 * durable with its own.
	 */
	ml.db = child_db(d, "mailer", SYNC_NORMAL);
	/* One connection a session thread, each opened here, after fork. */
	ml.nsessions = d->conf.smtp_sessions;
	if ((ml.session_db = calloc((size_t)ml.nsessions,
	    sizeof(*ml.session_db))) == NULL)
		fatal("mailer: calloc");
	for (i = 0; i < ml.nsessions; i++)
		ml.session_db[i] = child_db(d, "mailer", SYNC_NORMAL);
	ml.secret = d->secret;
	ml.smtp_password = d->smtp_password;
	ml.wake_fd = d->wake[0];
	ml.verdict_fds = d->verdict_fds;
	ml.nverdict = d->conf.workers;
	ml.stopping = &got_term;
	mailer_run(&ml);
	for (i = 0; i < ml.nsessions; i++)
		db_close(ml.session_db[i]);
	free(ml.session_db);
	db_close(ml.db);
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	_exit(0);
}
