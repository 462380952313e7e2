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
FLEET_BACKLOG = "FleetBacklog"
CAPACITY_SERVING_OR_COMING = "CapacityUnitsServingOrComing"
CAPACITY_BOUND = "CapacityBound"

# The step scale-out on CapacityShortfallUnits (alarm: >= 1): a shortfall in [low, high) adds `add` capacity
# units in one step, at least two thirds of the shortfall and never more (20 steps is the service's limit per
# policy; Application Auto Scaling keeps the result within MaxCapacity).
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

    @property
    def backlog_per_unit(self) -> float:
        return self.backlog / self.capacity if self.capacity else float(self.backlog)

    @property
    def shortfall_units(self) -> int:
        needed = math.ceil(self.backlog / self.target_per_unit - 1e-9) if self.backlog else 0
        return max(0, needed - self.capacity)

    def metrics(self) -> Mapping[str, float]:
        """The datapoints to publish. BacklogPerCapacityUnit has none while no capacity serves or comes (like
        SageMaker's per-instance metric at zero instances): target tracking cannot act on it then (the shortfall
        step wakes the fleet), and its scale-in alarm must count 15 datapoints of a fleet that runs, not of one
        asleep, before it takes a fleet that just woke back to its minimum."""
        values: dict[str, float] = {BACKLOG_PER_UNIT: round(self.backlog_per_unit, 3)} if self.capacity else {}
        return values | {
            SHORTFALL: self.shortfall_units,
            FLEET_BACKLOG: self.backlog,
            CAPACITY_SERVING_OR_COMING: self.capacity,
            CAPACITY_BOUND: int(self.bound),
        }


def fleet_signal(
    backlog: Sequence[int], takes_requests: Sequence[bool], capacity: int, target_per_unit: float, bound: bool
) -> FleetSignal:
    """The signal from each endpoint's queue (endpoints leaving the fleet work through theirs on their own)."""
    queued = sum(b for b, takes in zip(backlog, takes_requests, strict=True) if takes)
    return FleetSignal(queued, capacity, target_per_unit, bound)


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
