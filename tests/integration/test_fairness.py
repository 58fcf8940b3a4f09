"""Fair scheduling and cost-aware admission on the real daemon (order and
completion, never absolute times; speed is `make bench`'s):

* heavy weights-mode requests (the costliest accepted: T = max_samples_weights)
  in flight on every worker, light T = 100 requests sent meanwhile are all
  answered 200, each before the heavy ones finish - none refused, none
  waiting for them (a FIFO queue would answer them last);
* admission by cost: heavy requests fill queue_cost and the next heavy one
  is refused at once (503, Retry-After) while a light one still gets in; a
  request that could never fit, and weights mode above its samples limit,
  are 400 with a precise message;
* job_timeout_ms bounds compute: a heavy request past it is stopped between
  two blocks (503 timeout, part of its passes computed) while light
  requests beside it are answered, and the worker serves on.
"""
import base64
import json
import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon  # noqa: E402

HEAVY = "/predict?mode=weights&samples=1000&seed=%d"  # the default max_samples_weights
LIGHT = "/predict?samples=100&seed=%d"


def metric(d, name):
    text = d.get("/metrics")[2].decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1))


def wait_for(cond, timeout=60):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in %s s" % timeout)
        time.sleep(0.005)


class Caller(threading.Thread):
    """Sends one request; records its answer and when it completed (a
    sequence number shared by all callers, so tests compare order)."""
    lock = threading.Lock()
    seq = 0

    def __init__(self, d, path, png):
        super().__init__()
        self.d, self.path, self.png = d, path, png
        self.result, self.done_at = None, None

    def run(self):
        try:
            self.result = self.d.post_png(self.path, self.png)
        except Exception as e:  # noqa: BLE001 - recorded for the assertion
            self.result = e
        with Caller.lock:
            Caller.seq += 1
            self.done_at = Caller.seq


class FairnessTest(unittest.TestCase):
    def setUp(self):
        self.png, _ = daemon.mnist_png(7)

    def test_light_requests_pass_heavy_ones(self):
        with daemon.Daemon("--workers", "2", name="test_fairness_light") as d:
            heavy = [Caller(d, HEAVY % i, self.png) for i in range(2)]
            for h in heavy:
                h.start()
            wait_for(lambda: metric(d, "bnn_queue_depth") == 2)  # both heavy ones in flight
            light = []
            for i in range(10):  # one after the other, as a client would
                c = Caller(d, LIGHT % i, self.png)
                c.start()
                c.join(60)
                light.append(c)
            for h in heavy:
                h.join(120)
            for c in light:
                st, h, body = c.result
                self.assertEqual(st, 200, body)
                self.assertEqual(json.loads(body)["samples"], 100)
            for h in heavy:
                st, _, body = h.result
                self.assertEqual(st, 200, body)
                self.assertEqual(json.loads(body)["mode"], "weights")
            last_light = max(c.done_at for c in light)
            first_heavy = min(h.done_at for h in heavy)
            self.assertLess(last_light, first_heavy,
                            "a light request finished after a heavy one: %s" %
                            [(c.path, c.done_at) for c in light + heavy])
            self.assertEqual(metric(d, "bnn_jobs_rejected_total"), 0)
            text = d.get("/metrics")[2].decode()
            self.assertRegex(text, r'\nbnn_samples_total\{mode="weights"\} 2000\n')
            self.assertRegex(text, r'\nbnn_samples_total\{mode="lrt"\} 1000\n')
            self.assertEqual(d.stop(), 0)

    def test_admission_by_cost(self):
        # 1 worker; a weights pass counts 46 lrt passes, so one heavy request
        # costs 46000 and two fit in queue_cost = 100000; a light one's share
        # is 100000 / 64 = 1562.
        with daemon.Daemon("--workers", "1", "--queue-cost", "100000", "--weights-pass-cost", "46",
                           "--retry-after", "3", name="test_fairness_cost") as d:
            heavy = [Caller(d, HEAVY % i, self.png) for i in range(2)]
            for h in heavy:
                h.start()
            wait_for(lambda: metric(d, "bnn_queue_depth") == 2)
            self.assertGreater(metric(d, "bnn_queue_cost"), 46000)
            self.assertEqual(metric(d, "bnn_queue_cost_capacity"), 100000)
            st, h, body = d.post_png(HEAVY % 9, self.png)
            self.assertEqual(st, 503, body)
            self.assertEqual(h["retry-after"], "3")
            err = json.loads(body)["error"]
            self.assertEqual(err["code"], "overloaded")
            self.assertIn("queue_cost = 100000, and this request costs 46000", err["message"])
            st, _, body = d.post_png(LIGHT % 9, self.png)  # within its share: admitted
            self.assertEqual(st, 200, body)
            for h in heavy:
                h.join(120)
                self.assertEqual(h.result[0], 200, h.result[2])
            self.assertGreaterEqual(metric(d, "bnn_jobs_rejected_total"), 1)
            # Never admissible: 400 at once, whatever the load.
            batch = {"images": [base64.b64encode(self.png).decode()] * 3,
                     "mode": "weights", "samples": 1000}
            st, _, body = d.post_json("/predict/batch", batch)
            self.assertEqual(st, 400, body)
            self.assertIn("costs 138000 lrt passes (3 image(s) x 1000 samples x 46 for mode=weights), "
                          "above queue_cost = 100000", json.loads(body)["error"]["message"])
            st, _, body = d.post_png("/predict?mode=weights&samples=1001", self.png)
            self.assertEqual(st, 400, body)
            err = json.loads(body)["error"]
            self.assertEqual(err["code"], "invalid_parameter")
            self.assertIn("samples: expected 1..1000 for mode=weights (max_samples_weights), got 1001",
                          err["message"])
            self.assertEqual(d.stop(), 0)

    def test_deadline_stops_compute(self):
        # 4 x 1000 weights passes: seconds of one core on any machine here,
        # far past the 300 ms deadline.
        with daemon.Daemon("--workers", "1", "--job-timeout-ms", "300", name="test_fairness_deadline") as d:
            b64 = base64.b64encode(self.png).decode()
            heavy = {"images": [b64] * 4, "mode": "weights", "samples": 1000}
            result = {}
            t = threading.Thread(target=lambda: result.update(r=d.post_json("/predict/batch", heavy)))
            t.start()
            wait_for(lambda: metric(d, "bnn_queue_depth") == 1)
            light = [d.post_png(LIGHT % i, self.png) for i in range(3)]  # beside it
            t.join(120)
            for st, _, body in light:
                self.assertEqual(st, 200, body)
            st, h, body = result["r"]
            self.assertEqual(st, 503, body)
            self.assertIn("retry-after", h)
            err = json.loads(body)["error"]
            self.assertEqual(err["code"], "timeout")
            self.assertIn("job_timeout_ms = 300", err["message"])
            self.assertIn("stopped", err["message"])
            text = d.get("/metrics")[2].decode()
            weights = int(re.search(r'\nbnn_samples_total\{mode="weights"\} (\d+)\n', text).group(1))
            self.assertGreater(weights, 0)
            self.assertLess(weights, 4000)  # stopped between blocks, the rest dropped
            self.assertEqual(metric(d, "bnn_jobs_timed_out_total"), 1)
            # the worker was freed: nothing in flight, and it serves on
            wait_for(lambda: metric(d, "bnn_queue_depth") == 0 and metric(d, "bnn_queue_cost") == 0)
            self.assertEqual(d.post_png(LIGHT % 7, self.png)[0], 200)
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    daemon.main()
