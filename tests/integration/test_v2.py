#!/usr/bin/env python3
"""The Open Inference Protocol (KServe V2 REST) on the real daemon, next to
/predict on the same port: health and metadata; inference with requests
built byte by byte per the binary tensor data extension (JSON header of
Inference-Header-Content-Length bytes, then each BYTES element as a 4-byte
little-endian length and the PNG), with base64 JSON, and with pixel
tensors (UINT8 and FP32, JSON and binary); the same means as /predict for
the same image and seed; output selection and binary outputs read back
per the extension; the id and the one seed echoed; model_version; every
error as {"error": "message"} with Content-Type application/json and the
right status; the same queue limits (503/429 with Retry-After) and metrics
with their own route labels. Answers are checked against openapi.yaml's
V2 schemas. Real MNIST digits, the shipped weights (a random model of the
same shape when they are absent).
"""
import base64
import hashlib
import json
import math
import os
import re
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon  # noqa: E402
from daemon import Daemon, clean_env, make_model, mnist_image, mnist_png, png_encode, real_weights  # noqa: E402
from openapi_spec import response_schema, spec, validate  # noqa: E402

NAME = "mnist-bnn"
INFER = "/v2/models/%s/infer" % NAME
OUTPUTS = ["mean", "std", "lower", "upper", "prediction", "entropy", "aleatoric", "epistemic", "uncertain",
           "uncertain_reasons", "prediction_set", "preprocessing"]
EXAMPLES = os.path.join(daemon.ROOT, "examples")


def f32(x):
    """x rounded to float32, as V2's FP32 outputs are."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def sha12(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


# ---- building requests (the extension's byte layout) ----------------------------------

def bytes_elements(items):
    """A BYTES tensor in binary: per element a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def binary_request(inputs, binary, params=None, outputs=None, request_id=None):
    """(body, headers): the JSON header then the binary section."""
    doc = {"inputs": inputs}
    if params is not None:
        doc["parameters"] = params
    if outputs is not None:
        doc["outputs"] = outputs
    if request_id is not None:
        doc["id"] = request_id
    head = json.dumps(doc).encode()
    return head + binary, {"Inference-Header-Content-Length": str(len(head)),
                           "Content-Type": "application/octet-stream"}


def image_request(pngs, **kw):
    data = bytes_elements(pngs)
    inp = {"name": "image", "datatype": "BYTES", "shape": [len(pngs)], "parameters": {"binary_data_size": len(data)}}
    return binary_request([inp], data, **kw)


def json_request(inputs, params=None, outputs=None, request_id=None):
    doc = {"inputs": inputs}
    if params is not None:
        doc["parameters"] = params
    if outputs is not None:
        doc["outputs"] = outputs
    if request_id is not None:
        doc["id"] = request_id
    return json.dumps(doc).encode(), {"Content-Type": "application/json"}


def b64_image_input(pngs):
    return {"name": "image", "datatype": "BYTES", "shape": [len(pngs)], "parameters": {"content_type": "base64"},
            "data": [base64.b64encode(p).decode() for p in pngs]}


# ---- reading answers --------------------------------------------------------------------

def decode_binary(datatype, raw):
    if datatype == "FP32":
        return list(struct.unpack("<%df" % (len(raw) // 4), raw))
    if datatype == "INT64":
        return list(struct.unpack("<%dq" % (len(raw) // 8), raw))
    if datatype == "BOOL":
        assert set(raw) <= {0, 1}, raw
        return [b == 1 for b in raw]
    if datatype == "BYTES":
        out, off = [], 0
        while off < len(raw):
            (n,) = struct.unpack_from("<I", raw, off)
            out.append(raw[off + 4:off + 4 + n].decode())
            off += 4 + n
        return out
    raise AssertionError(datatype)


def parse_answer(headers, body):
    """(JSON document, {output name: flat values}), binary outputs decoded in
    order after the JSON part, JSON ones as they are (FP32 rounded)."""
    hl = headers.get("inference-header-content-length")
    head = body[:int(hl)] if hl else body
    doc = json.loads(head)
    values, off = {}, int(hl) if hl else len(body)
    for out in doc["outputs"]:
        size = out.get("parameters", {}).get("binary_data_size")
        if size is None:
            data = out["data"]
            values[out["name"]] = [f32(v) for v in data] if out["datatype"] == "FP32" else data
        else:
            values[out["name"]] = decode_binary(out["datatype"], body[off:off + size])
            off += size
    assert off == len(body), "bytes left after the binary outputs: %d of %d" % (off, len(body))
    return doc, values


class V2Protocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.shipped = real_weights()
        cls.d = Daemon("--workers", "2", name="test_v2").start()
        cls.version = sha12(cls.d.model)
        cls.pngs, cls.labels = zip(*(mnist_png(i) for i in range(4)))

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        if rc != 0:
            raise AssertionError("bnn-serve exited %s after SIGTERM" % rc)

    def post(self, body, headers, path=INFER):
        return self.d.request("POST", path, body, headers)

    def infer(self, body, headers, path=INFER):
        status, hdrs, data = self.post(body, headers, path)
        self.assertEqual(status, 200, data[:500])
        media = hdrs["content-type"]
        self.assertEqual(media, "application/octet-stream" if "inference-header-content-length" in hdrs
                         else "application/json")
        doc, values = parse_answer(hdrs, data)
        validate(doc, response_schema("/v2/models/{name}/infer", "POST", 200, "application/json")[0], spec())
        self.assertEqual(doc["model_name"], NAME)
        self.assertEqual(doc["model_version"], self.version)
        return doc, values

    def error(self, status, words, method, path, body=None, headers=None):
        got, hdrs, data = self.d.request(method, path, body, headers or {})
        self.assertEqual(got, status, data[:300])
        self.assertEqual(hdrs.get("content-type"), "application/json")  # exactly: KServe's client needs it
        doc = json.loads(data)
        self.assertEqual(list(doc), ["error"], doc)
        self.assertIsInstance(doc["error"], str)
        validate(doc, {"$ref": "#/components/schemas/V2Error"}, spec())
        self.assertIn(words, doc["error"])
        self.assertIn("x-request-id", hdrs)
        return hdrs, doc

    def predict(self, png, seed, samples):
        status, _, body = self.d.post_png("/predict?seed=%d&samples=%d" % (seed, samples), png)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    # -- health and metadata

    def test_health_and_server_metadata(self):
        for path, schema, doc in (("/v2/health/live", "V2Live", {"live": True}),
                                  ("/v2/health/ready", "V2Ready", {"ready": True})):
            status, hdrs, body = self.d.get(path)
            self.assertEqual((status, json.loads(body)), (200, doc))
            self.assertEqual(hdrs["content-type"], "application/json")
            validate(json.loads(body), {"$ref": "#/components/schemas/" + schema}, spec())
        status, _, body = self.d.get("/v2")
        meta = json.loads(body)
        self.assertEqual(status, 200)
        validate(meta, {"$ref": "#/components/schemas/V2ServerMetadata"}, spec())
        self.assertIn("binary_tensor_data", meta["extensions"])
        status, _, body = self.d.get("/v2/models/%s/ready" % NAME)
        self.assertEqual((status, json.loads(body)), (200, {"name": NAME, "ready": True}))
        status, _, _ = self.d.get("/v2/models/%s/versions/%s/ready" % (NAME, self.version))
        self.assertEqual(status, 200)

    def test_model_metadata(self):
        status, _, body = self.d.get("/v2/models/" + NAME)
        self.assertEqual(status, 200)
        meta = json.loads(body)
        validate(meta, {"$ref": "#/components/schemas/V2ModelMetadata"}, spec())
        self.assertEqual(meta["versions"], [self.version])  # sha256 of the weights file, 12 hex digits
        inputs = {t["name"]: t for t in meta["inputs"]}
        self.assertEqual(inputs["image"], {"name": "image", "datatype": "BYTES", "shape": [-1]})
        self.assertEqual(inputs["pixels"], {"name": "pixels", "datatype": "UINT8", "shape": [-1, 28, 28]})
        outputs = {t["name"]: (t["datatype"], t["shape"]) for t in meta["outputs"]}
        self.assertEqual([t["name"] for t in meta["outputs"]], OUTPUTS)
        self.assertEqual(outputs["mean"], ("FP32", [-1, 10]))
        self.assertEqual(outputs["prediction"], ("INT64", [-1]))
        self.assertEqual(outputs["uncertain"], ("BOOL", [-1]))
        self.assertEqual(outputs["uncertain_reasons"], ("BYTES", [-1]))
        self.assertEqual(outputs["prediction_set"], ("BOOL", [-1, 10]))
        status, _, body = self.d.get("/v2/models/%s/versions/%s" % (NAME, self.version))
        self.assertEqual((status, json.loads(body)), (200, meta))
        self.assertEqual(json.loads(self.d.get("/v1/model")[2])["model_version"], self.version)

    # -- inference

    def test_binary_image_matches_predict(self):
        """A hand-built binary request answers with /predict's numbers for
        the same PNG and seed (as float32)."""
        body, headers = image_request([self.pngs[0]], params={"seed": 11, "samples": 64})
        doc, v = self.infer(body, headers)
        ref = self.predict(self.pngs[0], 11, 64)
        used = {"seed": 11, "samples": 64, "interval": 0.95, "mode": "lrt"}
        if ref["set_coverage"] is not None:  # weights with conformal calibration
            used["set_coverage"] = ref["set_coverage"]
        self.assertEqual(doc["parameters"], used)
        self.assertEqual(ref["model_version"], self.version)
        self.assertEqual(v["prediction"], [ref["prediction"]])
        for name in ("mean", "std", "lower", "upper"):
            for k in range(10):
                self.assertTrue(math.isclose(v[name][k], ref["classes"][k][name], rel_tol=1e-6, abs_tol=1e-30),
                                "%s[%d]: %r vs %r" % (name, k, v[name][k], ref["classes"][k][name]))
        for name in ("entropy", "aleatoric", "epistemic"):
            self.assertTrue(math.isclose(v[name][0], ref["uncertainty"][name], rel_tol=1e-6, abs_tol=1e-30))
        self.assertEqual(v["uncertain"], [ref["uncertain"]])
        self.assertEqual(v["uncertain_reasons"], [",".join(ref["uncertain_reasons"])])
        self.assertEqual([k for k in range(10) if v["prediction_set"][k]], ref["prediction_set"] or [])
        self.assertEqual(v["preprocessing"], [ref["preprocessing"]])
        if self.shipped:
            self.assertEqual(v["prediction"], [self.labels[0]])

    def test_base64_json_same_as_binary(self):
        params = {"seed": 5, "samples": 40}
        _, vb = self.infer(*image_request(list(self.pngs[:2]), params=params))
        _, vj = self.infer(*json_request([b64_image_input(self.pngs[:2])], params=params))
        self.assertEqual(vb, vj)
        # content_type may be left out: base64 is assumed
        inp = b64_image_input(self.pngs[:2])
        del inp["parameters"]
        _, vj2 = self.infer(*json_request([inp], params=params))
        self.assertEqual(vj, vj2)

    def test_batch_in_order_one_seed(self):
        """N images in one request, in order, all with the request's one seed:
        each the same as /predict of that image with that seed."""
        doc, v = self.infer(*image_request(list(self.pngs), params={"seed": 3, "samples": 30}))
        self.assertEqual(len(v["prediction"]), 4)
        self.assertEqual(len(v["mean"]), 40)
        for i, png in enumerate(self.pngs):
            ref = self.predict(png, 3, 30)
            self.assertEqual(v["prediction"][i], ref["prediction"])
            for k in range(10):
                self.assertTrue(math.isclose(v["mean"][10 * i + k], ref["classes"][k]["mean"], rel_tol=1e-6,
                                             abs_tol=1e-30))
        if self.shipped:
            self.assertEqual(v["prediction"], list(self.labels))

    def test_pixels_same_as_png(self):
        """Pixel tensors (UINT8 and FP32, JSON flat and nested, binary) go
        through the PNG's canonicalisation: same pixels, same answer."""
        gray = [mnist_image(i)[0] for i in range(2)]
        params = {"seed": 9, "samples": 32}
        _, ref = self.infer(*image_request([png_encode(g, 28, 28) for g in gray], params=params))
        flat = [b for g in gray for b in g]
        nested = [[list(g[r * 28:(r + 1) * 28]) for r in range(28)] for g in gray]
        shape = [2, 28, 28]
        cases = {
            "uint8 json flat": json_request([{"name": "pixels", "datatype": "UINT8", "shape": shape, "data": flat}],
                                            params=params),
            "uint8 json nested": json_request([{"name": "pixels", "datatype": "UINT8", "shape": shape,
                                                "data": nested}], params=params),
            "fp32 json": json_request([{"name": "pixels", "datatype": "FP32", "shape": shape,
                                        "data": [b / 255 for b in flat]}], params=params),
            "uint8 binary": binary_request([{"name": "pixels", "datatype": "UINT8", "shape": shape,
                                             "parameters": {"binary_data_size": len(flat)}}], bytes(flat),
                                           params=params),
            "fp32 binary": binary_request([{"name": "pixels", "datatype": "FP32", "shape": shape,
                                            "parameters": {"binary_data_size": 4 * len(flat)}}],
                                          struct.pack("<%df" % len(flat), *[b / 255 for b in flat]), params=params),
        }
        for what, (body, headers) in cases.items():
            with self.subTest(what):
                _, v = self.infer(body, headers)
                self.assertEqual(v, ref)

    def test_output_selection_and_binary_outputs(self):
        params = {"seed": 21, "samples": 25}
        _, every = self.infer(*image_request([self.pngs[1]], params=params))
        self.assertEqual(list(every), OUTPUTS)
        outputs = [{"name": "prediction", "parameters": {"binary_data": True}}, {"name": "mean"},
                   {"name": "uncertain_reasons", "parameters": {"binary_data": True}}]
        body, headers = image_request([self.pngs[1]], params=params, outputs=outputs)
        status, hdrs, data = self.post(body, headers)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["content-type"], "application/octet-stream")
        hl = int(hdrs["inference-header-content-length"])
        doc = json.loads(data[:hl])
        self.assertEqual([o["name"] for o in doc["outputs"]], ["prediction", "mean", "uncertain_reasons"])
        self.assertEqual(doc["outputs"][0]["parameters"], {"binary_data_size": 8})
        self.assertNotIn("data", doc["outputs"][0])
        self.assertEqual(struct.unpack("<q", data[hl:hl + 8])[0], every["prediction"][0])
        _, v = parse_answer(hdrs, data)
        self.assertEqual(v, {k: every[k] for k in ("prediction", "mean", "uncertain_reasons")})
        # binary_data_output: every output in binary, the same values
        _, vb = self.infer(*image_request([self.pngs[1]], params=dict(params, binary_data_output=True)))
        self.assertEqual(vb, every)
        # JSON request, binary answer
        _, vj = self.infer(*json_request([b64_image_input([self.pngs[1]])], params=params,
                                         outputs=[{"name": "std", "parameters": {"binary_data": True}}]))
        self.assertEqual(vj, {"std": every["std"]})

    def test_id_seed_and_replay(self):
        body, headers = image_request([self.pngs[2]], params={"samples": 20}, request_id="my-id-42")
        doc, v = self.infer(body, headers)
        self.assertEqual(doc["id"], "my-id-42")
        seed = doc["parameters"]["seed"]
        self.assertIsInstance(seed, int)
        # (model_version, seed) replays the answer
        doc2, v2 = self.infer(*image_request([self.pngs[2]], params={"samples": 20, "seed": seed}))
        self.assertEqual(v2, v)
        self.assertNotIn("id", doc2)

    def test_no_digit(self):
        with open(os.path.join(EXAMPLES, "blank-page.png"), "rb") as f:
            blank = f.read()
        _, v = self.infer(*image_request([blank], params={"samples": 10}))
        self.assertEqual(v["uncertain"], [True])
        self.assertEqual(v["uncertain_reasons"][0].split(",")[0], "no_digit")
        self.assertEqual(v["preprocessing"], ["blank"])

    def test_versioned_path(self):
        _, v = self.infer(*image_request([self.pngs[0]], params={"seed": 1, "samples": 8}),
                          path="/v2/models/%s/versions/%s/infer" % (NAME, self.version))
        _, v0 = self.infer(*image_request([self.pngs[0]], params={"seed": 1, "samples": 8}))
        self.assertEqual(v, v0)

    # -- errors

    def test_errors(self):
        png = self.pngs[0]
        good_head = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                            "parameters": {"binary_data_size": 4 + len(png)}}]}).encode()
        good_bin = bytes_elements([png])
        octet = "application/octet-stream"

        def raw(head, binary, length=None):
            return head + binary, {"Inference-Header-Content-Length": str(len(head)) if length is None else length,
                                   "Content-Type": octet}

        def inp(**kw):
            base = {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"content_type": "base64"},
                    "data": [base64.b64encode(png).decode()]}
            base.update(kw)
            return json_request([base])

        cases = [
            ("header length not a number", raw(good_head, good_bin, "abc"), 400, "Inference-Header-Content-Length"),
            ("header length past the body", raw(good_head, good_bin, str(len(good_head) + len(good_bin) + 1)), 400,
             "Inference-Header-Content-Length"),
            ("header length cuts the JSON", raw(good_head, good_bin, str(len(good_head) - 3)), 400, "JSON header"),
            ("binary_data_size larger than what follows", raw(good_head, good_bin[:-5]), 400,
             "but the inputs declare"),
            ("bytes nobody declared", raw(good_head, good_bin + b"xyz"), 400, "but the inputs declare"),
            ("element length past its tensor",
             raw(good_head, struct.pack("<I", len(png) + 10) + png), 400, "declares %d bytes" % (len(png) + 10)),
            ("not JSON", (b"{nope", {"Content-Type": "application/json"}), 400, "JSON header"),
            ("wrong datatype", inp(datatype="FP32"), 400, "expected datatype BYTES, got FP32"),
            ("wrong shape", inp(shape=[1, 1]), 400, "expected shape [N]"),
            ("pixels wrong shape", json_request([{"name": "pixels", "datatype": "UINT8", "shape": [1, 784],
                                                  "data": [0] * 784}]), 400, "expected shape [N,28,28]"),
            ("pixels wrong datatype", json_request([{"name": "pixels", "datatype": "INT32", "shape": [1, 28, 28],
                                                     "data": [0] * 784}]), 400, "UINT8 or FP32, got INT32"),
            ("fp32 out of range", json_request([{"name": "pixels", "datatype": "FP32", "shape": [1, 28, 28],
                                                 "data": [2.0] * 784}]), 400, "expected FP32 in [0, 1], got 2"),
            ("unknown input", inp(name="picture"), 400, "unknown input 'picture'"),
            ("two inputs", json_request([{"name": "image"}, {"name": "pixels"}]), 400, "one input"),
            ("unknown output", json_request([json.loads(inp()[0])["inputs"][0]], outputs=[{"name": "logits"}]), 400,
             "unknown output 'logits'"),
            ("samples out of range", json_request([json.loads(inp()[0])["inputs"][0]], params={"samples": 0}), 400,
             "samples: expected 1..10000, got 0"),
            ("bad mode", json_request([json.loads(inp()[0])["inputs"][0]], params={"mode": "mc"}), 400,
             "mode: expected lrt or weights"),
            ("bad seed", json_request([json.loads(inp()[0])["inputs"][0]], params={"seed": -1}), 400, "seed"),
            ("bad set_coverage", json_request([json.loads(inp()[0])["inputs"][0]], params={"set_coverage": 0.5}),
             400, "set_coverage: expected one of the calibrated levels"),
            ("not a PNG", image_request([b"GIF89a, not a PNG"]), 400, "PNG"),
            ("media type", (b"{}", {"Content-Type": "text/plain"}), 415, "Content-Type 'text/plain'"),
        ]
        for what, (body, headers), status, words in cases:
            with self.subTest(what):
                self.error(status, words, "POST", INFER, body, headers)
        # over max_body_bytes, refused from Content-Length before a byte is read
        status, hdrs, data = self.d.announce("POST", INFER, 1024 * 1024 + 1, {"Content-Type": octet})
        self.assertEqual(status, 413)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertIn("max_body_bytes", json.loads(data)["error"])

    def test_path_errors(self):
        self.error(404, "unknown model 'other'", "POST", "/v2/models/other/infer", *image_request([self.pngs[0]]))
        self.error(404, "unknown model 'other'", "GET", "/v2/models/other")
        self.error(404, "has no version '000000000000'", "GET", "/v2/models/%s/versions/000000000000" % NAME)
        self.error(404, "has no version", "POST", "/v2/models/%s/versions/000000000000/infer" % NAME,
                   *image_request([self.pngs[0]]))
        self.error(404, "no such Open Inference Protocol path", "GET", "/v2/nothing/here")
        hdrs, _ = self.error(405, "GET is not allowed", "GET", INFER)
        self.assertIn("POST", hdrs["allow"])
        hdrs, _ = self.error(405, "POST is not allowed", "POST", "/v2/health/ready", b"", {})
        self.assertIn("GET", hdrs["allow"])

    def test_metrics_route_labels(self):
        self.d.get("/v2/health/live")
        self.d.get("/v2/models/" + NAME)
        self.infer(*image_request([self.pngs[0]], params={"samples": 4}))
        text = self.d.get("/metrics")[2].decode()
        for route in ("v2_infer", "v2_health", "v2_metadata"):
            self.assertRegex(text, r'bnn_requests_total\{route="%s",status="200"\} [1-9]' % route)
        self.assertIn('model_version="%s"' % self.version, text)


class V2Limits(unittest.TestCase):
    """The same queue as /predict: one worker, a queue of one, slow jobs
    (weight sampling, 10000 passes on a small model); a third request is
    refused at once with overload_status and Retry-After, in the V2 form."""

    def wait_metric(self, d, name, value):
        deadline = time.time() + 30
        while time.time() < deadline:
            m = re.search(r"(?m)^%s (\S+)$" % name, d.get("/metrics")[2].decode())
            if m and float(m.group(1)) == value:
                return
            time.sleep(0.01)
        self.fail("%s never reached %s" % (name, value))

    def test_overloaded(self):
        """One request in flight at most (queue_depth counts requests queued
        or computing): a second V2 infer is refused at once in the
        protocol's error form, with Retry-After, while the first completes."""
        with tempfile.TemporaryDirectory() as tmp:
            model = make_model(os.path.join(tmp, "small.safetensors"), dims="784-64-10")
            with Daemon("--workers", "1", "--queue-depth", "1", "--overload-status", "429", "--retry-after", "3",
                        "--max-samples", "100000", "--max-samples-weights", "100000", "--weights-pass-cost", "3",
                        name="test_v2_limits", model=model, env=clean_env()) as d:
                png = mnist_png(0)[0]
                body, headers = image_request([png], params={"samples": 20000, "mode": "weights", "seed": 1})
                answers = []
                t = threading.Thread(target=lambda: answers.append(d.request("POST", INFER, body, headers)))
                t.start()
                self.wait_metric(d, "bnn_queue_depth", 1)  # the first request is in flight
                status, hdrs, data = d.request("POST", INFER, body, headers)
                t.join(300)
                self.assertEqual(status, 429, data)
                self.assertEqual(hdrs.get("retry-after"), "3")
                self.assertEqual(hdrs["content-type"], "application/json")
                self.assertIn("queue full", json.loads(data)["error"])
                self.assertEqual([a[0] for a in answers], [200])
                self.assertEqual(d.stop(), 0)

if __name__ == "__main__":
    daemon.main()
