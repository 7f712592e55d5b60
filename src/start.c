/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * What the supervisor does once, as root, before it drops privileges
 * and forks: the listening socket, the lock that makes one pool per
 * database, and the check that the database's directory is reachable.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "daemon.h"

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
int
start_socket(struct daemon *d)
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

/*
 * The database's directory, as the user the pool runs as: a path below a
 * directory that user may not enter (a checkout in root's home) is named
 * with the fix, not left to fail later as "cannot open".
 */
void
start_reachable(const char *dir)
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

/*
 * One pool per database: an flock on DATABASE.lock, taken by the
 * supervisor and inherited by every child, so that a new instance never
 * serves beside the children of an earlier one that are still finishing
 * (its supervisor killed, say).  They stop on their supervisor's death
 * (spawn); this waits for them as long as they may take.
 */
void
start_lock(struct daemon *d)
{
	struct passwd *pw;
	char path[4200];
	time_t deadline = time(NULL) + STOP_GRACE + 10;
	int said = 0;

	snprintf(path, sizeof(path), "%s.lock", d->node);
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
			    d->db_shown, path);
		if (!said++)
			log_warnx("waiting for the processes of an earlier "
			    "referral-invitesd on %s to finish",
			    d->db_shown);
		usleep(100000);
	}
}
