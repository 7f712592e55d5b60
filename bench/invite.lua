-- SPDX-License-Identifier: ISC
-- Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
-- wrk script: POST distinct valid invites, one address per request, so
-- that neither the cooldown nor the duplicate check short-circuits.
-- Environment: BENCH_USERS_FILE (one inviter id a line), BENCH_KEY,
-- BENCH_CLIENT.  Counts the 201 answers that said "Invite sent" (the
-- mailer's verdict came within delivery_wait) and "Invite queued".
--
-- Each request is one concatenation of constant parts: wrk.format would
-- format every header again for every request, and the client shares the
-- two cores with what it measures (plain.lua's request is built once).
local counter = 0
local threads = {}
local paths = {}
local head, prefix
-- Per thread (thread:get reads a thread's globals); summed in done().
sent, queued = 0, 0

function setup(thread)
	thread:set("tid", #threads)
	table.insert(threads, thread)
end

function init(args)
	for line in io.lines(os.getenv("BENCH_USERS_FILE")) do
		table.insert(paths, "POST /api/v1/users/" .. line ..
		    "/referral-invites HTTP/1.1\r\n")
	end
	head = "Host: " .. wrk.host .. ":" .. wrk.port .. "\r\n" ..
	    "Content-Type: application/json\r\n" ..
	    "X-API-KEY: " .. os.getenv("BENCH_KEY") .. "\r\n" ..
	    "X-CLIENT-ID: " .. os.getenv("BENCH_CLIENT") .. "\r\n" ..
	    "X-API-KEY-TYPE: write\r\n" ..
	    "Content-Length: "
	math.randomseed(os.time() + tid)
	prefix = string.format('{"email":"b%d-%d-%d-', os.time(), tid,
	    math.random(1, 1e9))
end

function request()
	counter = counter + 1
	local body = prefix .. counter .. '@bench.example","language":"de"}'
	return paths[(counter % #paths) + 1] .. head .. #body .. "\r\n\r\n" ..
	    body
end

function response(status, headers, body)
	if status ~= 201 then
		return
	end
	if string.find(body, "Invite sent", 1, true) then
		sent = sent + 1
	elseif string.find(body, "Invite queued", 1, true) then
		queued = queued + 1
	end
end

function done(summary, latency, requests)
	local s, q = 0, 0
	for _, t in ipairs(threads) do
		s = s + t:get("sent")
		q = q + t:get("queued")
	end
	io.write(string.format("BENCH rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d non2xx=%d sent=%d queued=%d\n",
	    summary.requests / (summary.duration / 1e6),
	    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
	    summary.errors.connect + summary.errors.read + summary.errors.write +
	    summary.errors.timeout, summary.errors.status, s, q))
end
