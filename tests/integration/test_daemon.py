"""The real bnn-serve over real sockets: every endpoint, every input form,
every error status, determinism, concurrency. Real MNIST test digits as PNGs
in every colour type, bit depth and interlacing; the shipped weights when
present (prediction accuracy is then checked), else a random model.
"""
import base64
import json
import time
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon  # noqa: E402

ORIGIN = "https://digits.example"


class DaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = daemon.Daemon("--workers", "2", "--cors-origins", ORIGIN + ", http://localhost:3000",
                              "--max-samples", "5000", "--log-format", "json").start()
        cls.png7, cls.label7 = daemon.mnist_png(0)  # a 7

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        assert rc == 0, "daemon exit status %s\n%s" % (rc, cls.d.log())

    # --- helpers ---------------------------------------------------------
    def predict(self, query="", png=None, **kw):
        st, h, body = self.d.post_png("/predict" + query, png or self.png7, **kw)
        self.assertEqual(st, 200, body)
        self.assertEqual(h["content-type"], "application/json")
        return json.loads(body)

    def assertError(self, resp, status, code):
        st, h, body = resp
        self.assertEqual(st, status, body)
        doc = json.loads(body)
        self.assertEqual(set(doc), {"error"})
        self.assertEqual(doc["error"]["code"], code, doc)
        self.assertTrue(doc["error"]["message"])
        self.assertIn("x-request-id", h)
        return doc["error"]["message"], h

    def check_prediction(self, doc, samples, seed=None, interval=0.95, mode="lrt"):
        self.assertEqual(set(doc), {"prediction", "samples", "interval", "seed", "model_version", "mode",
                                    "preprocessing", "classes", "uncertainty", "uncertain", "uncertain_reasons",
                                    "prediction_set", "set_coverage", "timing_ms"})
        self.assertRegex(doc["model_version"], r"^[0-9a-f]{12}$")
        self.assertEqual(doc["samples"], samples)
        self.assertAlmostEqual(doc["interval"], interval)
        self.assertEqual(doc["mode"], mode)
        if seed is not None:
            self.assertEqual(doc["seed"], seed)
        self.assertTrue(0 <= doc["seed"] <= 2 ** 53 - 1)
        self.assertEqual([c["label"] for c in doc["classes"]], list(range(10)))
        means = [c["mean"] for c in doc["classes"]]
        self.assertAlmostEqual(sum(means), 1.0, places=4)
        self.assertEqual(doc["prediction"], means.index(max(means)))
        for c in doc["classes"]:
            # The mean may lie outside a quantile interval (a skewed class
            # probability), but the interval is ordered and within [0, 1].
            self.assertLessEqual(0, c["lower"])
            self.assertLessEqual(c["lower"], c["upper"])
            self.assertLessEqual(c["upper"], 1)
            self.assertTrue(0 <= c["mean"] <= 1)
            self.assertGreaterEqual(c["std"], 0)
        u = doc["uncertainty"]
        self.assertAlmostEqual(u["entropy"], u["aleatoric"] + u["epistemic"], places=6)
        self.assertGreaterEqual(u["epistemic"], -1e-9)
        self.assertIsInstance(doc["uncertain"], bool)
        # uncertain exactly when there is a reason, each reason named once
        self.assertEqual(doc["uncertain"], bool(doc["uncertain_reasons"]))
        self.assertLessEqual(set(doc["uncertain_reasons"]), {"no_digit", "entropy", "epistemic"})
        self.assertEqual(len(set(doc["uncertain_reasons"])), len(doc["uncertain_reasons"]))
        if doc["prediction_set"] is not None:
            self.assertEqual(doc["prediction_set"], sorted(set(doc["prediction_set"])))
            self.assertTrue(all(0 <= k <= 9 for k in doc["prediction_set"]))
            self.assertIn(doc["set_coverage"], (0.9, 0.95, 0.99))
        self.assertEqual(set(doc["timing_ms"]), {"decode", "queue", "compute"})
        self.assertGreater(doc["timing_ms"]["compute"], 0)

    # --- operations endpoints ------------------------------------------------
    def test_healthz_readyz(self):
        for path in ("/healthz", "/readyz"):
            st, h, body = self.d.get(path)
            self.assertEqual(st, 200)
            self.assertEqual(json.loads(body), {"status": "ok"})
            self.assertRegex(h["x-request-id"], r"^[0-9a-f]{16}$")

    def test_head(self):
        st, h, body = self.d.request("HEAD", "/healthz")
        self.assertEqual((st, body), (200, b""))

    def test_metrics(self):
        self.predict("?samples=7&seed=1")
        st, h, body = self.d.get("/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        for name in ("bnn_requests_total", "bnn_request_duration_seconds_bucket", "bnn_queue_depth",
                     "bnn_workers_busy", "bnn_samples_total", "bnn_model_info", "bnn_build_info"):
            self.assertIn("\n" + name, "\n" + text)
        self.assertRegex(text, r'bnn_requests_total\{route="predict",status="200"\} [1-9]')
        self.assertRegex(text, r'bnn_model_info\{architecture="784-784-256-256-10",parameters="1769524"')
        samples = int(text.split('\nbnn_samples_total{mode="lrt"} ')[1].split()[0])
        self.assertGreaterEqual(samples, 7)
        self.assertRegex(text, r'\nbnn_blocks_total\{mode="lrt"\} [1-9]')
        self.assertRegex(text, r'\nbnn_queue_cost_capacity 1000000\n')
        self.assertIn("bnn_workers 2\n", text)
        # Every sample line is "name{labels} value" or "name value".
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$')

    def test_model(self):
        st, h, body = self.d.get("/v1/model")
        self.assertEqual(st, 200)
        doc = json.loads(body)
        self.assertEqual(doc["parameters"], 1769524)
        self.assertEqual(doc["architecture"], "784-784-256-256-10")
        self.assertEqual(doc["metadata"]["format"], "bnn-serve/1")
        self.assertEqual(doc["defaults"], {"samples": 100, "interval": 0.95, "mode": "lrt"})
        self.assertEqual(doc["limits"]["max_samples"], 5000)

    def test_openapi(self):
        st, h, body = self.d.get("/openapi.yaml")
        self.assertEqual(st, 200)
        self.assertIn("yaml", h["content-type"])
        with open(os.path.join(daemon.ROOT, "openapi.yaml"), "rb") as f:
            self.assertEqual(body, f.read())

    def test_static(self):
        st, h, body = self.d.get("/")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertEqual(h["cache-control"], "no-cache")
        with open(os.path.join(daemon.ROOT, "service", "web", "index.html"), "rb") as f:
            self.assertEqual(body, f.read())
        for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css")):
            if os.path.exists(os.path.join(daemon.ROOT, "service", "web", name)):
                st, h, body = self.d.get("/" + name)
                self.assertEqual(st, 200)
                self.assertTrue(h["content-type"].startswith(ctype))
                self.assertIn("max-age", h["cache-control"])

    def test_path_traversal(self):
        for path in ("/../openapi.yaml", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/.git/config",
                     "/..%2fMakefile", "//etc/passwd", "/app.js/../../Makefile"):
            st, h, body = self.d.get(path)
            self.assertEqual(st, 404, path)
            self.assertEqual(json.loads(body)["error"]["code"], "not_found")

    # --- routing errors ------------------------------------------------------------
    def test_not_found(self):
        self.assertError(self.d.get("/nope"), 404, "not_found")
        self.assertError(self.d.post_png("/predict/nope", self.png7), 404, "not_found")

    def test_method_not_allowed(self):
        _, h = self.assertError(self.d.get("/predict"), 405, "method_not_allowed")
        self.assertEqual(h["allow"], "POST, OPTIONS")
        _, h = self.assertError(self.d.request("DELETE", "/metrics"), 405, "method_not_allowed")
        self.assertEqual(h["allow"], "GET, HEAD, OPTIONS")
        _, h = self.assertError(self.d.post_png("/index.html", self.png7), 405, "method_not_allowed")
        self.assertEqual(h["allow"], "GET, HEAD, OPTIONS")
        _, h = self.assertError(self.d.request("PUT", "/predict", body=self.png7,
                                               headers={"Content-Type": "image/png"}), 405, "method_not_allowed")
        self.assertEqual(h["allow"], "POST, OPTIONS")
        # A GET that carries a (small) body is still answered.
        self.assertEqual(self.d.request("GET", "/healthz", body=b"x" * 100)[0], 200)

    # --- request ids and CORS ---------------------------------------------------------
    def test_request_id(self):
        st, h, _ = self.d.get("/healthz", headers={"X-Request-Id": "abc-123_x.y"})
        self.assertEqual(h["x-request-id"], "abc-123_x.y")
        st, h, _ = self.d.post_png("/predict?samples=3", self.png7, headers={"X-Request-Id": "pred-1"})
        self.assertEqual((st, h["x-request-id"]), (200, "pred-1"))
        for bad in ("x" * 65, "has space", ""):
            st, h, _ = self.d.get("/healthz", headers={"X-Request-Id": bad})
            self.assertRegex(h["x-request-id"], r"^[0-9a-f]{16}$", bad)
        ids = {self.d.get("/healthz")[1]["x-request-id"] for _ in range(20)}
        self.assertEqual(len(ids), 20)
        self.assertIn('"request_id":"pred-1"', self.d.log())

    def test_cors(self):
        st, h, _ = self.d.get("/healthz", headers={"Origin": ORIGIN})
        self.assertEqual(h["access-control-allow-origin"], ORIGIN)
        self.assertEqual(h["vary"], "Origin")
        self.assertNotIn("access-control-allow-credentials", h)
        st, h, _ = self.d.post_png("/predict?samples=2", self.png7, headers={"Origin": "http://localhost:3000"})
        self.assertEqual((st, h["access-control-allow-origin"]), (200, "http://localhost:3000"))
        st, h, _ = self.d.get("/healthz", headers={"Origin": "https://evil.example"})
        self.assertFalse([k for k in h if k.startswith("access-control")], h)
        st, h, body = self.d.request("OPTIONS", "/predict", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(st, 204)
        self.assertEqual(h["access-control-allow-origin"], ORIGIN)
        self.assertIn("POST", h["access-control-allow-methods"])
        self.assertIn("Content-Type", h["access-control-allow-headers"])
        st, h, body = self.d.request("OPTIONS", "/predict", headers={"Origin": "https://evil.example"})
        self.assertEqual(st, 204)
        self.assertNotIn("access-control-allow-origin", h)
        self.assertError(self.d.request("OPTIONS", "/nope"), 404, "not_found")

    # --- input forms ----------------------------------------------------------------------
    def test_raw_png(self):
        doc = self.predict("?samples=50&seed=42&interval=0.9")
        self.check_prediction(doc, 50, 42, 0.9)
        self.assertEqual(doc["preprocessing"], "none")

    def test_defaults_and_random_seed(self):
        a, b = self.predict(), self.predict()
        self.check_prediction(a, 100)
        self.assertNotEqual(a["seed"], b["seed"])

    def test_multipart(self):
        body, ctype = daemon.multipart([("samples", None, b"30"), ("image", "seven.png", self.png7),
                                        ("seed", None, b"9")])
        st, h, resp = self.d.request("POST", "/predict", body=body, headers={"Content-Type": ctype})
        self.assertEqual(st, 200, resp)
        doc = json.loads(resp)
        self.check_prediction(doc, 30, 9)
        self.assertEqual(doc["classes"], self.predict("?samples=30&seed=9")["classes"])

    def test_json(self):
        b64 = base64.b64encode(self.png7).decode()
        st, h, resp = self.d.post_json("/predict", {"image": b64, "samples": 40, "seed": 3, "interval": 0.5,
                                                    "mode": "lrt"})
        self.assertEqual(st, 200, resp)
        doc = json.loads(resp)
        self.check_prediction(doc, 40, 3, 0.5)
        self.assertEqual(doc["classes"], self.predict("?samples=40&seed=3&interval=0.5")["classes"])
        # The query wins over the body.
        st, h, resp = self.d.post_json("/predict?samples=12", {"image": "data:image/png;base64," + b64,
                                                               "samples": 40, "seed": 3})
        self.assertEqual((st, json.loads(resp)["samples"]), (200, 12))

    def test_batch_json_in_order(self):
        pngs = [daemon.mnist_png(i)[0] for i in range(5)]
        st, h, resp = self.d.post_json("/predict/batch?seed=11", {
            "images": [base64.b64encode(p).decode() for p in pngs], "samples": 20})
        self.assertEqual(st, 200, resp)
        results = json.loads(resp)["results"]
        self.assertEqual(len(results), 5)
        for p, r in zip(pngs, results):
            self.check_prediction(r, 20, 11)
            self.assertEqual(r["classes"], self.predict("?samples=20&seed=11", png=p)["classes"])

    def test_batch_multipart(self):
        pngs = [daemon.mnist_png(i)[0] for i in range(3)]
        body, ctype = daemon.multipart([("image", "%d.png" % i, p) for i, p in enumerate(pngs)])
        st, h, resp = self.d.request("POST", "/predict/batch?samples=10&seed=2", body=body,
                                     headers={"Content-Type": ctype})
        self.assertEqual(st, 200, resp)
        results = json.loads(resp)["results"]
        self.assertEqual([r["classes"] for r in results],
                         [self.predict("?samples=10&seed=2", png=p)["classes"] for p in pngs])

    def test_batch_errors(self):
        b64 = base64.b64encode(self.png7).decode()
        self.assertError(self.d.post_json("/predict/batch", {"images": []}), 400, "invalid_request")
        self.assertError(self.d.post_json("/predict/batch", {"images": [b64] * 65}), 400, "invalid_request")
        msg, _ = self.assertError(self.d.post_json("/predict/batch", {
            "images": [b64, base64.b64encode(b"not a png").decode()]}), 400, "invalid_png")
        self.assertIn("images[1]", msg)
        self.assertError(self.d.post_png("/predict/batch", self.png7), 415, "unsupported_media_type")

    def test_every_png_form_of_a_real_digit(self):
        """8- and 16-bit forms decode to the same gray pixels, so the same
        seed gives the very same numbers; the low bit depths give a valid
        answer for the quantised picture."""
        images, labels = daemon.mnist_test()
        ref = self.predict("?samples=30&seed=5", png=daemon.png_encode(images[0], 28, 28))["classes"]
        forms = [(ct, depth, il) for ct, depths in ((0, (8, 16)), (2, (8, 16)), (3, (8,)), (4, (8, 16)),
                                                     (6, (8, 16))) for depth in depths for il in (False, True)]
        for ct, depth, il in forms:
            png = daemon.png_encode(images[0], 28, 28, color_type=ct, depth=depth, interlace=il)
            doc = self.predict("?samples=30&seed=5", png=png)
            self.assertEqual(doc["classes"], ref, (ct, depth, il))
            self.assertEqual(doc["preprocessing"], "none")
        for ct, depth in ((0, 1), (0, 2), (0, 4), (3, 1), (3, 2), (3, 4)):
            for il in (False, True):
                png = daemon.png_encode(images[0], 28, 28, color_type=ct, depth=depth, interlace=il)
                self.check_prediction(self.predict("?samples=10&seed=5", png=png), 10, 5)

    def test_fixtures(self):
        for name, status, code in (("not_png.png", 400, "invalid_png"), ("truncated_idat.png", 400, "invalid_png"),
                                   ("truncated_header.png", 400, "invalid_png"), ("bad_crc.png", 400, "invalid_png"),
                                   ("bad_filter.png", 400, "invalid_png"), ("bad_zlib.png", 400, "invalid_png"),
                                   ("empty.png", 400, "invalid_png"),
                                   ("huge_100000x100000.png", 413, "image_too_large"),
                                   ("zero_width.png", 413, "image_too_large")):
            self.assertError(self.d.post_png("/predict", daemon.fixture(name)), status, code)
        doc = self.predict("?samples=10", png=daemon.fixture("digit_on_page_280.png"))
        self.assertEqual(doc["preprocessing"], "downscaled+inverted+resized+centred")
        doc = self.predict("?samples=10", png=daemon.fixture("blank_white_64.png"))
        self.check_prediction(doc, 10)
        # no digit: flagged, with the reason and what was found instead
        self.assertEqual((doc["preprocessing"], doc["uncertain"]), ("blank", True))
        self.assertEqual(doc["uncertain_reasons"][0], "no_digit")

    # --- parameter and body errors -------------------------------------------------------
    def test_bad_parameters(self):
        for q in ("samples=0", "samples=5001", "samples=abc", "samples=-1", "samples=1e3", "interval=0",
                  "interval=1", "interval=1.5", "interval=x", "interval=nan", "seed=-1",
                  "seed=9007199254740992", "seed=18446744073709551616", "mode=foo", "colour=red", "samples="):
            msg, _ = self.assertError(self.d.post_png("/predict?" + q, self.png7), 400, "invalid_parameter")
            self.assertIn(q.split("=")[0], msg)
        msg, _ = self.assertError(self.d.post_png("/predict?samples=5001", self.png7), 400, "invalid_parameter")
        self.assertIn("1..5000", msg)
        self.assertEqual(self.d.post_png("/predict?seed=9007199254740991&samples=2", self.png7)[0], 200)

    def test_bad_json(self):
        b64 = base64.b64encode(self.png7).decode()
        for body, code in ((b"{", "invalid_request"), (b"[1,2]", "invalid_request"), (b"{}", "invalid_request"),
                           (json.dumps({"image": 5}).encode(), "invalid_request"),
                           (json.dumps({"image": "!!!notbase64"}).encode(), "invalid_request"),
                           (json.dumps({"image": b64, "extra": 1}).encode(), "invalid_parameter"),
                           (json.dumps({"image": b64, "samples": "10"}).encode(), "invalid_parameter"),
                           (json.dumps({"image": b64, "samples": 10.5}).encode(), "invalid_parameter"),
                           (json.dumps({"image": b64, "interval": 2}).encode(), "invalid_parameter"),
                           (json.dumps({"image": b64, "mode": "fast"}).encode(), "invalid_parameter"),
                           (json.dumps({"image": base64.b64encode(b"GIF89a").decode()}).encode(), "invalid_png")):
            self.assertError(self.d.request("POST", "/predict", body=body,
                                            headers={"Content-Type": "application/json"}), 400, code)

    def test_bad_multipart(self):
        body, ctype = daemon.multipart([("picture", "x.png", self.png7)])
        self.assertError(self.d.request("POST", "/predict", body=body, headers={"Content-Type": ctype}), 400,
                         "invalid_request")
        body, ctype = daemon.multipart([("samples", None, b"10")])
        self.assertError(self.d.request("POST", "/predict", body=body, headers={"Content-Type": ctype}), 400,
                         "invalid_request")
        body, ctype = daemon.multipart([("image", "a.png", self.png7), ("image", "b.png", self.png7)])
        self.assertError(self.d.request("POST", "/predict", body=body, headers={"Content-Type": ctype}), 400,
                         "invalid_request")
        body, ctype = daemon.multipart([("image", "a.png", self.png7), ("samples", None, b"0")])
        self.assertError(self.d.request("POST", "/predict", body=body, headers={"Content-Type": ctype}), 400,
                         "invalid_parameter")
        self.assertError(self.d.request("POST", "/predict", body=b"x",
                                        headers={"Content-Type": "multipart/form-data"}), 400, "invalid_request")

    def test_unsupported_media_type(self):
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "image/jpeg"):
            self.assertError(self.d.request("POST", "/predict", body=self.png7, headers={"Content-Type": ctype}),
                             415, "unsupported_media_type")
        self.assertError(self.d.request("POST", "/predict", body=self.png7), 415, "unsupported_media_type")
        # Media type parameters and case do not matter.
        st, _, _ = self.d.request("POST", "/predict?samples=2", body=self.png7,
                                  headers={"Content-Type": "Image/PNG; charset=binary"})
        self.assertEqual(st, 200)

    def test_body_too_large(self):
        # Content-Length over the cap: refused from the headers, before any
        # of the body is sent (with or without Expect: 100-continue).
        for expect in ("", "Expect: 100-continue\r\n"):
            s = socket.create_connection(("127.0.0.1", self.d.port), timeout=30)
            s.sendall(("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                       "Content-Length: %d\r\n%s\r\n" % ((1 << 20) + 1, expect)).encode())
            resp = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                resp += chunk
            s.close()
            head, _, body = resp.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 413"), head)
            self.assertNotIn(b"100 Continue", head)
            self.assertEqual(json.loads(body)["error"]["code"], "body_too_large")
            self.assertIn("1048576", json.loads(body)["error"]["message"])
        # Exactly at the cap is accepted (then refused as a PNG, not as a size).
        self.assertError(self.d.post_png("/predict", b"\0" * (1 << 20)), 400, "invalid_png")
        # Chunked: no Content-Length, the cap is enforced while reading,
        # for every body form (multipart framing counts too).
        for ctype, chunk in (("image/png", b"\0" * 65536), ("application/json", b" " * 65536),
                             ("multipart/form-data; boundary=xyz", b"preamble " * 7000)):
            c = self.d.connection()
            c.putrequest("POST", "/predict")
            c.putheader("Content-Type", ctype)
            c.putheader("Transfer-Encoding", "chunked")
            c.endheaders()
            for _ in range(20):
                c.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            c.send(b"0\r\n\r\n")
            r = c.getresponse()
            self.assertEqual(r.status, 413, ctype)
            self.assertEqual(json.loads(r.read())["error"]["code"], "body_too_large")
            c.close()
        # The server goes on.
        self.predict("?samples=2")

    # --- semantics ---------------------------------------------------------------------------
    def test_determinism(self):
        a = self.d.post_png("/predict?samples=64&seed=123", self.png7)[2]
        b = self.d.post_png("/predict?samples=64&seed=123", self.png7)[2]
        ja, jb = json.loads(a), json.loads(b)
        self.assertEqual(json.dumps(ja["classes"]), json.dumps(jb["classes"]))
        self.assertEqual(ja["uncertainty"], jb["uncertainty"])
        c = json.loads(self.d.post_png("/predict?samples=64&seed=124", self.png7)[2])
        self.assertNotEqual(ja["classes"], c["classes"])

    def test_weights_mode(self):
        doc = self.predict("?samples=20&seed=1&mode=weights")
        self.check_prediction(doc, 20, 1, mode="weights")

    @unittest.skipUnless(daemon.real_weights(), "trained weights not in the tree yet")
    def test_real_digits_are_recognised(self):
        images, labels = daemon.mnist_test()
        correct = 0
        for i in range(40):
            doc = self.predict("?samples=50&seed=1", png=daemon.png_encode(images[i], 28, 28))
            correct += doc["prediction"] == labels[i]
        self.assertGreaterEqual(correct, 38, "%d of 40 first t10k digits" % correct)
        self.assertEqual(self.predict("?samples=100", png=self.png7)["prediction"], 7)
        # The same digit on a white 280x280 page, dark ink: preprocessed.
        doc = self.predict("?samples=100", png=daemon.fixture("digit_on_page_280.png"))
        self.assertEqual((doc["prediction"], doc["preprocessing"]), (7, "downscaled+inverted+resized+centred"))

    def test_concurrent_64(self):
        """64 requests at once on 64 connections: each answer is the one the
        same (image, seed) gives alone, whatever thread computed it."""
        pngs = [daemon.mnist_png(i)[0] for i in range(8)]
        expected = [json.loads(self.d.post_png("/predict?samples=40&seed=%d" % i, pngs[i % 8])[2])["classes"]
                    for i in range(8)]
        results = [None] * 64
        barrier = threading.Barrier(64)

        def worker(i):
            c = self.d.connection(120)
            barrier.wait()
            c.request("POST", "/predict?samples=40&seed=%d" % (i % 8), body=pngs[i % 8],
                      headers={"Content-Type": "image/png"})
            r = c.getresponse()
            results[i] = (r.status, r.read())
            c.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        for i, (st, body) in enumerate(results):
            self.assertEqual(st, 200, body)
            self.assertEqual(json.loads(body)["classes"], expected[i % 8], i)

    def test_keep_alive(self):
        c = self.d.connection()
        for i in range(3):
            c.request("POST", "/predict?samples=5&seed=%d" % i, body=self.png7, headers={"Content-Type": "image/png"})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertNotEqual(r.getheader("Connection"), "close")
            r.read()
            for path in ("/healthz", "/metrics", "/v1/model", "/"):
                c.request("GET", path)
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                self.assertNotEqual(r.getheader("Connection"), "close", path)
                r.read()
            sock = c.sock
        self.assertIs(c.sock, sock)  # one TCP connection throughout
        c.close()

    def test_access_log(self):
        self.d.get("/healthz", headers={"X-Request-Id": "log-check-1"})
        # The access line is written when libmicrohttpd reports the request
        # complete, which may be just after the client has the response.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for line in self.d.log().splitlines():
                if "log-check-1" in line:
                    doc = json.loads(line)
                    self.assertEqual((doc["method"], doc["path"], doc["status"]), ("GET", "/healthz", 200))
                    self.assertIn("ms", doc)
                    self.assertIn("bytes", doc)
                    self.assertIn("samples", doc)
                    return
            time.sleep(0.05)
        self.fail("no access line for log-check-1 in\n" + self.d.log()[-2000:])


if __name__ == "__main__":
    daemon.main()
