#!/usr/bin/env python3
"""openapi.yaml is the truth about the API: it lints clean, it describes every
endpoint and parameter of DESIGN.md, and what the real daemon answers (real
MNIST digits as PNG, every body form, every error we can provoke) validates
against the spec's own schemas, with a status the spec documents.

stdlib only; needs node_modules (scripts/npm-deps.sh) and build/bnn-serve.
The daemon, PNGs and models come from daemon.py, the YAML and the schema
validator from openapi_spec.py.
"""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import (ROOT, Daemon, check_config, clean_env, main, make_model, mnist_image,  # noqa: E402
                    mnist_png, multipart, png_declaring, png_encode, real_weights)
from openapi_spec import SPEC_PATH, SchemaError, resolve, response_schema, spec, validate  # noqa: E402

NODE_BIN = os.path.join(ROOT, "node_modules", ".bin")
SEED_MAX = 2**53 - 1


# ---- the tests ------------------------------------------------------------------------

class SpecDocument(unittest.TestCase):
    """The document itself, without a daemon."""

    def test_lint_clean(self):
        redocly = os.path.join(NODE_BIN, "redocly")
        self.assertTrue(os.path.exists(redocly), "node_modules/.bin/redocly missing: run scripts/npm-deps.sh")
        p = subprocess.run([redocly, "lint", "--format", "stylish", "openapi.yaml"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, f"redocly lint failed:\n{out}")
        self.assertNotRegex(out, r"(?i)\b[1-9]\d* (warning|error)", out)

    def test_every_design_endpoint(self):
        paths = spec()["paths"]
        expected = {"/predict": {"post", "options"}, "/predict/batch": {"post"}, "/healthz": {"get"},
                    "/readyz": {"get"}, "/metrics": {"get"}, "/v1/model": {"get"}, "/openapi.yaml": {"get"},
                    "/": {"get"}}
        for path, methods in expected.items():
            self.assertIn(path, paths)
            self.assertTrue(methods <= set(paths[path]), f"{path}: expected {methods}, got {set(paths[path])}")

    def test_predict_parameters_bounds_and_defaults(self):
        s = spec()
        params = {}
        for p in s["paths"]["/predict"]["post"]["parameters"]:
            p = resolve(s, p["$ref"]) if "$ref" in p else p
            params[p["name"]] = p["schema"]
        self.assertEqual((params["samples"]["minimum"], params["samples"]["maximum"], params["samples"]["default"]),
                         (1, 10000, 100))
        self.assertEqual((params["interval"]["exclusiveMinimum"], params["interval"]["exclusiveMaximum"],
                          params["interval"]["default"]), (0, 1, 0.95))
        self.assertEqual((params["seed"]["minimum"], params["seed"]["maximum"]), (0, SEED_MAX))
        self.assertNotIn("default", params["seed"])
        self.assertEqual((params["mode"]["enum"], params["mode"]["default"]), (["lrt", "weights"], "lrt"))
        body = s["paths"]["/predict"]["post"]["requestBody"]["content"]
        self.assertEqual(set(body), {"image/png", "multipart/form-data", "application/json"})

    def test_readme_defaults_are_the_daemons(self):
        """The README's configuration table shows the built-in defaults that
        `bnn-serve --check-config` prints (with an empty config file)."""
        defaults = check_config("--config", os.devnull)
        with open(os.path.join(ROOT, "README.md")) as f:
            rows = dict(re.findall(r"(?m)^\| `(\w+)` \| (?:`([^`]*)`|\(empty\)) \| `BNN_SERVE_", f.read()))
        self.assertEqual(set(rows), set(defaults), "README's configuration table and the daemon's keys differ")
        for key, value in defaults.items():
            self.assertEqual(rows[key], value.strip(), f"README.md: default of {key}")

    def test_validator_catches_violations(self):
        """The validator used below can fail: a valid example passes, each
        mutation of it is refused."""
        s = spec()
        schema = {"$ref": "#/components/schemas/Prediction"}
        good = s["components"]["schemas"]["Prediction"]["examples"][0]
        validate(good, schema, s)
        mutations = [
            lambda d: d.update(prediction=10),
            lambda d: d.pop("uncertain"),
            lambda d: d.update(extra=1),
            lambda d: d["classes"].pop(),
            lambda d: d["classes"][3].update(mean=1.5),
            lambda d: d.update(mode="mc"),
            lambda d: d.update(uncertain="no"),
            lambda d: d.update(interval=1.0),
            lambda d: d["uncertainty"].update(epistemic=-0.1),
            lambda d: d.update(seed=SEED_MAX + 1),
            lambda d: d.update(preprocessing="Inverted!"),
        ]
        for i, mutate in enumerate(mutations):
            bad = json.loads(json.dumps(good))
            mutate(bad)
            with self.assertRaises(SchemaError, msg=f"mutation {i} was accepted"):
                validate(bad, schema, s)

    def test_readme_documents_every_key_and_path(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        keys = check_config("--config", os.devnull)  # every key the daemon has, with its value
        self.assertGreater(len(keys), 20)
        for k in keys:
            for form in (f"`{k}`", f"BNN_SERVE_{k.upper()}", f"--{k.replace('_', '-')}"):
                self.assertTrue(form in readme, f"README.md does not document config key {k} ({form})")
        for path in spec()["paths"]:
            self.assertTrue(f"`{path}`" in readme, f"README.md does not mention {path}")


class ErrorCodes(unittest.TestCase):
    """The Error schema's code enum is what the daemon answers with, asked
    of the daemon itself: each code is provoked from a real one (internal
    from one whose every prediction job fails, BNN_FAULT_EVERY_NTH_JOB=1).
    A provocation answered with another code fails, and so does an enum
    code that nothing provokes. A full queue and a missed deadline need a
    slow daemon of their own: OverloadAgainstSpec provokes overloaded and
    timeout and checks them against the spec."""

    PROVOKED_BY_OVERLOAD_AGAINST_SPEC = {"overloaded", "timeout"}

    def test_enum_is_what_the_daemon_sends(self):
        png, _ = mnist_png(0)
        as_png = {"Content-Type": "image/png"}
        provocations = {
            "invalid_png": ("POST", "/predict", b"GIF89a not a png at all", as_png),
            "invalid_parameter": ("POST", "/predict?samples=0", png, as_png),
            "invalid_request": ("POST", "/predict", b"{", {"Content-Type": "application/json"}),
            "not_found": ("GET", "/nope", None, {}),
            "method_not_allowed": ("GET", "/predict", None, {}),
            "image_too_large": ("POST", "/predict", png_declaring(5000, 5000), as_png),
            "unsupported_media_type": ("POST", "/predict", png, {"Content-Type": "text/plain"}),
        }
        with Daemon("--workers", "1", name="test_openapi_codes", env=clean_env()) as d:
            answers = {code: d.request(*how) for code, how in provocations.items()}
            answers["body_too_large"] = d.announce("POST", "/predict", 1024 * 1024 + 1, as_png)
            self.assertEqual(d.stop(), 0)
        with Daemon("--workers", "1", name="test_openapi_codes_fault",
                    env=clean_env(BNN_FAULT_EVERY_NTH_JOB="1")) as d:
            answers["internal"] = d.post_png("/predict?samples=5", png)
            self.assertEqual(d.stop(), 0)
        s = spec()
        for code, (status, _, body) in answers.items():
            doc = json.loads(body)
            self.assertEqual(doc["error"]["code"], code, f"provoking {code}: got {status} {doc}")
            validate(doc, {"$ref": "#/components/schemas/Error"}, s)
        enum = set(s["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"])
        self.assertEqual(set(answers) | self.PROVOKED_BY_OVERLOAD_AGAINST_SPEC, enum,
                         "the spec's error codes and the codes the daemon answers with differ")


class DaemonAgainstSpec(unittest.TestCase):
    """The real daemon's answers validate against the spec."""

    @classmethod
    def setUpClass(cls):
        cls.shipped = real_weights()
        cls.d = Daemon("--workers", "2", name="test_openapi").start()
        cls.png, cls.label = mnist_png(0)

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        if rc != 0:
            raise AssertionError(f"bnn-serve exited {rc} after SIGTERM, expected 0")

    def check(self, method, path, status, body=None, headers=None, spec_path=None, request_id=None):
        """Sends the request, checks status, X-Request-Id and the body
        against the spec; returns (headers, parsed JSON or raw bytes)."""
        headers = dict(headers or {})
        if request_id:
            headers["X-Request-Id"] = request_id
        got, hdrs, data = self.d.request(method, path, body, headers)
        self.assertEqual(got, status, f"{method} {path}: expected {status}, got {got}: {data[:300]!r}")
        self.assertIn("x-request-id", hdrs, f"{method} {path}: no X-Request-Id")
        self.assertTrue(hdrs["x-request-id"])
        if request_id:
            self.assertEqual(hdrs["x-request-id"], request_id)
        media = hdrs.get("content-type", "").split(";")[0].strip()
        route = spec_path or path.split("?")[0]
        s = spec()
        if route in s["paths"] and method.lower() in s["paths"][route]:
            schema, _ = response_schema(route, method, status, media) if data else ({}, None)
        else:
            # Methods a path does not have (405) and unknown paths (404)
            # answer with the common Error schema.
            self.assertEqual(media, "application/json")
            schema = {"$ref": "#/components/schemas/Error"}
        if media == "application/json":
            doc = json.loads(data)
            validate(doc, schema, s)
            return hdrs, doc
        return hdrs, data

    # -- successful answers

    def test_predict_raw_png(self):
        _, doc = self.check("POST", "/predict?samples=50&interval=0.9&seed=7&mode=lrt", 200, self.png,
                            {"Content-Type": "image/png"}, request_id="spec-raw-1")
        self.assertEqual((doc["samples"], doc["interval"], doc["seed"], doc["mode"]), (50, 0.9, 7, "lrt"))
        self.assertEqual([c["label"] for c in doc["classes"]], list(range(10)))
        self.assertEqual(doc["preprocessing"], "none")
        for c in doc["classes"]:
            self.assertLessEqual(c["lower"], c["upper"])
        if self.shipped:
            self.assertEqual(doc["prediction"], self.label)

    def test_defaults_are_the_specs(self):
        _, doc = self.check("POST", "/predict", 200, self.png, {"Content-Type": "image/png"})
        params = spec()["components"]["parameters"]
        self.assertEqual(doc["samples"], params["samples"]["schema"]["default"])
        self.assertEqual(doc["interval"], params["interval"]["schema"]["default"])
        self.assertEqual(doc["mode"], params["mode"]["schema"]["default"])
        self.assertIsInstance(doc["seed"], int)

    def test_three_body_forms_agree(self):
        q = "/predict?samples=40&seed=11"
        _, raw = self.check("POST", q, 200, self.png, {"Content-Type": "image/png"})
        body, ctype = multipart([("image", "digit.png", self.png)])
        _, form = self.check("POST", q, 200, body, {"Content-Type": ctype})
        request = {"image": base64.b64encode(self.png).decode(), "samples": 40, "seed": 11}
        validate(request, {"$ref": "#/components/schemas/PredictJsonRequest"}, spec())
        _, jdoc = self.check("POST", "/predict", 200, json.dumps(request), {"Content-Type": "application/json"})
        self.assertEqual(raw["classes"], form["classes"])
        self.assertEqual(raw["classes"], jdoc["classes"])

    def test_multipart_parameter_fields(self):
        body, ctype = multipart([("image", "digit.png", self.png), ("samples", None, b"30"),
                                 ("seed", None, b"5"), ("mode", None, b"weights")])
        _, doc = self.check("POST", "/predict", 200, body, {"Content-Type": ctype})
        self.assertEqual((doc["samples"], doc["seed"], doc["mode"]), (30, 5, "weights"))

    def test_dark_on_light_page_is_preprocessed(self):
        pix, _ = mnist_image(0)
        big = []
        for y in range(84):
            for x in range(84):
                big.append(255 - pix[(y // 3) * 28 + x // 3])
        _, doc = self.check("POST", "/predict?samples=20", 200, png_encode(big, 84, 84), {"Content-Type": "image/png"})
        self.assertIn("inverted", doc["preprocessing"])
        self.assertIn("resized", doc["preprocessing"])

    def test_batch_json_and_multipart(self):
        png1, png2 = self.png, mnist_png(1)[0]
        request = {"images": [base64.b64encode(p).decode() for p in (png1, png2)], "samples": 20, "seed": 3}
        validate(request, {"$ref": "#/components/schemas/BatchJsonRequest"}, spec())
        _, doc = self.check("POST", "/predict/batch", 200, json.dumps(request), {"Content-Type": "application/json"})
        self.assertEqual(len(doc["results"]), 2)
        body, ctype = multipart([("image", "a.png", png1), ("image", "b.png", png2)])
        _, doc2 = self.check("POST", "/predict/batch?samples=20&seed=3", 200, body, {"Content-Type": ctype})
        self.assertEqual([r["classes"] for r in doc["results"]], [r["classes"] for r in doc2["results"]])

    def test_batch_is_all_or_nothing(self):
        request = {"images": [base64.b64encode(self.png).decode(), base64.b64encode(b"not a png").decode()]}
        _, doc = self.error("POST", "/predict/batch?samples=5", 400, "invalid_png", json.dumps(request),
                            {"Content-Type": "application/json"}, "/predict/batch")
        self.assertIn("images[1]", doc["error"]["message"])
        too_many = {"images": [base64.b64encode(self.png).decode()] * 65}
        _, doc = self.check("POST", "/predict/batch?samples=1", 400, json.dumps(too_many),
                            {"Content-Type": "application/json"}, "/predict/batch")
        self.assertIn("64", doc["error"]["message"])

    def test_operations_endpoints(self):
        self.check("GET", "/healthz", 200)
        self.check("GET", "/readyz", 200)
        _, text = self.check("GET", "/metrics", 200)
        self.assertIn(b"bnn_requests_total", text)
        names = set(re.findall(r"(?m)^# TYPE (\w+) ", text.decode()))
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        self.assertGreater(len(names), 5)
        for name in names:
            self.assertTrue(f"`{name}" in readme, f"README.md does not list metric {name}")
        # The spec's example and route list are what the daemon emits.
        with open(SPEC_PATH) as f:
            spec_text = f.read()
        routes = set(re.findall(r'route="(\w+)"', text.decode()))
        self.assertIn("predict", routes)
        for name, route in re.findall(r'(bnn_\w+)\{route="([^"]*)"', spec_text):
            self.assertIn(name, names | {n + s for n in names for s in ("_bucket", "_sum", "_count")})
            self.assertIn(route, routes, f"openapi.yaml's metrics example uses route {route!r}")
        for route in routes:
            self.assertIn(route, spec_text.split("/metrics:")[1].split("/v1/model:")[0],
                          f"openapi.yaml's /metrics does not list route {route!r}")
        _, model = self.check("GET", "/v1/model", 200)
        if self.shipped:
            self.assertEqual(model["parameters"], 1769524)
            self.assertEqual(model["architecture"], "784-784-256-256-10")

    def test_documents(self):
        _, served = self.check("GET", "/openapi.yaml", 200)
        with open(SPEC_PATH, "rb") as f:
            self.assertEqual(served, f.read(), "GET /openapi.yaml is not the repository's file")
        _, page = self.check("GET", "/", 200)
        self.assertIn(b"<canvas", page)
        for path in ("/app.js", "/style.css"):
            self.check("GET", path, 200)

    def test_preflight(self):
        hdrs, _ = self.check("OPTIONS", "/predict", 204)
        self.assertIn("POST", hdrs.get("allow", ""))

    def test_generated_request_ids_differ(self):
        ids = {self.d.request("GET", "/healthz")[1]["x-request-id"] for _ in range(5)}
        self.assertEqual(len(ids), 5)

    # -- errors

    def error(self, method, path, status, code, body=None, headers=None, spec_path=None):
        hdrs, doc = self.check(method, path, status, body, headers, spec_path)
        self.assertEqual(doc["error"]["code"], code, doc)
        self.assertTrue(doc["error"]["message"])
        return hdrs, doc

    def test_bad_parameters(self):
        png = {"Content-Type": "image/png"}
        for q, needle in (("samples=0", "samples"), ("samples=10001", "samples"), ("samples=abc", "samples"),
                          ("interval=0", "interval"), ("interval=1", "interval"), ("interval=1.5", "interval"),
                          ("seed=-1", "seed"), (f"seed={SEED_MAX + 1}", "seed"), ("mode=mc", "mode"),
                          ("colour=red", "colour")):
            _, doc = self.error("POST", "/predict?" + q, 400, "invalid_parameter", self.png, png, "/predict")
            self.assertIn(needle, doc["error"]["message"], q)
        js = json.dumps({"image": base64.b64encode(self.png).decode(), "samples": 0})
        self.error("POST", "/predict", 400, "invalid_parameter", js, {"Content-Type": "application/json"})
        # The spec's request schemas are closed (additionalProperties: false)
        # and so is the server: an unknown member is refused, not ignored.
        bad = {"image": base64.b64encode(self.png).decode(), "colour": "red"}
        with self.assertRaises(SchemaError):
            validate(bad, {"$ref": "#/components/schemas/PredictJsonRequest"}, spec())
        _, doc = self.check("POST", "/predict", 400, json.dumps(bad), {"Content-Type": "application/json"})
        self.assertIn(doc["error"]["code"], ("invalid_parameter", "invalid_request"))
        self.assertIn("colour", doc["error"]["message"])
        # The largest seed is accepted and echoed exactly.
        _, doc = self.check("POST", f"/predict?samples=5&seed={SEED_MAX}", 200, self.png, png, "/predict")
        self.assertEqual(doc["seed"], SEED_MAX)

    def test_invalid_png(self):
        png = {"Content-Type": "image/png"}
        self.error("POST", "/predict", 400, "invalid_png", b"GIF89a not a png at all", png)
        self.error("POST", "/predict", 400, "invalid_png", self.png[:60], png)
        broken = bytearray(self.png)
        broken[40] ^= 0xFF  # inside IDAT: the CRC no longer matches
        self.error("POST", "/predict", 400, "invalid_png", bytes(broken), png)

    def test_not_found_and_method_not_allowed(self):
        self.error("GET", "/nope", 404, "not_found")
        self.error("GET", "/../../etc/passwd", 404, "not_found")
        hdrs, _ = self.error("GET", "/predict", 405, "method_not_allowed")
        self.assertIn("POST", hdrs.get("allow", ""))
        hdrs, _ = self.error("POST", "/healthz", 405, "method_not_allowed", b"", {"Content-Type": "image/png"})
        self.assertIn("GET", hdrs.get("allow", ""))

    def test_too_large(self):
        status, hdrs, data = self.d.announce("POST", "/predict", 1024 * 1024 + 1, {"Content-Type": "image/png"})
        self.assertEqual(status, 413, data)
        self.assertIn("x-request-id", hdrs)
        doc = json.loads(data)
        validate(doc, response_schema("/predict", "POST", 413, "application/json")[0], spec())
        self.assertEqual(doc["error"]["code"], "body_too_large")
        # A tiny PNG whose header claims 5000x5000: refused before decoding.
        huge = png_declaring(5000, 5000)
        self.error("POST", "/predict", 413, "image_too_large", huge, {"Content-Type": "image/png"})

    def test_unsupported_media_type(self):
        self.error("POST", "/predict", 415, "unsupported_media_type", self.png, {"Content-Type": "text/plain"})
        self.error("POST", "/predict/batch", 415, "unsupported_media_type", self.png, {"Content-Type": "image/png"})


class OverloadAgainstSpec(unittest.TestCase):
    """429 (overload_status = 429), 503 timeout and Retry-After, as the spec
    describes them: one worker, a queue of one, a job deadline of 300 ms and
    slow requests (weight sampling, 10000 passes on a small model, about two
    seconds each); /metrics says when a job computes and one waits."""

    def wait_metric(self, d, name, value):
        deadline = time.time() + 10
        while time.time() < deadline:
            text = d.request("GET", "/metrics")[2].decode()
            m = re.search(rf"(?m)^{name} (\S+)$", text)
            if m and float(m.group(1)) == value:
                return
            time.sleep(0.01)
        self.fail(f"{name} never reached {value}")

    def test_overloaded_and_timeout(self):
        import threading
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "small.safetensors")
            make_model(model, dims="784-64-10")
            # One request in flight at most; a weights-mode request of 100000
            # passes (seconds even on this small model) is stopped by the
            # deadline, which bounds compute too.
            d = Daemon("--workers", "1", "--queue-depth", "1", "--overload-status", "429", "--retry-after", "2",
                       "--job-timeout-ms", "300", "--max-samples", "100000", "--max-samples-weights", "100000",
                       "--weights-pass-cost", "3", name="test_openapi_overload", model=model).start()
            try:
                png, _ = mnist_png(0)
                q = "/predict?samples=100000&mode=weights&seed=1"
                first = {}
                t = threading.Thread(target=lambda: first.update(r=d.request("POST", q, png, {"Content-Type": "image/png"})))
                t.start()
                self.wait_metric(d, "bnn_queue_depth", 1)  # the first request is in flight
                status, hdrs, body = d.request("POST", q, png, {"Content-Type": "image/png"})
                t.join(120)
                s = spec()
                self.assertEqual(status, 429, body)
                self.assertEqual(hdrs.get("retry-after"), "2")
                self.assertIn("x-request-id", hdrs)
                doc = json.loads(body)
                validate(doc, response_schema("/predict", "POST", 429, "application/json")[0], s)
                self.assertEqual(doc["error"]["code"], "overloaded")
                st2, h2, b2 = first["r"]
                self.assertEqual(st2, 503, b2)
                self.assertEqual(h2.get("retry-after"), "2")
                doc2 = json.loads(b2)
                validate(doc2, response_schema("/predict", "POST", 503, "application/json")[0], s)
                self.assertEqual(doc2["error"]["code"], "timeout")
            finally:
                self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
