/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesd: options, config, the privilege drop and the
 * supervisor that forks and restarts the workers, the writer, the
 * mailer and the webhook process (start.c opens the socket first).  No
 * business logic lives here.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "conf.h"
#include "template.h"
#include "db.h"
#include "token.h"
#include "daemon.h"
#include "sandbox.h"
#include "metrics.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define CONF_DEFAULT	SYSCONFDIR "/referral-invites/referral-invites.conf"

static volatile sig_atomic_t got_hup, got_chld;

static void
on_signal(int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		got_term = 1;
		break;
	case SIGHUP:
		got_hup = 1;
		break;
	case SIGCHLD:
		got_chld = 1;
		break;
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: referral-invitesd [-dt] [-c file]\n");
	exit(1);
}

static void
drop_privileges(const char *user)
{
	struct passwd *pw;

	if (geteuid() == 0) {
		if ((pw = getpwnam(user)) == NULL)
			fatalx("user %s: no such user", user);
		if (setgroups(1, &pw->pw_gid) == -1 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
			fatal("cannot drop privileges to %s", user);
		if (setuid(0) != -1)
			fatalx("privileges could be regained");
		/*
		 * libesmtp looks for client certificates under $HOME; root's
		 * would be unreadable now and make every STARTTLS fail.
		 */
		if (setenv("HOME", pw->pw_dir, 1) == -1)
			fatal("setenv");
		unsetenv("XDG_CONFIG_HOME");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
#ifndef __SANITIZE_ADDRESS__
	/*
	 * No core dumps and no ptrace by the same user: the processes hold
	 * the server secret and the relay's password.  (LeakSanitizer needs
	 * to trace itself, so sanitizer builds keep the default.)
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_DUMPABLE)");
#endif
}

static pid_t
spawn(struct daemon *d, enum role role, int slot)
{
	pid_t pid, parent = getpid();
	int i;

	switch (pid = fork()) {
	case -1:
		log_warn("fork");
		return -1;
	case 0:
		/*
		 * The supervisor's death stops its children as SIGTERM does
		 * (the request in flight is answered first): nothing of the
		 * pool serves on unsupervised.
		 */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) == -1 ||
		    getppid() != parent)
			_exit(1);
		/* Only the supervisor reloads. */
		for (i = 0; i < HELD__MAX; i++)
			if (d->held[i] != -1)
				close(d->held[i]);
		/* ps and top show each process's role. */
		prctl(PR_SET_NAME, role == ROLE_MAILER ? "ri-mailer" :
		    role == ROLE_WRITER ? "ri-writer" : role == ROLE_HOOKS ?
		    "ri-webhooks" : "ri-worker", 0, 0, 0);
		if (role == ROLE_MAILER)
			mailer_main(d);
		if (role == ROLE_WRITER)
			writer_main(d);
		if (role == ROLE_HOOKS)
			hooks_main(d);
		worker_main(d, slot);
	default:
		return pid;
	}
}

/* Start every child slot that is empty, slowly for ones dying young. */
static void
fill_slots(struct daemon *d)
{
	time_t now = time(NULL);
	int i, slept = 0;

	/* One pause a round however many died young (a reload: all). */
	for (i = 0; i < d->conf.workers; i++)
		if (d->workers[i] <= 0) {
			if (now - d->started[i] < 1 && !slept) {
				sleep(1);
				slept = 1;
			}
			d->started[i] = time(NULL);
			d->workers[i] = spawn(d, ROLE_WORKER, i);
		}
	if (d->mailer <= 0) {
		if (now - d->mailer_started < 1)
			sleep(1);
		d->mailer_started = time(NULL);
		d->mailer = spawn(d, ROLE_MAILER, 0);
		metrics_child(PART_MAILER, d->mailer > 0 ? d->mailer : 0);
	}
	if (d->writer <= 0) {
		if (now - d->writer_started < 1)
			sleep(1);
		d->writer_started = time(NULL);
		d->writer = spawn(d, ROLE_WRITER, 0);
		metrics_child(PART_WRITER, d->writer > 0 ? d->writer : 0);
	}
	if (d->hooks <= 0) {
		if (now - d->hooks_started < 1)
			sleep(1);
		d->hooks_started = time(NULL);
		d->hooks = spawn(d, ROLE_HOOKS, 0);
		metrics_child(PART_WEBHOOKS, d->hooks > 0 ? d->hooks : 0);
	}
}

static void
reap(struct daemon *d)
{
	pid_t pid;
	int i, status, died;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		died = !got_term && !(WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0);
		if (died)
			log_warnx("child %ld died (%s %d), restarting",
			    (long)pid, WIFSIGNALED(status) ? "signal" :
			    "status", WIFSIGNALED(status) ? WTERMSIG(status) :
			    WEXITSTATUS(status));
		if (pid == d->mailer) {
			d->mailer = 0;
			metrics_child(PART_MAILER, 0);
			if (died)
				metrics_add(M_RESTART_MAILER);
		}
		if (pid == d->writer) {
			d->writer = 0;
			metrics_child(PART_WRITER, 0);
			if (died)
				metrics_add(M_RESTART_WRITER);
		}
		if (pid == d->hooks) {
			d->hooks = 0;
			metrics_child(PART_WEBHOOKS, 0);
			if (died)
				metrics_add(M_RESTART_HOOKS);
		}
		for (i = 0; i < d->conf.workers; i++)
			if (pid == d->workers[i]) {
				d->workers[i] = 0;
				if (died)
					metrics_add(M_RESTART_WORKER);
			}
	}
}

static int
children_left(struct daemon *d)
{
	int i, n = (d->mailer > 0) + (d->writer > 0) + (d->hooks > 0);

	for (i = 0; i < d->conf.workers; i++)
		n += d->workers[i] > 0;
	return n;
}

static void
signal_children(struct daemon *d, int sig)
{
	int i;

	if (d->mailer > 0)
		kill(d->mailer, sig);
	if (d->writer > 0)
		kill(d->writer, sig);
	if (d->hooks > 0)
		kill(d->hooks, sig);
	for (i = 0; i < d->conf.workers; i++)
		if (d->workers[i] > 0)
			kill(d->workers[i], sig);
}

/* SIGTERM: children finish what they are doing; then we leave. */
static void
shutdown_children(struct daemon *d)
{
	time_t deadline = time(NULL) + STOP_GRACE;

	signal_children(d, SIGTERM);
	while (children_left(d) > 0 && time(NULL) < deadline) {
		usleep(50000);
		reap(d);
	}
	if (children_left(d) > 0) {
		log_warnx("children did not stop in %ds, killing them",
		    STOP_GRACE);
		signal_children(d, SIGKILL);
		while (children_left(d) > 0 && wait(NULL) > 0)
			reap(d);
	}
}

/*
 * SIGHUP: read config and templates again and replace the children; those
 * under way finish their request first.  A broken config changes nothing.
 */
static void
reload(struct daemon *d)
{
	struct conf c;
	char err[512];
	char *oldpw = d->smtp_password;

	d->smtp_password = NULL;
	if (load_all(d, &c, err, sizeof(err)) == -1) {
		log_errx("reload refused, the running configuration stays: "
		    "%s", err);
		d->smtp_password = oldpw;
		return;
	}
	if (strcmp(c.database, d->conf.database) != 0 ||
	    strcmp(c.listen, d->conf.listen) != 0 ||
	    strcmp(c.user, d->conf.user) != 0 || c.workers != d->conf.workers ||
	    c.smtp_port != d->conf.smtp_port ||
	    strcmp(c.webhook_ports, d->conf.webhook_ports) != 0)
		log_warnx("reload: database, listen, user, workers, smtp_port "
		    "and webhook_ports change only with a restart");
	free(c.database);
	c.database = d->conf.database;
	d->conf.database = NULL;
	free(c.listen);
	c.listen = d->conf.listen;
	d->conf.listen = NULL;
	/* The ports the start's Landlock rules allow (child_ports). */
	c.smtp_port = d->conf.smtp_port;
	free(c.webhook_ports);
	c.webhook_ports = d->conf.webhook_ports;
	d->conf.webhook_ports = NULL;
	c.workers = d->conf.workers;
	conf_free(&d->conf);
	d->conf = c;
	log_setlevel(c.log_level);
	if (oldpw != NULL)
		OPENSSL_cleanse(oldpw, strlen(oldpw));
	free(oldpw);
	signal_children(d, SIGTERM);
	log_info("configuration and templates reloaded");
}

static void
supervise(struct daemon *d)
{
	struct sigaction sa;
	sigset_t set, none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigemptyset(&none);
	while (!got_term) {
		fill_slots(d);
		sigsuspend(&none);
		if (got_chld) {
			got_chld = 0;
			reap(d);
		}
		if (got_hup) {
			got_hup = 0;
			reload(d);
		}
	}
	log_info("stopping");
	shutdown_children(d);
}

static void
daemon_free(struct daemon *d)
{
	int i;

	for (i = 0; i < HELD__MAX; i++) {
		if (d->held[i] != -1)
			close(d->held[i]);
		free(d->held_path[i]);
	}
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	if (d->smtp_password != NULL) {
		OPENSSL_cleanse(d->smtp_password, strlen(d->smtp_password));
		free(d->smtp_password);
	}
	free(d->workers);
	free(d->started);
	free(d->chan);
	free(d->hand);
	free(d->verdict);
	free(d->verdict_fds);
	free(d->sock_path);
	conf_free(&d->conf);
	tmpl_free();
}

int
main(int argc, char *argv[])
{
	struct daemon d;
	struct db *db;
	char err[512], fingerprint[65];
	int ch, foreground = 0, check = 0;

	memset(&d, 0, sizeof(d));
	for (ch = 0; ch < HELD__MAX; ch++)
		d.held[ch] = -1;
	d.conf_path = CONF_DEFAULT;
	while ((ch = getopt(argc, argv, "c:dt")) != -1)
		switch (ch) {
		case 'c':
			d.conf_path = optarg;
			break;
		case 'd':
			foreground = 1;
			break;
		case 't':
			check = 1;
			break;
		default:
			usage();
		}
	if (optind != argc)
		usage();
	log_init(1, LOG_LVL_INFO, "referral-invitesd");
	umask(027);
	if (load_all(&d, &d.conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "referral-invitesd: %s\n", err);
		daemon_free(&d);
		return 1;
	}
	if (check) {
		fprintf(stderr, "referral-invitesd: configuration OK\n");
		daemon_free(&d);
		return 0;
	}
	start_lock(&d);
	d.sock = start_socket(&d);
	/* daemon(3) points fd 0 at /dev/null: keep a handed-over socket. */
	if (!foreground && d.sock == 0 && (d.sock = dup(0)) == -1)
		fatal("dup");
	if (!foreground && daemon(0, 0) == -1)
		fatal("daemon");
	log_init(foreground, d.conf.log_level, "referral-invitesd");
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    d.wake) == -1)
		fatal("pipe");
	drop_privileges(d.conf.user);
	load_dir_of(d.node, d.db_dir, sizeof(d.db_dir));
	start_reachable(d.db_dir);
	if (d.sock_path != NULL)
		load_dir_of(d.sock_path, d.sock_dir, sizeof(d.sock_dir));
	daemon_confine(&d);
	/*
	 * Fail once, here, rather than in every child forever; on
	 * PostgreSQL, also when this node's secret.key is not the others'.
	 */
	db = child_db(&d, "referral-invitesd", d.conf.synchronous);
	token_secret_check(d.secret, fingerprint);
	if (db_secret_check(db, fingerprint, err, sizeof(err)) == -1)
		fatalx("%s/secret.key: %s", d.conf.state_directory, err);
	db_close(db);
	/* Counters and liveness, kept here across children (metrics.h). */
	if (metrics_create(d.node) == -1)
		fatal("%s.metrics", d.node);
	d.workers = calloc((size_t)d.conf.workers, sizeof(pid_t));
	d.started = calloc((size_t)d.conf.workers, sizeof(time_t));
	d.chan = calloc((size_t)d.conf.workers, sizeof(*d.chan));
	d.hand = calloc((size_t)d.conf.workers, sizeof(*d.hand));
	if (d.workers == NULL || d.started == NULL || d.chan == NULL ||
	    d.hand == NULL || (d.verdict = calloc((size_t)d.conf.workers,
	    sizeof(*d.verdict))) == NULL || (d.verdict_fds =
	    calloc((size_t)d.conf.workers, sizeof(int))) == NULL)
		fatal("calloc");
	for (ch = 0; ch < d.conf.workers; ch++)
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    d.chan[ch]) == -1 || socketpair(AF_UNIX, SOCK_DGRAM |
		    SOCK_CLOEXEC, 0, d.hand[ch]) == -1 ||
		    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
		    d.verdict[ch]) == -1)
			fatal("socketpair");
	for (ch = 0; ch < d.conf.workers; ch++)
		d.verdict_fds[ch] = d.verdict[ch][0];
	log_info("started: %d workers, a writer, a mailer and a webhook "
	    "process", d.conf.workers);
	supervise(&d);
	if (d.sock_path != NULL && unlink(d.sock_path) == -1)
		log_warn("unlink %s", d.sock_path);
	log_info("stopped");
	daemon_free(&d);
	return 0;
}
