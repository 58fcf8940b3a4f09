-- wrk script: POST a PNG (path in env BNN_PNG) to the URL wrk was given and
-- count responses by HTTP status across all threads. done() prints one line
-- "statuses: 200=N 503=M ..." that tests/load/run.sh parses.
local f = assert(io.open(os.getenv("BNN_PNG"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/png"

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    statuses = {}
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local total = {}
    for _, t in ipairs(threads) do
        for code, n in pairs(t:get("statuses")) do
            total[code] = (total[code] or 0) + n
        end
    end
    local parts = {}
    for code, n in pairs(total) do
        table.insert(parts, code .. "=" .. n)
    end
    table.sort(parts)
    io.write(string.format("statuses: %s\n", table.concat(parts, " ")))
    io.write(string.format("summary: requests=%d seconds=%.3f rps=%.1f p50_ms=%.2f p99_ms=%.2f " ..
        "errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d\n",
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
