"""Overload and shutdown with the real daemon: a full queue answers 503 (or
429) with Retry-After at once and nothing crashes; a job past its deadline
is answered 503 timeout, waiting or computing; SIGTERM with requests in
flight answers every accepted request, turns readiness to 503 and exits 0.
Slow requests are mode=weights (every weight sampled per pass), up to
10000 passes: the daemons here raise max_samples_weights (SLOW_OK).
"""
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon  # noqa: E402

SLOW = "/predict?mode=weights&samples=%d"
SLOW_OK = ("--max-samples-weights", "10000")
_per_sample = None


def slow(seconds):
    """The path of a request that keeps one worker busy for about `seconds`
    on this machine and build (sanitizer builds are several times slower):
    calibrated once on a 1-worker daemon."""
    global _per_sample
    if _per_sample is None:
        png, _ = daemon.mnist_png(3)
        with daemon.Daemon("--workers", "1") as d:
            d.post_png(SLOW % 10, png)
            t0 = time.monotonic()
            st = d.post_png(SLOW % 40, png)[0]
            assert st == 200
            _per_sample = (time.monotonic() - t0) / 40
    return SLOW % max(5, min(10000, int(seconds / _per_sample)))


def fire(d, n, path, png, results, start_gap=0.0):
    """n concurrent POSTs on their own connections; results[i] = (status,
    headers, body) or the exception."""
    def one(i):
        try:
            results[i] = d.post_png(path, png)
        except Exception as e:  # noqa: BLE001 - recorded for the assertion
            results[i] = e
    threads = []
    for i in range(n):
        t = threading.Thread(target=one, args=(i,))
        t.start()
        threads.append(t)
        if start_gap:
            time.sleep(start_gap)
    return threads


def metric(d, name):
    text = d.get("/metrics")[2].decode()
    m = re.search(r"^%s (\d+)$" % name, text, re.M)
    return int(m.group(1))


def wait_for(cond, timeout=30):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in %s s" % timeout)
        time.sleep(0.02)


class OverloadTest(unittest.TestCase):
    def setUp(self):
        self.png, _ = daemon.mnist_png(3)

    def test_full_queue_503(self):
        with daemon.Daemon(*SLOW_OK, "--workers", "1", "--queue-depth", "1", "--retry-after", "2") as d:
            results = [None] * 12
            threads = fire(d, 12, slow(1.0), self.png, results)
            for t in threads:
                t.join(120)
            statuses = sorted(r[0] for r in results)
            self.assertIn(200, statuses)
            self.assertIn(503, statuses)
            self.assertEqual(set(statuses), {200, 503}, statuses)
            for st, h, body in results:
                if st == 503:
                    self.assertEqual(h["retry-after"], "2")
                    self.assertEqual(json.loads(body)["error"]["code"], "overloaded")
                else:
                    self.assertEqual(json.loads(body)["mode"], "weights")
            # Probes never wait behind inference, and the server goes on.
            self.assertEqual(d.get("/healthz")[0], 200)
            self.assertEqual(d.post_png("/predict?samples=5", self.png)[0], 200)
            self.assertGreaterEqual(metric(d, "bnn_jobs_rejected_total"), statuses.count(503))
            self.assertEqual(d.stop(), 0)

    def test_overload_status_429(self):
        with daemon.Daemon(*SLOW_OK, "--workers", "1", "--queue-depth", "1", "--overload-status", "429") as d:
            results = [None] * 8
            for t in fire(d, 8, slow(1.0), self.png, results):
                t.join(120)
            statuses = [r[0] for r in results]
            self.assertIn(429, statuses)
            self.assertEqual(set(statuses), {200, 429}, statuses)
            self.assertEqual(d.stop(), 0)

    def test_probe_while_busy(self):
        with daemon.Daemon(*SLOW_OK, "--workers", "1", "--queue-depth", "4", "--job-timeout-ms", "600000") as d:
            results = [None] * 3
            threads = fire(d, 3, slow(1.0), self.png, results)
            wait_for(lambda: metric(d, "bnn_workers_busy") == 1)
            t0 = time.monotonic()
            self.assertEqual(d.get("/readyz")[0], 200)
            self.assertEqual(d.get("/metrics")[0], 200)
            self.assertLess(time.monotonic() - t0, 0.5)
            for t in threads:
                t.join(120)
            self.assertEqual([r[0] for r in results], [200] * 3)

    def test_job_deadline(self):
        """job_timeout_ms bounds the wait and the compute: requests of about
        a second each are stopped at 300 ms (503 timeout, Retry-After) while
        a light one sent among them is answered."""
        with daemon.Daemon(*SLOW_OK, "--workers", "1", "--queue-depth", "8", "--job-timeout-ms", "300") as d:
            results = [None] * 3
            threads = fire(d, 3, slow(1.0), self.png, results, start_gap=0.05)
            st, _, body = d.post_png("/predict?samples=20", self.png)
            for t in threads:
                t.join(120)
            self.assertEqual(st, 200, body)
            self.assertEqual([r[0] for r in results], [503] * 3, results)
            for st, h, body in results:
                self.assertEqual(json.loads(body)["error"]["code"], "timeout")
                self.assertIn("retry-after", h)
            self.assertGreaterEqual(metric(d, "bnn_jobs_timed_out_total"), 3)
            self.assertEqual(d.stop(), 0)

    def test_clients_that_leave_while_queued(self):
        """Clients that hang up while their job waits or runs: the jobs are
        computed (MHD cannot see the hang-up while suspended), their answers
        go nowhere, and the server serves on and stops cleanly."""
        with daemon.Daemon(*SLOW_OK, "--workers", "1", "--queue-depth", "8") as d:
            path = slow(0.3)
            socks = []
            for _ in range(4):
                s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
                s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                           "Content-Length: %d\r\n\r\n" % (path, len(self.png))).encode() + self.png)
                socks.append(s)
            wait_for(lambda: metric(d, "bnn_queue_depth") >= 1)
            for s in socks:
                s.close()
            wait_for(lambda: metric(d, "bnn_queue_depth") == 0)
            self.assertEqual(d.get("/healthz")[0], 200)
            self.assertEqual(d.post_png("/predict?samples=5", self.png)[0], 200)
            self.assertEqual(d.stop(), 0)
            self.assertNotIn("still open at shutdown", d.log())


class DrainTest(unittest.TestCase):
    def setUp(self):
        self.png, _ = daemon.mnist_png(5)

    def test_sigterm_answers_accepted_requests(self):
        d = daemon.Daemon(*SLOW_OK, "--workers", "1", "--queue-depth", "16", "--drain-timeout", "600",
                          "--job-timeout-ms", "600000").start()
        try:
            keep = d.connection()  # opened before the signal, reused after it
            keep.request("GET", "/readyz")
            r = keep.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            results = [None] * 5
            threads = fire(d, 5, slow(0.4), self.png, results)
            wait_for(lambda: metric(d, "bnn_queue_depth") == 5)
            d.signal(signal.SIGTERM)
            time.sleep(0.2)
            keep.request("GET", "/readyz")
            r = keep.getresponse()
            self.assertEqual(r.status, 503)
            self.assertEqual(json.loads(r.read()), {"status": "draining"})
            keep.close()
            with self.assertRaises(OSError):  # no new connections
                socket.create_connection(("127.0.0.1", d.port), timeout=5).close()
                d.get("/healthz")
            for t in threads:
                t.join(120)
            self.assertEqual([r[0] for r in results], [200] * 5, results)
            self.assertEqual(d.proc.wait(60), 0)
        finally:
            d.stop()

    def test_drain_timeout_cancels_the_rest(self):
        d = daemon.Daemon(*SLOW_OK, "--workers", "1", "--queue-depth", "16", "--drain-timeout", "1").start()
        try:
            results = [None] * 8
            threads = fire(d, 8, slow(0.6), self.png, results)
            wait_for(lambda: metric(d, "bnn_queue_depth") == 8)
            d.signal(signal.SIGINT)
            for t in threads:
                t.join(120)
            statuses = [r[0] for r in results]
            self.assertIn(200, statuses)
            self.assertIn(503, statuses)
            self.assertEqual(set(statuses), {200, 503}, statuses)
            for st, h, body in results:
                if st == 503:
                    self.assertIn("shutting down", json.loads(body)["error"]["message"])
            self.assertEqual(d.proc.wait(60), 0)
        finally:
            d.stop()


if __name__ == "__main__":
    daemon.main()
