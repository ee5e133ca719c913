#!/usr/bin/env python3
"""Seed the bench collection (or a bucket) and write the ids created, one per line.

With --bucket, each item is a small file uploaded to /api/v1/storage/{bucket}/{key} with the
admin secret (--token), its key `k/{n % 100:02d}/{n:06d}.txt`: 100 prefixes for the listing
scenario.

Standard library only. Each worker thread keeps one keep-alive HTTP/1.1 connection and posts
its share of the records. The threads are spread over a few processes because one Python
process (one GIL) tops out around 5,500 requests/s here, well below what the server accepts.

Any response other than 201, or any connection error, stops the seeding with a message naming
the request and the response: a benchmark on a partly seeded table would be meaningless, and
retrying a POST could create a duplicate.
"""

import argparse
import http.client
import json
import multiprocessing
import random
import sys
import threading
import time

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
    "mike november oscar papa quebec romeo sierra tango uniform victor whiskey"
).split()


def record(n, rng):
    """The record number n: 100 categories, random scores, half of them active."""
    words = " ".join(rng.choice(WORDS) for _ in range(6))
    return {
        "title": f"item {n} {words}",
        "category": f"cat-{n % 100}",
        "score": rng.randint(0, 9999),
        "active": n % 2 == 0,
    }


class Failure(Exception):
    pass


def item(args, n, rng):
    """The request that creates item n: (path, body, headers, the answer's id field)."""
    if args.bucket:
        headers = {"Content-Type": "text/plain", "Authorization": f"Bearer {args.token}"}
        return f"/api/v1/storage/{args.bucket}/k/{n % 100:02d}/{n:06d}.txt", f"object {n}\n", headers, "id"
    headers = {"Content-Type": "application/json"}
    return f"/api/v1/{args.collection}", json.dumps(record(n, rng)), headers, "_id"


def worker(args, numbers, ids, errors):
    rng = random.Random(numbers.start)
    conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    try:
        for n in numbers:
            if errors:  # another worker failed: stop early
                return
            path, body, headers, id_field = item(args, n, rng)
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                raise Failure(f"POST {path} (record {n}): connection error: {exc!r}")
            if resp.status != 201:
                raise Failure(
                    f"POST {path} (record {n}) -> {resp.status}: {data[:500]!r}\n"
                    f"  request body: {body}"
                )
            ids.append(json.loads(data)[id_field])
    except Failure as exc:
        errors.append(str(exc))
    except Exception as exc:  # a bug here must not look like a finished seeding
        errors.append(f"seeder crashed: {exc!r}")
    finally:
        conn.close()


def run_process(job):
    """One process: its threads post the numbers congruent to their worker index."""
    args, first_worker, total_workers = job
    ids, errors = [], []  # list.append is atomic under the GIL
    threads = [
        threading.Thread(
            target=worker,
            args=(args, range(w, args.rows, total_workers), ids, errors),
            daemon=True,
        )
        for w in range(first_worker, first_worker + args.workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ids, errors


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--collection", default="bench_items")
    p.add_argument("--bucket", help="upload small files to this bucket instead of records")
    p.add_argument("--token", help="bearer token for --bucket (the admin secret)")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--workers", type=int, default=4, help="threads (connections) per process")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--ids-out", required=True, help="file to write the created ids to")
    args = p.parse_args()

    total_workers = args.processes * args.workers
    jobs = [(args, n * args.workers, total_workers) for n in range(args.processes)]
    started = time.monotonic()
    with multiprocessing.Pool(args.processes) as pool:
        results = pool.map(run_process, jobs)
    elapsed = time.monotonic() - started
    ids = [i for part, _ in results for i in part]
    errors = [e for _, part in results for e in part]

    if errors:
        print(f"seed: FAILED after {len(ids)} records:", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    if len(ids) != args.rows or len(set(ids)) != args.rows:
        print(f"seed: FAILED: expected {args.rows} distinct ids, got {len(ids)} "
              f"({len(set(ids))} distinct)", file=sys.stderr)
        return 1
    with open(args.ids_out, "w") as f:
        f.write("\n".join(ids))
        f.write("\n")
    # One machine-readable line for the caller.
    print(f"SEED_RESULT rows={len(ids)} seconds={elapsed:.1f} rate={len(ids) / elapsed:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
