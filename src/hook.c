/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * The webhook process: delivers the events of the outbox (db_hook.c) to
 * each app's webhook URL, signed the Standard Webhooks way (webhook.c),
 * up to HOOK_PARALLEL at once with libcurl's multi interface, in one
 * thread.  An event is taken for HOOK_LEASE seconds before its try, so
 * that one whose try was never recorded (this process killed) is tried
 * again: at least once, never lost.  Only this process makes HTTP
 * requests, so a slow receiver holds up nothing else.
 */
#include <sys/types.h>
#include <sys/resource.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "extern.h"
#include "log.h"
#include "conf.h"
#include "db.h"
#include "daemon.h"
#include "metrics.h"
#include "webhook.h"

#define HOOK_PARALLEL	8	/* tries at once */
#define HOOK_CONNECT	5	/* seconds to connect, TLS included */
#define HOOK_TIMEOUT	10	/* seconds a whole try may take */
#define HOOK_LEASE	(HOOK_TIMEOUT + 5)
#define HOOK_BODY_MAX	4096	/* of an answer read, the rest dropped */
#define HOOK_IDLE_MS	1000	/* between looks for events due */
#define HOOK_REPLY_MAX	200	/* of the answer kept in last_reply */
#define HOOK_NICE	10	/* its nice value above the pool's */
#define HOOK_KEEP	30	/* days an event is kept once done */

/* One try under way: its handle, headers and event. */
struct try {
	CURL			*h;
	struct curl_slist	*hdr;
	struct event		 ev;
	char			 body[HOOK_REPLY_MAX + 1];
	size_t			 got;	/* bytes of the answer's body */
	char			 err[CURL_ERROR_SIZE];
	int			 busy;
};

struct hooks {
	const struct conf	*conf;
	const unsigned char	*secret;	/* the server's */
	struct db		*db;
	CURLM			*multi;
	struct try		 tries[HOOK_PARALLEL];
	int			 busy;
	time_t			 purge;		/* the next purge */
};

/* The answer's body: its start kept for last_reply, never past the cap. */
static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct try *t = arg;
	size_t len = size * n, keep;

	if (t->got < HOOK_REPLY_MAX) {
		keep = HOOK_REPLY_MAX - t->got < len ? HOOK_REPLY_MAX - t->got :
		    len;
		memcpy(t->body + t->got, p, keep);
		t->body[t->got + keep] = '\0';
	}
	t->got += len;
	/* Past the cap: CURLE_WRITE_ERROR, and the status still counts. */
	return t->got > HOOK_BODY_MAX ? 0 : len;
}

/* What a try ended with, for last_reply: one line of printable ASCII. */
static void
reply_of(struct try *t, CURLcode rc, long code, char *out, size_t outsz)
{
	char *p;

	if (code != 0)
		snprintf(out, outsz, "HTTP %ld%s%s", code, t->body[0] ? " " :
		    "", t->body);
	else
		snprintf(out, outsz, "%s", t->err[0] ? t->err :
		    curl_easy_strerror(rc));
	for (p = out; *p != '\0'; p++)
		if (*p < ' ' || *p > '~')
			*p = ' ';
}

static void
try_free(struct hooks *hk, struct try *t)
{
	if (t->h != NULL) {
		curl_multi_remove_handle(hk->multi, t->h);
		curl_easy_cleanup(t->h);
	}
	curl_slist_free_all(t->hdr);
	free(t->ev.payload);
	free(t->ev.url);
	memset(t, 0, sizeof(*t));
	hk->busy--;
}

/*
 * Record the end of a try: delivered, or retried, or (final, or no time
 * left for another try) failed for good.
 */
static void
record(struct hooks *hk, struct try *t, int ok, int final, const char *reply)
{
	time_t now = time(NULL), next = now;
	const char *status = "delivered";

	if (!ok) {
		next = now + webhook_backoff(t->ev.attempts);
		status = final || next > t->ev.give_up ? "failed" : "pending";
	}
	/* Refused now, the event is tried again when its lease ends. */
	if (db_event_done(hk->db, &t->ev, status, reply, next, now) == -1) {
		log_warnx("webhook %s: cannot record its try", t->ev.id);
		return;
	}
	metrics_add(ok ? M_HOOK_DELIVERED : *status == 'f' ? M_HOOK_FAILED :
	    M_HOOK_RETRIED);
	if (ok)
		log_info("webhook %s to app %s delivered", t->ev.id,
		    t->ev.app);
	else
		log_warnx("webhook %s to app %s, try %d: %s%s", t->ev.id,
		    t->ev.app, t->ev.attempts, reply, *status == 'f' ?
		    "; no more tries" : "");
}

/* Append line to t's headers unless an append failed before. */
static void
header(struct try *t, const char *line, int *bad)
{
	struct curl_slist *l;

	if (*bad)
		return;
	if ((l = curl_slist_append(t->hdr, line)) == NULL)
		*bad = 1;
	else
		t->hdr = l;
}

/* The headers of one try, signed now; -1 when out of memory. */
static int
try_headers(struct hooks *hk, struct try *t)
{
	unsigned char key[32];
	char sig[WEBHOOK_SIG_LEN + 1], ts[24], line[160];
	int bad;

	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	bad = webhook_secret(hk->secret, t->ev.app, t->ev.generation,
	    key) == -1 || webhook_sign(key, t->ev.id, ts, t->ev.payload,
	    strlen(t->ev.payload), sig) == -1;
	OPENSSL_cleanse(key, sizeof(key));
	if (bad)
		return -1;
	header(t, "Content-Type: application/json", &bad);
	header(t, "User-Agent: referral-invites/" PACKAGE_VERSION, &bad);
	header(t, "Expect:", &bad);	/* no 100-continue round trip */
	snprintf(line, sizeof(line), "webhook-id: %s", t->ev.id);
	header(t, line, &bad);
	snprintf(line, sizeof(line), "webhook-timestamp: %s", ts);
	header(t, line, &bad);
	snprintf(line, sizeof(line), "webhook-signature: %s", sig);
	header(t, line, &bad);
	return bad ? -1 : 0;
}

/*
 * Start the try of ev in a free slot; the slot owns ev's strings.  An
 * event that cannot be sent as things are ends at once with the reason:
 * for good when the app has no URL now, as a failed try when the running
 * configuration refuses the URL (a restart with the new one may take it).
 */
static void
try_start(struct hooks *hk, struct event *ev)
{
	struct try *t;
	char why[WEBHOOK_WHY_MAX], reply[WEBHOOK_WHY_MAX + 32];
	int i;

	for (i = 0; hk->tries[i].busy; i++)
		;
	t = &hk->tries[i];
	t->ev = *ev;
	t->busy = 1;
	hk->busy++;
	if (t->ev.url == NULL || t->ev.generation < 1) {
		record(hk, t, 0, 1, "the app has no webhook URL");
		goto done;
	}
	if (webhook_url_check(t->ev.url, hk->conf->webhook_allow_http,
	    hk->conf->webhook_ports, why) == -1) {
		snprintf(reply, sizeof(reply), "webhook URL refused: %s", why);
		record(hk, t, 0, 0, reply);
		goto done;
	}
	if ((t->h = curl_easy_init()) == NULL || try_headers(hk, t) == -1) {
		record(hk, t, 0, 0, "out of memory");
		goto done;
	}
	curl_easy_setopt(t->h, CURLOPT_URL, t->ev.url);
	curl_easy_setopt(t->h, CURLOPT_PROTOCOLS_STR,
	    hk->conf->webhook_allow_http ? "http,https" : "https");
	curl_easy_setopt(t->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(t->h, CURLOPT_PROXY, "");
	curl_easy_setopt(t->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->h, CURLOPT_CONNECTTIMEOUT, (long)HOOK_CONNECT);
	curl_easy_setopt(t->h, CURLOPT_TIMEOUT, (long)HOOK_TIMEOUT);
	curl_easy_setopt(t->h, CURLOPT_POSTFIELDS, t->ev.payload);
	curl_easy_setopt(t->h, CURLOPT_POSTFIELDSIZE,
	    (long)strlen(t->ev.payload));
	curl_easy_setopt(t->h, CURLOPT_HTTPHEADER, t->hdr);
	curl_easy_setopt(t->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(t->h, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(t->h, CURLOPT_ERRORBUFFER, t->err);
	curl_easy_setopt(t->h, CURLOPT_PRIVATE, t);
	if (curl_multi_add_handle(hk->multi, t->h) != CURLM_OK) {
		record(hk, t, 0, 0, "cannot start the request");
		goto done;
	}
	return;
done:
	try_free(hk, t);
}

/* The tries curl says are over: each recorded, its slot freed. */
static void
try_finish(struct hooks *hk)
{
	CURLMsg *msg;
	struct try *t;
	char reply[HOOK_REPLY_MAX + CURL_ERROR_SIZE + 16];
	long code;
	int left;

	while ((msg = curl_multi_info_read(hk->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		t = NULL;
		code = 0;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&t);
		curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &code);
		reply_of(t, msg->data.result, code, reply, sizeof(reply));
		/* A 2xx whose long body was cut short still delivered. */
		record(hk, t, code >= 200 && code <= 299 &&
		    (msg->data.result == CURLE_OK ||
		    msg->data.result == CURLE_WRITE_ERROR), 0, reply);
		try_free(hk, t);
	}
}

/*
 * Start tries for the events due, as many as slots are free.  A read
 * first: the write lock is taken only when something is due.  Once an
 * hour, events done for HOOK_KEEP days are deleted.
 */
static void
take_due(struct hooks *hk)
{
	struct event *evs;
	time_t now = time(NULL), next;
	ssize_t n, i;

	if (now >= hk->purge) {
		if ((n = db_events_purge(hk->db, now - HOOK_KEEP * 86400)) > 0)
			log_info("webhooks: %zd events older than %d days "
			    "deleted", n, HOOK_KEEP);
		hk->purge = now + 3600;
	}
	if (hk->busy == HOOK_PARALLEL || (next = db_events_next(hk->db)) == 0 ||
	    next > now)
		return;
	n = db_events_take(hk->db, now, HOOK_LEASE,
	    (size_t)(HOOK_PARALLEL - hk->busy), &evs);
	if (n == -1) {
		log_warnx("webhooks: cannot read the events due");
		return;
	}
	for (i = 0; i < n; i++)
		try_start(hk, &evs[i]);
	free(evs);
}

static void
hooks_run(struct hooks *hk)
{
	time_t stop = 0;
	int running, i;

	while (hk->busy > 0 || stop == 0) {
		/* At least once a HOOK_IDLE_MS: its poll's timeout. */
		metrics_beat(PART_WEBHOOKS);
		if (stop == 0 && (got_term || child_term_pending()))
			stop = time(NULL) + HOOK_TIMEOUT;
		if (stop == 0)
			take_due(hk);
		if (stop != 0 && time(NULL) > stop)
			break;
		curl_multi_perform(hk->multi, &running);
		try_finish(hk);
		if (hk->busy > 0 || stop == 0)
			curl_multi_poll(hk->multi, NULL, 0, HOOK_IDLE_MS, NULL);
	}
	/* Left undone at the deadline: tried again when the lease ends. */
	for (i = 0; i < HOOK_PARALLEL; i++)
		if (hk->tries[i].busy)
			try_free(hk, &hk->tries[i]);
}

void
hooks_main(struct daemon *d)
{
	struct hooks hk;
	int ports[WEBHOOK_PORTS_MAX + 2], prio;

	child_signals();
	close(d->sock);
	close(d->wake[0]);
	close(d->wake[1]);
	child_channels(d, ROLE_HOOKS, -1);
	memset(&hk, 0, sizeof(hk));
	hk.conf = &d->conf;
	hk.secret = d->secret;
	/* No answer ever waits for a webhook: it takes what the pool leaves. */
	errno = 0;
	prio = getpriority(PRIO_PROCESS, 0);
	if (errno != 0 || setpriority(PRIO_PROCESS, 0, prio + HOOK_NICE > 19 ?
	    19 : prio + HOOK_NICE) == -1)
		log_warn("webhooks: cannot lower its priority");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("webhooks: cannot start libcurl");
	child_ports(&d->conf, ports);
	child_confine(d, "webhooks", ports + 1);
	/* Its commits only move events along, as the mailer's do. */
	hk.db = child_db(d, "webhooks", SYNC_NORMAL);
	if ((hk.multi = curl_multi_init()) == NULL)
		fatalx("webhooks: cannot start libcurl");
	hooks_run(&hk);
	curl_multi_cleanup(hk.multi);
	curl_global_cleanup();
	db_close(hk.db);
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	_exit(0);
}
