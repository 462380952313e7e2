"""Write a per-minute traffic trace (`timestamp,count`, as CloudWatch's Invocations Sum per minute exports)
for the simulator's trace replay: a working day compressed into `--hours` hours of fleet time.

    .venv/bin/python scripts/make_trace.py --scale 1.3 --out data/traces/day-compressed.csv

The shape: a night floor, a morning ramp, a lunch dip, an afternoon peak and an evening decline, each hour
of the day taking `60 * hours / 24` minutes; per-minute counts are Poisson draws around that rate (seeded),
so the file is the same every time for the same arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import sys
from pathlib import Path

# Requests per second at each hour of the day (the shape is the point; --scale multiplies it).
DAY_RATE = (0.08, 0.06, 0.05, 0.05, 0.06, 0.1, 0.25, 0.5, 0.8, 1.0, 1.05, 0.95,
            0.7, 0.8, 1.1, 1.3, 1.2, 0.9, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method for small means, a rounded normal for large ones)."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--hours", type=float, default=2.0, help="fleet hours the day is compressed into")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every rate")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--start", default="2026-11-02T00:00:00+00:00", help="timestamp of the first minute")
    args = parser.parse_args(argv)
    if args.hours <= 0 or args.scale <= 0:
        parser.error("--hours and --scale must be > 0")
    rng = random.Random(args.seed)
    start = dt.datetime.fromisoformat(args.start)
    minutes = round(args.hours * 60)
    lines = ["timestamp,count"]
    for minute in range(minutes):
        hour = minute * 24 / minutes
        low, share = int(hour) % 24, hour - int(hour)
        rate = DAY_RATE[low] + (DAY_RATE[(low + 1) % 24] - DAY_RATE[low]) * share
        count = poisson(rng, rate * args.scale * 60)
        lines.append(f"{(start + dt.timedelta(minutes=minute)).strftime('%Y-%m-%dT%H:%M:%SZ')},{count}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    total = sum(int(line.rsplit(",", 1)[1]) for line in lines[1:])
    print(f"{args.out}: {minutes} minutes, {total} requests", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
