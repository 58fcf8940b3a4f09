#!/usr/bin/env python3
"""The web demo in a real browser, and CORS.

DemoPage starts the real daemon with the shipped weights and runs
tests/browser/demo.test.mjs (playwright-core driving Debian's
/usr/bin/chromium) against it: one test here per scenario there, so
tests/run.sh counts them. The screenshot lands in build/test-logs/demo.png.

Cors starts the daemon with --cors-origins http://a.example and checks the
preflight and the headers of real answers for that origin and another one.

stdlib only; needs node_modules (scripts/npm-deps.sh), chromium, build/bnn-serve,
build/data/mnist and model/weights/mnist-bnn.safetensors.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import LOG_DIR, ROOT, Daemon, main, mnist_png  # noqa: E402
from daemon import SHIPPED_WEIGHTS as SHIPPED  # noqa: E402

DEMO = os.path.join(ROOT, "tests", "browser", "demo.test.mjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCENARIOS = [
    "page loads with its own resources only",
    "mouse-drawn 7 is predicted 7 with ten bars and whiskers",
    "an ambiguous 7-or-1 shows wide whiskers",
    "keyboard: Delete clears the pad, Enter predicts",
    "a picked MNIST PNG is sent as it is and predicted",
    "errors are shown readably",
    "no page errors and no foreign requests",
    "phone width: touch-drawn 1 is predicted 1, no horizontal scroll",
]


class DemoPage(unittest.TestCase):
    results = None
    failure = None

    @classmethod
    def setUpClass(cls):
        problems = []
        if not os.path.exists(SHIPPED):
            problems.append(f"{SHIPPED} missing: the demo's predictions are checked with the shipped weights")
        if not os.access(CHROMIUM, os.X_OK):
            problems.append(f"{CHROMIUM} missing: apt-get install chromium (scripts/deps.sh)")
        if not os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core")):
            problems.append("node_modules/playwright-core missing: run scripts/npm-deps.sh")
        if problems:
            cls.failure = "; ".join(problems)
            return
        cls.tmp = tempfile.TemporaryDirectory()
        png, label = mnist_png(0)
        png_path = os.path.join(cls.tmp.name, "mnist-0.png")
        with open(png_path, "wb") as f:
            f.write(png)
        screenshot = os.path.join(LOG_DIR, "demo.png")
        d = Daemon("--workers", "2", name="test_browser", model=SHIPPED).start()
        try:
            p = subprocess.run(["node", DEMO, "--url", d.url + "/", "--screenshot", screenshot,
                                "--png", png_path, "--label", str(label)],
                               cwd=ROOT, capture_output=True, text=True, timeout=300)
        finally:
            rc = d.stop()
            cls.tmp.cleanup()
        with open(os.path.join(LOG_DIR, "demo.test.log"), "w") as f:
            f.write(p.stdout + p.stderr)
        sys.stderr.write(p.stdout)
        last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        try:
            cls.results = json.loads(last)["results"]
        except (ValueError, KeyError):
            cls.failure = f"demo.test.mjs exited {p.returncode} without results: {p.stderr[-2000:]}"
        if rc != 0:
            cls.failure = f"bnn-serve exited {rc} after SIGTERM, expected 0"

    def scenario(self, name):
        if self.failure:
            self.fail(self.failure)
        self.assertIn(name, self.results, f"scenario not run: {name}")
        self.assertEqual(self.results[name], "ok", self.results[name])

    def test_every_scenario_is_known(self):
        if self.failure:
            self.fail(self.failure)
        self.assertEqual(set(self.results), set(SCENARIOS))

    def test_screenshot_saved(self):
        if self.failure:
            self.fail(self.failure)
        path = os.path.join(LOG_DIR, "demo.png")
        with open(path, "rb") as f:
            head = f.read(8)
        self.assertEqual(head, b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(path), 10000)


def _add_scenario(name):
    def test(self):
        self.scenario(name)
    test.__doc__ = name
    setattr(DemoPage, "test_" + "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_"), test)


for _name in SCENARIOS:
    _add_scenario(_name)


class Cors(unittest.TestCase):
    ALLOWED = "http://a.example"

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon("--workers", "1", "--cors-origins", cls.ALLOWED + ",http://b.example",
                       name="test_browser_cors").start()
        cls.png, _ = mnist_png(0)

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        if rc != 0:
            raise AssertionError(f"bnn-serve exited {rc} after SIGTERM, expected 0")

    def preflight(self, origin):
        headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        if origin:
            headers["Origin"] = origin
        status, hdrs, body = self.d.request("OPTIONS", "/predict", headers=headers)
        self.assertIn(status, (200, 204))
        self.assertEqual(body, b"")
        self.assertIn("x-request-id", hdrs)
        return hdrs

    def test_preflight_from_allowed_origin(self):
        h = self.preflight(self.ALLOWED)
        self.assertEqual(h.get("access-control-allow-origin"), self.ALLOWED)
        self.assertIn("POST", h.get("access-control-allow-methods", ""))
        self.assertIn("content-type", h.get("access-control-allow-headers", "").lower())
        self.assertIn("origin", h.get("vary", "").lower())
        self.assertNotIn("access-control-allow-credentials", h)

    def test_second_listed_origin_is_echoed(self):
        h = self.preflight("http://b.example")
        self.assertEqual(h.get("access-control-allow-origin"), "http://b.example")

    def test_preflight_from_other_origins_gets_no_cors(self):
        for origin in ("http://evil.example", "http://a.example.evil.example", "https://a.example", None):
            h = self.preflight(origin)
            cors = sorted(k for k in h if k.startswith("access-control-"))
            self.assertEqual(cors, [], f"origin {origin}: unexpected CORS headers {cors}")

    def test_actual_post_from_allowed_origin(self):
        status, h, _ = self.d.request("POST", "/predict?samples=5", self.png,
                                      {"Content-Type": "image/png", "Origin": self.ALLOWED})
        self.assertEqual(status, 200)
        self.assertEqual(h.get("access-control-allow-origin"), self.ALLOWED)
        self.assertIn("x-request-id", h.get("access-control-expose-headers", "").lower())

    def test_actual_post_from_other_origin(self):
        status, h, _ = self.d.request("POST", "/predict?samples=5", self.png,
                                      {"Content-Type": "image/png", "Origin": "http://evil.example"})
        self.assertEqual(status, 200)  # the server answers; the browser withholds it
        self.assertNotIn("access-control-allow-origin", h)

    def test_errors_carry_cors_for_allowed_origin(self):
        """A cross-origin page must be able to read the error body too."""
        status, h, _ = self.d.request("POST", "/predict?samples=0", self.png,
                                      {"Content-Type": "image/png", "Origin": self.ALLOWED})
        self.assertEqual(status, 400)
        self.assertEqual(h.get("access-control-allow-origin"), self.ALLOWED)


if __name__ == "__main__":
    main()
