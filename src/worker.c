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
	struct req *r;
	int answers;

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
	while (invite_parked() > 0) {
		(void)poll(&(struct pollfd){ ctx->commit_fd, POLLIN, 0 }, 1,
		    commit_next_ms());
		invite_resume(ctx);
	}
}
