/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * A worker's connections from nginx (conn.c): the listening socket, the
 * kept connections, the channels it is told things on, in one epoll set.
 * Used by worker.c alone.
 */
#ifndef CONN_H
#define CONN_H

#include <signal.h>

#define CONN_MAX	200	/* connections a worker holds */
#define CONN_NEWS	(-2)	/* a watched channel has news, or timeout */
#define CONN_STOP	(-1)	/* the worker should stop serving */

/* Listen on sock; take the connections a predecessor left on hand. */
int	 conn_init(int sock, int hand);
/* Also report news on fd (the writer's answers, the mailer's verdicts). */
int	 conn_watch(int fd);
/* Also report when fd (watched) can be written to, or no longer. */
int	 conn_want_out(int fd, int on);
/*
 * A connection with a request to read, CONN_NEWS (news on a watched fd,
 * or ms passed; -1 waits without end) or CONN_STOP.  Signals are
 * delivered only here.  Once *term is set, the requests nginx has
 * already sent are served, one a connection at most, then CONN_STOP.
 */
int	 conn_wait(volatile sig_atomic_t *term, int ms);
/* A request of fd's is parked: read nothing more from it until unpark. */
void	 conn_park(int fd);
void	 conn_unpark(int fd);
/* libfcgi closed fd. */
void	 conn_gone(int fd);
/* Pass every connection not parked to the slot's next worker. */
void	 conn_handover(int hand);

#endif
