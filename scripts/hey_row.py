#!/usr/bin/env python3
"""One markdown table row from `hey` output on stdin (scripts/bench_feedback.sh).

    hey ... | scripts/hey_row.py LABEL
"""

import re
import sys


def main() -> None:
    t = sys.stdin.read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p = dict(re.findall(r"(50|99)%+ in ([\d.]+) secs", t))
    codes = ", ".join(f"{n}× {c}" for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", t))
    print(f"| {sys.argv[1]} | {rps:,.0f} | {1000 * float(p['50']):.2f} | {1000 * float(p['99']):.2f} | {codes} |")


if __name__ == "__main__":
    main()
