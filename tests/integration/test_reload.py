#!/usr/bin/env python3
"""Live model reload on the real daemon: SIGHUP and POST
/v2/repository/models/{name}/load re-read the configured model path.

* 20 reloads (SIGHUP and the load call, alternating between two weights
  files of the same shape, each swapped in with an atomic rename) while 64
  connections keep predicting (/predict and V2 infer): every answer is 200
  and names one of the two versions, /readyz stays 200 throughout, and the
  daemon's RSS over the last reloads is within a bound of what it was
  over the first ones (a leaked model would be ~10 MiB a reload).
* A request in flight finishes on the model it started with: its answer
  names the old version and equals a replay on the old model, while a
  request made after the swap gets the new one.
* SIGHUP with a good file swaps it in; with a corrupt file the old model
  keeps serving, the reason is logged and bnn_model_reloads_total{result=
  "failed"} counts it; SIGHUP never kills the daemon.
* The load call answers the version it loaded, 400 with the reason for a
  corrupt file or another architecture (old model serving), 404 for
  another model name; unload is refused; the index lists the model.
* model_version in every answer (/predict, /predict/batch, V2, /v1/model,
  bnn_model_info) is the first 12 hex digits of the file's sha256.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon  # noqa: E402
from daemon import Daemon, clean_env, make_model, mnist_png  # noqa: E402

NAME = "mnist-bnn"
LOAD = "/v2/repository/models/%s/load" % NAME
INFER = "/v2/models/%s/infer" % NAME
SLOW = os.environ.get("BNN_SANITIZER") is not None


def sha12(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def v2_body(png, params):
    head = json.dumps({"parameters": params, "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                                         "parameters": {"binary_data_size": 4 + len(png)}}],
                       "outputs": [{"name": "prediction"}]}).encode()
    return head + struct.pack("<I", len(png)) + png, {"Inference-Header-Content-Length": str(len(head)),
                                                      "Content-Type": "application/octet-stream"}


class Models:
    """A model path the daemon reads, and files to put there atomically."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="bnn-reload-")
        d = self.tmp.name
        self.path = os.path.join(d, "model.safetensors")
        self.a = os.path.join(d, "a.safetensors")
        shutil.copy(daemon.model_path(), self.a)
        # Another file of the same shape (a random model, bnn-mkmodel).
        self.b = make_model(os.path.join(d, "b.safetensors"), seed=11)
        self.other_shape = make_model(os.path.join(d, "small.safetensors"), seed=3, dims="784-64-10")
        with open(self.b, "rb") as f:
            good = f.read()
        self.corrupt = os.path.join(d, "corrupt.safetensors")
        with open(self.corrupt, "wb") as f:
            f.write(good[:len(good) // 2])  # truncated: the header promises more than there is
        self.version = {p: sha12(p) for p in (self.a, self.b)}
        self.put(self.a)

    def put(self, src):
        """Copies src over the served path with an atomic rename (how an
        operator should replace a model file)."""
        tmp = self.path + ".new"
        shutil.copyfile(src, tmp)
        os.replace(tmp, self.path)

    def cleanup(self):
        self.tmp.cleanup()


class Reload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = Models()
        cls.png = mnist_png(0)[0]
        cls.d = Daemon("--workers", "2", "--queue-depth", "256", name="test_reload", model=cls.m.path,
                       env=clean_env()).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.m.cleanup()
        if rc != 0:
            raise AssertionError("bnn-serve exited %s after SIGTERM" % rc)

    def setUp(self):
        self.serve(self.m.a)

    # -- helpers

    def version(self):
        return json.loads(self.d.get("/v1/model")[2])["model_version"]

    def load(self):
        status, hdrs, body = self.d.request("POST", LOAD, b"", {})
        self.assertEqual(hdrs.get("content-type"), "application/json")
        return status, json.loads(body)

    def serve(self, src):
        """src in place and loaded through the load call."""
        self.m.put(src)
        status, doc = self.load()
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc, {"model_name": NAME, "model_version": self.m.version[src]})

    def metric(self, pattern):
        m = re.search(pattern, self.d.get("/metrics")[2].decode())
        return int(m.group(1)) if m else None

    def wait(self, cond, what, timeout=120):
        deadline = time.time() + timeout  # a bound for a stuck daemon, not a timing check
        while time.time() < deadline:
            if cond():
                return
            time.sleep(0.02)
        self.fail("never happened: " + what)

    # -- the tests

    def test_1_reloads_under_load(self):
        """20 reloads, alternately SIGHUP and the load call, under 64
        connections: only 200s, /readyz 200 throughout, flat RSS."""
        stop = threading.Event()
        statuses, versions, ready = {}, set(), {}
        lock = threading.Lock()
        v2, v2_headers = v2_body(self.png, {"samples": 10})

        def client(i):
            c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=120)
            n = 0
            while not stop.is_set():
                if n % 2:
                    c.request("POST", INFER, v2, v2_headers)
                else:
                    c.request("POST", "/predict?samples=10", self.png, {"Content-Type": "image/png"})
                r = c.getresponse()
                body = r.read()
                version = json.loads(body[:int(r.getheader("Inference-Header-Content-Length") or len(body))]
                                     ).get("model_version") if r.status == 200 else None
                with lock:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    versions.add(version)
                n += 1
            c.close()

        def probe():
            while not stop.is_set():
                s = self.d.get("/readyz")[0]
                with lock:
                    ready[s] = ready.get(s, 0) + 1
                time.sleep(0.01)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(64)] + [threading.Thread(target=probe)]
        for t in threads:
            t.start()
        pid = self.d.proc.pid
        rss = []
        try:
            for i in range(20):
                src = self.m.b if i % 2 == 0 else self.m.a
                self.m.put(src)
                want = self.m.version[src]
                if i % 2 == 0:
                    self.d.signal(signal.SIGHUP)
                    self.wait(lambda: self.version() == want, "SIGHUP reload %d to %s" % (i, want))
                else:
                    status, doc = self.load()
                    self.assertEqual((status, doc["model_version"]), (200, want), doc)
                rss.append(rss_kib(pid))
                if i == 1:
                    time.sleep(1)  # load between the reloads too
        finally:
            stop.set()
            for t in threads:
                t.join(300)
        total = sum(statuses.values())
        print("\n64 connections, 20 reloads: %d answers %s, /readyz %s, RSS after each reload (MiB): %s" %
              (total, statuses, ready, " ".join("%.1f" % (k / 1024) for k in rss)))
        self.assertEqual(set(statuses), {200}, statuses)
        self.assertGreater(total, 64)
        self.assertEqual(set(ready), {200}, ready)
        self.assertLessEqual(versions, set(self.m.version.values()))
        self.assertEqual(len(versions), 2, "answers from both models")
        # Flat: each model is ~10 MiB in memory and the old one may still be
        # held by a request in flight when RSS is read, so samples swing
        # between one model and two. Flat means the low level (one model)
        # does not grow - the lowest of the last five reloads within 8 MiB
        # of the lowest of reloads 2-6 (leaking the models would add ~100
        # MiB) - and the high level stays at most one model above it. Under
        # ASan, freed memory waits in its quarantine (256 MiB), so RSS says
        # nothing there; LeakSanitizer checks the daemon at exit instead.
        if not SLOW:
            self.assertLess(min(rss[-5:]) - min(rss[1:6]), 8 * 1024, rss)
            self.assertLess(max(rss[1:]) - min(rss[1:]), 16 * 1024, rss)
        self.assertGreaterEqual(self.metric(r'bnn_model_reloads_total\{result="ok"\} (\d+)'), 20)

    def test_2_in_flight_finish_on_their_model(self):
        """A slow request started on A answers with A's version and numbers
        after B was loaded; a request after the swap is answered by B."""
        q = "/predict?mode=weights&samples=%d&seed=77" % (300 if SLOW else 1000)
        done = {}
        t = threading.Thread(target=lambda: done.update(r=self.d.post_png(q, self.png)))
        t.start()
        # in flight and computing (its blocks may run on both workers at once)
        self.wait(lambda: self.metric(r"(?m)^bnn_workers_busy (\d+)") >= 1, "the slow job running")
        self.m.put(self.m.b)
        status, doc = self.load()
        self.assertEqual((status, doc["model_version"]), (200, self.m.version[self.m.b]))
        after = json.loads(self.d.post_png("/predict?samples=5", self.png)[2])
        self.assertEqual(after["model_version"], self.m.version[self.m.b])
        t.join(600)
        status, _, body = done["r"]
        self.assertEqual(status, 200, body)
        slow = json.loads(body)
        self.assertEqual(slow["model_version"], self.m.version[self.m.a])
        # Replayed on A, the same answer: it was computed on A.
        self.serve(self.m.a)
        replay = json.loads(self.d.post_png(q, self.png)[2])
        self.assertEqual(replay["model_version"], self.m.version[self.m.a])
        self.assertEqual(replay["classes"], slow["classes"])

    def test_3_sighup_good_then_corrupt(self):
        ok0 = self.metric(r'bnn_model_reloads_total\{result="ok"\} (\d+)')
        failed0 = self.metric(r'bnn_model_reloads_total\{result="failed"\} (\d+)')
        self.m.put(self.m.b)
        self.d.signal(signal.SIGHUP)
        self.wait(lambda: self.version() == self.m.version[self.m.b], "the good file after SIGHUP")
        self.assertEqual(self.metric(r'bnn_model_reloads_total\{result="ok"\} (\d+)'), ok0 + 1)
        self.m.put(self.m.corrupt)
        self.d.signal(signal.SIGHUP)
        self.wait(lambda: self.metric(r'bnn_model_reloads_total\{result="failed"\} (\d+)') == failed0 + 1,
                  "the corrupt file counted")
        self.assertIsNone(self.d.proc.poll(), "SIGHUP killed the daemon")
        self.assertEqual(self.version(), self.m.version[self.m.b])  # still the good one
        self.assertEqual(self.d.get("/readyz")[0], 200)
        answer = json.loads(self.d.post_png("/predict?samples=5", self.png)[2])
        self.assertEqual(answer["model_version"], self.m.version[self.m.b])
        log = self.d.log()
        self.assertIn("SIGHUP: reloading the model", log)
        self.assertRegex(log, r"model reload failed: .*%s.*still serving version %s" %
                         (re.escape(self.m.path), self.m.version[self.m.b]))
        # Many at once: never fatal.
        for _ in range(5):
            self.d.signal(signal.SIGHUP)
        self.wait(lambda: self.metric(r'bnn_model_reloads_total\{result="failed"\} (\d+)') > failed0 + 1,
                  "the burst handled")
        self.assertIsNone(self.d.proc.poll())
        self.assertEqual(self.d.get("/healthz")[0], 200)

    def test_4_load_call(self):
        self.m.put(self.m.corrupt)
        status, doc = self.load()
        self.assertEqual(status, 400)
        self.assertRegex(doc["error"], r"^load failed: .*still serving version %s" % self.m.version[self.m.a])
        self.m.put(self.m.other_shape)
        status, doc = self.load()
        self.assertEqual(status, 400)
        self.assertIn("architecture 784-64-10 differs from the served 784-784-256-256-10", doc["error"])
        self.assertEqual(self.version(), self.m.version[self.m.a])
        self.m.put(self.m.b)
        for body, headers in ((b"{}", {"Content-Type": "application/json"}),
                              (b'{"parameters": {}}', {"Content-Type": "application/json"})):
            status, _, data = self.d.request("POST", LOAD, body, headers)
            self.assertEqual(status, 200, data)
        status, _, data = self.d.request("POST", LOAD, b'{"parameters": {"config": "{}"}}',
                                         {"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        self.assertIn("takes no parameters", json.loads(data)["error"])
        status, _, data = self.d.request("POST", "/v2/repository/models/other/load", b"", {})
        self.assertEqual(status, 404)
        self.assertIn("unknown model 'other'", json.loads(data)["error"])
        status, _, data = self.d.request("POST", "/v2/repository/models/%s/unload" % NAME, b"", {})
        self.assertEqual(status, 400)
        self.assertIn("keeps it loaded", json.loads(data)["error"])
        status, _, data = self.d.request("POST", "/v2/repository/models/other/unload", b"", {})
        self.assertEqual(status, 404)  # as openapi.yaml says: another name is unknown here too
        status, _, data = self.d.request("POST", "/v2/repository/index", b"", {})
        self.assertEqual((status, json.loads(data)),
                         (200, [{"name": NAME, "version": self.m.version[self.m.b], "state": "READY"}]))

    def test_5_model_version_everywhere(self):
        for src in (self.m.a, self.m.b):
            self.serve(src)
            want = sha12(self.m.path)
            self.assertEqual(want, self.m.version[src])
            one = json.loads(self.d.post_png("/predict?samples=5", self.png)[2])
            batch = json.loads(self.d.post_json("/predict/batch", {"images": [base64.b64encode(self.png).decode()] * 2,
                                                                   "samples": 5})[2])
            body, headers = v2_body(self.png, {"samples": 5})
            status, hdrs, data = self.d.request("POST", INFER, body, headers)
            self.assertEqual(status, 200, data)
            v2 = json.loads(data)  # its one output in JSON
            model = json.loads(self.d.get("/v1/model")[2])
            meta = json.loads(self.d.get("/v2/models/" + NAME)[2])
            metrics = self.d.get("/metrics")[2].decode()
            self.assertEqual(one["model_version"], want)
            self.assertEqual([r["model_version"] for r in batch["results"]], [want, want])
            self.assertEqual(v2["model_version"], want)
            self.assertEqual(model["model_version"], want)
            self.assertEqual(meta["versions"], [want])
            self.assertRegex(metrics, r'bnn_model_info\{[^}]*model_version="%s"\} 1' % want)


if __name__ == "__main__":
    daemon.main()
