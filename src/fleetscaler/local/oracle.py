"""The oracle: what a fleet that knows every arrival and its work in advance would use and achieve.

A fluid queue in steps of the scenario's `step_seconds`. Its capacity (units) at each step is

    min(max_capacity, max(min_capacity, ceil(lambda / mu + Q / T)))

where lambda is the work arriving over the next minute (in mean requests per second), mu the throughput of one
capacity unit (requests per second), Q the oracle's own queued work (in mean requests) and T the target backlog
per unit of the scenario's policy. Each capacity is ordered one provisioning delay ahead and billed from the
order: the units paid at a step are the most the oracle needs from that step to one provisioning delay later.
A batch of N dropped on a cold fleet therefore makes it pay min(max, ceil(N / T)) units until it is drained.
Its queue is served first in, first out at `capacity x mu`, which gives each request a time to result.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from fleetscaler.local.scenario import Scenario


@dataclass(frozen=True)
class OracleRun:
    capacities: tuple[int, ...]  # units serving at each step
    paid: tuple[int, ...]  # units billed at each step (ordered ahead)
    step_seconds: float
    time_to_result: tuple[float, ...]  # per request, in arrival order (None never: the oracle drains all)

    @property
    def unit_minutes(self) -> float:
        return sum(self.paid) * self.step_seconds / 60


def capacity_ceiling(scenario: Scenario) -> int:
    """The most units the fleet may use: the policy's max_capacity, else every endpoint at its cap."""
    caps = sum(e.capacity_units * (e.max_instances if e.max_instances is not None else 100) for e in scenario.endpoints)
    return caps if scenario.policy.max_capacity is None else min(caps, scenario.policy.max_capacity)


def run_oracle(scenario: Scenario, arrivals: Sequence[float], works: Sequence[float]) -> OracleRun:
    """The oracle over the scenario's duration for these arrivals (seconds from the start, sorted) and works
    (multiples of the mean service time)."""
    step = scenario.step_seconds
    steps = math.ceil(scenario.duration / step) + 1
    mu = scenario.unit_throughput
    target = scenario.policy.target_backlog_per_instance
    low, high = scenario.policy.min_capacity, capacity_ceiling(scenario)
    per_step = [0.0] * steps
    for t, w in zip(arrivals, works, strict=True):
        per_step[min(steps - 1, int(t // step))] += w
    window = max(1, round(60 / step))
    ahead = [0.0] * (steps + 1)  # work arriving in the minute from each step on
    for k in range(steps - 1, -1, -1):
        ahead[k] = ahead[k + 1] + per_step[k] - (per_step[k + window] if k + window < steps else 0.0)
    queued = 0.0
    capacities: list[int] = []
    served_by: list[float] = []  # cumulative work served at the end of each step
    served = 0.0
    for k in range(steps):
        rate = ahead[k] / 60
        need = math.ceil(rate / mu + queued / target - 1e-9)
        capacity = min(high, max(low, need))
        queued += per_step[k]
        done = min(queued, capacity * mu * step)
        queued -= done
        served += done
        capacities.append(capacity)
        served_by.append(served)
    delay = max(1, math.ceil(scenario.provisioning_seconds / step))
    paid = [max(capacities[k : k + delay + 1]) for k in range(steps)]
    # FIFO fluid: a request is done when the cumulative work served reaches the work that arrived up to it.
    results: list[float] = []
    cumulative = 0.0
    for t, w in zip(arrivals, works, strict=True):
        cumulative += w
        k = bisect.bisect_left(served_by, cumulative - 1e-9)
        if k >= steps:
            finished = steps * step
        else:
            before = served_by[k - 1] if k else 0.0
            within = served_by[k] - before
            share = (cumulative - before) / within if within > 0 else 1.0
            finished = (k + min(1.0, max(0.0, share))) * step
        results.append(max(0.0, finished - t))
    return OracleRun(tuple(capacities), tuple(paid), step, tuple(results))
