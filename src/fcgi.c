/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * FastCGI: the only file that includes fcgiapp.h.  Reads request
 * parameters and the body under a hard limit, and writes status, headers
 * and body.  Every failure still answers HTTP.
 *
 * Connections.  nginx keeps its FastCGI connections open and reuses them
 * (fastcgi_keep_conn on, "keepalive" in the upstream), which spares it
 * and us a socket, a connect, an accept and two closes per request.
 * libfcgi alone would wait on a kept connection for its next request
 * while new ones queued behind it; so each worker watches every
 * connection it holds and the listening socket in one epoll set, takes
 * new connections itself, and hands libfcgi a connection that has a
 * request (libfcgi's listen_sock is -1: it never accepts).  A worker
 * never closes a kept connection: nginx may be sending a request on it at
 * that moment, and a POST it has sent is never sent again (502).  nginx
 * closes them (keepalive_timeout, keepalive_requests).  Connections move
 * instead, as SCM_RIGHTS messages: a worker about to wait for the writer
 * puts those of its other connections that have a request waiting in the
 * pool's shared socket, where an idle worker takes them, and one about to
 * wait for the mailer puts all of them there, so that no request waits
 * behind another's invite; a worker that stops hands all of its own to
 * its successor in its slot.
 *
 * Requests.  fcgi_accept reads a request whole into a plain struct req
 * (api.h): the parameters the service reads and the body; a handler
 * sets its answer there and fcgi_finish writes it.  A request may be
 * parked (fcgi_park): the connection leaves the epoll set, so nothing
 * else is read from it, stays out of every move, and the worker serves
 * its other connections until fcgi_finish puts it back.  The epoll set
 * also watches the channels the writer and the mailer answer on; then
 * fcgi_accept returns NULL with *answers set.  libfcgi keeps all of a
 * request's state in its FCGX_Request, so one for each request under way
 * is all it takes.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/poll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "extern.h"
#include "api.h"

/* A request under way: libfcgi's and the handlers' halves. */
struct slot {
	FCGX_Request	 fr;
	int		 fd;		/* its connection */
	int		 parked;
	struct req	 req;
};

/* The request being served, and those parked (fcgi_park). */
static struct slot slots[PARK_MAX + 1];

/*
 * At most this many connections a worker: past it, it leaves new ones to
 * the others.  One SCM_RIGHTS message carries them all (the kernel's
 * limit is 253).
 */
#define CONN_MAX	200
#define NEW_WAIT_MS	100	/* for the request on a new connection */

static struct {
	int	 ep;			/* epoll: conns[], shared[0], sock */
	int	 sock;			/* the listening socket */
	int	 shared[2];		/* the pool's: [0] take, [1] give */
	int	 tcp;			/* it is a TCP one */
	int	 listening;		/* sock is in ep */
	int	 conns[CONN_MAX];
	int	 nconns;
	int	 cur;			/* the request's, or -1 */
	int	 stopping;		/* requests left to serve, once told */
	int	 answers;		/* the writer's answers arrive here */
	int	 verdicts;		/* and the mailer's verdicts here */
	int	(*next_ms)(void);	/* until a parked request's deadline */
} cs = { -1, -1, { -1, -1 }, 0, 0, { 0 }, 0, -1, -1, -1, -1, NULL };

static const char oom_body[] = "Status: 500 Internal Server Error\r\n"
    "Content-Type: text/plain\r\n\r\nout of memory\n";

/* An fd whose news fcgi_accept reports as *answers. */
static int
is_answers(int fd)
{
	return fd == cs.answers || fd == cs.verdicts;
}

static int
conn_add(int fd)
{
	struct epoll_event ev;
	int one = 1;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = fd;
	if (cs.nconns == CONN_MAX || epoll_ctl(cs.ep, EPOLL_CTL_ADD, fd,
	    &ev) == -1) {
		log_warn("fcgi: cannot watch a connection");
		close(fd);
		return -1;
	}
	if (cs.tcp)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	cs.conns[cs.nconns++] = fd;
	return 0;
}

/* libfcgi closed fd (which also took it out of the epoll set). */
static void
conn_gone(int fd)
{
	int i;

	for (i = 0; i < cs.nconns; i++)
		if (cs.conns[i] == fd) {
			cs.conns[i] = cs.conns[--cs.nconns];
			return;
		}
}

/* Watch the listening socket only while there is room for more. */
static int
conn_listen(void)
{
	struct epoll_event ev;
	int want = cs.nconns < CONN_MAX;

	if (want == cs.listening)
		return 0;
	memset(&ev, 0, sizeof(ev));
	/* One worker woken per new connection, not all idle ones. */
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.fd = cs.sock;
	if (epoll_ctl(cs.ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, cs.sock,
	    &ev) == -1)
		return -1;
	cs.listening = want;
	return 0;
}

/* Control data for up to CONN_MAX descriptors, aligned for cmsghdr. */
union fds_ctl {
	struct cmsghdr	 h;
	char		 b[CMSG_SPACE(sizeof(int) * CONN_MAX)];
};

/* A message of one byte with room for ctlsz bytes of control data. */
static void
msg_init(struct msghdr *mh, struct iovec *iov, char *byte, void *ctl,
    size_t ctlsz)
{
	memset(mh, 0, sizeof(*mh));
	iov->iov_base = byte;
	iov->iov_len = 1;
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	mh->msg_control = ctl;
	mh->msg_controllen = ctlsz;
}

/* Take the connections waiting on from: every message, or just one. */
static void
conn_adopt(int from, int all)
{
	union fds_ctl cm;
	struct msghdr mh;
	struct cmsghdr *c;
	struct iovec iov;
	char byte;
	int fds[CONN_MAX], i, n;

	for (;;) {
		msg_init(&mh, &iov, &byte, cm.b, sizeof(cm.b));
		if (recvmsg(from, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) == -1)
			return;
		for (c = CMSG_FIRSTHDR(&mh); c != NULL;
		    c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET ||
			    c->cmsg_type != SCM_RIGHTS)
				continue;
			n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds, CMSG_DATA(c), (size_t)n * sizeof(int));
			for (i = 0; i < n; i++)
				(void)conn_add(fds[i]);
		}
		if (!all)
			return;
	}
}

/* Also report news on fd. */
int
fcgi_watch(int fd)
{
	struct epoll_event ev;

	cs.verdicts = fd;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = fd;
	return fd == -1 ? 0 : epoll_ctl(cs.ep, EPOLL_CTL_ADD, fd, &ev);
}

int
fcgi_init(int sock, int hand, const int shared[2], int answers,
    int (*next_ms)(void))
{
	struct epoll_event ev;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fl, i;

	if (FCGX_Init() != 0)
		return -1;
	/* libfcgi never accepts: conn_wait does. */
	for (i = 0; i < PARK_MAX + 1; i++) {
		if (FCGX_InitRequest(&slots[i].fr, -1, 0) != 0)
			return -1;
		slots[i].req.slot = i;
	}
	cs.next_ms = next_ms;
	if ((cs.ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	cs.answers = answers;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = answers;
	if (answers != -1 && epoll_ctl(cs.ep, EPOLL_CTL_ADD, answers,
	    &ev) == -1)
		return -1;
	cs.sock = sock;
	cs.shared[0] = shared[0];
	cs.shared[1] = shared[1];
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.fd = shared[0];
	if (epoll_ctl(cs.ep, EPOLL_CTL_ADD, shared[0], &ev) == -1)
		return -1;
	if (getsockname(sock, (struct sockaddr *)&ss, &len) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		cs.tcp = 1;
	/* Several workers wait on it; the loser of a race must not block. */
	if ((fl = fcntl(sock, F_GETFL)) == -1 ||
	    fcntl(sock, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	/* What the predecessor in this slot handed over, if anything. */
	conn_adopt(hand, 1);
	return conn_listen();
}

/*
 * Send the n connections fds[] to the socket to, in one message.  Without
 * room there, they stay.
 */
static int
conn_send(int to, const int *fds, int n)
{
	union fds_ctl cm;
	struct msghdr mh;
	struct cmsghdr *c;
	struct iovec iov;
	char byte = 'c';
	int i;

	if (n == 0)
		return 0;
	memset(&cm, 0, sizeof(cm));
	msg_init(&mh, &iov, &byte, cm.b, CMSG_SPACE(sizeof(int) * (size_t)n));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	if (sendmsg(to, &mh, MSG_DONTWAIT) == -1)
		return -1;
	/*
	 * Sent: the copies here go.  The message holds each connection open,
	 * so closing does not take it out of the epoll set by itself.
	 */
	for (i = 0; i < n; i++) {
		(void)epoll_ctl(cs.ep, EPOLL_CTL_DEL, fds[i], NULL);
		close(fds[i]);
		conn_gone(fds[i]);
	}
	return 0;
}

/* A parked request's connection: it stays, out of the epoll set. */
static int
conn_parked(int fd)
{
	int i;

	for (i = 0; i < PARK_MAX + 1; i++)
		if (slots[i].parked && slots[i].fd == fd)
			return 1;
	return 0;
}

/* Every connection held but those with a request under way. */
static int
conn_give(int to)
{
	int fds[CONN_MAX], i, n = 0;

	for (i = 0; i < cs.nconns; i++)
		if (cs.conns[i] != cs.cur && !conn_parked(cs.conns[i]))
			fds[n++] = cs.conns[i];
	return conn_send(to, fds, n);
}

void
fcgi_handover(int hand)
{
	cs.cur = -1;
	if (conn_give(hand) == -1)
		log_warn("fcgi: cannot hand %d connections over", cs.nconns);
}

void
fcgi_share_waiting(void)
{
	struct epoll_event ev[CONN_MAX];
	int fds[CONN_MAX], i, n, k = 0;

	if (cs.nconns < 2 || (n = epoll_wait(cs.ep, ev, CONN_MAX, 0)) <= 0)
		return;
	for (i = 0; i < n; i++)
		if (ev[i].data.fd != cs.sock && ev[i].data.fd != cs.shared[0] &&
		    !is_answers(ev[i].data.fd) && ev[i].data.fd != cs.cur)
			fds[k++] = ev[i].data.fd;
	if (conn_send(cs.shared[1], fds, k) == -1 && errno != EAGAIN)
		log_warn("fcgi: cannot share connections");
}

void
fcgi_share(void)
{
	if (cs.nconns > 1 && conn_give(cs.shared[1]) == -1 &&
	    errno != EAGAIN)
		log_warn("fcgi: cannot share connections");
}

/* nginx's $request_id is 32 hex digits; accept only a short safe token. */
static void
req_set_id(struct req *r, const char *s)
{
	unsigned char rnd[16];
	size_t n;

	if (s != NULL && (n = strlen(s)) > 0 && n <= REQID_MAX &&
	    strspn(s, "0123456789abcdefABCDEF-") == n) {
		memcpy(r->id, s, n + 1);
		return;
	}
	util_random(rnd, sizeof(rnd));
	util_hex(rnd, sizeof(rnd), r->id);
}

/* The body: exactly CONTENT_LENGTH bytes, at most max. */
static enum body_res
req_read_body(struct slot *sl, size_t max)
{
	struct req *r = &sl->req;
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", sl->fr.envp);
	long long n = 0;
	int got;
	char extra;

	if (cl != NULL && *cl != '\0' &&
	    (strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 18 ||
	    util_strtonum(cl, 0, 1LL << 40, &n) == -1))
		return BODY_BAD;
	if ((size_t)n > max)
		return BODY_TOOBIG;
	if ((r->body = malloc((size_t)n + 1)) == NULL)
		return BODY_BAD;
	got = n > 0 ? FCGX_GetStr(r->body, (int)n, sl->fr.in) : 0;
	/* Fewer or more bytes than announced is a broken peer. */
	if (got != (int)n || FCGX_GetStr(&extra, 1, sl->fr.in) != 0) {
		free(r->body);
		r->body = NULL;
		return BODY_BAD;
	}
	r->body[n] = '\0';
	r->bodylen = (size_t)n;
	return BODY_OK;
}

/* Everything a handler reads, once. */
static void
req_read(struct slot *sl, size_t max_body)
{
	struct req *r = &sl->req;
	char **env = sl->fr.envp;
	size_t n;

	r->method = FCGX_GetParam("REQUEST_METHOD", env);
	r->uri = FCGX_GetParam("REQUEST_URI", env);
	r->path = FCGX_GetParam("DOCUMENT_URI", env);
	if (r->path == NULL) {
		/* Without the query string. */
		n = r->uri != NULL ? strcspn(r->uri, "?") : 0;
		if (n >= sizeof(r->pathbuf))
			n = sizeof(r->pathbuf) - 1;
		memcpy(r->pathbuf, r->uri != NULL ? r->uri : "", n);
		r->pathbuf[n] = '\0';
		r->path = r->pathbuf;
	}
	r->query = FCGX_GetParam("QUERY_STRING", env);
	r->content_type = FCGX_GetParam("CONTENT_TYPE", env);
	if ((r->authorization = FCGX_GetParam("HTTP_AUTHORIZATION",
	    env)) == NULL)
		r->authorization = FCGX_GetParam("HTTP_AUTHENTICATION", env);
	r->api_key = FCGX_GetParam("HTTP_X_API_KEY", env);
	r->api_key_type = FCGX_GetParam("HTTP_X_API_KEY_TYPE", env);
	r->client_id = FCGX_GetParam("HTTP_X_CLIENT_ID", env);
	r->idempotency_key = FCGX_GetParam("HTTP_IDEMPOTENCY_KEY", env);
	r->accept_language = FCGX_GetParam("HTTP_ACCEPT_LANGUAGE", env);
	req_set_id(r, FCGX_GetParam("REQUEST_ID", env));
	r->body_res = req_read_body(sl, max_body);
}

/* Deliver signals already pending (none blocks them meanwhile). */
static void
signals_in(const sigset_t *none)
{
	sigset_t pend, old;

	if (sigpending(&pend) == 0 && !sigisemptyset(&pend) &&
	    sigprocmask(SIG_SETMASK, none, &old) == 0)
		(void)sigprocmask(SIG_SETMASK, &old, NULL);
}

/*
 * The next connection with a request, or -1 when the worker should stop.
 * Signals are delivered only while waiting here.  Once *term is set, the
 * requests nginx has already sent are served (one a connection at most:
 * under load nginx would keep sending), and the rest wait in their
 * connections for the successor.
 */
static int
conn_wait(volatile sig_atomic_t *term)
{
	struct epoll_event ev;
	sigset_t none;
	int fd, n, ms;

	sigemptyset(&none);
	for (;;) {
		if (*term && cs.stopping == -1) {
			cs.stopping = cs.nconns;
			if (cs.listening)
				(void)epoll_ctl(cs.ep, EPOLL_CTL_DEL, cs.sock,
				    NULL);
			cs.listening = 0;
			(void)epoll_ctl(cs.ep, EPOLL_CTL_DEL, cs.shared[0],
			    NULL);
		}
		if (cs.stopping == 0)
			return -1;
		if (cs.stopping > 0)
			cs.stopping--;
		else if (conn_listen() == -1)
			return -1;
		ms = cs.next_ms();
		n = epoll_pwait(cs.ep, &ev, 1, *term ? 0 : ms, &none);
		if (n == -1 && errno == EINTR)
			continue;
		/* A parked request's deadline (or, stopping, nothing left). */
		if (n == 0)
			return *term && ms != 0 ? -1 : -2;
		if (n < 0)
			return -1;
		/* A wait that returns at once delivers no signal: let it in. */
		signals_in(&none);
		if (is_answers(ev.data.fd) && (ev.events & EPOLLHUP)) {
			/*
			 * The writer or mailer and the supervisor are gone
			 * (the latter keeps every channel open); parked
			 * invites meet their deadlines, and the kernel's
			 * SIGTERM (PR_SET_PDEATHSIG) stops this worker.
			 */
			(void)epoll_ctl(cs.ep, EPOLL_CTL_DEL, ev.data.fd, NULL);
			return -2;
		}
		if (is_answers(ev.data.fd))
			return -2;
		if (ev.data.fd == cs.shared[0]) {
			conn_adopt(cs.shared[0], 0);
			continue;
		}
		if (ev.data.fd != cs.sock)
			return ev.data.fd;
		if ((fd = accept4(cs.sock, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				/* Leave new ones to the others for now. */
				log_warn("fcgi: accept");
				(void)epoll_ctl(cs.ep, EPOLL_CTL_DEL, cs.sock,
				    NULL);
				cs.listening = 0;
				(void)epoll_pwait(cs.ep, &ev, 1, 100, &none);
				continue;
			}
			log_warn("fcgi: accept");
			return -1;
		}
		/*
		 * Serve it at once (nginx sends the request with the
		 * connect): busy, this worker leaves the next new connection
		 * to an idle one, and the connections spread over the pool.
		 */
		if (conn_add(fd) == 0 && poll(&(struct pollfd){ fd, POLLIN,
		    0 }, 1, NEW_WAIT_MS) == 1)
			return fd;
	}
}

struct req *
fcgi_accept(volatile sig_atomic_t *term, int *answers, size_t max_body)
{
	struct slot *sl = slots;
	struct req *r;
	int fd, slot;

	*answers = 0;
	while (sl->parked)
		sl++;
	/* Its buffers went in fcgi_finish. */
	r = &sl->req;
	slot = r->slot;
	memset(r, 0, sizeof(*r));
	r->slot = slot;
	for (;;) {
		if ((fd = conn_wait(term)) < 0) {
			*answers = fd == -2;
			return NULL;
		}
		/* Kept, so that the Finish inside Accept leaves fd open. */
		sl->fr.ipcFd = fd;
		sl->fr.keepConnection = 1;
		if (FCGX_Accept_r(&sl->fr) == 0)
			break;
		/* nginx closed it, or sent garbage: libfcgi closed it. */
		conn_gone(fd);
	}
	cs.cur = fd;
	sl->fd = fd;
	req_read(sl, max_body);
	return r;
}

void
fcgi_park(struct req *r)
{
	struct slot *sl = &slots[r->slot];

	(void)epoll_ctl(cs.ep, EPOLL_CTL_DEL, sl->fd, NULL);
	sl->parked = 1;
	cs.cur = -1;
}

static const char *
status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* Status, our standard headers, the handler's, the body. */
static void
req_write(struct slot *sl)
{
	struct req *r = &sl->req;
	char head[1024];
	int n;

	/* libfcgi's own printf lacks %zu: format here. */
	n = snprintf(head, sizeof(head), "Status: %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Request-Id: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "%s\r\n", r->status, status_text(r->status), r->ctype, r->id,
	    r->answerlen, r->headers ? r->headers : "");
	if (r->status == 0 || r->answer == NULL || n < 0 ||
	    (size_t)n >= sizeof(head)) {
		FCGX_PutStr(oom_body, (int)sizeof(oom_body) - 1, sl->fr.out);
		return;
	}
	FCGX_PutStr(head, n, sl->fr.out);
	FCGX_PutStr(r->answer, (int)r->answerlen, sl->fr.out);
}

void
fcgi_finish(struct req *r)
{
	struct slot *sl = &slots[r->slot];
	struct epoll_event ev;
	char sink[1024];

	req_write(sl);
	/*
	 * The rest of the body, whatever the answer: the next request on a
	 * kept connection starts after it (nginx bounds it with
	 * client_max_body_size).  With no unread input, a connection libfcgi
	 * closes is closed at once (detached), without its wait for nginx.
	 */
	while (FCGX_GetStr(sink, sizeof(sink), sl->fr.in) > 0)
		;
	FCGX_Detach(&sl->fr);
	FCGX_Finish_r(&sl->fr);
	sl->fr.detached = 0;
	if (sl->fr.ipcFd == -1)
		conn_gone(sl->fd);
	else if (sl->parked) {
		/* Back in the epoll set, for its next request. */
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.fd = sl->fd;
		if (epoll_ctl(cs.ep, EPOLL_CTL_ADD, sl->fd, &ev) == -1) {
			log_warn("fcgi: cannot watch a connection");
			close(sl->fd);
			conn_gone(sl->fd);
		}
	}
	/* Kept: it stays in the epoll set for its next request. */
	sl->fr.ipcFd = -1;
	sl->parked = 0;
	cs.cur = -1;
	free(r->body);
	r->body = NULL;
	free(r->headers);
	r->headers = NULL;
	buf_free(&r->out);
}
