"""bnn-serve's command line: --help, --version, --check-config and the
precedence defaults < file < environment < flags, exit 2 on a bad value
naming the key, fail-fast start-up (missing or invalid model, busy port),
--probe exit codes for container health checks, the ready line's port.
"""
import os
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon  # noqa: E402


clean_env = daemon.clean_env
effective = daemon.parse_config  # key -> value from --check-config's output


class CliTest(unittest.TestCase):
    def test_help_lists_every_key(self):
        r = daemon.run_server("--help", env=clean_env())
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr, "")
        keys = effective(daemon.run_server("--check-config", env=clean_env()).stdout)
        self.assertGreater(len(keys), 20)
        for key in keys:
            self.assertIn("--" + key.replace("_", "-"), r.stdout)
            self.assertIn("BNN_SERVE_" + key.upper(), r.stdout)
        for flag in ("--config", "--check-config", "--probe", "--version"):
            self.assertIn(flag, r.stdout)

    def test_version(self):
        r = daemon.run_server("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^bnn-serve \d+\.\d+\.\d+")
        self.assertRegex(r.stdout, r"kernels (baseline|avx2|avx512)\)")

    def test_cpu_path_can_be_capped(self):
        """BNN_CPU_PATH caps our kernels' code path: --version and /v1/model
        name the one in use; a bad value stops start-up with its name."""
        r = daemon.run_server("--version", env=clean_env(BNN_CPU_PATH="baseline"))
        self.assertIn("kernels baseline)", r.stdout)
        import json
        with daemon.Daemon(env=clean_env(BNN_CPU_PATH="baseline")) as d:
            st, _, body = d.get("/v1/model")
            self.assertEqual(json.loads(body)["compute"]["kernels"], "baseline")
            self.assertEqual(json.loads(body)["compute"]["lrt_gemm"], "openblas")
        with daemon.Daemon(env=clean_env()) as d:  # the best path: ours from AVX2 on
            compute = json.loads(d.get("/v1/model")[2])["compute"]
            want = "openblas" if compute["kernels"] == "baseline" else "packed"
            self.assertEqual(compute["lrt_gemm"], want)
        r = daemon.run_server("--port", "0", env=clean_env(BNN_CPU_PATH="avx9000"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("BNN_CPU_PATH", r.stderr)
        self.assertIn("avx9000", r.stderr)

    def test_precedence(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# test\nworkers = 3\nmax_samples = 777\n")
            path = f.name
        try:
            def workers(*args, **env):
                r = daemon.run_server("--config", path, "--check-config", *args, env=clean_env(**env))
                self.assertEqual(r.returncode, 0, r.stderr)
                return effective(r.stdout)
            self.assertEqual(workers()["workers"], "3")
            self.assertEqual(workers()["max_samples"], "777")
            self.assertEqual(workers(BNN_SERVE_WORKERS="4")["workers"], "4")
            self.assertEqual(workers("--workers", "5", BNN_SERVE_WORKERS="4")["workers"], "5")
            self.assertEqual(workers("--workers=6")["workers"], "6")
            self.assertEqual(workers("--max-samples", "900")["max_samples"], "900")
            self.assertEqual(workers("--max_samples", "800")["max_samples"], "800")
            defaults = effective(daemon.run_server("--check-config", "--config", os.devnull,
                                                   env=clean_env()).stdout)
            self.assertEqual(defaults["workers"], "0")
        finally:
            os.unlink(path)

    def test_bad_values_exit_2(self):
        for args, env, key in ((["--workers", "abc"], {}, "workers"),
                               (["--port", "70000"], {}, "port"),
                               (["--default-interval", "1.5"], {}, "interval"),
                               (["--log-format", "xml"], {}, "log_format"),
                               ([], {"BNN_SERVE_QUEUE_DEPTH": "0"}, "queue_depth"),
                               (["--default-samples", "50", "--max-samples", "10"], {}, "samples")):
            for extra in ([], ["--check-config"]):
                r = daemon.run_server(*(args + extra), env=clean_env(**env))
                self.assertEqual(r.returncode, 2, (args, env, r.stderr))
                self.assertIn("bnn-serve: error:", r.stderr)
                self.assertIn(key, r.stderr)
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("workers = 2\nmax_batch = lots\n")
            path = f.name
        try:
            r = daemon.run_server("--config", path, "--check-config", env=clean_env())
            self.assertEqual(r.returncode, 2)
            self.assertIn("max_batch", r.stderr)
            self.assertIn(":2", r.stderr)
        finally:
            os.unlink(path)
        r = daemon.run_server("--no-such-flag", env=clean_env())
        self.assertEqual(r.returncode, 2)
        r = daemon.run_server("--config", "/nonexistent.conf", env=clean_env())
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent.conf", r.stderr)

    def test_missing_or_invalid_model(self):
        r = daemon.run_server("--model", "/nonexistent/model.safetensors", "--port", "0", env=clean_env())
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"^bnn-serve: error: .*/nonexistent/model.safetensors")
        with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
            path = f.name
        try:
            r = daemon.run_server("--model", path, "--port", "0", env=clean_env())
            self.assertEqual(r.returncode, 1)
            self.assertIn("bnn-serve: error:", r.stderr)
            self.assertIn(path, r.stderr)
        finally:
            os.unlink(path)

    def test_busy_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            t0 = time.monotonic()
            r = daemon.run_server("--model", daemon.model_path(), "--port", str(port), env=clean_env())
            self.assertEqual(r.returncode, 1)
            self.assertIn("bnn-serve: error:", r.stderr)
            self.assertIn("Address already in use", r.stderr)
            self.assertIn(str(port), r.stderr)
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            s.close()

    def test_probe(self):
        with daemon.Daemon(env=clean_env()) as d:
            self.assertRegex(d.ready_line, r"listening on http://127\.0\.0\.1:%d " % d.port)
            base = "http://127.0.0.1:%d" % d.port
            self.assertEqual(daemon.run_server("--probe", base + "/healthz").returncode, 0)
            self.assertEqual(daemon.run_server("--probe", base + "/readyz").returncode, 0)
            self.assertEqual(daemon.run_server("--probe", "http://localhost:%d/healthz" % d.port).returncode, 0)
            self.assertEqual(daemon.run_server("--probe", base + "/nope").returncode, 1)
            self.assertEqual(daemon.run_server("--probe", base + "/predict").returncode, 1)  # 405
            self.assertEqual(d.stop(), 0)
        self.assertEqual(daemon.run_server("--probe", "http://127.0.0.1:%d/healthz" % d.port).returncode, 1)
        self.assertEqual(daemon.run_server("--probe", "not-a-url").returncode, 1)
        # A listener that never answers: the probe gives up after its timeout.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            t0 = time.monotonic()
            r = daemon.run_server("--probe", "http://127.0.0.1:%d/healthz" % s.getsockname()[1])
            self.assertEqual(r.returncode, 1)
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            s.close()

    def test_environment_configures_the_daemon(self):
        with daemon.Daemon(env=clean_env(BNN_SERVE_MAX_SAMPLES="333", BNN_SERVE_LOG_FORMAT="json")) as d:
            st, _, body = d.get("/v1/model")
            self.assertIn(b"\"max_samples\":333", body)
            png, _ = daemon.mnist_png(0)
            self.assertEqual(d.post_png("/predict?samples=334", png)[0], 400)
            self.assertEqual(d.stop(), 0)
            import json
            lines = [json.loads(l) for l in d.log().splitlines() if l.strip()]
            self.assertTrue(any(l.get("msg") == "access" and l.get("status") == 400 for l in lines))

    def test_text_log_and_access_log_switch(self):
        png, _ = daemon.mnist_png(0)
        with daemon.Daemon(env=clean_env()) as d:
            d.post_png("/predict?samples=9", png, headers={"X-Request-Id": "text-log-1"})
            self.assertEqual(d.stop(), 0)
        line = [l for l in d.log().splitlines() if "text-log-1" in l][0]
        self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z access 127\.0\.0\.1 POST "
                               r"/predict 200 \d+ [\d.]+ms id=text-log-1 samples=9$")
        self.assertRegex(d.log(), r"info ready: port %d" % d.port)
        with daemon.Daemon("--access-log", "false", "--log-level", "warn", env=clean_env()) as d:
            d.post_png("/predict?samples=9", png)
            self.assertEqual(d.stop(), 0)
        self.assertNotIn("access", d.log())
        self.assertNotIn("info", d.log())

    def test_ipv6(self):
        try:
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
            s.close()
        except OSError:
            self.skipTest("no IPv6 loopback here")
        with daemon.Daemon("--host", "::1", env=clean_env(), ready=False) as d:
            self.assertIn("http://[::1]:%d " % d.port, d.ready_line)
            for _ in range(100):
                if daemon.run_server("--probe", "http://[::1]:%d/readyz" % d.port).returncode == 0:
                    break
                time.sleep(0.05)
            else:
                self.fail("no 200 from /readyz over IPv6")
            self.assertEqual(d.stop(), 0)

    def test_start_time(self):
        t0 = time.monotonic()
        with daemon.Daemon(env=clean_env()) as d:
            elapsed = time.monotonic() - t0
            self.assertLess(elapsed, 10)
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    daemon.main()
