"""Shared helpers for the integration tests: start the real bnn-serve on a
free port (port 0, read back from its ready line) and wait for /readyz;
HTTP requests with http.client; PNG encoding (every colour type, bit depth
and interlacing) with zlib + struct; real MNIST digits from build/data/mnist;
multipart bodies. Standard library only.
"""
import http.client
import json
import os
import re
import signal
import struct
import subprocess
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BNN_BUILD", "build"))
SERVER = os.path.join(BUILD, "bnn-serve")
MKMODEL = os.path.join(BUILD, "bnn-mkmodel")
SHIPPED_WEIGHTS = os.path.join(ROOT, "model", "weights", "mnist-bnn.safetensors")
MNIST_DIR = os.path.join(ROOT, "build", "data", "mnist")
FIXTURES = os.path.join(ROOT, "tests", "data", "png")

_random_model = None


def real_weights():
    """True when the trained weights are in the tree."""
    return os.path.exists(SHIPPED_WEIGHTS)


def model_path():
    """The shipped weights when present, else a random model made once per
    process with bnn-mkmodel (same seed, same file)."""
    global _random_model
    if real_weights():
        return SHIPPED_WEIGHTS
    if _random_model is None:
        d = tempfile.mkdtemp(prefix="bnn-it-")
        path = os.path.join(d, "random.safetensors")
        subprocess.run([MKMODEL, path, "7"], check=True)
        _random_model = path
    return _random_model


class Daemon:
    """The real daemon as a child process. Use as a context manager."""

    def __init__(self, *args, env=None, model=None, ready=True, cwd=ROOT):
        self.args = list(args)
        self.env = dict(os.environ if env is None else env)
        self.model = model
        self.wait_ready = ready
        self.cwd = cwd
        self.proc = None
        self.port = None
        self.stderr_path = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=30):
        fd, self.stderr_path = tempfile.mkstemp(prefix="bnn-serve-", suffix=".log")
        os.close(fd)
        argv = [SERVER, "--port", "0", "--model", self.model or model_path()] + self.args
        self.stderr_file = open(self.stderr_path, "w")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr_file, cwd=self.cwd,
                                     env=self.env, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on http://(\S+):(\d+) ", line)
        if not m:
            self.proc.wait(timeout=10)
            raise RuntimeError("bnn-serve did not start (exit %s): %r\n%s" % (self.proc.returncode, line, self.log()))
        self.port = int(m.group(2))
        self.ready_line = line
        if self.wait_ready:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if self.get("/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("bnn-serve not ready after %s s" % timeout)
                time.sleep(0.05)
        return self

    def log(self):
        with open(self.stderr_path) as f:
            return f.read()

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        self.stderr_file.close()
        return rc

    def connection(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers as a lower-case dict, body bytes)."""
        c = self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def post_png(self, path, png, headers=None):
        h = {"Content-Type": "image/png"}
        h.update(headers or {})
        return self.request("POST", path, body=png, headers=h)

    def post_json(self, path, obj, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, body=json.dumps(obj).encode(), headers=h)


def run_server(*args, env=None, timeout=30):
    """bnn-serve with arguments, not as a daemon (--help, --check-config...)."""
    return subprocess.run([SERVER] + list(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=dict(os.environ if env is None else env))


# --- MNIST ----------------------------------------------------------------

_mnist = None


def mnist_test():
    """(images as bytes objects of 784, labels) of the real t10k set."""
    global _mnist
    if _mnist is None:
        with open(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte"), "rb") as f:
            data = f.read()
        magic, n, rows, cols = struct.unpack(">IIII", data[:16])
        assert magic == 0x803 and rows == 28 and cols == 28, "not an MNIST image file"
        images = [data[16 + i * 784:16 + (i + 1) * 784] for i in range(n)]
        with open(os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte"), "rb") as f:
            ldata = f.read()
        labels = list(ldata[8:8 + n])
        _mnist = (images, labels)
    return _mnist


# --- PNG --------------------------------------------------------------------

def _chunk(kind, data):
    c = kind + data
    return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)


_ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _pack_row(samples, depth):
    """Samples (ints) at a bit depth into bytes, MSB first, padded."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


def png_encode(gray, width, height, color_type=0, depth=8, interlace=False, alpha=None):
    """Encodes 8-bit gray pixels (bytes, row-major) as a PNG of the given
    colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA) and bit
    depth; samples are scaled exactly (v * (2^d - 1) / 255, rounded) for
    other depths. alpha: optional 8-bit alpha per pixel (opaque if None)."""
    maxv = (1 << depth) - 1
    plte = b""

    def scale(v):
        return (v * maxv + 127) // 255

    def pixel_samples(i):
        v = gray[i]
        a = 255 if alpha is None else alpha[i]
        if color_type == 0:
            return [scale(v)]
        if color_type == 2:
            return [scale(v)] * 3
        if color_type == 3:
            return [v >> (8 - depth)] if depth < 8 else [v]
        if color_type == 4:
            return [scale(v), scale(a)]
        if color_type == 6:
            return [scale(v)] * 3 + [scale(a)]
        raise ValueError(color_type)

    if color_type == 3:
        n = 1 << depth
        # Palette entry k is the gray level k scaled to 8 bits.
        plte = _chunk(b"PLTE", b"".join(bytes([k * 255 // (n - 1)] * 3) for k in range(n)))

    def scanlines(xs, ys):
        raw = bytearray()
        for y in ys:
            samples = []
            for x in xs:
                samples += pixel_samples(y * width + x)
            raw += b"\x00" + _pack_row(samples, depth)
        return bytes(raw)

    if interlace:
        raw = b""
        for x0, y0, dx, dy in _ADAM7:
            xs, ys = list(range(x0, width, dx)), list(range(y0, height, dy))
            if xs and ys:
                raw += scanlines(xs, ys)
    else:
        raw = scanlines(range(width), range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + plte + _chunk(b"IDAT", zlib.compress(raw, 9)) +
            _chunk(b"IEND", b""))


def mnist_png(index, **kw):
    images, labels = mnist_test()
    return png_encode(images[index], 28, 28, **kw), labels[index]


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def multipart(fields):
    """fields: list of (name, filename or None, content bytes). Returns
    (body, content type)."""
    boundary = "bnnboundary%08x" % (int(time.time() * 1e6) & 0xFFFFFFFF)
    out = bytearray()
    for name, filename, content in fields:
        out += b"--" + boundary.encode() + b"\r\n"
        if filename:
            out += ('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    "Content-Type: image/png\r\n\r\n" % (name, filename)).encode()
        else:
            out += ('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode()
        out += content + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return bytes(out), "multipart/form-data; boundary=" + boundary
