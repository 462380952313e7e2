"""The fleet's scaling signal: its queued work per capacity unit serving or coming, once a minute.

SageMaker's own metric, ApproximateBacklogSizePerInstance, is per endpoint and per instance: it does not
exist for an endpoint at zero instances (so it cannot wake a fleet), it ignores instances that are already
on their way (so a policy keeps asking while they start), and the MAX over endpoints follows the one hot
endpoint rather than the fleet. fleetscaler publishes instead, per fleet:

- `BacklogPerCapacityUnit` = requests queued on the endpoints that take requests / capacity units serving
  or coming there (no datapoint while none is), the metric target tracking and step scaling follow;
- `CapacityShortfallUnits` = max(0, ceil(queued / target) - units serving or coming): the capacity the queued
  work needs beyond what the fleet has or is getting. A step policy on it wakes a fleet at zero, and answers
  a burst, in one step sized to the queue (target tracking alone cannot scale from zero);
- `FleetBacklog`, `CapacityUnitsServingOrComing`, and `CapacityBound` (1 when the desired capacity is more
  than the endpoints can give: the dashboard's alarm, instead of failed scaling activities).

The queue of each endpoint is CloudWatch's newest ApproximateBacklogSize, except on an endpoint where nothing
serves: there nothing leaves the queue, so the engine also counts the requests the router has sent it since
the last snapshot (it knows them exactly, see `routing.routed_counts`), which wakes a fleet within a minute
of its first request instead of waiting for CloudWatch's next datapoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# AWS's recommended target for the backlog per instance of async endpoints.
DEFAULT_TARGET_BACKLOG_PER_UNIT = 5.0

# Metric names (namespace: the fleet's metrics namespace, dimension Fleet=<resource name>).
BACKLOG_PER_UNIT = "BacklogPerCapacityUnit"
SHORTFALL = "CapacityShortfallUnits"
SURPLUS = "CapacitySurplusUnits"
FLEET_BACKLOG = "FleetBacklog"
CAPACITY_SERVING_OR_COMING = "CapacityUnitsServingOrComing"
CAPACITY_BOUND = "CapacityBound"

# The step scale-out on CapacityShortfallUnits (alarm: >= 1): a shortfall in [low, high) adds `add` capacity
# units in one step, at least two thirds of the shortfall and never more up to a shortfall of 768, then 512 a
# step (20 steps is the service's limit per policy; Application Auto Scaling keeps the result within
# MaxCapacity). The step scale-in on CapacitySurplusUnits removes the same amounts for a surplus in the same ranges.
SHORTFALL_STEPS: tuple[tuple[int, int | None, int], ...] = (
    (1, 2, 1), (2, 3, 2), (3, 4, 3), (4, 6, 4), (6, 8, 6), (8, 12, 8), (12, 16, 12), (16, 24, 16), (24, 32, 24),
    (32, 48, 32), (48, 64, 48), (64, 96, 64), (96, 128, 96), (128, 192, 128), (192, 256, 192), (256, 384, 256),
    (384, 512, 384), (512, None, 512),
)


@dataclass(frozen=True)
class FleetSignal:
    backlog: int
    capacity: int
    target_per_unit: float
    bound: bool
    # Requests that arrived over the `seconds` since the last snapshot (the router's counter), and what one
    # capacity unit completes per second (None until the fleet has been seen busy): capacity for the arrivals
    # themselves, not only for the queue they leave behind.
    arrivals: int = 0
    seconds: float = 0.0
    unit_throughput: float | None = None

    @property
    def arrival_rate(self) -> float:
        return self.arrivals / self.seconds if self.seconds > 0 else 0.0

    def _needed(self, rate: float) -> float:
        needed = self.backlog / self.target_per_unit
        if self.unit_throughput:
            needed += rate / self.unit_throughput
        return needed

    @property
    def needed_units(self) -> float:
        """Capacity that holds the queue at the target and keeps up with the arrivals: B / T + lambda / mu."""
        return self._needed(self.arrival_rate)

    @property
    def backlog_per_unit(self) -> float:
        """The queued work, plus the work arriving within the target wait once the throughput is known, per
        capacity unit serving or coming: target tracking on it settles where capacity = needed_units."""
        work = self.needed_units * self.target_per_unit
        return work / self.capacity if self.capacity else float(work)

    @property
    def shortfall_units(self) -> int:
        """Units the queue and the arrivals need beyond what serves or comes. It acts on one datapoint, so the
        arrivals count at one standard deviation below what was seen (a Poisson count of n varies by sqrt(n)):
        a busy minute of a steady load does not add capacity, a real step in the load does."""
        cautious = max(0.0, self.arrivals - math.sqrt(self.arrivals)) / self.seconds if self.seconds > 0 else 0.0
        needed = math.ceil(self._needed(cautious) - 1e-9) if self.backlog or cautious else 0
        return max(0, needed - self.capacity)

    @property
    def surplus_units(self) -> int:
        """Units serving or coming beyond what the queue and the arrivals need, the arrivals counted at one
        standard deviation above what was seen (plus one request, so an idle minute still leaves room for a
        trickle). Nothing while the throughput is unknown: without it the arrivals' share cannot be told."""
        if not self.unit_throughput or self.seconds <= 0:
            return 0
        generous = (self.arrivals + math.sqrt(self.arrivals) + 1) / self.seconds
        return max(0, self.capacity - math.ceil(self._needed(generous) - 1e-9))

    def metrics(self) -> Mapping[str, float]:
        """The datapoints to publish. BacklogPerCapacityUnit has none while no capacity serves or comes (like
        SageMaker's per-instance metric at zero instances): target tracking cannot act on it then (the shortfall
        step wakes the fleet), and its scale-in alarm must count 15 datapoints of a fleet that runs, not of one
        asleep, before it takes a fleet that just woke back to its minimum."""
        values: dict[str, float] = {BACKLOG_PER_UNIT: round(self.backlog_per_unit, 3)} if self.capacity else {}
        return values | {
            SHORTFALL: self.shortfall_units,
            SURPLUS: self.surplus_units,
            FLEET_BACKLOG: self.backlog,
            CAPACITY_SERVING_OR_COMING: self.capacity,
            CAPACITY_BOUND: int(self.bound),
        }


def fleet_signal(
    backlog: Sequence[int],
    takes_requests: Sequence[bool],
    capacity: int,
    target_per_unit: float,
    bound: bool,
    arrivals: int = 0,
    seconds: float = 0.0,
    unit_throughput: float | None = None,
) -> FleetSignal:
    """The signal from each endpoint's queue (endpoints leaving the fleet work through theirs on their own)."""
    queued = sum(b for b, takes in zip(backlog, takes_requests, strict=True) if takes)
    return FleetSignal(queued, capacity, target_per_unit, bound, arrivals, seconds, unit_throughput)


# How much the throughput seen since the last snapshot counts against what was seen before (exponential decay of
# both the completions and the busy unit-seconds, so a heavy-tailed minute moves the estimate by its weight).
THROUGHPUT_DECAY = 0.7


@dataclass(frozen=True)
class Throughput:
    """Requests one capacity unit completes per second, estimated from the queues while the fleet is busy:
    completions (arrivals + queue before - queue after) over busy unit-seconds, both decayed sums."""

    completed: float = 0.0
    unit_seconds: float = 0.0

    @property
    def per_unit(self) -> float | None:
        return self.completed / self.unit_seconds if self.unit_seconds > 0 and self.completed > 0 else None

    def observe(
        self,
        backlog_before: Sequence[int],
        backlog_after: Sequence[int],
        arrivals: int,
        seconds: float,
        serving_units: int,
    ) -> Throughput:
        """Fold in one interval between snapshots, when the fleet was busy at both ends (at least one request per
        unit queued or in flight); else idle capacity would count as slow capacity, and nothing changes."""
        before, after = sum(backlog_before), sum(backlog_after)
        if seconds <= 0 or serving_units <= 0 or arrivals < 0 or min(before, after) < serving_units:
            return self
        completed = arrivals + before - after
        if completed <= 0:
            return self
        return Throughput(
            self.completed * THROUGHPUT_DECAY + completed,
            self.unit_seconds * THROUGHPUT_DECAY + serving_units * seconds,
        )


def estimate_backlog(
    observed: Sequence[float | None],
    previous: Sequence[int] | None,
    routed_since: Sequence[int],
    serving: Sequence[int],
) -> tuple[int, ...]:
    """Each endpoint's queue now: CloudWatch's newest value where capacity serves; where nothing serves,
    nothing has left the queue, so at least what it held at the last snapshot plus what was routed to it
    since."""
    estimate = []
    for i, seen in enumerate(observed):
        last = previous[i] if previous is not None else 0
        if serving[i] > 0:
            value = seen if seen is not None else last
        else:
            value = max(seen or 0.0, float(last + routed_since[i]))
        estimate.append(max(0, math.ceil(value - 1e-9)))
    return tuple(estimate)
