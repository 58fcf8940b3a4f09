#!/usr/bin/env python3
"""The shipped example PNGs (examples/) work at once: posted to the real
daemon with the shipped weights, every digit is predicted as the label
examples/MANIFEST gives it and the non-digits answer 200 with a valid
prediction; the README's curl lines, run as written against the daemon,
answer; and examples/make-examples.py rewrites exactly the shipped files
from the real MNIST test set.

Standard library + curl; needs build/bnn-serve and the shipped weights.
"""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon  # noqa: E402

EXAMPLES = os.path.join(daemon.ROOT, "examples")
README = os.path.join(daemon.ROOT, "README.md")
# Enough passes for stable means; a fixed seed so a failure replays.
QUERY = "?samples=200&seed=1"


def manifest():
    """[(file name, label int or None, description)] of examples/MANIFEST."""
    rows = []
    with open(os.path.join(EXAMPLES, "MANIFEST")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, label, what = line.split(None, 2)
                rows.append((name, None if label == "-" else int(label), what.strip()))
    return rows


def example(name):
    with open(os.path.join(EXAMPLES, name), "rb") as f:
        return f.read()


def readme_curl_commands(sections=("Quick start", "Predicting")):
    """The curl command lines (continuations joined) of README sections."""
    with open(README) as f:
        text = f.read()
    cmds = []
    for title in sections:
        m = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## )", text, re.M | re.S)
        if not m:
            raise AssertionError(f"README.md: no section '## {title}'")
        lines = [ln[4:] for ln in m.group(1).splitlines() if ln.startswith("    ")]
        joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
        cmds += [ln.strip() for ln in joined.splitlines() if ln.strip().startswith("curl ")]
    return cmds


def check_answer(test, status, body, what):
    """A /predict answer: 200, JSON, a digit, ten classes; returns it."""
    test.assertEqual(status, 200, f"{what}: {body[:300]!r}")
    answer = json.loads(body)
    test.assertIn(answer["prediction"], range(10), what)
    test.assertEqual([c["label"] for c in answer["classes"]], list(range(10)), what)
    return answer


class Examples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Skipped in setUpClass, so that the runner counts no test as run.
        if not daemon.real_weights():
            raise unittest.SkipTest(f"needs the shipped weights {daemon.SHIPPED_WEIGHTS}")
        cls.d = daemon.Daemon("--workers", "2", model=daemon.SHIPPED_WEIGHTS).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        if rc != 0:
            raise AssertionError(f"bnn-serve exited {rc} after SIGTERM, expected 0:\n{cls.d.log()[-2000:]}")

    def test_manifest_covers_the_folder(self):
        names = [n for n, _, _ in manifest()]
        on_disk = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".png"))
        self.assertEqual(sorted(names), on_disk)
        labels = [label for _, label, _ in manifest()]
        self.assertGreaterEqual(sum(label is not None for label in labels), 6, "fewer digit examples than shipped")
        self.assertIn(None, labels, "no non-digit example")
        for name in names:
            size = os.path.getsize(os.path.join(EXAMPLES, name))
            self.assertLess(size, 64 * 1024, f"{name}: {size} bytes is not a small example")
            if name.startswith("digit-"):
                # digit-<MNIST index>-<label>.png, as scripts/mnist-png.py names them.
                self.assertEqual(int(name[:-4].split("-")[2]), dict((n, lb) for n, lb, _ in manifest())[name])

    def test_digits_are_predicted_as_their_labels(self):
        for name, label, what in manifest():
            if label is None:
                continue
            with self.subTest(name=name):
                status, _, body = self.d.post_png("/predict" + QUERY, example(name))
                answer = check_answer(self, status, body, name)
                self.assertEqual(answer["prediction"], label,
                                 f"{name} ({what}): expected {label}, got {answer['prediction']}: "
                                 f"{[round(c['mean'], 3) for c in answer['classes']]}")
                steps = answer["preprocessing"].split("+")
                if name.startswith("digit-"):  # MNIST's own convention already
                    self.assertNotIn("inverted", steps, name)
                else:  # dark ink on a page of another size
                    self.assertTrue({"inverted", "resized"} <= set(steps), name)

    def test_non_digits_answer_200_with_json(self):
        for name, label, what in manifest():
            if label is not None:
                continue
            with self.subTest(name=name):
                status, hdrs, body = self.d.post_png("/predict" + QUERY, example(name))
                self.assertEqual(hdrs.get("content-type", "").split(";")[0], "application/json")
                answer = check_answer(self, status, body, name)
                self.assertAlmostEqual(sum(c["mean"] for c in answer["classes"]), 1.0, places=4)
        for name in ("blank-page.png", "texture.png"):
            status, _, body = self.d.post_png("/predict" + QUERY, example(name))
            answer = json.loads(body)
            self.assertTrue(answer["uncertain"], f"{name} holds no digit: {answer}")
            self.assertIn("no_digit", answer["uncertain_reasons"], name)

    def test_batch_of_every_example_keeps_order(self):
        rows = manifest()
        images = [base64.b64encode(example(n)).decode() for n, _, _ in rows]
        status, _, body = self.d.post_json("/predict/batch", {"images": images, "samples": 200, "seed": 1})
        self.assertEqual(status, 200, body[:300])
        results = json.loads(body)["results"]
        self.assertEqual(len(results), len(rows))
        for (name, label, _), res in zip(rows, results):
            if label is not None:
                self.assertEqual(res["prediction"], label, name)

    def test_readme_curl_lines_answer_as_written(self):
        """Each curl line of the README's Quick start and Predicting, run by
        sh from the repository root, only the port changed."""
        cmds = readme_curl_commands()
        self.assertGreaterEqual(len(cmds), 6, cmds)
        for cmd in cmds:
            used = re.findall(r"(?:@|base64 -w0 )(\S+?\.png)", cmd)
            self.assertTrue(used, f"README curl line posts no PNG: {cmd}")
            for path in used:
                self.assertTrue(path.startswith("examples/") and os.path.exists(os.path.join(daemon.ROOT, path)),
                                f"README posts {path}, which does not ship in examples/: {cmd}")
            local = cmd.replace("localhost:8080", f"127.0.0.1:{self.d.port}")
            self.assertNotEqual(local, cmd, f"README curl line does not target localhost:8080: {cmd}")
            with self.subTest(cmd=cmd):
                p = subprocess.run(["sh", "-c", local + " --silent --show-error --fail-with-body"], cwd=daemon.ROOT,
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 0, f"{cmd}: {p.stderr} {p.stdout[:300]}")
                answer = json.loads(p.stdout)
                for one in answer.get("results", [answer]):
                    self.assertIn(one["prediction"], range(10))
                if "digit-0-7.png" in cmd and "batch" not in cmd:
                    self.assertEqual(answer["prediction"], 7, cmd)


class Regenerated(unittest.TestCase):
    """examples/make-examples.py writes exactly the shipped files."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(daemon.MNIST_DIR, "t10k-images-idx3-ubyte")):
            raise unittest.SkipTest(f"MNIST test set not in {daemon.MNIST_DIR} (make data)")

    def test_make_examples_reproduces_the_shipped_files(self):
        with tempfile.TemporaryDirectory() as out:
            p = subprocess.run([sys.executable, os.path.join(EXAMPLES, "make-examples.py"), "--data", daemon.MNIST_DIR,
                                "--out", out], capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            written = sorted(f for f in os.listdir(out) if f.endswith(".png"))
            self.assertEqual(written, sorted(n for n, _, _ in manifest()))
            for name in written:
                with open(os.path.join(out, name), "rb") as f:
                    self.assertEqual(f.read(), example(name), f"{name} differs from what make-examples.py writes")
            # The plain digits are scripts/mnist-png.py's own output.
            for name, label, _ in manifest():
                if name.startswith("digit-"):
                    one = os.path.join(out, "one.png")
                    subprocess.run([sys.executable, os.path.join(daemon.ROOT, "scripts", "mnist-png.py"), "--data",
                                    daemon.MNIST_DIR, "--index", name.split("-")[1], "--out", one], check=True)
                    with open(one, "rb") as f:
                        self.assertEqual(f.read(), example(name), name)


if __name__ == "__main__":
    daemon.main()
