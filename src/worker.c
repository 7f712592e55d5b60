/*
 * A worker process's loop: the next request of any connection it holds,
 * dispatched by route.c and answered (or parked, and answered when what
 * it waits for comes); on a stop, parked invites are answered before the
 * connections go to the successor.
 */
#include <poll.h>
#include <signal.h>

#include "extern.h"
#include "api.h"

void
worker_run(struct ctx *ctx)
{
	struct pollfd pfd[2];
	struct req *r;
	int answers, i;

	for (;;) {
		if ((r = fcgi_accept(ctx->stopping, &answers)) != NULL) {
			route_dispatch(ctx, r);
			if (!fcgi_parked(r))
				fcgi_finish(r);
		} else if (answers)
			invite_resume(ctx);
		else
			break;
	}
	/*
	 * Those waiting for a verdict at once ("Invite queued"), those with
	 * the writer once it has answered.
	 */
	invite_resume(ctx);
	pfd[0].fd = ctx->commit_fd;
	pfd[1].fd = ctx->verdict_fd;
	pfd[0].events = pfd[1].events = POLLIN;
	while (invite_parked() > 0) {
		/*
		 * The loop may also end on an error, not a stop: verdicts
		 * and deadlines still come.  A channel whose other end is
		 * gone is watched no longer (it would return at once).
		 */
		if (poll(pfd, 2, invite_next_ms()) > 0)
			for (i = 0; i < 2; i++)
				if (pfd[i].revents & (POLLHUP | POLLERR))
					pfd[i].fd = -1;
		invite_resume(ctx);
	}
}
