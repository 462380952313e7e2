"""Traffic traces a scenario replays (`traffic: [{trace: traces/name.csv}]`).

Three formats, told apart by their content:

- arrival timestamps: one number of seconds per line (`12.5`); epoch seconds or seconds from the start;
- per-minute counts as CSV: `timestamp,count` per line (ISO-8601 or epoch seconds; a header line is allowed),
  e.g. exported from CloudWatch's `Invocations` (Sum, period 60);
- CloudWatch `aws cloudwatch get-metric-data` JSON: `MetricDataResults[0]` with `Timestamps` and `Values`
  (newest first or oldest first; the period is the smallest gap between timestamps).

The segment starts at the whole minute of the first timestamp, so the replay keeps each arrival's place
within its minute; minutes missing from a count file count 0.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PERIOD_SECONDS = 60.0


class TraceError(ValueError):
    """A trace file that cannot be replayed; the message says where and why."""


@dataclass(frozen=True)
class Trace:
    """Arrival offsets in seconds from the segment start (`times`), or counts per `period` (`counts`)."""

    source: str
    duration: float
    times: tuple[float, ...] | None = None
    counts: tuple[int, ...] | None = None
    period: float = PERIOD_SECONDS

    @property
    def requests(self) -> int:
        return len(self.times) if self.times is not None else sum(self.counts or ())

    def rate_at(self, offset: float) -> float:
        """Requests per second in the period holding `offset`."""
        if offset < 0 or offset >= self.duration:
            return 0.0
        index = int(offset // self.period)
        if self.counts is not None:
            return self.counts[index] / self.period if index < len(self.counts) else 0.0
        low, high = index * self.period, (index + 1) * self.period
        return sum(1 for t in self.times or () if low <= t < high) / self.period


def _epoch(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TraceError(f"{where}: {text!r} is neither seconds nor an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _count(value: Any, where: str) -> int:
    number = float(value)
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise TraceError(f"{where}: a count must be a whole number >= 0, got {value!r}")
    return int(number)


def _from_counts(source: str, pairs: list[tuple[float, int]]) -> Trace:
    if not pairs:
        raise TraceError(f"{source}: no datapoints")
    pairs.sort()
    stamps = [t for t, _ in pairs]
    gaps = [b - a for a, b in itertools.pairwise(stamps) if b > a]
    period = min(gaps) if gaps else PERIOD_SECONDS
    if any(b == a for a, b in itertools.pairwise(stamps)):
        raise TraceError(f"{source}: the same timestamp appears twice")
    first = stamps[0]
    counts = [0] * (round((stamps[-1] - first) / period) + 1)
    for stamp, count in pairs:
        counts[round((stamp - first) / period)] += count
    return Trace(source, len(counts) * period, counts=tuple(counts), period=period)


def _from_times(source: str, stamps: list[float]) -> Trace:
    if not stamps:
        raise TraceError(f"{source}: no arrival timestamps")
    stamps.sort()
    start = math.floor(stamps[0] / PERIOD_SECONDS) * PERIOD_SECONDS
    times = tuple(t - start for t in stamps)
    duration = (math.floor(times[-1] / PERIOD_SECONDS) + 1) * PERIOD_SECONDS
    return Trace(source, duration, times=times)


def parse_trace(text: str, source: str) -> Trace:
    """Read a trace in any of the three formats (see the module docstring)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            raw = json.loads(stripped)
            result = raw["MetricDataResults"][0]
            stamps, values = result["Timestamps"], result["Values"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TraceError(
                f"{source}: JSON must be get-metric-data output with MetricDataResults[0].Timestamps and .Values"
            ) from exc
        if len(stamps) != len(values):
            raise TraceError(f"{source}: Timestamps and Values differ in length")
        pairs = [
            (_epoch(str(t), f"{source}: Timestamps[{i}]"), _count(v, f"{source}: Values[{i}]"))
            for i, (t, v) in enumerate(zip(stamps, values, strict=True))
        ]
        return _from_counts(source, pairs)
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    lines = [(n, line) for n, line in lines if not line.startswith("#")]
    if lines and "," in lines[0][1] and not _is_number(lines[0][1].split(",")[1].strip()):
        lines = lines[1:]  # a header such as "timestamp,count"
    if lines and all("," in line for _, line in lines):
        pairs = []
        for n, line in lines:
            cells = [c.strip() for c in line.split(",")]
            if len(cells) != 2:
                raise TraceError(f"{source}:{n}: expected 'timestamp,count', got {line!r}")
            pairs.append((_epoch(cells[0], f"{source}:{n}"), _count(cells[1], f"{source}:{n}")))
        return _from_counts(source, pairs)
    stamps = []
    for n, line in lines:
        if "," in line:
            raise TraceError(f"{source}:{n}: mixes 'timestamp,count' lines with single timestamps")
        stamps.append(_epoch(line, f"{source}:{n}"))
    return _from_times(source, stamps)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_trace(path: Path) -> Trace:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read the file ({exc.strerror})") from exc
    return parse_trace(text, str(path))
