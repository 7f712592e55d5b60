-- SPDX-License-Identifier: ISC
-- Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
-- wrk script for the baseline: the same request shape, answered by nginx.
wrk.method = os.getenv("BENCH_METHOD") or "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"friend@bench.example","language":"de"}'

function done(summary, latency, requests)
	io.write(string.format("BENCH rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d non2xx=%d\n",
	    summary.requests / (summary.duration / 1e6),
	    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
	    summary.errors.connect + summary.errors.read + summary.errors.write +
	    summary.errors.timeout, summary.errors.status))
end
