#!/usr/bin/env python3
"""openapi.yaml is the truth about the API: it lints clean, it describes every
endpoint and parameter of DESIGN.md, and what the real daemon answers (real
MNIST digits as PNG, every body form, every error we can provoke) validates
against the spec's own schemas, with a status the spec documents.

Also holds the helpers the other web-side tests import (test_browser.py,
test_container.py): paths, YAML via the npm `yaml` package (python has no
YAML parser in its standard library), a JSON-Schema subset validator, the
daemon runner and PNG writers.

stdlib only; needs node_modules (scripts/npm-deps.sh) and build/bnn-serve.
"""
import base64
import http.client
import json
import math
import os
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BNN_BUILD", "build")
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
SERVER = os.path.join(BUILD, "bnn-serve")
SPEC_PATH = os.path.join(ROOT, "openapi.yaml")
SHIPPED = os.path.join(ROOT, "model", "weights", "mnist-bnn.safetensors")
MNIST = os.path.join(ROOT, "build", "data", "mnist")
LOG_DIR = os.path.join(BUILD, "test-logs")
NODE_BIN = os.path.join(ROOT, "node_modules", ".bin")
SEED_MAX = 2**53 - 1


# ---- YAML through node ------------------------------------------------------

def yaml_load(path, all_documents=False):
    """Parses a YAML file with the npm `yaml` package (package.json) and
    returns the data (a list of documents when all_documents)."""
    script = (
        "const Y = require('yaml'); const fs = require('fs');"
        "const text = fs.readFileSync(process.argv[1], 'utf8');"
        "const docs = Y.parseAllDocuments(text);"
        "for (const d of docs) if (d.errors.length) { console.error(d.errors[0].message); process.exit(1); }"
        "const out = docs.map(d => d.toJS()).filter(d => d !== null);"
        "process.stdout.write(JSON.stringify(process.argv[2] === 'all' ? out : out[0]));"
    )
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "yaml")):
        raise AssertionError("node_modules/yaml missing: run scripts/npm-deps.sh (npm ci)")
    p = subprocess.run(["node", "-e", script, path, "all" if all_documents else "one"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"{path}: YAML parse failed: {p.stderr.strip()}")
    return json.loads(p.stdout)


_spec = None


def spec():
    global _spec
    if _spec is None:
        _spec = yaml_load(SPEC_PATH)
    return _spec


# ---- a JSON Schema (2020-12) subset, enough for openapi.yaml -----------------

class SchemaError(AssertionError):
    pass


def resolve(root, ref):
    if not ref.startswith("#/"):
        raise SchemaError(f"only local $ref supported, got {ref}")
    node = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _type_ok(value, t):
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "null":
        return value is None
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    raise SchemaError(f"unknown type {t}")


def validate(value, schema, root, where="$"):
    """Raises SchemaError naming the path and the rule broken."""
    if schema is True or schema == {}:
        return
    if schema is False:
        raise SchemaError(f"{where}: no value allowed")
    if "$ref" in schema:
        validate(value, resolve(root, schema["$ref"]), root, where)
    if "allOf" in schema:
        for s in schema["allOf"]:
            validate(value, s, root, where)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            ok = 0
            errors = []
            for s in schema[key]:
                try:
                    validate(value, s, root, where)
                    ok += 1
                except SchemaError as e:
                    errors.append(str(e))
            if ok == 0 or (key == "oneOf" and ok > 1):
                raise SchemaError(f"{where}: {key} matched {ok} alternatives: {errors}")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, t) for t in types):
            raise SchemaError(f"{where}: expected type {schema['type']}, got {type(value).__name__} {value!r:.80}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where}: expected one of {schema['enum']}, got {value!r}")
    if "const" in schema and value != schema["const"]:
        raise SchemaError(f"{where}: expected {schema['const']!r}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{where}: expected >= {schema['minimum']}, got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{where}: expected <= {schema['maximum']}, got {value}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise SchemaError(f"{where}: expected > {schema['exclusiveMinimum']}, got {value}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            raise SchemaError(f"{where}: expected < {schema['exclusiveMaximum']}, got {value}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise SchemaError(f"{where}: expected length >= {schema['minLength']}, got {len(value)}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaError(f"{where}: expected length <= {schema['maxLength']}, got {len(value)}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise SchemaError(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise SchemaError(f"{where}: expected >= {schema['minItems']} items, got {len(value)}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaError(f"{where}: expected <= {schema['maxItems']} items, got {len(value)}")
        if "items" in schema:
            for i, item in enumerate(value):
                validate(item, schema["items"], root, f"{where}[{i}]")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                raise SchemaError(f"{where}: required member '{name}' missing")
        props = schema.get("properties", {})
        for name, v in value.items():
            if name in props:
                validate(v, props[name], root, f"{where}.{name}")
            elif "additionalProperties" in schema:
                extra = schema["additionalProperties"]
                if extra is False:
                    raise SchemaError(f"{where}: member '{name}' not allowed by the schema")
                validate(v, extra, root, f"{where}.{name}")


def response_schema(path, method, status, media_type):
    """The schema the spec gives for this answer; AssertionError when the
    spec does not document the status or the media type."""
    s = spec()
    op = s["paths"][path][method.lower()]
    resp = op["responses"].get(str(status))
    if resp is None:
        raise AssertionError(f"{method} {path}: status {status} is not documented (has {sorted(op['responses'])})")
    if "$ref" in resp:
        resp = resolve(s, resp["$ref"])
    content = resp.get("content", {})
    if media_type not in content:
        raise AssertionError(f"{method} {path} {status}: media type {media_type} not documented (has {list(content)})")
    return content[media_type].get("schema", {}), resp


# ---- PNG and MNIST ------------------------------------------------------------

def png_bytes(pixels, width, height, color_type=0, channels=1, extra_chunks=b""):
    """8-bit PNG from a flat list of samples (channels per pixel)."""
    def chunk(kind, body):
        c = struct.pack(">I", len(body)) + kind + body
        return c + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    stride = width * channels
    raw = b"".join(b"\x00" + bytes(pixels[r * stride:(r + 1) * stride]) for r in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra_chunks + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def png_declaring(width, height):
    """A valid-looking PNG whose IHDR declares width x height but whose data
    is a few bytes: only a decoder that checks the size first refuses it
    cheaply."""
    def chunk(kind, body):
        c = struct.pack(">I", len(body)) + kind + body
        return c + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0\0"))
            + chunk(b"IEND", b""))


def mnist_test(index):
    """(28x28 pixels, label) of MNIST test image index; fails if MNIST is
    missing (make data fetches it; CI runs it first)."""
    images = os.path.join(MNIST, "t10k-images-idx3-ubyte")
    labels = os.path.join(MNIST, "t10k-labels-idx1-ubyte")
    if not os.path.exists(images):
        raise AssertionError(f"{images} missing: run `make data`")
    with open(images, "rb") as f:
        f.seek(16 + 784 * index)
        pix = f.read(784)
    with open(labels, "rb") as f:
        f.seek(8 + index)
        label = f.read(1)[0]
    return list(pix), label


def mnist_png(index):
    pix, label = mnist_test(index)
    return png_bytes(pix, 28, 28), label


def random_model(path, hidden=32, seed=1):
    """A small random safetensors model (784-hidden-10) in the daemon's
    format, for when the shipped weights are not there yet: responses still
    validate, only accuracy would be meaningless."""
    rng = random.Random(seed)
    dims = [784, hidden, 10]
    header, blobs, off = {}, [], 0
    for i in range(len(dims) - 1):
        n_in, n_out = dims[i], dims[i + 1]
        for name, shape, gen in (("kernel_loc", [n_in, n_out], lambda: rng.gauss(0, 0.05)),
                                 ("kernel_scale", [n_in, n_out], lambda: 0.01 + 0.02 * rng.random()),
                                 ("bias_loc", [n_out], lambda: rng.gauss(0, 0.05)),
                                 ("bias_scale", [n_out], lambda: 0.01 + 0.02 * rng.random())):
            n = math.prod(shape)
            data = struct.pack(f"<{n}f", *(gen() for _ in range(n)))
            header[f"layers.{i}.{name}"] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(data)]}
            blobs.append(data)
            off += len(data)
    header["__metadata__"] = {"format": "bnn-serve/1", "activation": "relu", "input": "mnist-28x28-gray",
                              "recipe": "random (test fixture)"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def model_for_tests(tmpdir):
    """The shipped weights when present, else a random model in tmpdir."""
    if os.path.exists(SHIPPED):
        return SHIPPED, True
    path = os.path.join(tmpdir, "random.safetensors")
    random_model(path)
    return path, False


# ---- the real daemon ------------------------------------------------------------

class Daemon:
    """build/bnn-serve on 127.0.0.1 and a free port (--port 0; the port is
    read from the ready line), stderr kept in build/test-logs/NAME.stderr."""

    def __init__(self, name, args=(), env=None, cwd=ROOT, binary=SERVER):
        if not os.access(binary, os.X_OK):
            raise AssertionError(f"{binary} missing: run `make`")
        os.makedirs(LOG_DIR, exist_ok=True)
        self.log_path = os.path.join(LOG_DIR, f"{name}.stderr")
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        cmd = [binary, "--host", "127.0.0.1", "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=self.log, env=full_env)
        self.port = None
        deadline = time.time() + 30
        line = b""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(rb"listening on http://\S+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
            with open(self.log_path, "rb") as f:
                err = f.read().decode(errors="replace")
            raise AssertionError(f"bnn-serve did not start ({' '.join(cmd)}): {line!r} {err[-2000:]}")
        while time.time() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise AssertionError("bnn-serve never became ready")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers as a dict with lower-case names, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            hdrs = {}
            for k, v in r.getheaders():
                hdrs[k.lower()] = v if k.lower() not in hdrs else hdrs[k.lower()] + ", " + v
            return r.status, hdrs, data
        finally:
            c.close()

    def announce(self, method, path, length, headers=None):
        """Sends only the headers of a request announcing a body of length
        bytes and reads the answer: how a client meets early rejection
        (413 from Content-Length) without writing into a closed socket."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.putrequest(method, path)
            for k, v in (headers or {}).items():
                c.putheader(k, v)
            c.putheader("Content-Length", str(length))
            c.endheaders()
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def stop(self):
        """SIGTERM, then the exit status (killed after 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        return self.proc.returncode


def multipart(fields):
    """(body, content type) for [(name, filename or None, bytes)]."""
    boundary = "----bnn" + uuid.uuid4().hex
    out = b""
    for name, filename, data in fields:
        out += f"--{boundary}\r\n".encode()
        if filename:
            out += (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                    "Content-Type: image/png\r\n\r\n").encode()
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


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

    def test_error_codes_match_the_code(self):
        """Every code service/api.c can send is in the Error schema's enum,
        and the spec lists no code the daemon never sends."""
        with open(os.path.join(ROOT, "service", "api.c")) as f:
            src = f.read()
        table = src[src.index("code_table"):]
        table = table[:table.index("};")]
        codes = set(re.findall(r'\{"([a-z_]+)", \d+\}', table)) - {"ok"}
        self.assertGreaterEqual(len(codes), 10, "could not read the code table of service/api.c")
        enum = set(spec()["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"])
        self.assertEqual(enum, codes)

    def test_readme_defaults_are_the_daemons(self):
        """The README's configuration table shows the built-in defaults that
        `bnn-serve --check-config` prints (with an empty config file)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BNN_SERVE_")}
        p = subprocess.run([SERVER, "--config", os.devnull, "--check-config"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        defaults = dict(re.findall(r"(?m)^(\w+) = (.*)$", p.stdout))
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
        with open(os.path.join(ROOT, "service", "config.c")) as f:
            keys = re.findall(r'^\s*\{"([a-z_]+)", CFG_', f.read(), re.M)
        self.assertGreater(len(keys), 20)
        for k in keys:
            for form in (f"`{k}`", f"BNN_SERVE_{k.upper()}", f"--{k.replace('_', '-')}"):
                self.assertTrue(form in readme, f"README.md does not document config key {k} ({form})")
        for path in spec()["paths"]:
            self.assertTrue(f"`{path}`" in readme, f"README.md does not mention {path}")


class DaemonAgainstSpec(unittest.TestCase):
    """The real daemon's answers validate against the spec."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model, cls.shipped = model_for_tests(cls.tmp.name)
        cls.d = Daemon("test_openapi", ["--model", cls.model, "--workers", "2"])
        cls.png, cls.label = mnist_png(0)

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.tmp.cleanup()
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
        pix, _ = mnist_test(0)
        big = []
        for y in range(84):
            for x in range(84):
                big.append(255 - pix[(y // 3) * 28 + x // 3])
        _, doc = self.check("POST", "/predict?samples=20", 200, png_bytes(big, 84, 84), {"Content-Type": "image/png"})
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
            random_model(model, hidden=64)
            d = Daemon("test_openapi_overload", ["--model", model, "--workers", "1", "--queue-depth", "1",
                                                 "--overload-status", "429", "--retry-after", "2",
                                                 "--job-timeout-ms", "300"])
            try:
                png, _ = mnist_png(0)
                q = "/predict?samples=10000&mode=weights&seed=1"
                first = {}
                t = threading.Thread(target=lambda: first.update(r=d.request("POST", q, png, {"Content-Type": "image/png"})))
                t.start()
                self.wait_metric(d, "bnn_workers_busy", 1)  # the first job is computing
                second = {}
                t2 = threading.Thread(target=lambda: second.update(r=d.request("POST", q, png, {"Content-Type": "image/png"})))
                t2.start()
                self.wait_metric(d, "bnn_queue_depth", 1)  # the second waits in the queue
                status, hdrs, body = d.request("POST", q, png, {"Content-Type": "image/png"})
                t.join(120)
                t2.join(120)
                s = spec()
                self.assertEqual(status, 429, body)
                self.assertEqual(hdrs.get("retry-after"), "2")
                self.assertIn("x-request-id", hdrs)
                doc = json.loads(body)
                validate(doc, response_schema("/predict", "POST", 429, "application/json")[0], s)
                self.assertEqual(doc["error"]["code"], "overloaded")
                self.assertEqual(first["r"][0], 200)
                st2, h2, b2 = second["r"]
                self.assertEqual(st2, 503, b2)
                self.assertEqual(h2.get("retry-after"), "2")
                doc2 = json.loads(b2)
                validate(doc2, response_schema("/predict", "POST", 503, "application/json")[0], s)
                self.assertEqual(doc2["error"]["code"], "timeout")
            finally:
                self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
