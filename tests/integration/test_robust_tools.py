"""The lab's tools, run as built, on real MNIST: bnn-corrupt (output
formats, determinism, the --limit prefix property, an independent Python
re-implementation of the rotation warp and of stripe/brightness/translate,
PNG output decoded and compared with the IDX output), bnn-calibrate (the
policy it writes into the metadata), bnn-eval (the daemon's path and
--model-only, --write-meta) and bnn-robust (the robustness JSON's internal
consistency, its agreement with bnn-eval, the policy it applies and its
overrides, the generated report text); and usage errors. Standard library
only.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import main, make_model, model_path  # noqa: E402  (shipped weights, else a random model)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BNN_BUILD", "build"))
CORRUPT = os.path.join(BUILD, "bnn-corrupt")
ROBUST = os.path.join(BUILD, "bnn-robust")
EVAL = os.path.join(BUILD, "bnn-eval")
CALIBRATE = os.path.join(BUILD, "bnn-calibrate")
MNIST = os.path.join(ROOT, "build", "data", "mnist")
NAMES = ("shot_noise impulse_noise glass_blur motion_blur shear scale rotate brightness translate "
         "stripe fog spatter dotted_line zigzag canny_edges").split()


def read_idx_images(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    assert magic == 0x803, "expected magic 0x803, got %#x" % magic
    assert len(data) == 16 + n * rows * cols, "size mismatch"
    return [data[16 + i * 784:16 + (i + 1) * 784] for i in range(n)], rows, cols


def read_idx_labels(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    assert magic == 0x801
    return data[8:8 + n]


def decode_gray_png(path):
    """8-bit grayscale, non-interlaced PNG -> (width, height, bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, ctype, _, _, interlace = ihdr
    assert (depth, ctype, interlace) == (8, 0, 0), ihdr
    raw = zlib.decompress(idat)
    out, prev = bytearray(), bytearray(w)
    for r in range(h):
        ftype, line = raw[r * (w + 1)], bytearray(raw[r * (w + 1) + 1:(r + 1) * (w + 1)])
        for i in range(w):
            a = line[i - 1] if i else 0
            b, c = prev[i], prev[i - 1] if i else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return w, h, bytes(out)


def rotate_reference(img, degrees):
    """skimage.transform.warp with inverse map [[cos,-sin],[sin,cos]] about
    (13.5, 13.5), order 1, constant 0 - written independently of corrupt.c."""
    a = math.radians(degrees)
    m = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    t = [13.5 - 13.5 * (m[0][0] + m[0][1]), 13.5 - 13.5 * (m[1][0] + m[1][1])]
    out = bytearray(784)
    for row in range(28):
        for col in range(28):
            x = m[0][0] * col + m[0][1] * row + t[0]
            y = m[1][0] * col + m[1][1] * row + t[1]
            x0, y0 = math.floor(x), math.floor(y)
            v = 0.0
            for dy in (0, 1):
                for dx in (0, 1):
                    xx, yy = x0 + dx, y0 + dy
                    wgt = (x - x0 if dx else 1 - (x - x0)) * (y - y0 if dy else 1 - (y - y0))
                    if 0 <= xx < 28 and 0 <= yy < 28:
                        v += wgt * img[yy * 28 + xx] / 255.0
            out[row * 28 + col] = int(math.floor(min(max(v, 0.0), 1.0) * 255 + 0.5))
    return bytes(out)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)


class CorruptTool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = os.path.join(cls.tmp.name, "a")
        r = run([CORRUPT, "--data", MNIST, "--out", cls.out, "--limit", "50", "--png", "3", "--seed", "7"])
        assert r.returncode == 0, r.stderr
        cls.clean, _, _ = read_idx_images(os.path.join(MNIST, "t10k-images-idx3-ubyte"))
        cls.labels = read_idx_labels(os.path.join(MNIST, "t10k-labels-idx1-ubyte"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def load(self, out, name):
        return read_idx_images(os.path.join(out, name, "t10k-images-idx3-ubyte"))[0]

    def test_idx_and_png_per_corruption(self):
        for name in NAMES:
            imgs, rows, cols = read_idx_images(os.path.join(self.out, name, "t10k-images-idx3-ubyte"))
            self.assertEqual((len(imgs), rows, cols), (50, 28, 28), name)
            labels = read_idx_labels(os.path.join(self.out, name, "t10k-labels-idx1-ubyte"))
            self.assertEqual(labels, self.labels[:50], name)
            self.assertNotEqual(imgs[:10], self.clean[:10], name + " left the digits unchanged")
            pngs = sorted(os.listdir(os.path.join(self.out, name, "png")))
            self.assertEqual(pngs, ["%05d-%d.png" % (i, self.labels[i]) for i in range(3)])
            for i, p in enumerate(pngs):
                w, h, px = decode_gray_png(os.path.join(self.out, name, "png", p))
                self.assertEqual((w, h), (28, 28))
                self.assertEqual(px, imgs[i], "%s png %d differs from the IDX image" % (name, i))

    def test_deterministic_and_limit_is_prefix(self):
        again = os.path.join(self.tmp.name, "b")
        short = os.path.join(self.tmp.name, "c")
        other = os.path.join(self.tmp.name, "d")
        for out, extra in ((again, ["--limit", "50", "--seed", "7"]), (short, ["--limit", "20", "--seed", "7"]),
                           (other, ["--limit", "20", "--seed", "8"])):
            r = run([CORRUPT, "--data", MNIST, "--out", out] + extra)
            self.assertEqual(r.returncode, 0, r.stderr)
        for name in NAMES:
            a = self.load(self.out, name)
            self.assertEqual(a, self.load(again, name), name + ": same seed, different bytes")
            self.assertEqual(a[:20], self.load(short, name), name + ": --limit 20 is not a prefix")
            seeded = name not in ("scale", "brightness", "stripe", "canny_edges")
            self.assertEqual(a[:20] != self.load(other, name), seeded, name + ": seed dependence")

    def test_stripe_brightness_translate_formulas(self):
        stripe, bright, trans = (self.load(self.out, n) for n in ("stripe", "brightness", "translate"))
        for i in range(50):
            x = self.clean[i]
            for p in range(784):
                c = p % 28
                self.assertEqual(stripe[i][p], 255 - x[p] if c < 7 or c >= 21 else x[p])
                # x + 127.5 rounds to x + 128, or x + 127 when float error lands below .5
                self.assertIn(bright[i][p], (min(x[p] + 127, 255), min(x[p] + 128, 255)))
            shifts = []
            for sy in (-3, 3):
                for sx in (-3, 3):
                    ref = bytes(x[(r + sy) * 28 + c + sx] if 0 <= r + sy < 28 and 0 <= c + sx < 28 else 0
                                for r in range(28) for c in range(28))
                    shifts.append(ref == trans[i])
            self.assertEqual(sum(shifts), 1, "image %d is not a (+-3, +-3) shift" % i)

    def test_rotation_matches_python_reference(self):
        out = os.path.join(self.tmp.name, "rot")
        r = run([CORRUPT, "--data", MNIST, "--out", out, "--rotate", "30", "--limit", "10"])
        self.assertEqual(r.returncode, 0, r.stderr)
        imgs = self.load(out, "rotate_30")
        for i in range(10):
            ref = rotate_reference(self.clean[i], 30.0)
            worst = max(abs(a - b) for a, b in zip(imgs[i], ref))
            self.assertLessEqual(worst, 1, "image %d: rotation differs from the reference by %d" % (i, worst))
        rot = self.load(self.out, "rotate")
        for i in range(10):
            refs = [rotate_reference(self.clean[i], s * math.degrees(0.4)) for s in (1, -1)]
            self.assertTrue(any(max(abs(a - b) for a, b in zip(rot[i], ref)) <= 1 for ref in refs))

    def test_usage_errors(self):
        cases = [
            (["--data", MNIST, "--out", self.tmp.name, "--corruption", "nope"], 2, "--corruption: expected"),
            (["--data", MNIST, "--out", self.tmp.name, "--limit", "0"], 2, "--limit"),
            (["--data", MNIST], 2, "--out are required"),
            (["--data", MNIST, "--out", self.tmp.name, "--rotate", "abc"], 2, "--rotate"),
            (["--data", "/nonexistent", "--out", self.tmp.name], 1, "/nonexistent"),
        ]
        for args, code, text in cases:
            r = run([CORRUPT] + args)
            self.assertEqual(r.returncode, code, args)
            self.assertIn(text, r.stderr)
        r = run([CORRUPT, "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("canny_edges", r.stdout)


def read_metadata(path):
    """The __metadata__ map of a safetensors file."""
    with open(path, "rb") as f:
        n, = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))["__metadata__"]


def calibrated_copy(directory, samples=20):
    """A copy of model_path() with the policy bnn-calibrate fits on the
    5,000 validation digits written into its metadata."""
    path = os.path.join(directory, "calibrated.safetensors")
    with open(model_path(), "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    r = run([CALIBRATE, "--model", path, "--data", MNIST, "--samples", str(samples), "--write-meta"])
    assert r.returncode == 0, r.stderr
    return path


def last_json_line(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


class CalibrateTool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = calibrated_copy(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_policy_in_metadata(self):
        meta = read_metadata(self.path)
        self.assertEqual(meta["abstain_samples"], "20")
        # 225 of the 5,000 validation digits: exactly the default 4.5 %
        self.assertEqual(meta["abstain_clean_flag_rate"], "0.0450")
        for key in ("abstain_entropy", "abstain_epistemic"):
            self.assertTrue(meta[key] == "inf" or float(meta[key]) >= 0, (key, meta[key]))
        self.assertFalse(meta["abstain_entropy"] == meta["abstain_epistemic"] == "inf")
        levels = [tuple(map(float, x.split(":"))) for x in meta["conformal"].split(",")]
        self.assertEqual([c for c, _ in levels], [0.9, 0.95, 0.99])
        probs = [q for _, q in levels]
        self.assertEqual(probs, sorted(probs, reverse=True), "a higher level must admit more classes")

    def test_usage_errors(self):
        for args, code, text in ((["--model", "x", "--data", MNIST, "--flag-rate", "0.7"], 2, "--flag-rate"),
                                 (["--data", MNIST], 2, "--model and --data are required"),
                                 (["--model", "/nonexistent.safetensors", "--data", MNIST], 1,
                                  "/nonexistent.safetensors")):
            r = run([CALIBRATE] + args)
            self.assertEqual(r.returncode, code, args)
            self.assertIn(text, r.stderr)


class EvalTool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = calibrated_copy(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def evaluate(self, *extra):
        r = run([EVAL, "--model", self.path, "--data", MNIST, "--samples", "20", "--json"] + list(extra))
        self.assertEqual(r.returncode, 0, r.stderr)
        return last_json_line(r.stdout), r.stdout

    def test_pipeline_by_default_and_model_only(self):
        pipe, text = self.evaluate("--limit", "300")
        alone, text_alone = self.evaluate("--limit", "300", "--model-only")
        self.assertTrue(pipe["pipeline"])
        self.assertFalse(alone["pipeline"])
        self.assertIn("the daemon's", text)
        self.assertIn("--model-only", text_alone)
        # the policy is applied and the 0.95 sets measured on the daemon's path
        self.assertIsNotNone(pipe["set_coverage"])
        self.assertGreater(pipe["set_size"], 0)
        self.assertGreaterEqual(pipe["flagged"], pipe["no_digit"])
        self.assertEqual(alone["no_digit"], 0.0)  # the model alone never says "no digit"
        # same seeds, different inputs: the canonicalisation changes the figures
        self.assertNotEqual((pipe["nll"], pipe["epistemic"]), (alone["nll"], alone["epistemic"]))
        for j in (pipe, alone):
            self.assertEqual(j["images"], 300)
            self.assertAlmostEqual(j["entropy"], j["aleatoric"] + j["epistemic"], places=5)

    def test_write_meta(self):
        path = os.path.join(self.tmp.name, "meta.safetensors")
        with open(self.path, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
        r = run([EVAL, "--model", path, "--data", MNIST, "--samples", "5", "--json", "--write-meta"])
        self.assertEqual(r.returncode, 0, r.stderr)
        j = last_json_line(r.stdout)
        meta = read_metadata(path)
        self.assertEqual(meta["test_samples"], "5")
        self.assertEqual(meta["test_accuracy"], "%.4f" % j["accuracy"])
        self.assertEqual(meta["test_flagged"], "%.4f" % j["flagged"])
        self.assertEqual(meta["test_set_coverage_0.95"], "%.4f" % j["set_coverage"])
        self.assertEqual(meta["abstain_samples"], "20", "the policy must survive the rewrite")

    def test_usage_errors(self):
        for args, text in ((["--write-meta", "--limit", "5"], "--write-meta needs the full test set"),
                           (["--write-meta", "--model-only"], "--model-only"),
                           (["--samples", "0"], "--samples: expected"),
                           (["--mode", "x"], "--mode: expected lrt or weights")):
            r = run([EVAL, "--model", self.path, "--data", MNIST] + args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(text, r.stderr)


class RobustTool(unittest.TestCase):
    N = 150

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = calibrated_copy(cls.tmp.name)
        cls.plots = os.path.join(cls.tmp.name, "plots")
        os.mkdir(cls.plots)
        cls.json_path = os.path.join(cls.tmp.name, "r.json")
        cls.md = os.path.join(cls.tmp.name, "n.md")
        r = run([ROBUST, "--model", cls.model, "--data", MNIST, "--limit", str(cls.N), "--validation", "500",
                 "--no-digit", "40", "--json", cls.json_path, "--plots", cls.plots, "--markdown", cls.md,
                 "--example", "3"])
        assert r.returncode == 0, r.stderr
        with open(cls.json_path) as f:
            cls.r = json.load(f)
        with open(cls.md) as f:
            cls.text = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def robust(self, *extra):
        """A small second run into a JSON document."""
        out = os.path.join(self.tmp.name, "x.json")
        r = run([ROBUST, "--model", self.model, "--data", MNIST, "--limit", "60", "--rotation-limit", "10",
                 "--validation", "0", "--no-digit", "6", "--model-only-samples", "0", "--json", out] + list(extra))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            return json.load(f)

    def labelled_sets(self):
        return [self.r["clean"]] + self.r["corruptions"] + self.r["rotation"]

    def test_structure(self):
        r = self.r
        self.assertEqual([c["name"] for c in r["corruptions"]], NAMES)
        self.assertEqual([a["degrees"] for a in r["rotation"]], list(range(0, 181, 15)))
        self.assertEqual(r["config"]["images"], self.N)
        self.assertEqual(r["config"]["samples"], 20, "the default T is the policy's")
        self.assertEqual(r["config"]["model_only_samples"], 20)
        self.assertEqual(r["config"]["policy"]["samples"], 20)
        self.assertEqual([x["coverage"] for x in r["config"]["policy"]["levels"]], [0.9, 0.95, 0.99])
        for s in self.labelled_sets():
            self.assertEqual(s["n"], self.N)
            for m in (s, s["model_only"]):
                for key in ("accuracy", "ece", "interval_width", "flagged"):
                    self.assertTrue(0.0 <= m[key] <= 1.0, (s["name"], key, m[key]))
                for key in ("entropy", "aleatoric", "epistemic"):  # nats, at most ln 10
                    self.assertTrue(0.0 <= m[key] <= math.log(10) + 1e-6, (s["name"], key, m[key]))
                self.assertAlmostEqual(m["entropy"], m["aleatoric"] + m["epistemic"], places=4)
            self.assertEqual(s["model_only"]["no_digit"], 0.0)
            self.assertEqual([x["coverage"] for x in s["sets"]], [0.9, 0.95, 0.99])
            self.assertEqual(s["sets"][1]["set_coverage"], s["set_coverage"])
            sizes = [x["set_size"] for x in s["sets"]]
            self.assertEqual(sizes, sorted(sizes), "a higher level must give larger sets")
        for key in ("auroc_entropy", "auroc_epistemic", "auroc_max_prob", "auroc_entropy_model_only",
                    "auroc_epistemic_model_only"):
            self.assertTrue(0.0 <= r["ood"][key] <= 1.0)
        self.assertIsNone(r["ood"]["accuracy"])  # no labels out of distribution
        self.assertIsNone(r["ood"]["set_coverage"])
        self.assertEqual(r["no_digit"]["n"], 40)
        self.assertGreaterEqual(r["no_digit"]["flagged"], r["no_digit"]["no_digit"])

    def test_consistency(self):
        r = self.r
        # rotation by 0 is the clean set with the same per-image seeds
        for key in ("accuracy", "nll", "ece", "epistemic", "interval_width", "flagged", "set_coverage"):
            self.assertEqual(r["rotation"][0][key], r["clean"][key], key)
        self.assertEqual(r["rotation"][0]["model_only"], r["clean"]["model_only"])
        for s in self.labelled_sets():
            if s["wrong"]:
                self.assertAlmostEqual(s["errors_flagged"], s["wrong_flagged"] / s["wrong"], places=5)
            self.assertAlmostEqual(s["accuracy"], 1 - s["wrong"] / s["n"], places=5)
            self.assertGreaterEqual(s["flagged"], s["no_digit"])  # no digit: always flagged
        sel = r["selective"]
        self.assertEqual(len(sel["abstain_fraction"]), 51)
        self.assertAlmostEqual(sel["clean_by_epistemic"][0], r["clean"]["accuracy"], places=5)
        self.assertAlmostEqual(sel["clean_by_entropy"][0], r["clean"]["accuracy"], places=5)
        pooled = (r["clean"]["accuracy"] + sum(c["accuracy"] for c in r["corruptions"])) / 16
        self.assertAlmostEqual(sel["pooled_by_epistemic"][0], pooled, places=5)  # JSON keeps 6 digits
        t = r["totals"]
        wrong = sum(c["wrong"] for c in r["corruptions"])
        caught = sum(c["wrong_flagged"] for c in r["corruptions"])
        self.assertEqual((t["corruptions_wrong"], t["corruptions_wrong_flagged"]), (wrong, caught))
        self.assertAlmostEqual(t["corruptions_errors_flagged"], caught / wrong, places=5)
        self.assertAlmostEqual(t["corruptions_mean_accuracy"],
                               sum(c["accuracy"] for c in r["corruptions"]) / 15, places=5)
        self.assertAlmostEqual(t["corruptions_mean_accuracy_model_only"],
                               sum(c["model_only"]["accuracy"] for c in r["corruptions"]) / 15, places=5)
        self.assertEqual(t["clean_flagged"], r["clean"]["flagged"])
        above = sum(c["epistemic"] > r["clean"]["epistemic"] for c in r["corruptions"])
        self.assertEqual(t["corruptions_epistemic_above_clean"], above)
        self.assertEqual(r["example"]["index"], 3)

    def test_targets(self):
        g = {x["key"]: x for x in self.r["targets"]}
        self.assertEqual(len(g), 9)
        self.assertEqual(g["corruption_errors_flagged"]["value"], self.r["totals"]["corruptions_errors_flagged"])
        self.assertEqual(g["clean_flagged"]["value"], self.r["clean"]["flagged"])
        self.assertEqual(g["clean_set_coverage"]["value"], self.r["clean"]["set_coverage"])
        self.assertEqual(g["no_digit_flagged"]["value"], self.r["no_digit"]["flagged"])
        for x in g.values():
            v = x["value"]
            met = v is not None and (x["min"] is None or v >= x["min"]) and (x["max"] is None or v <= x["max"])
            self.assertEqual(x["met"], met, x)
            self.assertEqual(x["above_floor"], not met and x["floor"] is not None and v >= x["floor"], x)

    def test_candidates(self):
        cands = self.r["candidates"]
        self.assertEqual([c["validation_flag_rate"] for c in cands], [0.01, 0.02, 0.05, 0.1, 0.2])
        for a, b in zip(cands, cands[1:]):  # flagging more validation digits flags more everywhere
            for key in ("clean_flagged", "corrupted_flagged", "fashion_flagged", "corrupted_errors_flagged"):
                self.assertLessEqual(a[key], b[key] + 1e-12, key)

    def test_agrees_with_bnn_eval(self):
        """The clean set's figures are bnn-eval's, both ways (same seeds)."""
        for extra, mine in (([], self.r["clean"]), (["--model-only"], self.r["clean"]["model_only"])):
            r = run([EVAL, "--model", self.model, "--data", MNIST, "--samples", "20", "--limit", str(self.N),
                     "--json"] + extra)
            self.assertEqual(r.returncode, 0, r.stderr)
            j = last_json_line(r.stdout)
            for key in ("accuracy", "nll", "ece", "interval_width", "epistemic", "flagged"):
                self.assertAlmostEqual(j[key], mine[key], places=5, msg=(extra, key))

    def test_policy_overrides(self):
        never = self.robust("--entropy-max", "inf", "--epistemic-max", "inf")
        for s in [never["clean"]] + never["corruptions"]:  # only pictures without a digit are flagged
            self.assertEqual(s["flagged"], s["no_digit"], s["name"])
        always = self.robust("--entropy-max", "0", "--epistemic-max", "0")
        for s in [always["clean"]] + always["corruptions"] + [always["ood"]]:
            self.assertEqual(s["flagged"], 1.0, s["name"])
        self.assertIn("--entropy-max", always["config"]["policy"]["source"])
        self.assertIsNone(never["config"]["policy"]["entropy_max"])  # infinity: never flags

    def test_refuses_an_uncalibrated_model(self):
        path = os.path.join(self.tmp.name, "plain.safetensors")
        make_model(path)
        r = run([ROBUST, "--model", path, "--data", MNIST, "--limit", "10"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("no calibrated policy", r.stderr)
        self.assertIn("bnn-calibrate", r.stderr)

    def test_plot_files(self):
        def rows(name):
            with open(os.path.join(self.plots, name)) as f:
                return [line.split() for line in f if not line.startswith("#")]
        cor = rows("corruptions.tsv")
        self.assertEqual([x[0] for x in cor], ["clean"] + NAMES)
        for x, s in zip(cor, [self.r["clean"]] + self.r["corruptions"]):
            self.assertEqual(len(x), 14)
            self.assertAlmostEqual(float(x[1]), s["accuracy"], places=5)
            self.assertAlmostEqual(float(x[2]), s["model_only"]["accuracy"], places=5)
            if s["errors_flagged"] is None:  # no wrong answer in the set: undefined
                self.assertTrue(math.isnan(float(x[10])), x)
            else:
                self.assertAlmostEqual(float(x[10]), s["errors_flagged"], places=5)
        rel = rows("reliability.tsv")
        self.assertEqual(len(rel), 15)
        self.assertEqual(sum(int(x[2]) for x in rel), self.N)
        hits = sum(float(x[4]) * int(x[2]) for x in rel)
        self.assertAlmostEqual(hits / self.N, self.r["clean"]["accuracy"], places=5)
        rot = rows("rotation.tsv")
        self.assertEqual(len(rot), 13)
        self.assertAlmostEqual(float(rot[3][7]), self.r["rotation"][3]["model_only"]["accuracy"], places=5)
        hist = rows("ood_hist.tsv")
        for col in (1, 2, 4, 5):
            self.assertAlmostEqual(sum(float(x[col]) for x in hist), 1.0, places=4)
        policy = rows("policy.txt")[0]
        self.assertAlmostEqual(float(policy[0]), 100 * self.r["clean"]["flagged"], places=1)
        ex = rows("example.tsv")
        self.assertEqual(len(ex), 10)
        for x in ex:
            lo, mean, hi = float(x[2]), float(x[1]), float(x[3])
            self.assertTrue(lo <= hi and 0 <= mean <= 1)
        words = rows("example.txt")[0]
        self.assertEqual(len(words), 9)
        self.assertEqual(int(words[0]), 3)
        self.assertEqual(len(rows("example_clean.mat")), 28)
        self.assertEqual(len(rows("gallery.mat")), 16 * 29 - 1)

    def test_markdown_states_the_numbers(self):
        text, r = self.text, self.r
        self.assertIn("| **clean** |", text)
        self.assertIn("| canny_edges |", text)
        self.assertIn("### Targets (issue 9)", text)
        self.assertIn("only for pictures like the calibration images", text)
        defeat = next(line for line in text.splitlines() if line.startswith("* Corruptions that still defeat"))
        below = [c for c in r["corruptions"] if c["accuracy"] < 0.85]
        for c in below:  # each named with its number
            self.assertIn("**%s %.1f %%**" % (c["name"], 100 * c["accuracy"]), defeat)
        for c in r["corruptions"]:
            if c["accuracy"] >= 0.85:
                self.assertNotIn("**%s " % c["name"], defeat)
        if not below:
            self.assertTrue(defeat.endswith("none."))
        total = "%.1f %% of the %d wrong answers" % (100 * r["totals"]["corruptions_errors_flagged"],
                                                    r["totals"]["corruptions_wrong"])
        self.assertIn(total, text)

    def test_usage_errors(self):
        for args, text in ((["--data", MNIST], "--model and --data are required"),
                           (["--model", "x", "--data", MNIST, "--samples", "1"], "--samples"),
                           (["--model", "x", "--data", MNIST, "--entropy-max", "-1"], "--entropy-max"),
                           (["--model", "x", "--data", MNIST, "--model-only-samples", "1"], "--model-only-samples"),
                           (["--model", "x", "--data", MNIST, "stray"], "unexpected argument")):
            r = run([ROBUST] + args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(text, r.stderr)
        r = run([ROBUST, "--model", "/nonexistent.safetensors", "--data", MNIST])
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent.safetensors", r.stderr)
        # unwritable outputs are refused before the run, not after it
        for flag, place in (("--plots", "/nonexistent"), ("--markdown", "/nonexistent/n.md"),
                            ("--json", "/nonexistent/r.json")):
            r = run([ROBUST, "--model", self.model, "--data", MNIST, flag, place])
            self.assertEqual(r.returncode, 1, flag)
            self.assertIn("%s %s: No such file or directory" % (flag, place), r.stderr)
            self.assertNotIn("clean", r.stderr, "the run started")


if __name__ == "__main__":
    main()
