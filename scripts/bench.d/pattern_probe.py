"""Small creates' latency on one server while large texts are checked by a slow pattern.

Usage: python3 scripts/bench.d/pattern_probe.py BINARY PATTERN TEXT_MB BIG_WRITERS
(set PGURL=postgres://… to serve from PostgreSQL; its database should be empty).

Starts BINARY on a free port with a fresh data dir, limits off, a collection `notes` whose
field `body` must match PATTERN, and a collection `small`. Times one write of TEXT_MB of random
`a`/`b` text alone, then 100 small creates one after another while BIG_WRITERS threads keep
writing such texts, and prints the small creates' latencies.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BIN, PATTERN, TEXT_MB, BIG_WRITERS = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
SECRET = "probe-secret-0123456789abcdef-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


port = free_port()
env = dict(os.environ, ADMIN_SECRET=SECRET)
extra = ["--database-url", os.environ["PGURL"]] if os.environ.get("PGURL") else []
log = tempfile.NamedTemporaryFile(prefix="pattern-probe-", suffix=".log", delete=False)
proc = subprocess.Popen(
    [BIN, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", tempfile.mkdtemp(), *extra],
    stdout=log, stderr=log, env=env)
base = f"http://127.0.0.1:{port}/api/v1"


def req(method, path, body=None, admin=False):
    headers = {"Content-Type": "application/json"}
    if admin:
        headers["Authorization"] = f"Bearer {SECRET}"
    data = None if body is None else json.dumps(body).encode()
    r = urllib.request.Request(base + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(r, timeout=300) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def started():
    try:
        return req("GET", "/admin/health", admin=True)[0] == 200
    except OSError:
        return False


try:
    deadline = time.monotonic() + 30
    while not started():
        assert time.monotonic() < deadline and proc.poll() is None, f"the server did not start: see {log.name}"
        time.sleep(0.05)
    limits_off = {k: 0 for k in ["rate_limit_public_reads", "rate_limit_auth", "rate_limit_crud",
                                 "rate_limit_admin", "rate_limit_uploads"]}
    assert req("PATCH", "/admin/settings", limits_off, admin=True)[0] == 200
    rules = {"read": "public", "create": "public", "update": "public", "delete": "public"}
    for c in ["notes", "small"]:
        status, body = req("POST", "/admin/collections", {"name": c, "rules": rules}, admin=True)
        assert status == 201, (status, body)
    field_rules = {"body": {"type": "text", "pattern": PATTERN}}
    status, body = req("PUT", "/admin/collections/notes/rules", field_rules, admin=True)
    assert status == 200, body
    random.seed(7)
    text = "".join(random.choice("ab") for _ in range(int(TEXT_MB * 1024 * 1024)))
    t0 = time.perf_counter()
    status, _ = req("POST", "/notes", {"body": text})
    print(f"one {TEXT_MB} MB write alone: {(time.perf_counter() - t0) * 1000:.0f} ms (status {status})")

    stop = threading.Event()

    def big():
        while not stop.is_set():
            req("POST", "/notes", {"body": text})

    threads = [threading.Thread(target=big) for _ in range(BIG_WRITERS)]
    for t in threads:
        t.start()
    latencies = []
    for i in range(100):
        t0 = time.perf_counter()
        status, _ = req("POST", "/small", {"i": i})
        latencies.append(time.perf_counter() - t0)
        assert status == 201, status
    stop.set()
    for t in threads:
        t.join()
    latencies.sort()
    print(f"small creates beside {BIG_WRITERS} large writers: p50 {latencies[50] * 1000:.1f} ms, "
          f"p90 {latencies[90] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
finally:
    proc.send_signal(signal.SIGTERM)
    proc.wait()
