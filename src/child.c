/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * What every child of the pool does first, whatever its role: its
 * signals, its Landlock rules, its database connection and the channel
 * ends it keeps.  Also the supervisor's own Landlock rules, the union of
 * its children's.
 */
#include <sys/types.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "conf.h"
#include "db.h"
#include "daemon.h"
#include "sandbox.h"
#include "webhook.h"

volatile sig_atomic_t got_term;

static void
on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

/* What the mailer reads to resolve, verify and load NSS modules. */
static const char *const mailer_ro[] = {
	"/etc/ssl", "/usr/lib/ssl", "/usr/share/ca-certificates",
	"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf",
	"/etc/host.conf", "/etc/ld.so.cache", "/etc/localtime", "/usr/lib",
	"/lib", "/lib64", "/dev/urandom",
#ifdef __SANITIZE_ADDRESS__
	"/proc",	/* LeakSanitizer reads /proc/self at exit */
#endif
	NULL
};

int
child_term_pending(void)
{
	sigset_t set;

	return sigpending(&set) == 0 && (sigismember(&set, SIGTERM) == 1 ||
	    sigismember(&set, SIGINT) == 1);
}

void
child_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	/* Blocked except where a process waits (accept, idle poll). */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_SETMASK, &set, NULL);
}

/*
 * Each child keeps read-write access to the database directory only; the
 * mailer and the webhook process (connect, their ports) also read what
 * TLS and name resolution need and may connect to those ports.  A
 * failure to confine is fatal: better no child than an unconfined one
 * that was meant to be confined.
 */
/*
 * The ports of connect (0-ended, or NULL) and PostgreSQL's over TCP, into
 * out; whether there is any.
 */
static int
child_connects(const struct daemon *d, const int connect[], int out[])
{
	size_t i, n = 0;

	for (i = 0; connect != NULL && connect[i] > 0; i++)
		out[n++] = connect[i];
	for (i = 0; d->db_ports[i] > 0; i++)
		out[n++] = d->db_ports[i];
	out[n] = 0;
	return n > 0 || connect != NULL;
}

void
child_confine(struct daemon *d, const char *role, const int connect[])
{
	const char *rw[] = { d->db_dir, NULL };
	/* mailer_ro, two certificate paths, NULL. */
	const char *ro[sizeof(mailer_ro) / sizeof(mailer_ro[0]) + 2];
	int ports[WEBHOOK_PORTS_MAX + 2 + PG_URI_PORTS_MAX];
	size_t i, n = 0;

	/*
	 * What connecting out needs (names resolved, TLS's roots): the
	 * mailer's and webhooks' relays, and PostgreSQL over TCP for all.
	 */
	if (child_connects(d, connect, ports)) {
		for (i = 0; mailer_ro[i] != NULL; i++)
			ro[n++] = mailer_ro[i];
		if (getenv("SSL_CERT_FILE") != NULL)
			ro[n++] = getenv("SSL_CERT_FILE");
		if (getenv("SSL_CERT_DIR") != NULL)
			ro[n++] = getenv("SSL_CERT_DIR");
	}
#ifdef __SANITIZE_ADDRESS__
	else
		ro[n++] = "/proc";
#endif
	ro[n] = NULL;
	if (sandbox_apply(role, rw, ro, ports) == -1)
		fatalx("%s: cannot confine itself", role);
}

/* The ports the pool connects to: the relay's, then webhook_ports. */
void
child_ports(const struct conf *c, int out[])
{
	out[0] = c->smtp_port;
	if (webhook_ports_parse(c->webhook_ports, out + 1) == -1)
		out[1] = 0;
}

/* The supervisor's own limits: the union of its children's and its own. */
void
daemon_confine(struct daemon *d)
{
	const char *rw[] = { d->db_dir, d->sock_path ? d->sock_dir : NULL,
	    NULL };
	const char *ro[sizeof(mailer_ro) / sizeof(mailer_ro[0]) + 8];
	int fds[HELD__MAX + 1], ports[WEBHOOK_PORTS_MAX + 2];
	int all[WEBHOOK_PORTS_MAX + 2 + PG_URI_PORTS_MAX];
	size_t i, n = 0, k = 0;

	for (i = 0; mailer_ro[i] != NULL; i++)
		ro[n++] = mailer_ro[i];
	/* What a reload reads: the directories held (hold_dir). */
	for (i = 0; i < HELD__MAX; i++)
		if (d->held[i] != -1)
			fds[k++] = d->held[i];
	fds[k] = -1;
	if (getenv("SSL_CERT_FILE") != NULL)
		ro[n++] = getenv("SSL_CERT_FILE");
	if (getenv("SSL_CERT_DIR") != NULL)
		ro[n++] = getenv("SSL_CERT_DIR");
	ro[n] = NULL;
	child_ports(&d->conf, ports);
	(void)child_connects(d, ports, all);
	if (sandbox_apply_fds("referral-invitesd", rw, ro, fds, all) == -1)
		fatalx("cannot confine the supervisor");
}

struct db *
child_db(struct daemon *d, const char *role, enum sync_mode sync)
{
	struct db *db;

	if ((db = db_open(d->conf.database, sync, 0)) == NULL)
		fatalx("%s: cannot open %s", role, d->db_shown);
	if (!db_schema_current(db))
		fatalx("%s: %s has an old schema: run referral-invitesctl "
		    "init", role, d->db_shown);
	if (db_shared(db))
		return db;	/* PostgreSQL: none of what follows */
	/*
	 * No automatic checkpoints: SQLite would run one inside every commit
	 * that finds the WAL over 1,000 pages, in the writer's with a batch
	 * of workers waiting for their answers, in a worker's with its
	 * client waiting.  A thread of the writer checkpoints instead, on
	 * a connection of its own, and the writer finishes a restart of the
	 * WAL between two batches (writer.c).
	 */
	if (db_exec(db, "PRAGMA wal_autocheckpoint = 0") == -1)
		fatalx("%s: cannot turn off automatic checkpoints", role);
	/*
	 * A WAL that a long read let grow is cut back to 256 MiB when it
	 * starts again (under load writer.c restarts it well before).
	 */
	if (db_exec(db, "PRAGMA journal_size_limit = 268435456") == -1)
		fatalx("%s: cannot limit the WAL's size", role);
	return db;
}

/*
 * A child keeps the channel ends of its own role and slot only: the
 * writer the writer's ends, the mailer the mailer's, a worker those of
 * its slot.
 */
void
child_channels(struct daemon *d, enum role role, int slot)
{
	int i;

	for (i = 0; i < d->conf.workers; i++) {
		if (role != ROLE_WRITER)
			close(d->chan[i][0]);
		if (role != ROLE_MAILER)
			close(d->verdict[i][0]);
		if (i != slot) {
			close(d->chan[i][1]);
			close(d->verdict[i][1]);
			close(d->hand[i][0]);
			close(d->hand[i][1]);
		}
	}
}

