"""Faults on the real daemon (issue #4, item 5): a worker that hits an
internal error answers 500 for that request only and the daemon goes on;
start-up with a truncated, corrupted or wrong-shape copy of the shipped
weights fails with a message naming the problem. The internal error is
injected with BNN_FAULT_EVERY_NTH_JOB (service/predict.h). Stdlib only.
"""
import json
import os
import re
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon  # noqa: E402


class WorkerFault(unittest.TestCase):
    def test_internal_error_is_a_500_for_that_request_only(self):
        png, label = daemon.mnist_png(0)
        env = daemon.clean_env()
        env["BNN_FAULT_EVERY_NTH_JOB"] = "3"
        with daemon.Daemon("--workers", "1", env=env) as d:
            answers = [d.post_png("/predict?samples=50&seed=11", png) for _ in range(9)]
            for i, (status, headers, body) in enumerate(answers, 1):
                doc = json.loads(body)
                if i % 3 == 0:
                    self.assertEqual(status, 500, "job %d" % i)
                    self.assertEqual(doc["error"]["code"], "internal")
                    self.assertIn("injected fault", doc["error"]["message"])
                else:
                    self.assertEqual(status, 200, "job %d: %r" % (i, body[:200]))
                    self.assertEqual(doc["prediction"], label)
            # The answers that succeeded are the same answer: the failed
            # jobs disturbed nothing (same seed, same bytes of classes).
            ok = [json.loads(b)["classes"] for s, _, b in answers if s == 200]
            self.assertTrue(all(c == ok[0] for c in ok))
            self.assertEqual(d.get("/healthz")[0], 200)
            self.assertEqual(d.get("/readyz")[0], 200)
            metrics = d.get("/metrics")[2].decode()
            m = re.search(r'^bnn_requests_total\{route="predict",status="500"\} (\d+)$', metrics, re.M)
            self.assertIsNotNone(m, metrics[:2000])
            self.assertEqual(int(m.group(1)), 3)
            self.assertIn("injected fault", d.log())
            self.assertEqual(d.stop(), 0)


def shipped_bytes():
    with open(daemon.SHIPPED_WEIGHTS, "rb") as f:
        return f.read()


@unittest.skipUnless(daemon.real_weights(), "needs model/weights/mnist-bnn.safetensors")
class BadWeightsAtStartup(unittest.TestCase):
    def start_with(self, data):
        with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as f:
            f.write(data)
            path = f.name
        try:
            r = daemon.run_server("--model", path, "--port", "0", env=daemon.clean_env())
        finally:
            os.unlink(path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "", "nothing may claim to listen")
        self.assertRegex(r.stderr, r"^bnn-serve: error: model: ")
        self.assertIn(path, r.stderr)
        return r.stderr

    def test_truncated(self):
        data = shipped_bytes()
        for cut in (4, 8 + 100, len(data) // 2, len(data) - 1):
            with self.subTest(cut=cut):
                err = self.start_with(data[:cut])
                self.assertRegex(err, r"(?i)truncat|header|size|bytes")

    def test_corrupted_value(self):
        data = bytearray(shipped_bytes())
        hlen = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + hlen])
        begin = header["layers.1.kernel_scale"]["data_offsets"][0]
        at = 8 + hlen + begin + 4 * 1234
        data[at:at + 4] = struct.pack("<f", -0.5)  # a negative sigma
        err = self.start_with(bytes(data))
        self.assertIn("layers.1.kernel_scale", err)
        self.assertIn("-0.5", err)
        data[at:at + 4] = struct.pack("<f", float("nan"))
        err = self.start_with(bytes(data))
        self.assertIn("layers.1.kernel_scale", err)

    def test_wrong_shape(self):
        data = shipped_bytes()
        hlen = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + hlen])
        header["layers.2.kernel_loc"]["shape"] = [256, 128]
        new = json.dumps(header).encode()
        err = self.start_with(struct.pack("<Q", len(new)) + new + data[8 + hlen:])
        self.assertIn("layers.2.kernel_loc", err)
        self.assertIn("256", err)


if __name__ == "__main__":
    daemon.main()
