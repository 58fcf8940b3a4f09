"""The one harness of the integration tests: start the real bnn-serve on a
free port (port 0, read back from its ready line) and wait for /readyz;
run it as a command (--help, --check-config, --probe); HTTP requests with
http.client; PNG encoding (every colour type, bit depth and interlacing)
with zlib + struct; real MNIST digits from build/data/mnist; multipart
bodies; models (the shipped weights, else a random one from bnn-mkmodel);
and main(), which every test script ends with: unittest.main plus one
record per test for tests/run.sh's tally. Standard library only.
"""
import http.client
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BNN_BUILD", "build"))  # an absolute BNN_BUILD stays as it is
SERVER = os.path.join(BUILD, "bnn-serve")
MKMODEL = os.path.join(BUILD, "bnn-mkmodel")
SHIPPED_WEIGHTS = os.path.join(ROOT, "model", "weights", "mnist-bnn.safetensors")
MNIST_DIR = os.path.join(ROOT, "build", "data", "mnist")
FIXTURES = os.path.join(ROOT, "tests", "data", "png")
LOG_DIR = os.path.join(BUILD, "test-logs")

_AUTO = object()  # Daemon(model=...) default: model_path()


def clean_env(**extra):
    """os.environ without the BNN_SERVE_* configuration, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNN_SERVE_")}
    env.update(extra)
    return env


# --- models -------------------------------------------------------------------

def real_weights():
    """True when the trained weights are in the tree."""
    return os.path.exists(SHIPPED_WEIGHTS)


def make_model(path, seed=7, dims="784-784-256-256-10", sigma=None):
    """A random (untrained) model written by the project's bnn-mkmodel:
    same seed and dims, same file. Returns path."""
    argv = [MKMODEL, path, str(seed), dims] + ([] if sigma is None else [str(sigma)])
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return path


_random_model = None


def model_path():
    """The shipped weights when present, else a random model of the
    shipped shape made once per process with bnn-mkmodel (seed 7)."""
    global _random_model
    if real_weights():
        return SHIPPED_WEIGHTS
    if _random_model is None:
        _random_model = make_model(os.path.join(tempfile.mkdtemp(prefix="bnn-it-"), "random.safetensors"))
    return _random_model


# --- the daemon -------------------------------------------------------------------

class Daemon:
    """The real daemon as a child process: Daemon(*flags).start(), or use it
    as a context manager. --port 0 and --model are added to the flags
    (model=None adds no --model: the daemon resolves its own default). env
    replaces the environment when given. stderr goes to
    build/test-logs/NAME.stderr when name is given, else a temporary file."""

    def __init__(self, *args, name=None, env=None, model=_AUTO, ready=True, cwd=ROOT, binary=SERVER):
        self.args = list(args)
        self.name = name
        self.env = dict(os.environ if env is None else env)
        self.model = model_path() if model is _AUTO else model
        self.wait_ready = ready
        self.cwd = cwd
        self.binary = binary
        self.proc = None
        self.port = None
        self.ready_line = None
        self.stderr_path = None

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=30):
        """Starts the process, reads the port from the ready line and (when
        ready) waits for 200 from /readyz; returns self."""
        if not os.access(self.binary, os.X_OK):
            raise AssertionError("%s missing: run `make`" % self.binary)
        os.makedirs(LOG_DIR, exist_ok=True)
        if self.name:
            self.stderr_path = os.path.join(LOG_DIR, self.name + ".stderr")
        else:
            fd, self.stderr_path = tempfile.mkstemp(prefix="bnn-serve-", suffix=".log")
            os.close(fd)
        argv = [self.binary, "--port", "0"] + (["--model", self.model] if self.model else []) + self.args
        self.stderr_file = open(self.stderr_path, "w")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr_file, cwd=self.cwd,
                                     env=self.env, text=True)
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on http://(\S+):(\d+) ", line)
            if m:
                self.port = int(m.group(2))
                self.ready_line = line
                break
        if self.port is None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.stderr_file.close()
            raise AssertionError("bnn-serve did not start (%s; exit %s): %r\n%s" %
                                 (" ".join(argv), self.proc.returncode, line, self.log()[-2000:]))
        while self.wait_ready:
            try:
                if self.get("/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("bnn-serve not ready after %s s\n%s" % (timeout, self.log()[-2000:]))
            time.sleep(0.05)
        return self

    def log(self):
        """What the daemon wrote to stderr so far."""
        with open(self.stderr_path) as f:
            return f.read()

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def stop(self, timeout=60):
        """SIGTERM and wait (killed after timeout s); returns the exit status."""
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
        """(status, headers as a dict with lower-case names - repeated ones
        joined with ", " - and the body bytes)."""
        c = self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, _header_dict(r), data
        finally:
            c.close()

    def announce(self, method, path, length, headers=None):
        """Sends only the headers of a request announcing a body of length
        bytes and reads the answer: how a client meets early rejection
        (413 from Content-Length) without writing into a closed socket."""
        c = self.connection(30)
        try:
            c.putrequest(method, path)
            for k, v in (headers or {}).items():
                c.putheader(k, v)
            c.putheader("Content-Length", str(length))
            c.endheaders()
            r = c.getresponse()
            data = r.read()
            return r.status, _header_dict(r), data
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


def _header_dict(response):
    out = {}
    for k, v in response.getheaders():
        k = k.lower()
        out[k] = v if k not in out else out[k] + ", " + v
    return out


def run_server(*args, env=None, timeout=30, cwd=ROOT, binary=SERVER):
    """bnn-serve with arguments, not as a daemon (--help, --check-config...)."""
    return subprocess.run([binary] + list(args), capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=dict(os.environ if env is None else env))


def check_config(*args, env=None, cwd=ROOT, binary=SERVER):
    """key -> value of the effective configuration `bnn-serve --check-config`
    prints (the environment without BNN_SERVE_* unless env is given)."""
    r = run_server("--check-config", *args, env=clean_env() if env is None else env, cwd=cwd, binary=binary)
    if r.returncode != 0:
        raise AssertionError("bnn-serve --check-config %s exited %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return parse_config(r.stdout)


def parse_config(text):
    """key -> value from the "key = value" lines --check-config prints."""
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"(?m)^([a-z_]+) = (.*)$", text)}


# --- MNIST ----------------------------------------------------------------

_mnist = None


def mnist_test():
    """(images as bytes objects of 784, labels) of the real t10k set; fails
    when it is missing (make data fetches it; make test runs that first)."""
    global _mnist
    if _mnist is None:
        path = os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte")
        if not os.path.exists(path):
            raise AssertionError("%s missing: run `make data`" % path)
        with open(path, "rb") as f:
            data = f.read()
        magic, n, rows, cols = struct.unpack(">IIII", data[:16])
        assert magic == 0x803 and rows == 28 and cols == 28, "not an MNIST image file"
        images = [data[16 + i * 784:16 + (i + 1) * 784] for i in range(n)]
        with open(os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte"), "rb") as f:
            ldata = f.read()
        labels = list(ldata[8:8 + n])
        _mnist = (images, labels)
    return _mnist


def mnist_image(index):
    """(784 gray bytes, label) of MNIST test image index."""
    images, labels = mnist_test()
    return images[index], labels[index]


def mnist_png(index, **kw):
    """(PNG bytes, label) of MNIST test image index; kw as png_encode."""
    gray, label = mnist_image(index)
    return png_encode(gray, 28, 28, **kw), label


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
    """Encodes 8-bit gray pixels (bytes or ints, row-major) as a PNG of the
    given colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA) and
    bit depth; samples are scaled exactly (v * (2^d - 1) / 255, rounded) for
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


def png_declaring(width, height):
    """A valid-looking PNG whose IHDR declares width x height but whose data
    is a few bytes: only a decoder that checks the size first refuses it
    cheaply."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0\0")) +
            _chunk(b"IEND", b""))


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


# --- running a test script ------------------------------------------------------

def _script_name():
    return os.path.splitext(os.path.basename(sys.argv[0]))[0]


def result_id(test):
    """SCRIPT.Class.method (the id tests/allowed-skips.txt lists); a
    class-level setUpClass skip or error is SCRIPT.Class.setUpClass."""
    test = getattr(test, "test_case", test)  # a subTest counts for its test
    tid = test.id()
    m = re.fullmatch(r"(\w+) \((\S+)\)", tid)  # unittest's _ErrorHolder: "setUpClass (module.Class)"
    if m:
        tid = m.group(2) + "." + m.group(1)
    if tid.startswith("__main__."):
        tid = _script_name() + tid[len("__main__"):]
    return tid


class _RecordingResult(unittest.TextTestResult):
    """TextTestResult that also keeps each test's outcome: fail beats skip
    beats pass (a test with one failing subTest has failed)."""

    RANK = {"pass": 0, "skip": 1, "fail": 2}

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.outcomes = {}

    def _note(self, test, outcome, detail=""):
        tid = result_id(test)
        old = self.outcomes.get(tid)
        if old is None or self.RANK[outcome] > self.RANK[old[0]]:
            self.outcomes[tid] = (outcome, " ".join(str(detail).split()))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._note(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._note(test, "fail", err[1])

    def addError(self, test, err):
        super().addError(test, err)
        self._note(test, "fail", err[1])

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._note(test, "fail", err[1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._note(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._note(test, "skip", "expected failure: %s" % err[1])

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._note(test, "fail", "unexpected success (marked expectedFailure)")


class _RecordingRunner(unittest.TextTestRunner):
    resultclass = _RecordingResult

    def run(self, test):
        result = super().run(test)
        counts = {k: sum(1 for o, _ in result.outcomes.values() if o == k) for k in ("pass", "fail", "skip")}
        path = os.environ.get("BNN_TEST_RESULTS")
        if path:
            with open(path, "w") as f:
                for tid, (outcome, detail) in sorted(result.outcomes.items()):
                    f.write("%s\t%s\t%s\n" % (outcome, tid, detail))
        self.stream.writeln("%s: %d passed, %d failed, %d skipped" %
                            (_script_name(), counts["pass"], counts["fail"], counts["skip"]))
        return result


def main():
    """unittest.main for a test script. With BNN_TEST_RESULTS set (as
    tests/run.sh does), writes "outcome<TAB>id<TAB>detail" per test to that
    file: pass, fail (failures, errors, unexpected successes) or skip
    (skips and expected failures, with the reason)."""
    unittest.main(testRunner=_RecordingRunner)
