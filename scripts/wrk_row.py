#!/usr/bin/env python3
"""One markdown table row from wrk's `--latency` output on stdin (scripts/bench_serve.sh).

    wrk ... --latency | scripts/wrk_row.py LABEL MODEL "RETRIEVAL ITEMS KNOWN EMBEDDED"
"""

import re
import sys


def ms(v: str) -> float:
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def main() -> None:
    label, model, retrieval = sys.argv[1:4]
    text = sys.stdin.read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    if retrieval.strip():
        mode, _items, known, embedded = retrieval.split()
        history = f"{known} known + {embedded} embedded"
    else:
        mode = history = "–"
    row = f"| {label} | {model} | {mode} | {history} | {rps:,.0f} | {ms(p['50']):.2f} | {ms(p['99']):.2f} |"
    if bad:
        row += f" {bad.group(1)} non-2xx"
    if errors:
        row += f" socket errors: {errors.group(1)}"
    print(row)


if __name__ == "__main__":
    main()
