-- Replays a request plan written by bench/plans.py: wrk -s plan.lua URL -- PLAN OFFSET NONCE THREADS
--
-- Plan lines (tab-separated): "T <token>" declares access token n (1-based, in order);
-- "R <method> <token n or 0> <path> <body>" is a request. Each "{{id}}" in a body becomes a fresh
-- random UUID, so every write is a first write (201), never a retry. Thread t of T takes lines
-- OFFSET + t-1, + T, + 2T, ...; a line used twice (the plan wrapped) is counted, so the runner can
-- tell when a plan was too short.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local requests = {}
local start, nthreads = 0, 1
sent, wrapped = 0, 0

local function r16()
  return math.random(0, 0xffff)
end

local function uuid4()
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
    r16(), r16(), r16(), math.random(0, 0xfff), 0x8000 + math.random(0, 0x3fff), r16(), r16(), r16())
end

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

function init(args)
  local offset, nonce = tonumber(args[2]), tonumber(args[3])
  nthreads = tonumber(args[4])
  start = offset + tid - 1
  math.randomseed(nonce + tid * 7919)
  local tokens = {}
  for line in io.lines(args[1]) do
    local f = split(line)
    if f[1] == "T" then
      table.insert(tokens, f[2])
    elseif f[1] == "R" then
      local headers = { ["Content-Type"] = "application/json" }
      local token = tonumber(f[3])
      if token > 0 then
        headers["Authorization"] = "Bearer " .. tokens[token]
      end
      local body = f[5] ~= "" and f[5] or nil
      table.insert(requests, {
        method = f[2], path = f[4], headers = headers, body = body,
        templated = body ~= nil and body:find("{{id}}", 1, true) ~= nil,
      })
    end
  end
end

function request()
  local index = start + sent * nthreads
  if index >= #requests then
    wrapped = wrapped + 1
  end
  sent = sent + 1
  local r = requests[(index % #requests) + 1]
  local body = r.body
  if r.templated then
    body = body:gsub("{{id}}", uuid4)
  end
  return wrk.format(r.method, r.path, r.headers, body)
end

function done(summary, latency, _)
  local most, wraps = 0, 0
  for _, thread in ipairs(threads) do
    most = math.max(most, thread:get("sent"))
    wraps = wraps + thread:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"p999":%d},' ..
    '"most_sent_by_a_thread":%d,"wrapped":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9),
    most, wraps))
end
