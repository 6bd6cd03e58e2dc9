#!/usr/bin/env python3
"""Service-level recall: the share of the exact top-k (`"exact": true`, every item scored) that
the ANN path returns, over the first N request bodies of a wrk script (scripts/serve_bodies.py).

    scripts/serve_recall.py URL BODIES.lua [N]
"""

import json
import re
import sys
import urllib.request


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url + "/v1/recommend", json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def main() -> None:
    url, lua = sys.argv[1:3]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    bodies = [json.loads(b) for b in re.findall(r"\[==\[(.*?)\]==\]", open(lua).read())][:n]
    hits = total = 0
    for b in bodies:
        ann = [i["id"] for i in post(url, b)["items"]]
        exact = [i["id"] for i in post(url, {**b, "exact": True})["items"]]
        hits += len(set(ann) & set(exact))
        total += len(exact)
    print(f"recall@k of the ANN path against exact scoring: {hits / max(total, 1):.4f} over {len(bodies)} requests")


if __name__ == "__main__":
    main()
