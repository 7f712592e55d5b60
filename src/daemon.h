/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The supervisor's state (main.c) as its children inherit it across
 * fork, and what each child does first (child.c).  Each process has its
 * entry in its own file: worker_main (worker.c), mailer_main (mailer.c),
 * writer_main (writer.c), hooks_main (hook.c).
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <signal.h>

#include "conf.h"
#include "db.h"
#include "pg_uri.h"

/*
 * Directories a reload reads: held open (O_PATH) from the start, as root
 * when started as root, and read through, so that SIGHUP still works
 * after the privilege drop and inside Landlock when the daemon's user
 * cannot reach them by their paths (a checkout in root's home), and after
 * a file in them was replaced by a new one (rename over it, as editors
 * and configuration tools do).
 */
enum held { HELD_CONF, HELD_SHIPPED, HELD_TEMPLATES, HELD_PASSWORD,
    HELD__MAX };
/* Everything the supervisor keeps across children. */
struct daemon {
	int		 held[HELD__MAX];	/* -1: none */
	char		*held_path[HELD__MAX];
	const char	*conf_path;
	struct conf	 conf;
	unsigned char	 secret[32];
	char		*smtp_password;
	int		 sock;
	int		 wake[2];
	char		*sock_path;	/* unlinked at exit when we made it */
	/*
	 * The node's own files are named after node: the database's path
	 * on SQLite; on PostgreSQL (shared by the nodes), state_directory's
	 * "postgresql" (secret.key, postgresql.metrics, postgresql.lock).
	 * db_shown is the database as logs show it (no password).
	 */
	char		 node[4096];
	char		 db_shown[512];
	int		 db_ports[PG_URI_PORTS_MAX + 1];	/* PostgreSQL TCP */
	char		 db_dir[4096];
	int		 lock;		/* held by the pool while any lives */
	char		 sock_dir[4096];
	pid_t		*workers;
	time_t		*started;
	pid_t		 mailer;
	time_t		 mailer_started;
	pid_t		 writer;
	time_t		 writer_started;
	pid_t		 hooks;
	time_t		 hooks_started;
	int		(*chan)[2];	/* per worker: [0] writer, [1] worker */
	int		(*hand)[2];	/* per worker slot: [1] to its successor */
	int		(*verdict)[2];	/* per worker: [0] mailer, [1] worker */
	int		*verdict_fds;	/* the mailer's ends, for struct mailer */
};

enum role { ROLE_WORKER, ROLE_MAILER, ROLE_WRITER, ROLE_HOOKS };

/* Set by SIGTERM and SIGINT, in the supervisor as in its children. */
extern volatile sig_atomic_t got_term;

#define STOP_GRACE	30	/* seconds children get to finish */

/* ------------------------------------------------------------- start.c */

/*
 * The listening socket: handed over on fd 0 (spawn-fcgi, systemd
 * StandardInput=socket), by socket activation (LISTEN_FDS), or our own.
 */
int	 start_socket(struct daemon *);
/* Take DATABASE.lock, waiting for an earlier pool's children to end. */
void	 start_lock(struct daemon *);
/* Exit with the fix when the pool's user cannot use the database's dir. */
void	 start_reachable(const char *dir);

/* -------------------------------------------------------------- load.c */

/* The directory part of path ("." for none). */
void	 load_dir_of(const char *path, char *out, size_t outsz);
/*
 * Read the configuration (d->conf_path) into c, then the templates and
 * the SMTP password it names, holding their directories; -1 and err.
 */
int	 load_all(struct daemon *, struct conf *c, char *err, size_t errsz);

/* ------------------------------------------------------------- child.c */

/* Signals as every child wants them: blocked but where it waits. */
void	 child_signals(void);
/*
 * Whether SIGTERM or SIGINT waits, blocked: a child that is never in a
 * wait which delivers it (busy channels, SMTP or HTTP under way) looks
 * for a stop with this between two rounds.
 */
int	 child_term_pending(void);
/*
 * Landlock: the database directory; with connect (0-terminated ports),
 * also TLS, DNS and TCP connections to those ports (the mailer, hooks).
 */
void	 child_confine(struct daemon *, const char *role, const int connect[]);
/* The relay's port and webhook_ports, 0-terminated. */
void	 child_ports(const struct conf *, int out[]);
/* The supervisor's: the union of its children's and what reload reads. */
void	 daemon_confine(struct daemon *);
/* A connection to the database as every child sets it up. */
struct db *child_db(struct daemon *, const char *role, enum sync_mode);
/* Close the channel ends that are not the role's (and slot's). */
void	 child_channels(struct daemon *, enum role, int slot);

/* Each child process's entry; they never return. */
void	 worker_main(struct daemon *, int slot) __attribute__((noreturn));
void	 mailer_main(struct daemon *) __attribute__((noreturn));
void	 writer_main(struct daemon *) __attribute__((noreturn));
void	 hooks_main(struct daemon *) __attribute__((noreturn));

#endif
