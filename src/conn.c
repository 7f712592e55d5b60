/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * A worker's connections.  nginx keeps its FastCGI connections open and
 * reuses them (fastcgi_keep_conn on, "keepalive" in the upstream), which
 * spares it and us a socket, a connect, an accept and two closes per
 * request.  libfcgi alone would wait on a kept connection for its next
 * request while new ones queued behind it; so each worker watches every
 * connection it holds and the listening socket in one epoll set, takes
 * new connections itself, and hands libfcgi (fcgi.c) a connection that
 * has a request.  A worker never closes a kept connection: nginx may be
 * sending a request on it at that moment, and a POST it has sent is
 * never sent again (502).  nginx closes them (keepalive_timeout,
 * keepalive_requests).  A worker that stops hands its connections to its
 * successor in its slot as one SCM_RIGHTS message.
 *
 * The epoll set also watches the channels the writer and the mailer
 * answer on (conn_watch).  A parked request's connection leaves the set,
 * so nothing else is read from it until its answer is written.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "conn.h"

#define NEW_WAIT_MS	100	/* for the request on a new connection */
#define WATCH_MAX	2	/* channels watched */

static struct {
	int	 ep;			/* epoll: conns, watch, sock */
	int	 sock;			/* the listening socket */
	int	 tcp;			/* it is a TCP one */
	int	 listening;		/* sock is in ep */
	struct {
		int	 fd;
		int	 parked;
	}	 conns[CONN_MAX];
	int	 nconns;
	int	 stopping;		/* requests left to serve, once told */
	int	 watch[WATCH_MAX];
	int	 nwatch;
} cs = { .ep = -1, .sock = -1, .stopping = -1 };

static int
is_watched(int fd)
{
	int i;

	for (i = 0; i < cs.nwatch; i++)
		if (cs.watch[i] == fd)
			return 1;
	return 0;
}

static int
ep_set(int op, int fd, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.fd = fd;
	return epoll_ctl(cs.ep, op, fd, &ev);
}

static int
conn_add(int fd)
{
	int one = 1;

	if (cs.nconns == CONN_MAX || ep_set(EPOLL_CTL_ADD, fd, EPOLLIN) == -1) {
		log_warn("conn: cannot watch a connection");
		close(fd);
		return -1;
	}
	if (cs.tcp)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	cs.conns[cs.nconns].fd = fd;
	cs.conns[cs.nconns].parked = 0;
	cs.nconns++;
	return 0;
}

void
conn_gone(int fd)
{
	int i;

	for (i = 0; i < cs.nconns; i++)
		if (cs.conns[i].fd == fd) {
			cs.conns[i] = cs.conns[--cs.nconns];
			return;
		}
}

void
conn_park(int fd)
{
	int i;

	(void)epoll_ctl(cs.ep, EPOLL_CTL_DEL, fd, NULL);
	for (i = 0; i < cs.nconns; i++)
		if (cs.conns[i].fd == fd)
			cs.conns[i].parked = 1;
}

void
conn_unpark(int fd)
{
	int i;

	for (i = 0; i < cs.nconns; i++)
		if (cs.conns[i].fd == fd && cs.conns[i].parked) {
			cs.conns[i].parked = 0;
			if (ep_set(EPOLL_CTL_ADD, fd, EPOLLIN) == -1) {
				log_warn("conn: cannot watch a connection");
				close(fd);
				conn_gone(fd);
			}
			return;
		}
}

/* Watch the listening socket only while there is room for more. */
static int
conn_listen(void)
{
	int want = cs.nconns < CONN_MAX;

	if (want == cs.listening)
		return 0;
	/* One worker woken per new connection, not all idle ones. */
	if (ep_set(want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, cs.sock,
	    EPOLLIN | EPOLLEXCLUSIVE) == -1)
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

/* Take the connections a predecessor left on from. */
static void
conn_adopt(int from)
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
	}
}

int
conn_watch(int fd)
{
	if (fd == -1)
		return 0;
	if (cs.nwatch == WATCH_MAX || ep_set(EPOLL_CTL_ADD, fd, EPOLLIN) == -1)
		return -1;
	cs.watch[cs.nwatch++] = fd;
	return 0;
}

int
conn_want_out(int fd, int on)
{
	return ep_set(EPOLL_CTL_MOD, fd, on ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

int
conn_init(int sock, int hand)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fl;

	if ((cs.ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	cs.sock = sock;
	if (getsockname(sock, (struct sockaddr *)&ss, &len) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		cs.tcp = 1;
	/* Several workers wait on it; the loser of a race must not block. */
	if ((fl = fcntl(sock, F_GETFL)) == -1 ||
	    fcntl(sock, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	conn_adopt(hand);
	return conn_listen();
}

void
conn_handover(int hand)
{
	union fds_ctl cm;
	struct msghdr mh;
	struct cmsghdr *c;
	struct iovec iov;
	char byte = 'c';
	int fds[CONN_MAX], i, n = 0;

	for (i = 0; i < cs.nconns; i++)
		if (!cs.conns[i].parked)
			fds[n++] = cs.conns[i].fd;
	if (n == 0)
		return;
	memset(&cm, 0, sizeof(cm));
	msg_init(&mh, &iov, &byte, cm.b, CMSG_SPACE(sizeof(int) * (size_t)n));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	if (sendmsg(hand, &mh, MSG_DONTWAIT) == -1)
		log_warn("conn: cannot hand %d connections over", n);
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

/* Told to stop: no new connections; what has come is served. */
static void
conn_stop(void)
{
	cs.stopping = cs.nconns;
	if (cs.listening)
		(void)epoll_ctl(cs.ep, EPOLL_CTL_DEL, cs.sock, NULL);
	cs.listening = 0;
}

/* A new connection: 1 when it has a request to read at once. */
static int
conn_new(int *fdp, const sigset_t *none)
{
	struct epoll_event ev;
	int fd;

	if ((fd = accept4(cs.sock, NULL, NULL, SOCK_CLOEXEC)) == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR || errno == ECONNABORTED)
			return 0;
		log_warn("conn: accept");
		if (errno != EMFILE && errno != ENFILE)
			return -1;
		/* Out of descriptors: leave new ones to the others a while. */
		(void)epoll_ctl(cs.ep, EPOLL_CTL_DEL, cs.sock, NULL);
		cs.listening = 0;
		(void)epoll_pwait(cs.ep, &ev, 1, 100, none);
		return 0;
	}
	/*
	 * Serve it at once (nginx sends the request with the connect):
	 * busy, this worker leaves the next new connection to an idle one,
	 * and the connections spread over the pool.
	 */
	if (conn_add(fd) == 0 && poll(&(struct pollfd){ fd, POLLIN, 0 }, 1,
	    NEW_WAIT_MS) == 1) {
		*fdp = fd;
		return 1;
	}
	return 0;
}

int
conn_wait(volatile sig_atomic_t *term, int ms)
{
	struct epoll_event ev;
	sigset_t none;
	int fd, n;

	sigemptyset(&none);
	for (;;) {
		if (*term && cs.stopping == -1)
			conn_stop();
		if (cs.stopping == 0)
			return CONN_STOP;
		if (cs.stopping > 0)
			cs.stopping--;
		else if (conn_listen() == -1)
			return CONN_STOP;
		n = epoll_pwait(cs.ep, &ev, 1, *term ? 0 : ms, &none);
		if (n == -1 && errno == EINTR)
			continue;
		/* A parked request's deadline (or, stopping, nothing left). */
		if (n == 0)
			return *term && ms != 0 ? CONN_STOP : CONN_NEWS;
		if (n < 0)
			return CONN_STOP;
		/* A wait that returns at once delivers no signal: let it in. */
		signals_in(&none);
		if (is_watched(ev.data.fd)) {
			/*
			 * The writer or mailer and the supervisor are gone
			 * (the latter keeps every channel open): parked
			 * requests meet their deadlines, and the kernel's
			 * SIGTERM (PR_SET_PDEATHSIG) stops this worker.
			 */
			if (ev.events & (EPOLLHUP | EPOLLERR))
				(void)epoll_ctl(cs.ep, EPOLL_CTL_DEL,
				    ev.data.fd, NULL);
			return CONN_NEWS;
		}
		if (ev.data.fd != cs.sock)
			return ev.data.fd;
		if ((n = conn_new(&fd, &none)) == 1)
			return fd;
		if (n == -1)
			return CONN_STOP;
	}
}
