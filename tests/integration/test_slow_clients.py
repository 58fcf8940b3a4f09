"""Slow and half-sent clients against the real daemon (issue #4, item 3):
hundreds of connections that send part of their headers or part of their
body must neither block health probes nor grow memory without bound, and
connection_timeout must close them. Stdlib only.
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon  # noqa: E402

HALF_BODY = 200     # connections that sent headers and 10 of 1000 body bytes
HALF_HEADERS = 200  # connections that stopped in the middle of the headers
TIMEOUT_S = 3
SLACK = 8 if os.environ.get("BNN_SANITIZER") else 1


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class SlowClients(unittest.TestCase):
    def test_half_sent_requests(self):
        png, label = daemon.mnist_png(0)
        with daemon.Daemon("--connection-timeout", str(TIMEOUT_S), "--connection-limit", "1000",
                           env=daemon.clean_env()) as d:
            rss_before = rss_kib(d.proc.pid)
            socks = []
            try:
                for i in range(HALF_BODY + HALF_HEADERS):
                    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
                    if i < HALF_BODY:
                        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                  b"Content-Length: 1000\r\n\r\n" + png[:10])
                    else:
                        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty")
                    socks.append(s)
                # Probes and real predictions are answered at once meanwhile.
                for _ in range(5):
                    t0 = time.monotonic()
                    self.assertEqual(d.get("/healthz")[0], 200)
                    self.assertLess(time.monotonic() - t0, 0.5 * SLACK)
                status, _, body = d.post_png("/predict?samples=20&seed=1", png)
                self.assertEqual(status, 200, body[:200])
                # Memory stays bounded: 400 half-open requests are a few MiB
                # of connection pools at most (64 KiB each by default).
                grown = rss_kib(d.proc.pid) - rss_before
                self.assertLess(grown, 400 * 64 + 16 * 1024, "RSS grew by %d KiB" % grown)
                # connection_timeout closes every one of them.
                deadline = time.monotonic() + TIMEOUT_S + 5 * SLACK
                open_socks = list(socks)
                while open_socks and time.monotonic() < deadline:
                    still = []
                    for s in open_socks:
                        s.settimeout(0.01)
                        try:
                            data = s.recv(4096)
                            if data:
                                still.append(s)  # an answer first; the close follows
                        except socket.timeout:
                            still.append(s)
                        except OSError:
                            pass  # reset: closed
                    open_socks = still
                    time.sleep(0.1)
                self.assertEqual(len(open_socks), 0, "%d half-sent connections still open" % len(open_socks))
                self.assertEqual(d.get("/readyz")[0], 200)
            finally:
                for s in socks:
                    s.close()
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    daemon.main()
