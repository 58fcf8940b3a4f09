"""bnn-corrupt and bnn-robust, run as built, on real MNIST: output formats,
determinism, the --limit prefix property, an independent Python
re-implementation of the rotation warp and of stripe/brightness/translate,
PNG output decoded and compared with the IDX output, the robustness JSON's
internal consistency, and usage errors. Standard library only.
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
from daemon import main, model_path  # noqa: E402  (shipped weights, else a random model)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BNN_BUILD", "build"))
CORRUPT = os.path.join(BUILD, "bnn-corrupt")
ROBUST = os.path.join(BUILD, "bnn-robust")
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
            (["--data", MNIST, "--out", self.tmp.name, "--corruption", "nope"], 2, "unknown name 'nope'"),
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


class RobustTool(unittest.TestCase):
    N = 150

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.plots = os.path.join(cls.tmp.name, "plots")
        os.mkdir(cls.plots)
        cls.json_path = os.path.join(cls.tmp.name, "r.json")
        cls.md = os.path.join(cls.tmp.name, "n.md")
        r = run([ROBUST, "--model", model_path(), "--data", MNIST, "--limit", str(cls.N), "--samples", "20",
                 "--json", cls.json_path, "--plots", cls.plots, "--markdown", cls.md, "--example", "3"])
        assert r.returncode == 0, r.stderr
        with open(cls.json_path) as f:
            cls.r = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_structure(self):
        r = self.r
        self.assertEqual([c["name"] for c in r["corruptions"]], NAMES)
        self.assertEqual([a["degrees"] for a in r["rotation"]], list(range(0, 181, 15)))
        self.assertEqual(r["config"]["images"], self.N)
        self.assertEqual(r["config"]["samples"], 20)
        for s in [r["clean"]] + r["corruptions"] + r["rotation"]:
            self.assertEqual(s["n"], self.N)
            for key in ("accuracy", "ece", "interval_width"):
                self.assertTrue(0.0 <= s[key] <= 1.0, (s["name"], key, s[key]))
            for key in ("entropy", "aleatoric", "epistemic"):  # nats, at most ln 10
                self.assertTrue(0.0 <= s[key] <= math.log(10) + 1e-6, (s["name"], key, s[key]))
            self.assertAlmostEqual(s["entropy"], s["aleatoric"] + s["epistemic"], places=4)
        for key in ("auroc_entropy", "auroc_epistemic", "auroc_max_prob"):
            self.assertTrue(0.0 <= r["ood"][key] <= 1.0)
        self.assertIsNone(r["ood"]["accuracy"])  # no labels out of distribution

    def test_consistency(self):
        r = self.r
        # rotation by 0 is the clean set with the same per-image seeds
        for key in ("accuracy", "nll", "ece", "epistemic", "interval_width"):
            self.assertEqual(r["rotation"][0][key], r["clean"][key], key)
        sel = r["selective"]
        self.assertEqual(len(sel["abstain_fraction"]), 51)
        self.assertAlmostEqual(sel["clean_by_epistemic"][0], r["clean"]["accuracy"], places=5)
        self.assertAlmostEqual(sel["clean_by_entropy"][0], r["clean"]["accuracy"], places=5)
        pooled = (r["clean"]["accuracy"] + sum(c["accuracy"] for c in r["corruptions"])) / 16
        self.assertAlmostEqual(sel["pooled_by_epistemic"][0], pooled, places=5)  # JSON keeps 6 digits
        t = r["threshold"]
        self.assertLessEqual(abs(t["clean_flagged"] - 0.05), 1.0 / self.N + 1e-9)
        self.assertLessEqual(t["epistemic_at_10pct"], t["epistemic"])
        self.assertLessEqual(t["epistemic"], t["epistemic_at_1pct"])
        cands = t["candidates"]
        self.assertEqual([c["clean_abstain"] for c in cands], [0.01, 0.02, 0.05, 0.1, 0.2])
        self.assertEqual(cands[2]["epistemic"], t["epistemic"])  # the recommended one
        for a, b in zip(cands, cands[1:]):  # flagging more clean inputs lowers the bar
            self.assertGreaterEqual(a["epistemic"], b["epistemic"])
            self.assertLessEqual(a["fashion_flagged"], b["fashion_flagged"])
            self.assertLessEqual(a["corrupted_flagged"], b["corrupted_flagged"])
        g = r["targets"]
        above = sum(c["epistemic"] > r["clean"]["epistemic"] for c in r["corruptions"])
        self.assertEqual(g["corruptions_epistemic_above_clean"], above)
        self.assertEqual(r["example"]["index"], 3)

    def test_plot_files(self):
        def rows(name):
            with open(os.path.join(self.plots, name)) as f:
                return [line.split() for line in f if not line.startswith("#")]
        self.assertEqual(len(rows("corruptions.tsv")), 16)
        rel = rows("reliability.tsv")
        self.assertEqual(len(rel), 15)
        self.assertEqual(sum(int(x[2]) for x in rel), self.N)
        hits = sum(float(x[4]) * int(x[2]) for x in rel)
        self.assertAlmostEqual(hits / self.N, self.r["clean"]["accuracy"], places=5)
        self.assertEqual(len(rows("rotation.tsv")), 13)
        hist = rows("ood_hist.tsv")
        for col in (1, 2, 4, 5):
            self.assertAlmostEqual(sum(float(x[col]) for x in hist), 1.0, places=4)
        ex = rows("example.tsv")
        self.assertEqual(len(ex), 10)
        for x in ex:
            lo, mean, hi = float(x[2]), float(x[1]), float(x[3])
            self.assertTrue(lo <= hi and 0 <= mean <= 1)
        self.assertEqual(len(rows("example_clean.mat")), 28)
        self.assertEqual(len(rows("gallery.mat")), 16 * 29 - 1)
        with open(self.md) as f:
            text = f.read()
        self.assertIn("| **clean** |", text)
        self.assertIn("| canny_edges |", text)

    def test_usage_errors(self):
        for args, text in ((["--data", MNIST], "--model and --data are required"),
                           (["--model", "x", "--data", MNIST, "--samples", "1"], "--samples"),
                           (["--model", "x", "--data", MNIST, "--abstain", "0.9"], "--abstain")):
            r = run([ROBUST] + args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(text, r.stderr)
        r = run([ROBUST, "--model", "/nonexistent.safetensors", "--data", MNIST])
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent.safetensors", r.stderr)


if __name__ == "__main__":
    main()
