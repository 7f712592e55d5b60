-- wrk script: POST distinct valid invites, one address per request, so
-- that neither the cooldown nor the duplicate check short-circuits.
-- Environment: BENCH_USERS_FILE (one inviter id a line), BENCH_KEY,
-- BENCH_CLIENT.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
	thread:set("tid", #threads)
	table.insert(threads, thread)
end

function init(args)
	wrk.method = "POST"
	users = {}
	for line in io.lines(os.getenv("BENCH_USERS_FILE")) do
		table.insert(users, line)
	end
	wrk.headers["Content-Type"] = "application/json"
	wrk.headers["X-API-KEY"] = os.getenv("BENCH_KEY")
	wrk.headers["X-CLIENT-ID"] = os.getenv("BENCH_CLIENT")
	wrk.headers["X-API-KEY-TYPE"] = "write"
	thread_id = tid
	math.randomseed(os.time() + tid)
	prefix = string.format("b%d-%d-%d", os.time(), tid, math.random(1, 1e9))
end

function request()
	counter = counter + 1
	local body = string.format('{"email":"%s-%d@bench.example","language":"de"}',
	    prefix, counter)
	local path = "/api/v1/users/" .. users[(counter % #users) + 1] ..
	    "/referral-invites"
	return wrk.format(nil, path, nil, body)
end

function done(summary, latency, requests)
	io.write(string.format("BENCH rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d non2xx=%d\n",
	    summary.requests / (summary.duration / 1e6),
	    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
	    summary.errors.connect + summary.errors.read + summary.errors.write +
	    summary.errors.timeout, summary.errors.status))
end
