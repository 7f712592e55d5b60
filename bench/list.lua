-- SPDX-License-Identifier: ISC
-- Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
-- wrk script: GET one inviter's invites (the first page, 20 rows) with the
-- key invite.lua uses; the request is built once, as plain.lua's.
wrk.method = "GET"
wrk.headers["X-API-KEY"] = os.getenv("BENCH_KEY")
wrk.headers["X-CLIENT-ID"] = os.getenv("BENCH_CLIENT")
wrk.headers["X-API-KEY-TYPE"] = "write"

function done(summary, latency, requests)
	io.write(string.format("BENCH rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d non2xx=%d\n",
	    summary.requests / (summary.duration / 1e6),
	    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
	    summary.errors.connect + summary.errors.read + summary.errors.write +
	    summary.errors.timeout, summary.errors.status))
end
