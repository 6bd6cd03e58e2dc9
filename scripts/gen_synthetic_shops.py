#!/usr/bin/env python3
"""Two synthetic shops in warmstart's generic JSON Lines format, for load benchmarks.

A small shop `syn-a` (the shopper's history) and a large shop `syn-b` (the target, N items),
one dataset group `synthetic`. Products belong to latent topics; every user likes one or two
topics and interacts with products of those topics on both shops (Zipf-like popularity inside a
topic), so a collaborative model learns cross-shop structure and a history on `syn-a` has
meaningful answers on `syn-b`.

    scripts/gen_synthetic_shops.py OUT_DIR [--items 1000000] [--small 20000] [--users 100000]

Writes OUT_DIR/products.jsonl, OUT_DIR/interactions.jsonl and OUT_DIR/histories.json (request
histories of 20 known `syn-a` products each, for the load generator).
"""

import argparse
import json
import os

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--items", type=int, default=1_000_000, help="products of the target shop syn-b")
    ap.add_argument("--small", type=int, default=20_000, help="products of the history shop syn-a")
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--topics", type=int, default=2_000)
    ap.add_argument("--per-user", type=int, default=8, help="interactions per user and shop")
    ap.add_argument("--histories", type=int, default=1_000)
    ap.add_argument("--history-len", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)

    shops = {"syn-a": a.small, "syn-b": a.items}
    topic_of = {s: rng.integers(0, a.topics, n) for s, n in shops.items()}
    # items of each topic, in a random (popularity) order
    members = {}
    for s, t in topic_of.items():
        order = np.argsort(t, kind="stable")
        bounds = np.searchsorted(t[order], np.arange(a.topics + 1))
        members[s] = [rng.permutation(order[bounds[k] : bounds[k + 1]]) for k in range(a.topics)]

    with open(os.path.join(a.out, "products.jsonl"), "w") as f:
        for s, n in shops.items():
            t = topic_of[s]
            price = np.round(rng.lognormal(3.0, 0.8, n), 2)
            lines = [
                f'{{"site":"{s}","id":"{i}","title":"{s} product {i} of topic {t[i]}",'
                f'"category":"dept {t[i] % 40} > topic {t[i]}","price":{price[i]},"currency":"USD"}}\n'
                for i in range(n)
            ]
            f.writelines(lines)

    def draw(s: str, topics: np.ndarray, count: int) -> np.ndarray:
        out = []
        for k in rng.choice(topics, count):
            m = members[s][k]
            if len(m) == 0:
                continue
            # skewed: the first products of a topic are the popular ones (top 1% take ~20%)
            r = int(len(m) * rng.random() ** 3)
            out.append(m[r])
        return np.array(out, dtype=np.int64)

    user_topics = [rng.choice(a.topics, rng.integers(1, 3), replace=False) for _ in range(a.users)]
    with open(os.path.join(a.out, "interactions.jsonl"), "w") as f:
        kinds = ["view", "view", "cart", "purchase"]
        for u in range(a.users):
            lines = []
            for s in shops:
                for i in draw(s, user_topics[u], a.per_user):
                    lines.append(
                        f'{{"user":"u{u}","site":"{s}","product":"{i}","kind":"{kinds[(u + i) % 4]}",'
                        f'"timestamp":{1_600_000_000 + int(i) % 10_000_000}}}\n'
                    )
            f.writelines(lines)

    histories = []
    for _ in range(a.histories):
        # topics the shopper likes, until they hold enough products; the popular ones first
        items = []
        while len(items) < a.history_len:
            m = members["syn-a"][rng.integers(a.topics)]
            items.extend(int(i) for i in m[: a.history_len // 2] if int(i) not in items)
        items = items[: a.history_len]
        histories.append([{"site": "syn-a", "id": str(i), "kind": "purchase"} for i in items])
    with open(os.path.join(a.out, "histories.json"), "w") as f:
        json.dump(histories, f)
    print(f"{sum(shops.values())} products, {a.users} users, {len(histories)} histories in {a.out}")


if __name__ == "__main__":
    main()
