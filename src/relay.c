/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * One SMTP connection of a mailer session (relay.c), the only file that
 * speaks libesmtp: builds the claimed invites' messages, sends them,
 * decides each verdict as the relay answers and, while the connection is
 * open, claims what has come due since and sends it on the same
 * connection.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
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
#include "log.h"
#include "util.h"
#include "conf.h"
#include "template.h"
#include "mail.h"
#include "token.h"
#include "db.h"
#include "mailer.h"
#include "relay.h"
#include "metrics.h"

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

static void verdict(struct session *, struct outmsg *, const char *);
static void more(struct batch *);

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

SSL_CTX *
relay_tls_ctx(void)
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

/* bounce_address local+TAG@domain, TAG naming the invite (token.c). */
static void
verp(const char *bounce, const unsigned char secret[32], const char *id,
    char *out, size_t outsz)
{
	const char *at = strrchr(bounce, '@');
	char tag[BOUNCE_TAG_LEN + 1];

	token_bounce(secret, id, tag);
	snprintf(out, outsz, "%.*s+%s%s", (int)(at - bounce), bounce, tag, at);
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

	token_accept_gen(ml->secret, ob->id, ob->resends, tok);
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
	/* A resent mail is another message (receivers drop duplicates). */
	if (ob->resends > 0)
		snprintf(msgid, sizeof(msgid), "invite-%s.%d@%s", ob->id,
		    ob->resends, at + 1);
	else
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
		if (c->bounce_address != NULL)
			verp(c->bounce_address, ml->secret, ob->id, envfrom,
			    envsz);
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

static void
verdict(struct session *ss, struct outmsg *m, const char *failure)
{
	const smtp_status_t *rs, *ms, *rp;
	char reply[256];

	if (failure != NULL) {
		session_defer(ss, m->ob, failure);
		return;
	}
	rs = smtp_recipient_status(m->rcpt);
	ms = smtp_message_transfer_status(m->msg);
	rp = smtp_reverse_path_status(m->msg);
	/* The reply that decides, as below, by class (metrics.h). */
	metrics_smtp(rs->code / 100 == 2 ? ms->code : rs->code ? rs->code :
	    rp->code ? rp->code : ms->code);
	if (rs->code / 100 == 2 && ms->code / 100 == 2) {
		reply_text(ms, reply, sizeof(reply));
		log_info("invite %s: sent: %s", m->ob->id, reply);
		session_record(ss, m->ob, "sent", reply, time(NULL), 0);
	} else if (rp->code / 100 == 2 && rs->code / 100 == 5) {
		reply_text(rs, reply, sizeof(reply));
		log_info("invite %s: refused: %s", m->ob->id, reply);
		session_record(ss, m->ob, "failed", reply, time(NULL), 1);
	} else if (rs->code == 0 && rp->code == 0 && ms->code == 0) {
		/* No reply at all: TLS, AUTH or the connection failed. */
		smtp_strerror(smtp_errno(), reply, sizeof(reply));
		session_defer(ss, m->ob, reply[0] ? reply : "no reply from the server");
	} else {
		reply_text(rs->code ? rs : rp->code ? rp : ms, reply,
		    sizeof(reply));
		if (rp->code == 530 || rp->code == 535)
			log_warnx("SMTP authentication failed: %s (check "
			    "smtp_user and smtp_password_file)", reply);
		session_defer(ss, m->ob, reply);
	}
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
			session_defer(b->ss, &ob[i], "out of memory");
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
			session_defer(b->ss, &ob[i], "cannot build the message");
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
 * The connection's last message is done: claim what has come due since
 * and send it over the same connection, waiting up to SESSION_IDLE_MS
 * for it; without any, libesmtp ends the session (QUIT).  A relay is
 * spared a connection, EHLO, STARTTLS and AUTH a message, and a burst
 * flows through the open connections instead of one batch after another.
 */
static void
more(struct batch *b)
{
	struct timespec until;
	struct outbox *ob;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += SESSION_IDLE_MS % 1000 * 1000000L;
	until.tv_sec += SESSION_IDLE_MS / 1000 + until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	while (b->total < SESSION_BATCH && b->why == NULL &&
	    (n = pool_take(b->ss, &ob, SESSION_BATCH - b->total, &until)) > 0)
		if (add_chunk(b, ob, n) > 0)
			return;
}

/*
 * Send n claimed invites over one SMTP connection, and what comes due
 * while it is open (more()); record each verdict.
 */
void
relay_send(struct session *ss, struct outbox *ob, size_t n)
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
			session_defer(ss, &ob[i], "out of memory");
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

