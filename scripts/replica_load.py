#!/usr/bin/env python3
"""Shoppers through a load balancer, for `scripts/bench_replicas.sh`: each worker loops
recommend (with a session) → impression event (unique idempotency key) for DURATION seconds,
and records every outcome with its time. Prints a JSON summary: requests by status, events
acknowledged as accepted (their keys in ACKED_FILE, one per line), failures with times.

    scripts/replica_load.py URL DURATION WORKERS BODIES.json ACKED_FILE
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse


def main() -> None:
    url, duration, workers, bodies_path, acked_path = sys.argv[1:6]
    duration, workers = float(duration), int(workers)
    bodies = json.load(open(bodies_path))
    u = urllib.parse.urlparse(url)
    t_start = time.time()
    run = f"{int(t_start * 1000):x}"  # sessions and keys unique to this run
    lock = threading.Lock()
    statuses: dict = {}
    failures: list = []
    acked: list = []
    rejected: dict = {}

    def count(what: str, t: float, detail: str = "") -> None:
        with lock:
            statuses[what] = statuses.get(what, 0) + 1
            if not what.endswith(" 200"):
                failures.append((round(t - t_start, 3), what, detail[:200]))

    def call(conn, method, path, body):
        conn.request(method, path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()

    def worker(w: int) -> None:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        n = 0
        while time.time() - t_start < duration:
            n += 1
            session = f"bench-{run}-{w}-{n}"
            body = dict(bodies[(w * 7919 + n) % len(bodies)])
            body["session"] = session
            t = time.time()
            try:
                status, raw = call(conn, "POST", "/v1/recommend", body)
            except Exception as e:  # connection reset by a killed replica
                count("recommend error", t, repr(e))
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                continue
            count(f"recommend {status}", t, raw.decode(errors="replace"))
            if status != 200:
                continue
            rec = json.loads(raw)
            key = f"imp-{session}"
            event = {"type": "impression", "key": key, "session": session,
                     "recommendation_id": rec["recommendation_id"],
                     "items": [{"id": i["id"], "position": p} for p, i in enumerate(rec["items"])]}
            t = time.time()
            try:
                status, raw = call(conn, "POST", "/v1/events", {"events": [event]})
            except Exception as e:
                count("events error", t, repr(e))
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                continue
            count(f"events {status}", t, raw.decode(errors="replace"))
            if status == 200:
                out = json.loads(raw)
                with lock:
                    if out["accepted"] == 1:
                        acked.append(key)
                    for r in out["rejected"]:
                        rejected[r["code"]] = rejected.get(r["code"], 0) + 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(acked_path, "w") as f:
        f.write("\n".join(acked) + "\n")
    print(json.dumps({"statuses": statuses, "acked": len(acked), "rejected": rejected,
                      "failures": failures[:50], "failure_count": len(failures)}, indent=1))


if __name__ == "__main__":
    main()
