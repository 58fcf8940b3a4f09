-- wrk script shared by `make bench` (tests/bench/http.sh) and `make load`
-- (tests/load/run.sh): POST the PNG at env BNN_PNG as image/png to the URL
-- wrk was given, count responses by status across threads, and print one
-- line "RESULT key=value ..." that the shell scripts parse.
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
    local total, parts = {}, {}
    for _, t in ipairs(threads) do
        for code, n in pairs(t:get("statuses")) do
            total[code] = (total[code] or 0) + n
        end
    end
    for code, n in pairs(total) do
        table.insert(parts, code .. "=" .. n)
    end
    table.sort(parts)
    local e = summary.errors
    io.write(string.format("RESULT rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d " ..
        "seconds=%.3f errors=%d errors_connect=%d errors_read=%d errors_timeout=%d statuses=%s\n",
        summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
        latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000, summary.requests,
        summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.timeout,
        table.concat(parts, ",")))
end
