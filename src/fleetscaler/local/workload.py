"""The workload of a scenario: when each request arrives and how much work it brings, from seeded RNGs.

- Arrivals. `uniform`: evenly spaced, the k-th request when the integrated rate reaches k (the load exactly
  as written, no randomness). `poisson`: a non-homogeneous Poisson process with the same rate, drawn by the
  inverse of the integrated rate (unit-rate exponential gaps mapped through it), so ramps are exact.
  A batch segment puts all its requests at its start; a trace segment replays its file: timestamps as they
  are, per-minute counts spread within their minute by the arrivals model (evenly, or uniformly at random,
  which is a Poisson process given its count).
- Service. Each request's service time is a multiple of the serving endpoint's mean (1 / requests per
  second per instance): always 1 (`constant`), exponential (cv 1), or lognormal with the given cv.

Every random choice comes from its own RNG seeded by (scenario seed, purpose), so changing the service model
does not move a single arrival, and the same file with the same seed gives the same requests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

ARRIVAL_MODELS: tuple[str, ...] = ("uniform", "poisson")
SERVICE_DISTRIBUTIONS: tuple[str, ...] = ("constant", "exponential", "lognormal")


def seeded(seed: int, purpose: str) -> random.Random:
    """An RNG for one purpose (arrivals, service, ...): independent streams from one scenario seed."""
    return random.Random(f"{seed}:{purpose}")


@dataclass(frozen=True)
class ServiceSpec:
    """Per-request service time in multiples of the mean; `cv` (standard deviation / mean) for lognormal."""

    distribution: str = "constant"
    cv: float = 1.0

    def sampler(self, rng: random.Random) -> Iterator[float]:
        """Endless multipliers of the mean service time, mean 1."""
        if self.distribution == "constant":
            while True:
                yield 1.0
        elif self.distribution == "exponential":
            while True:
                yield rng.expovariate(1.0)
        else:
            # lognormal with mean 1: sigma^2 = ln(1 + cv^2), mu = -sigma^2 / 2
            sigma = math.sqrt(math.log1p(self.cv**2))
            mu = -(sigma**2) / 2
            while True:
                yield rng.lognormvariate(mu, sigma)


@dataclass(frozen=True)
class RateSegment:
    """Load rising linearly from `rate_from` to `rate_to` requests/s between `start` and `end` (seconds)."""

    start: float
    end: float
    rate_from: float
    rate_to: float

    @property
    def total(self) -> float:
        """Expected requests in the segment (the integrated rate)."""
        return (self.rate_from + self.rate_to) / 2 * (self.end - self.start)

    def time_at(self, amount: float) -> float:
        """When the integrated rate since `start` reaches `amount` (0 <= amount <= total)."""
        a = self.rate_from
        slope = (self.rate_to - self.rate_from) / (self.end - self.start)
        if abs(slope) < 1e-15:
            return self.start + amount / a
        # a*tau + slope*tau^2/2 = amount, in the form that stays exact when slope is tiny or negative
        root = math.sqrt(max(0.0, a * a + 2 * slope * amount))
        return self.start + 2 * amount / (a + root)


def rate_arrivals(segments: Sequence[RateSegment], model: str, rng: random.Random) -> list[float]:
    """Arrival times over consecutive rate segments: the integrated rate between arrivals is 1 (uniform) or
    exponentially distributed with mean 1 (poisson)."""

    def gap() -> float:
        return 1.0 if model == "uniform" else rng.expovariate(1.0)

    times: list[float] = []
    need = gap()
    for segment in segments:
        if segment.end <= segment.start:
            continue
        total = segment.total
        used = 0.0
        while used + need <= total + 1e-9:
            used += need
            times.append(min(segment.end, segment.time_at(min(used, total))))
            need = gap()
        need -= total - used
    return times


def spread_counts(
    start: float, counts: Sequence[int], period: float, model: str, rng: random.Random
) -> list[float]:
    """Arrival times for per-period counts: evenly within each period (uniform) or at uniformly random moments
    (poisson: a Poisson process conditioned on its count)."""
    times: list[float] = []
    for index, count in enumerate(counts):
        begin = start + index * period
        if model == "uniform":
            times.extend(begin + (k + 0.5) * period / count for k in range(count))
        else:
            times.extend(sorted(begin + rng.random() * period for _ in range(count)))
    return times
