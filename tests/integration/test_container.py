#!/usr/bin/env python3
"""The container image, built and run for real, and its recipe and
manifests checked:

* Image: docker/Dockerfile built with Debian's buildah (chroot isolation,
  docker format) on a Debian 12 minbase made by debootstrap, through
  docker/buildah-build.sh; then run with `buildah run` as the image says:
  HEALTHCHECK and the other metadata kept, the runtime image lean (size
  printed in the test log; no apt lists, documentation, compiler or -dev
  packages), the daemon's uid and gid not 0, /readyz, real predictions of
  the shipped examples, the HEALTHCHECK command exits 0 inside the image,
  SIGTERM exits 0. Where the machine cannot build images (not root,
  buildah or debootstrap missing, the Debian mirror unreachable) these
  tests are skipped with that reason, never passed.
* docker/Dockerfile, statically: the runtime stage installs a package for
  every shared library `ldd bnn-serve` lists (or apt pulls it in as a
  dependency, or the base image has it), and no package nothing needs; the
  build stage installs what scripts/deps.sh calls the build set; every file
  either stage COPYs from the context exists and passes .dockerignore;
  non-root USER, HEALTHCHECK through --probe, STOPSIGNAL, EXPOSE matching
  the port.
* bnn-serve --probe exit codes against the real daemon.
* docker/compose.yaml and docker/k8s/*.yaml parse (npm `yaml`), reference
  the right things, set valid configuration, and give SIGTERM more time than
  the drain timeout. (The KServe manifests: test_kserve.py.)
"""
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import LOG_DIR, ROOT, SERVER, Daemon, main  # noqa: E402
from openapi_spec import SPEC_PATH, spec, yaml_load  # noqa: E402

DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")
DOCKERIGNORE = os.path.join(ROOT, ".dockerignore")
COMPOSE = os.path.join(ROOT, "docker", "compose.yaml")
K8S_DIR = os.path.join(ROOT, "docker", "k8s")

# The image ships the plain release build (not a sanitizer variant that
# BNN_BUILD may point at): its libraries are the ones to check.
RELEASE_SERVER = os.path.join(ROOT, "build", "bnn-serve")

# Packages the runtime stage may rely on without installing them: the C
# library is Essential in every Debian image, debian:12-slim included, and
# apt resolves the rest of libc6's own dependencies (libgcc-s1) with it.
BASE_IMAGE_PACKAGES = {"libc6"}


# ---- Dockerfile parsing ----------------------------------------------------------

def dockerfile_instructions(path=DOCKERFILE):
    """[(stage index, INSTRUCTION, argument text)]; stage -1 is before the
    first FROM. Continuation lines are joined, comments dropped."""
    with open(path) as f:
        lines = f.read().splitlines()
    logical, cur = [], ""
    for line in lines:
        stripped = line.strip()
        if not cur and (not stripped or stripped.startswith("#")):
            continue
        if cur and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            cur += stripped[:-1] + " "
            continue
        cur += stripped
        logical.append(cur)
        cur = ""
    out, stage = [], -1
    for text in logical:
        instr, _, args = text.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stage += 1
        out.append((stage, instr, args.strip()))
    return out


def stages():
    """{name or index: [(INSTRUCTION, args)]} in order, plus the names list."""
    by_stage, names = {}, []
    for st, instr, args in dockerfile_instructions():
        if st < 0:
            continue
        if instr == "FROM":
            m = re.search(r"\s+AS\s+(\S+)", args, re.I)
            names.append(m.group(1) if m else str(st))
        by_stage.setdefault(names[st], []).append((instr, args))
    return by_stage, names


def apt_installs(instrs):
    """Package names of every `apt-get install` in a stage's RUN lines."""
    pkgs = []
    for instr, args in instrs:
        if instr != "RUN":
            continue
        for cmd in re.split(r"&&|;", args):
            words = shlex.split(cmd)
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                pkgs += [w for w in after if not w.startswith("-") and "=" not in w]
    return pkgs


def env_of(instrs):
    env = {}
    for instr, args in instrs:
        if instr == "ENV":
            for tok in shlex.split(args):
                k, _, v = tok.partition("=")
                env[k] = v
    return env


def copies(instrs):
    """[(from stage or None, [sources], dest)] of a stage's COPY lines."""
    out = []
    for instr, args in instrs:
        if instr != "COPY":
            continue
        words = shlex.split(args)
        frm = None
        flags = [w for w in words if w.startswith("--")]
        for fl in flags:
            if fl.startswith("--from="):
                frm = fl.split("=", 1)[1]
        rest = [w for w in words if not w.startswith("--")]
        out.append((frm, rest[:-1], rest[-1]))
    return out


def workdir(instrs):
    wd = "/"
    for instr, args in instrs:
        if instr == "WORKDIR":
            wd = args if args.startswith("/") else os.path.join(wd, args)
    return wd


# ---- .dockerignore (Docker's rules: last matching pattern wins, '!' re-includes,
#      a pattern matching a directory covers everything below it) -----------------

def dockerignore_patterns():
    pats = []
    with open(DOCKERIGNORE) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            pat = line[1:] if neg else line
            pats.append((neg, pat.strip("/")))
    return pats


def _glob_re(pat):
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pat.startswith("**", i):
            out += ".*"
            i += 2
        elif pat[i] == "*":
            out += "[^/]*"
            i += 1
        elif pat[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pat[i])
            i += 1
    return re.compile(out + r"\Z")


def ignored(relpath, pats=None):
    pats = dockerignore_patterns() if pats is None else pats
    parts = relpath.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for neg, pat in pats:
        rx = _glob_re(pat)
        if any(rx.match(p) for p in prefixes):
            result = not neg
    return result


def context_files(src):
    """Files a COPY source brings from the context (a file or a tree)."""
    full = os.path.join(ROOT, src)
    if os.path.isfile(full):
        return [src.strip("/")]
    out = []
    for d, _, files in os.walk(full):
        for name in files:
            out.append(os.path.relpath(os.path.join(d, name), ROOT))
    return out


# ---- packages -------------------------------------------------------------------------

def dpkg_owner(path):
    """The package owning a file, trying the /usr-merged spellings too."""
    candidates = [path, os.path.realpath(path)]
    for c in list(candidates):
        if c.startswith("/usr/lib/"):
            candidates.append(c[4:])
        elif c.startswith("/lib/"):
            candidates.append("/usr" + c)
    for c in candidates:
        p = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if p.returncode == 0:
            return p.stdout.split(":")[0].strip()
    return None


def installed(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return p.returncode == 0 and "ok installed" in p.stdout


def dependency_closure(pkgs):
    """Packages apt installs with pkgs: Depends and Pre-Depends, recursively,
    as this Debian 12 machine's dpkg database records them (alternatives
    resolved to whichever is installed here)."""
    seen, todo = set(), list(pkgs)
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        seen.add(pkg)
        p = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", pkg],
                           capture_output=True, text=True)
        for clause in p.stdout.split(","):
            alts = [re.sub(r"\s*\(.*?\)|:any|\s*\[.*?\]", "", a).strip() for a in clause.split("|")]
            alts = [a for a in alts if a]
            if not alts:
                continue
            chosen = next((a for a in alts if installed(a)), alts[0])
            todo.append(chosen)
    return seen


def ldd_libraries(binary):
    p = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
    libs = {}
    for line in p.stdout.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(\S+)", line)
        if m and m.group(2).startswith("/"):
            libs[m.group(1)] = m.group(2)
        m = re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            libs[os.path.basename(m.group(1))] = m.group(1)
        if "not found" in line:
            raise AssertionError(f"ldd {binary}: {line.strip()}")
    return libs


def k8s_documents():
    docs = []
    for name in sorted(os.listdir(K8S_DIR)):
        if name.endswith((".yaml", ".yml")):
            for d in yaml_load(os.path.join(K8S_DIR, name), all_documents=True):
                docs.append((name, d))
    return docs


def config_keys():
    with open(os.path.join(ROOT, "service", "config.c")) as f:
        return set(re.findall(r'^\s*\{"([a-z_]+)", CFG_', f.read(), re.M))


def check_config(env, cwd=ROOT, binary=SERVER):
    full = {k: v for k, v in os.environ.items() if not k.startswith("BNN_SERVE_")}
    full.update(env)
    return subprocess.run([binary, "--check-config"], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=30)


def duration_seconds(text):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(text))
    if not m or not any(m.groups()):
        raise AssertionError(f"cannot read duration {text!r}")
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


# ---- tests ------------------------------------------------------------------------------

class Dockerfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.by_stage, cls.names = stages()
        cls.build = cls.by_stage[cls.names[0]]
        cls.runtime = cls.by_stage[cls.names[-1]]

    def test_two_stages_on_debian_12_slim(self):
        self.assertEqual(len(self.names), 2, self.names)
        args = {a.split("=")[0]: a.split("=", 1)[1] for st, i, a in dockerfile_instructions() if st < 0 and i == "ARG"}
        for instrs in (self.build, self.runtime):
            base = instrs[0][1].split()[0]
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base)
            self.assertEqual(base, "debian:12-slim")

    def test_build_stage_installs_the_build_set(self):
        with open(os.path.join(ROOT, "scripts", "deps.sh")) as f:
            m = re.search(r'^BUILD_PKGS="([^"]+)"', f.read(), re.M)
        self.assertIsNotNone(m, "BUILD_PKGS not found in scripts/deps.sh")
        missing = set(m.group(1).split()) - set(apt_installs(self.build))
        self.assertEqual(missing, set(), "build stage lacks packages scripts/deps.sh installs for building")

    def test_runtime_installs_real_runtime_packages_only(self):
        pkgs = apt_installs(self.runtime)
        self.assertTrue(pkgs, "no apt-get install in the runtime stage")
        for p in pkgs:
            self.assertFalse(p.endswith("-dev") or p in ("gcc", "make", "pkg-config"), f"{p} in the runtime stage")
            # Installed here, on Debian 12, by scripts/deps.sh's -dev packages:
            # so the name exists in Debian 12 and has the version we link.
            self.assertTrue(installed(p), f"runtime package {p} is not a Debian 12 package installed here")

    def test_every_linked_library_is_provided(self):
        libs = ldd_libraries(RELEASE_SERVER)
        self.assertIn("libmicrohttpd.so.12", libs)
        runtime = set(apt_installs(self.runtime))
        allowed = dependency_closure(runtime | BASE_IMAGE_PACKAGES)
        owners, unprovided = {}, []
        for soname, path in sorted(libs.items()):
            owner = dpkg_owner(path)
            owners[soname] = owner
            if owner not in allowed:
                unprovided.append(f"{soname} ({path}, package {owner})")
        self.assertEqual(unprovided, [], "libraries no runtime package provides")
        # And the other way: each package installed explicitly provides a
        # library the binary links directly or through another library.
        for pkg in runtime:
            self.assertIn(pkg, set(owners.values()), f"runtime package {pkg} provides nothing bnn-serve links")

    def test_copied_files_exist_and_pass_dockerignore(self):
        pats = dockerignore_patterns()
        for instrs in (self.build, self.runtime):
            for frm, sources, _ in copies(instrs):
                if frm:
                    continue
                for src in sources:
                    self.assertTrue(os.path.exists(os.path.join(ROOT, src)), f"COPY {src}: not in the repository")
                    files = context_files(src)
                    self.assertTrue(files, f"COPY {src}: no files")
                    for f in files:
                        if f.endswith((".o", ".d")):
                            continue
                        self.assertFalse(ignored(f, pats), f"COPY {src}: {f} is excluded by .dockerignore")

    def test_dockerignore_keeps_bulk_out(self):
        pats = dockerignore_patterns()
        for path in ("node_modules/yaml/package.json", "build/bnn-serve", ".git/HEAD", "build/data/mnist/x",
                     "tests/integration/test_container.py", "model/infer.o"):
            self.assertTrue(ignored(path, pats), f"{path} would enter the build context")
        for path in ("Makefile", "model/infer.c", "service/web/index.html", "openapi.yaml",
                     "model/weights/mnist-bnn.safetensors", "config/bnn-serve.conf"):
            self.assertFalse(ignored(path, pats), f"{path} would be missing from the build context")

    def test_build_copies_what_make_needs(self):
        """make all reads only the Makefile, model/ and service/."""
        srcs = {s.strip("/") for _, ss, _ in copies(self.build) for s in ss}
        self.assertEqual(srcs, {"Makefile", "model", "service"})
        frm = [(f, ss) for f, ss, _ in copies(self.runtime) if f]
        self.assertEqual(frm, [(self.names[0], [workdir(self.build) + "/build/bnn-serve"])])

    def test_runtime_metadata(self):
        instrs = dict((i, a) for i, a in self.runtime)
        user = instrs.get("USER", "")
        self.assertTrue(user, "no USER in the runtime stage")
        self.assertNotIn(user.split(":")[0], ("root", "0"), "runs as root")
        self.assertRegex(user, r"^\d+(:\d+)?$", "USER should be numeric so runAsNonRoot can check it")
        self.assertIn(f"--uid {user.split(':')[0]}", " ".join(a for i, a in self.runtime if i == "RUN"))
        self.assertEqual(instrs.get("STOPSIGNAL"), "SIGTERM")
        hc = instrs.get("HEALTHCHECK", "")
        self.assertIn("CMD", hc)
        self.assertIn('"--probe"', hc)
        self.assertRegex(hc, r'"http://127\.0\.0\.1:8080/healthz"')
        env = env_of(self.runtime)
        self.assertEqual(env.get("BNN_SERVE_HOST"), "0.0.0.0")
        self.assertEqual(instrs.get("EXPOSE"), env.get("BNN_SERVE_PORT", "8080"))
        self.assertLess(int(env["BNN_SERVE_DRAIN_TIMEOUT"]), 30, "drain timeout not below k8s' default 30 s grace")
        self.assertIn("/usr/local/bin/bnn-serve", instrs.get("ENTRYPOINT", ""))

    def test_runtime_env_is_valid_configuration(self):
        env = env_of(self.runtime)
        self.assertTrue(set(k[len("BNN_SERVE_"):].lower() for k in env if k.startswith("BNN_SERVE_"))
                        <= config_keys())
        p = check_config(env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^host = 0\.0\.0\.0$")
        self.assertRegex(p.stdout, rf"(?m)^drain_timeout = {env['BNN_SERVE_DRAIN_TIMEOUT']}$")


# ---- the real image ---------------------------------------------------------------

BUILDAH_BUILD = os.path.join(ROOT, "docker", "buildah-build.sh")
CANNOT_BUILD_HERE = 77  # docker/buildah-build.sh: this machine cannot build images
EXAMPLES = os.path.join(ROOT, "examples")
# The runtime stage's size, uncompressed, on the debootstrap base; measured
# 133 MB (2026-12). A guard against a compiler or apt lists slipping in, not
# a target.
IMAGE_MAX_BYTES = 160 * 1000 * 1000


def buildah(*args, timeout=120):
    """Runs buildah; stdout on success, AssertionError with stderr otherwise."""
    p = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()[-1500:]}")
    return p.stdout


def descendants(pid):
    """Every process below pid (children, grandchildren...), from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1:]
    raise AssertionError(f"/proc/{pid}/status has no {field}")


class Image(unittest.TestCase):
    """docker/Dockerfile built for real (docker/buildah-build.sh: buildah,
    chroot isolation, docker format, on a Debian 12 minbase that debootstrap
    makes and build/container caches), then run with `buildah run` as the
    image says (its user, working directory, environment, entrypoint; only
    --host 127.0.0.1 --port 0 added: loopback, any free port). The tests
    are numbered: they follow the container's life, SIGTERM last."""

    @classmethod
    def setUpClass(cls):
        if os.environ.get("BNN_SANITIZER"):
            raise unittest.SkipTest("the image compiles its own release binary from source, whatever BNN_BUILD is: "
                                    "it is built and run in the release stage of `make test`, not again here")
        cls.error = None
        cls.proc = cls.daemon_pid = cls.ctr = None
        os.makedirs(LOG_DIR, exist_ok=True)
        cls.tag = f"localhost/bnn-serve-test:{os.getpid()}"
        cls.build_log = os.path.join(LOG_DIR, "image-build.log")
        t0 = time.monotonic()
        with open(cls.build_log, "w") as log:
            p = subprocess.run([BUILDAH_BUILD, "--tag", cls.tag], stdout=log, stderr=subprocess.STDOUT,
                               timeout=1800)
        cls.build_seconds = time.monotonic() - t0
        with open(cls.build_log) as f:
            log_text = f.read()
        if p.returncode == CANNOT_BUILD_HERE:
            reason = re.search(r"cannot build here: (.*)", log_text)
            raise unittest.SkipTest(reason.group(1) if reason else log_text.strip()[-300:])
        if p.returncode != 0:
            cls.error = f"docker/buildah-build.sh exit {p.returncode} (log {cls.build_log}):\n{log_text[-3000:]}"
            return
        try:
            cls.inspect = json.loads(buildah("inspect", "--type", "image", cls.tag))
            cls.config = cls.inspect["Docker"]["config"]
            cls.layers = [layer["size"] for layer in json.loads(cls.inspect["Manifest"])["layers"]]
            cls.ctr = buildah("from", "--pull=false", "--name", f"bnn-serve-test-{os.getpid()}", cls.tag).strip()
            cls.start_daemon()
        except Exception as e:  # noqa: BLE001 - reported by every test
            cls.error = f"{type(e).__name__}: {e}"
        base = re.search(r"^debootstrap base: .*$", log_text, re.M)
        sys.stderr.write(f"\n[image {cls.tag}: built in {cls.build_seconds:.0f} s "
                         f"({base.group(0) if base else 'base ?'})]\n")

    @classmethod
    def start_daemon(cls):
        argv = ["buildah", "run", "--isolation", "chroot", cls.ctr, "--", *cls.config["Entrypoint"],
                "--host", "127.0.0.1", "--port", "0"]
        cls.daemon_log = open(os.path.join(LOG_DIR, "image-daemon.stderr"), "wb")
        cls.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=cls.daemon_log)
        line = cls.proc.stdout.readline().decode(errors="replace")
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+) ", line)
        if not m:
            raise AssertionError(f"the image's daemon did not start: {line!r}, exit {cls.proc.poll()}")
        cls.port = int(m.group(1))
        found = [p for p in descendants(cls.proc.pid) if open(f"/proc/{p}/comm").read().strip() == "bnn-serve"]
        if len(found) != 1:
            raise AssertionError(f"expected one bnn-serve below buildah run ({cls.proc.pid}), found {found}")
        cls.daemon_pid = found[0]
        deadline = time.monotonic() + 30
        while cls.get("/readyz")[0] != 200:
            if time.monotonic() > deadline:
                raise AssertionError("the image's daemon never became ready")
            time.sleep(0.1)

    @classmethod
    def request(cls, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", cls.port, timeout=60)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        except OSError as e:
            return None, str(e).encode()
        finally:
            c.close()

    @classmethod
    def get(cls, path):
        return cls.request("GET", path)

    @classmethod
    def tearDownClass(cls):
        if cls.proc is not None:
            if cls.proc.poll() is None and cls.daemon_pid:
                os.kill(cls.daemon_pid, signal.SIGKILL)
            cls.proc.wait(timeout=60)
            cls.proc.stdout.close()
            cls.daemon_log.close()
        if cls.ctr:
            buildah("rm", cls.ctr)
        if getattr(cls, "inspect", None) is not None:
            buildah("rmi", cls.tag)

    def setUp(self):
        if self.error:
            self.fail(self.error)

    def in_image(self, *argv):
        """A command in the container, as the image's user."""
        return subprocess.run(["buildah", "run", "--isolation", "chroot", self.ctr, "--", *argv],
                              capture_output=True, text=True, timeout=60)

    def test_1_config_keeps_healthcheck_and_metadata(self):
        c = self.config
        hc = c.get("Healthcheck") or {}
        self.assertEqual(hc.get("Test"), ["CMD", "/usr/local/bin/bnn-serve", "--probe", "http://127.0.0.1:8080/healthz"],
                         "HEALTHCHECK lost (an OCI-format build drops it)")
        self.assertGreater(hc.get("Interval", 0), 0)
        self.assertGreater(hc.get("Retries", 0), 0)
        self.assertEqual(c.get("StopSignal"), "SIGTERM")
        self.assertEqual(c.get("Entrypoint"), ["/usr/local/bin/bnn-serve"])
        self.assertEqual(c.get("WorkingDir"), "/opt/bnn-serve")
        self.assertIn("8080/tcp", c.get("ExposedPorts", {}))
        env = dict(e.split("=", 1) for e in c.get("Env", []))
        self.assertEqual((env.get("BNN_SERVE_HOST"), env.get("BNN_SERVE_PORT")), ("0.0.0.0", "8080"))
        self.assertRegex(c.get("User", ""), r"^[1-9]\d*:\d+$", "USER must be numeric and not root")

    def test_2_lean_and_size_reported(self):
        size = sum(self.layers)
        sys.stderr.write(f"\n[image size: {size / 1e6:.1f} MB = {size / 2**20:.1f} MiB uncompressed "
                         f"(layers: {', '.join(f'{s / 1e6:.1f} MB' for s in self.layers)})]\n")
        self.assertLess(size, IMAGE_MAX_BYTES, f"image is {size / 1e6:.1f} MB")
        root = buildah("mount", self.ctr).strip()
        try:
            def files(rel, keep=lambda name: False):
                top = os.path.join(root, rel)
                return [os.path.relpath(os.path.join(d, n), root) for d, _, ns in os.walk(top) for n in ns
                        if not keep(n)]
            self.assertEqual(files("var/lib/apt/lists", keep=lambda n: n == "lock"), [], "apt lists left")
            self.assertEqual(files("var/cache/apt", keep=lambda n: n == "lock"), [], "apt caches left")
            self.assertEqual(files("usr/share/doc", keep=lambda n: n == "copyright"), [], "documentation left")
            for rel in ("usr/share/man", "usr/share/info", "usr/share/locale"):
                self.assertEqual(files(rel), [], f"{rel} not empty")
            for tool in ("usr/bin/gcc", "usr/bin/cc", "usr/bin/make", "usr/include/stdio.h"):
                self.assertFalse(os.path.lexists(os.path.join(root, tool)), f"/{tool} in the runtime image")
            with open(os.path.join(root, "var/lib/dpkg/status")) as f:
                status = f.read()
            installed = set(re.findall(r"^Package: (\S+)\nStatus: install ok installed$", status, re.M))
            by_stage, names = stages()
            self.assertLessEqual(set(apt_installs(by_stage[names[-1]])), installed)
            self.assertEqual(sorted(p for p in installed if p.endswith("-dev")), [], "-dev packages installed")
            self.assertTrue(os.path.isfile(os.path.join(root, "opt/bnn-serve/model/weights/mnist-bnn.safetensors")))
        finally:
            buildah("umount", self.ctr)

    def test_3_runs_as_non_root(self):
        uid = self.config["User"].split(":")[0]
        for field in ("Uid", "Gid"):
            ids = proc_status(self.daemon_pid, field)
            self.assertEqual(len(set(ids)), 1, f"{field}: {ids}")
            self.assertNotEqual(ids[0], "0", f"the daemon runs with {field} 0")
        self.assertEqual(proc_status(self.daemon_pid, "Uid")[0], uid)
        p = self.in_image("id", "-u")
        self.assertEqual((p.returncode, p.stdout.strip()), (0, uid), p.stderr)

    def test_4_ready_and_a_real_prediction(self):
        self.assertEqual(self.get("/readyz")[0], 200)
        self.assertEqual(self.get("/healthz")[0], 200)
        for name, label in (("digit-0-7.png", 7), ("photo-9.png", 9)):
            with open(os.path.join(EXAMPLES, name), "rb") as f:
                status, body = self.request("POST", "/predict?samples=200&seed=1", f.read(),
                                            {"Content-Type": "image/png"})
            self.assertEqual(status, 200, body[:300])
            answer = json.loads(body)
            self.assertEqual(answer["prediction"], label, f"{name}: {body[:300]!r}")
            self.assertEqual(answer["seed"], 1)
        status, body = self.get("/v1/model")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["parameters"], 1769524)
        status, body = self.get("/openapi.yaml")
        with open(SPEC_PATH, "rb") as f:
            self.assertEqual((status, body), (200, f.read()), "the image serves another openapi.yaml")
        status, body = self.get("/")
        self.assertEqual(status, 200)
        self.assertIn(b"<canvas", body)

    def test_5_probe_in_the_image(self):
        """The HEALTHCHECK's own command (port 8080 -> the bound port)."""
        cmd = [a.replace(":8080/", f":{self.port}/") for a in self.config["Healthcheck"]["Test"][1:]]
        p = self.in_image(*cmd)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "200"), p.stderr)
        p = self.in_image(cmd[0], "--probe", f"http://127.0.0.1:{self.port}/no-such-path")
        self.assertEqual((p.returncode, p.stdout.strip()), (1, "404"), p.stderr)

    def test_6_sigterm_exits_0(self):
        os.kill(self.daemon_pid, signal.SIGTERM)  # what `docker stop` sends (STOPSIGNAL)
        rc = self.proc.wait(timeout=60)
        self.daemon_log.flush()
        with open(self.daemon_log.name, "rb") as f:
            log = f.read().decode(errors="replace")
        self.assertEqual(rc, 0, f"exit {rc} after SIGTERM:\n{log[-2000:]}")
        self.assertIn("SIGTERM", log)


class Probe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.d = Daemon("--workers", "1", name="test_container_probe").start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.tmp.cleanup()

    def probe(self, url):
        p = subprocess.run([SERVER, "--probe", url], capture_output=True, text=True, timeout=15)
        return p.returncode, p.stdout.strip(), p.stderr.strip()

    def test_200_is_0(self):
        for path in ("/healthz", "/readyz"):
            rc, out, err = self.probe(f"{self.d.url}{path}")
            self.assertEqual((rc, out), (0, "200"), err)

    def test_404_is_1(self):
        rc, out, _ = self.probe(f"{self.d.url}/no-such-path")
        self.assertEqual((rc, out), (1, "404"))

    def test_405_is_1(self):
        """A non-200 that is not an error page of ours: GET on a POST route."""
        rc, out, _ = self.probe(f"{self.d.url}/predict")
        self.assertEqual((rc, out), (1, "405"))

    def test_refused_is_1(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        rc, _, err = self.probe(f"http://127.0.0.1:{port}/healthz")
        self.assertEqual(rc, 1)
        self.assertIn("cannot connect", err)

    def test_silent_server_times_out_as_1(self):
        """A listener that never answers: the probe gives up quickly."""
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            t0 = time.time()
            rc, _, _ = self.probe(f"http://127.0.0.1:{s.getsockname()[1]}/healthz")
            self.assertEqual(rc, 1)
            self.assertLess(time.time() - t0, 10)
        finally:
            s.close()

    def test_malformed_url_is_not_0(self):
        rc, _, err = self.probe("ftp://127.0.0.1/healthz")
        self.assertNotEqual(rc, 0)
        self.assertIn("--probe", err)


class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = k8s_documents()
        cls.kinds = {d["kind"]: d for _, d in cls.docs}
        by_stage, names = stages()
        cls.image_env = env_of(by_stage[names[-1]])
        cls.image_user = dict(by_stage[names[-1]])["USER"]

    def test_kinds(self):
        self.assertEqual(set(self.kinds), {"Deployment", "Service", "HorizontalPodAutoscaler"})
        for name, d in self.docs:
            self.assertIn("apiVersion", d, name)
            self.assertEqual(d["metadata"]["name"], "bnn-serve", name)

    def container(self):
        return self.kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]

    def drain(self):
        env = {e["name"]: e.get("value") for e in self.container().get("env", [])}
        return int(env.get("BNN_SERVE_DRAIN_TIMEOUT") or self.image_env["BNN_SERVE_DRAIN_TIMEOUT"])

    def test_probes_hit_documented_endpoints(self):
        c = self.container()
        paths = spec()["paths"]
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertIn("startupProbe", c)
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            self.assertIn(c[probe]["httpGet"]["path"], paths)
            port = c[probe]["httpGet"]["port"]
            self.assertIn(port, [p.get("name") for p in c["ports"]] + [p["containerPort"] for p in c["ports"]])

    def test_grace_period_exceeds_drain(self):
        pod = self.kinds["Deployment"]["spec"]["template"]["spec"]
        self.assertGreater(pod["terminationGracePeriodSeconds"], self.drain())

    def test_security_and_resources(self):
        pod = self.kinds["Deployment"]["spec"]["template"]["spec"]
        c = self.container()
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertEqual(str(pod["securityContext"]["runAsUser"]), self.image_user.split(":")[0])
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
        self.assertEqual(c["securityContext"]["capabilities"]["drop"], ["ALL"])
        for kind in ("requests", "limits"):
            self.assertIn("cpu", c["resources"][kind])
            self.assertIn("memory", c["resources"][kind])
        self.assertEqual(c["ports"][0]["containerPort"], int(self.image_env["BNN_SERVE_PORT"]))

    def test_env_is_valid_configuration(self):
        env = {}
        for e in self.container()["env"]:
            self.assertTrue(e["name"].startswith("BNN_SERVE_"), e["name"])
            self.assertIn(e["name"][len("BNN_SERVE_"):].lower(), config_keys())
            env[e["name"]] = e["value"] if "value" in e else "2"  # resourceFieldRef limits.cpu -> a count
        p = check_config(env)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_service_and_hpa_point_at_the_deployment(self):
        dep = self.kinds["Deployment"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        svc = self.kinds["Service"]
        for k, v in svc["spec"]["selector"].items():
            self.assertEqual(labels.get(k), v)
        self.assertEqual(dep["spec"]["selector"]["matchLabels"], svc["spec"]["selector"])
        port_names = [p["name"] for p in self.container()["ports"]]
        self.assertIn(svc["spec"]["ports"][0]["targetPort"], port_names)
        hpa = self.kinds["HorizontalPodAutoscaler"]
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment")
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], dep["metadata"]["name"])
        self.assertEqual(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu")
        self.assertLessEqual(hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])

    def test_compose(self):
        c = yaml_load(COMPOSE)
        svc = c["services"]["bnn-serve"]
        ctx = os.path.normpath(os.path.join(os.path.dirname(COMPOSE), svc["build"]["context"]))
        self.assertEqual(ctx, ROOT)
        self.assertTrue(os.path.exists(os.path.join(ctx, svc["build"]["dockerfile"])))
        env = {k: str(v) for k, v in svc.get("environment", {}).items()}
        drain = int(env.get("BNN_SERVE_DRAIN_TIMEOUT", self.image_env["BNN_SERVE_DRAIN_TIMEOUT"]))
        self.assertGreater(duration_seconds(svc["stop_grace_period"]), drain)
        self.assertTrue(svc.get("read_only"))
        full = dict(self.image_env)
        full.update(env)
        p = check_config(full)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    main()
