"""Memory of a PostgreSQL-backed server under reads whose filters keep changing shape.

Usage: python3 scripts/bench.d/shapes_probe.py BINARY PGURL SECONDS CLIENTS
(PGURL names an empty database on a local PostgreSQL server, e.g.
postgres://postgres@127.0.0.1:5432/probe).

Starts BINARY on a free port with a fresh data dir, a collection `books` that anyone may read
and one record in it, public read limits off. Then CLIENTS threads send anonymous
`GET /api/v1/books?or=(…)` for SECONDS, each filter 5 to 30 conditions drawn from eight: nearly
every request is a statement of a new shape. Prints the resident memory of the server and of
the database's server processes (the connections to PGURL's database) before and after.
"""
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

CONDITIONS = ["pages.eq.1", "title.eq.a", "price.gt.1", "done.is.true", "pages.lt.5", "title.like.a*",
              "pages.in.(1,2)", "price.is.null"]
SECRET = "s" * 40


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return resp.read()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def database_kb(database):
    """The resident memory of the PostgreSQL processes serving `database`."""
    out = subprocess.run(["ps", "-eo", "rss,args"], capture_output=True, text=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines()[1:] if f" {database} " in line)


def load(base, until, counts):
    n = 0
    while time.time() < until:
        q = "or=(" + ",".join(random.choice(CONDITIONS) for _ in range(random.randint(5, 30))) + ")"
        urllib.request.urlopen(base + "/api/v1/books?" + urllib.parse.quote(q, safe="=(),.*")).read()
        n += 1
    counts.append(n)


def main():
    binary, pgurl, seconds, clients = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    database = pgurl.rsplit("/", 1)[1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = tempfile.mkdtemp(prefix="shapes-probe-")
    env = dict(os.environ, ADMIN_SECRET=SECRET)
    server = subprocess.Popen([binary, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", data_dir,
                               "--database-url", pgurl], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/").read()
                break
            except OSError:
                time.sleep(0.1)
        call(base, "PATCH", "/api/v1/admin/settings", {"rate_limit_public_reads": 0})
        call(base, "POST", "/api/v1/admin/collections", {"name": "books", "rules": {"read": "public"}})
        call(base, "POST", "/api/v1/books", {"pages": 1, "title": "a", "price": 1.5, "done": True})
        before = (rss_kb(server.pid), database_kb(database))
        counts = []
        until = time.time() + seconds
        threads = [threading.Thread(target=load, args=(base, until, counts)) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = (rss_kb(server.pid), database_kb(database))
        print(f"requests: {sum(counts)}")
        print(f"server: {before[0] / 1024:.0f} MiB -> {after[0] / 1024:.0f} MiB")
        print(f"database processes: {before[1] / 1024:.0f} MiB -> {after[1] / 1024:.0f} MiB")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
