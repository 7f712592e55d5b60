/*
 * referral-invitesd: options, config, the socket, the privilege drop and
 * the supervisor that forks and restarts the FastCGI workers and the
 * mailer.  No business logic lives here.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "extern.h"
#include "api.h"
#include "db.h"
#include "mailer.h"
#include "sandbox.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef TEMPLATEDIR
#define TEMPLATEDIR "/usr/share/referral-invites/templates"
#endif
#define CONF_DEFAULT	SYSCONFDIR "/referral-invites/referral-invites.conf"
#define STOP_GRACE	30	/* seconds children get to finish */
#define MAILER_NICE	10	/* the mailer's nice value above the pool's */

static volatile sig_atomic_t got_term, got_hup, got_chld;

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
static const char *const held_what[HELD__MAX] = { "the configuration",
    "the shipped templates", "templates_dir", "smtp_password_file" };

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
	char		 db_dir[4096];
	int		 lock;		/* held by the pool while any lives */
	char		 sock_dir[4096];
	pid_t		*workers;
	time_t		*started;
	pid_t		 mailer;
	time_t		 mailer_started;
	pid_t		 writer;
	time_t		 writer_started;
	int		(*chan)[2];	/* per worker: [0] writer, [1] worker */
	int		(*hand)[2];	/* per worker slot: [1] to its successor */
	int		(*verdict)[2];	/* per worker: [0] mailer, [1] worker */
	int		*verdict_fds;	/* the mailer's ends, for struct mailer */
	int		 shared[2];	/* connections any worker may take */
};

enum role { ROLE_WORKER, ROLE_MAILER, ROLE_WRITER };

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
dir_of(const char *path, char *out, size_t outsz)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, outsz, ".");
	else if (slash == path)
		snprintf(out, outsz, "/");
	else
		snprintf(out, outsz, "%.*s", (int)(slash - path), path);
}

static void
usage(void)
{
	fprintf(stderr, "usage: referral-invitesd [-dt] [-c file]\n");
	exit(1);
}

/*
 * The directory dir held as which: opened now the first time, the same
 * descriptor while dir stays the same; -1 with the reason in err when a
 * reload names another one (only a restart can open that).
 */
static int
hold_dir(struct daemon *d, enum held which, const char *dir, char *err,
    size_t errsz)
{
	if (d->held_path[which] != NULL) {
		if (strcmp(d->held_path[which], dir) == 0)
			return d->held[which];
		snprintf(err, errsz, "%s moved to %s (from %s): that takes a "
		    "restart", held_what[which], dir, d->held_path[which]);
		return -1;
	}
	if ((d->held[which] = open(dir, O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		snprintf(err, errsz, "%s: %s (%s)", dir, strerror(errno),
		    held_what[which]);
		return -1;
	}
	if ((d->held_path[which] = strdup(dir)) == NULL) {
		snprintf(err, errsz, "out of memory");
		close(d->held[which]);
		d->held[which] = -1;
		return -1;
	}
	return d->held[which];
}

/* The held directory of file path, as which; -1 with err set. */
static int
hold_dir_of(struct daemon *d, enum held which, const char *path, char *err,
    size_t errsz)
{
	char dir[4096];

	dir_of(path, dir, sizeof(dir));
	return hold_dir(d, which, dir, err, errsz);
}

/* The SMTP password file: must exist and not be world-readable. */
static char *
read_password(int dfd, const char *path, char *err, size_t errsz)
{
	const char *base = strrchr(path, '/');
	char buf[512];
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = openat(dfd, base ? base + 1 : path, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || (st.st_mode & (S_IWGRP | S_IRWXO))) {
		snprintf(err, errsz, "%s: must not be group-writable or "
		    "world-accessible", path);
		close(fd);
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		snprintf(err, errsz, "%s: empty", path);
		return NULL;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

/* The templates: shipped, then the operator's over them. */
static int
load_templates(struct daemon *d, const struct conf *c, char *err,
    size_t errsz)
{
	int shipped, over = -1;

	if (c->templates_dir != NULL && (over = hold_dir(d, HELD_TEMPLATES,
	    c->templates_dir, err, errsz)) == -1)
		return -1;
	/* Run from the build tree, the operator's directory is the set. */
	if (d->held_path[HELD_SHIPPED] != NULL || access(TEMPLATEDIR,
	    F_OK) == 0 || c->templates_dir == NULL) {
		if ((shipped = hold_dir(d, HELD_SHIPPED, TEMPLATEDIR, err,
		    errsz)) == -1)
			return -1;
		return tmpl_load_at(shipped, TEMPLATEDIR, over,
		    c->templates_dir, err, errsz);
	}
	return tmpl_load_at(over, c->templates_dir, -1, NULL, err, errsz);
}

/* Config, templates and secrets; -1 with the reason in err. */
static int
load_all(struct daemon *d, struct conf *c, char *err, size_t errsz)
{
	int dfd;

	if ((dfd = hold_dir_of(d, HELD_CONF, d->conf_path, err,
	    errsz)) == -1 || conf_load_at(c, dfd, d->conf_path, 1, err,
	    errsz) == -1)
		return -1;
	if (conf_check_system(c, d->conf_path, err, errsz) == -1)
		goto fail;
	if (load_templates(d, c, err, errsz) == -1)
		goto fail;
	if (!tmpl_has(c->default_language)) {
		snprintf(err, errsz, "no template for default_language %s",
		    c->default_language);
		goto fail;
	}
	if (token_secret_load(c->database, 0, d->secret, err, errsz) == -1)
		goto fail;
	if (c->smtp_password_file != NULL && ((dfd = hold_dir_of(d,
	    HELD_PASSWORD, c->smtp_password_file, err, errsz)) == -1 ||
	    (d->smtp_password = read_password(dfd, c->smtp_password_file,
	    err, errsz)) == NULL))
		goto fail;
	return 0;
fail:
	conf_free(c);
	return -1;
}

static int
listen_unix(struct daemon *d, const char *path)
{
	struct sockaddr_un sun;
	struct group *gr;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		fatalx("%s: socket path too long", path);
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	if (unlink(path) == -1 && errno != ENOENT)
		fatal("unlink %s", path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("bind %s", path);
	if (chmod(path, d->conf.socket_mode) == -1)
		fatal("chmod %s", path);
	if (geteuid() == 0) {
		if ((gr = getgrnam(d->conf.socket_group)) == NULL)
			fatalx("socket_group %s: no such group",
			    d->conf.socket_group);
		if (chown(path, 0, gr->gr_gid) == -1)
			fatal("chown %s", path);
	}
	d->sock_path = strdup(path);
	return fd;
}

static int
listen_tcp(const char *spec)
{
	struct addrinfo hints, *res;
	char host[256], *colon;
	int fd, on = 1;

	snprintf(host, sizeof(host), "%s", spec);
	if ((colon = strrchr(host, ':')) == NULL)
		fatalx("listen %s: expected a path or host:port", spec);
	*colon = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		fatalx("listen %s: cannot resolve", spec);
	if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1)
		fatal("bind %s", spec);
	freeaddrinfo(res);
	return fd;
}

/*
 * The listening socket: handed over on fd 0 (spawn-fcgi, systemd
 * StandardInput=socket), by socket activation (LISTEN_FDS), or our own.
 */
static int
open_socket(struct daemon *d)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int fd, acc = 0;
	socklen_t len = sizeof(acc);

	if (pid != NULL && fds != NULL && atol(pid) == (long)getpid() &&
	    atoi(fds) >= 1) {
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		return 3;
	}
	if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc)
		return 0;
	if (d->conf.listen[0] == '/')
		fd = listen_unix(d, d->conf.listen);
	else
		fd = listen_tcp(d->conf.listen);
	if (listen(fd, 1024) == -1)
		fatal("listen");
	return fd;
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

/*
 * The database's directory, as the user the pool runs as: a path below a
 * directory that user may not enter (a checkout in root's home) is named
 * with the fix, not left to fail later as "cannot open".
 */
static void
check_reachable(const char *dir)
{
	struct passwd *pw = getpwuid(geteuid());
	const char *user = pw != NULL ? pw->pw_name : "?";

	if (access(dir, R_OK | W_OK | X_OK) == 0)
		return;
	fatalx("%s: not reachable as user %s (%s): the database's directory "
	    "must be that user's (chown %s %s) and every directory above it "
	    "searchable (chmod o+x, or move the database)", dir, user,
	    strerror(errno), user, dir);
}

static void
child_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
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
 * mailer also reads what TLS and name resolution need and may connect to
 * the relay's port.  A failure to confine is fatal: better no child than
 * an unconfined one that was meant to be confined.
 */
static void
confine(struct daemon *d, const char *role, int mailer)
{
	const char *rw[] = { d->db_dir, NULL };
	/* mailer_ro, two certificate paths, NULL. */
	const char *ro[sizeof(mailer_ro) / sizeof(mailer_ro[0]) + 2];
	size_t i, n = 0;

	if (mailer) {
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
	if (sandbox_apply(role, rw, ro, mailer ? d->conf.smtp_port : 0) == -1)
		fatalx("%s: cannot confine itself", role);
}

/* The supervisor's own limits: the union of its children's and its own. */
static void
confine_supervisor(struct daemon *d)
{
	const char *rw[] = { d->db_dir, d->sock_path ? d->sock_dir : NULL,
	    NULL };
	const char *ro[sizeof(mailer_ro) / sizeof(mailer_ro[0]) + 8];
	int fds[HELD__MAX + 1];
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
	if (sandbox_apply_fds("referral-invitesd", rw, ro, fds,
	    d->conf.smtp_port) == -1)
		fatalx("cannot confine the supervisor");
}

/*
 * One pool per database: an flock on DATABASE.lock, taken by the
 * supervisor and inherited by every child, so that a new instance never
 * serves beside the children of an earlier one that are still finishing
 * (its supervisor killed, say).  They stop on their supervisor's death
 * (spawn); this waits for them as long as they may take.
 */
static void
lock_instance(struct daemon *d)
{
	struct passwd *pw;
	char path[4200];
	time_t deadline = time(NULL) + STOP_GRACE + 10;
	int said = 0;

	snprintf(path, sizeof(path), "%s.lock", d->conf.database);
	if ((d->lock = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) == -1)
		fatal("%s", path);
	/* Made by root, it is the daemon user's like the database. */
	if (geteuid() == 0 && (pw = getpwnam(d->conf.user)) != NULL &&
	    fchown(d->lock, pw->pw_uid, pw->pw_gid) == -1)
		fatal("chown %s", path);
	while (flock(d->lock, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK)
			fatal("flock %s", path);
		if (time(NULL) >= deadline)
			fatalx("processes of another referral-invitesd still "
			    "use %s (fuser -v %s shows them): stop them first",
			    d->conf.database, path);
		if (!said++)
			log_warnx("waiting for the processes of an earlier "
			    "referral-invitesd on %s to finish",
			    d->conf.database);
		usleep(100000);
	}
}

static struct db *
child_db(struct daemon *d, const char *role, enum sync_mode sync)
{
	struct db *db;

	if ((db = db_open(d->conf.database, sync, 0)) == NULL)
		fatalx("%s: cannot open %s", role, d->conf.database);
	if (!db_schema_current(db))
		fatalx("%s: %s has an old schema: run referral-invitesctl "
		    "init", role, d->conf.database);
	/*
	 * No automatic checkpoints: SQLite would run one inside every commit
	 * that finds the WAL over 1,000 pages, in the writer's with a batch
	 * of workers waiting for their answers, in a worker's with its
	 * client waiting.  A thread of the writer checkpoints instead, on
	 * a connection of its own, and the writer finishes a restart of the
	 * WAL between two batches (commit.c).
	 */
	if (db_exec(db, "PRAGMA wal_autocheckpoint = 0") == -1)
		fatalx("%s: cannot turn off automatic checkpoints", role);
	/*
	 * A WAL that a long read let grow is cut back to 256 MiB when it
	 * starts again (under load it peaks below 200 MiB: commit.c).
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
static void
close_channels(struct daemon *d, enum role role, int slot)
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
	if (slot == -1) {
		close(d->shared[0]);
		close(d->shared[1]);
	}
}

static void __attribute__((noreturn))
worker_main(struct daemon *d, int slot)
{
	struct ctx ctx;

	child_signals();
	/*
	 * A worker hashes, computes HMACs and verifies signatures; it never
	 * speaks TLS, so openssl.cnf (the system's TLS policy) is not for
	 * it, and loading it costs each worker half a megabyte.
	 */
	if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1)
		fatalx("worker: cannot initialise OpenSSL");
	close(d->wake[0]);
	close_channels(d, ROLE_WORKER, slot);
	memset(&ctx, 0, sizeof(ctx));
	ctx.conf = &d->conf;
	confine(d, "worker", 0);
	ctx.db = child_db(d, "worker", d->conf.synchronous);
	/*
	 * Every invite the writer commits empties a worker's page cache, so
	 * a big one buys nothing: 1 MiB (not 2) keeps a worker small.
	 */
	if (db_exec(ctx.db, "PRAGMA cache_size = -1024") == -1)
		fatalx("worker: cannot size the page cache");
	/* Keys, apps and inviters: rows nearly every request reads. */
	if (db_cache_enable(ctx.db) == -1)
		fatalx("worker: out of memory");
	memcpy(ctx.secret, d->secret, sizeof(ctx.secret));
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	ctx.wake_fd = d->wake[1];
	ctx.commit_fd = d->chan[slot][1];
	if (commit_channel(ctx.commit_fd) == -1)
		fatal("worker: SO_RCVTIMEO");
	ctx.stopping = &got_term;
	ctx.verdict_fd = d->verdict[slot][1];
	if (fcgi_init(d->sock, d->hand[slot][0], d->shared,
	    ctx.commit_fd) != 0 || fcgi_watch(ctx.verdict_fd,
	    invite_next_ms) != 0)
		fatal("worker: FastCGI");
	worker_run(&ctx);
	fcgi_handover(d->hand[slot][1]);
	db_close(ctx.db);
	OPENSSL_cleanse(ctx.secret, sizeof(ctx.secret));
	_exit(0);
}

static void __attribute__((noreturn))
mailer_main(struct daemon *d)
{
	struct mailer ml;
	int i, prio;

	child_signals();
	close(d->sock);
	close(d->wake[1]);
	close_channels(d, ROLE_MAILER, -1);
	memset(&ml, 0, sizeof(ml));
	ml.conf = &d->conf;
	/*
	 * Sending yields to answering: when the workers and the writer need
	 * both cores, the mailer (and the SMTP server it feeds, when that
	 * is on this host) takes what they leave, and catches up once the
	 * burst is over.  Idle cores still run it at full speed.
	 */
	errno = 0;
	prio = getpriority(PRIO_PROCESS, 0);
	if (errno != 0 || setpriority(PRIO_PROCESS, 0,
	    prio + MAILER_NICE > 19 ? 19 : prio + MAILER_NICE) == -1)
		log_warn("mailer: cannot lower its priority");
	confine(d, "mailer", 1);
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

static void __attribute__((noreturn))
writer_main(struct daemon *d)
{
	struct db *db, *ckdb;
	int *fds, i;

	child_signals();
	close(d->sock);
	close(d->wake[0]);
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	if ((fds = calloc((size_t)d->conf.workers, sizeof(int))) == NULL)
		fatal("calloc");
	close_channels(d, ROLE_WRITER, -1);
	for (i = 0; i < d->conf.workers; i++)
		fds[i] = d->chan[i][0];
	confine(d, "writer", 0);
	db = child_db(d, "writer", d->conf.synchronous);
	ckdb = child_db(d, "writer", d->conf.synchronous);
	commit_run(db, ckdb, fds, d->conf.workers, d->wake[1], &got_term);
	db_close(ckdb);
	db_close(db);
	free(fds);
	_exit(0);
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
		    role == ROLE_WRITER ? "ri-writer" : "ri-worker", 0, 0, 0);
		if (role == ROLE_MAILER)
			mailer_main(d);
		if (role == ROLE_WRITER)
			writer_main(d);
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
	}
	if (d->writer <= 0) {
		if (now - d->writer_started < 1)
			sleep(1);
		d->writer_started = time(NULL);
		d->writer = spawn(d, ROLE_WRITER, 0);
	}
}

static void
reap(struct daemon *d)
{
	pid_t pid;
	int i, status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (!got_term && !(WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0))
			log_warnx("child %ld died (%s %d), restarting",
			    (long)pid, WIFSIGNALED(status) ? "signal" :
			    "status", WIFSIGNALED(status) ? WTERMSIG(status) :
			    WEXITSTATUS(status));
		if (pid == d->mailer)
			d->mailer = 0;
		if (pid == d->writer)
			d->writer = 0;
		for (i = 0; i < d->conf.workers; i++)
			if (pid == d->workers[i])
				d->workers[i] = 0;
	}
}

static int
children_left(struct daemon *d)
{
	int i, n = (d->mailer > 0) + (d->writer > 0);

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
	    strcmp(c.user, d->conf.user) != 0 || c.workers != d->conf.workers)
		log_warnx("reload: database, listen, user and workers change "
		    "only with a restart");
	free(c.database);
	c.database = d->conf.database;
	d->conf.database = NULL;
	free(c.listen);
	c.listen = d->conf.listen;
	d->conf.listen = NULL;
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
	char err[512];
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
	lock_instance(&d);
	d.sock = open_socket(&d);
	/* daemon(3) points fd 0 at /dev/null: keep a handed-over socket. */
	if (!foreground && d.sock == 0 && (d.sock = dup(0)) == -1)
		fatal("dup");
	if (!foreground && daemon(0, 0) == -1)
		fatal("daemon");
	log_init(foreground, d.conf.log_level, "referral-invitesd");
	if (pipe2(d.wake, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("pipe");
	drop_privileges(d.conf.user);
	dir_of(d.conf.database, d.db_dir, sizeof(d.db_dir));
	check_reachable(d.db_dir);
	if (d.sock_path != NULL)
		dir_of(d.sock_path, d.sock_dir, sizeof(d.sock_dir));
	confine_supervisor(&d);
	/* Fail once, here, rather than in every child forever. */
	db_close(child_db(&d, "referral-invitesd", d.conf.synchronous));
	d.workers = calloc((size_t)d.conf.workers, sizeof(pid_t));
	d.started = calloc((size_t)d.conf.workers, sizeof(time_t));
	d.chan = calloc((size_t)d.conf.workers, sizeof(*d.chan));
	d.hand = calloc((size_t)d.conf.workers, sizeof(*d.hand));
	if (d.workers == NULL || d.started == NULL || d.chan == NULL ||
	    d.hand == NULL || (d.verdict = calloc((size_t)d.conf.workers,
	    sizeof(*d.verdict))) == NULL || (d.verdict_fds =
	    calloc((size_t)d.conf.workers, sizeof(int))) == NULL)
		fatal("calloc");
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, d.shared) == -1)
		fatal("socketpair");
	for (ch = 0; ch < d.conf.workers; ch++)
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    d.chan[ch]) == -1 || socketpair(AF_UNIX, SOCK_DGRAM |
		    SOCK_CLOEXEC, 0, d.hand[ch]) == -1 ||
		    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
		    d.verdict[ch]) == -1)
			fatal("socketpair");
	for (ch = 0; ch < d.conf.workers; ch++)
		d.verdict_fds[ch] = d.verdict[ch][0];
	log_info("started: %d workers, a writer and a mailer",
	    d.conf.workers);
	supervise(&d);
	if (d.sock_path != NULL && unlink(d.sock_path) == -1)
		log_warn("unlink %s", d.sock_path);
	log_info("stopped");
	daemon_free(&d);
	return 0;
}
