"""Placement of a desired capacity (in capacity units) across the fleet's endpoints.

Pure functions, no AWS. Every strategy returns a `Placement`: one instance count per endpoint, the capacity
those counts give, and, when the caps do not allow meeting the desired capacity exactly, why not.

An endpoint's instance is worth `units` capacity units. The exact search is a small dynamic programme over
reachable capacities (endpoints x capacity x instances per endpoint); fleets have a handful of endpoints and
capacities in the hundreds at most, so it stays well below a millisecond per call in practice.

- `balanced`: never moves instances that need not move (on scale-out it only adds, on scale-in it only
  removes, unless a cap or an unavailable endpoint forces a removal), and among such plans keeps endpoints
  as even as their units allow (fewest capacity units on the fullest endpoint, measured as the sum of
  squares), adding where there is least and removing where there is most. Ties go to the endpoint first in
  `servers` order, so a fleet waking from zero starts on the endpoint holding the queued requests.
- `prioritized`: fill endpoints in `servers` order up to their cap (the first is the preferred type).
- `race`: on scale-out ask every available endpoint for the whole shortfall; once the capacity serving is
  at least the desired one, trim the surplus, keeping the capacity that arrived first.

Queued work comes first in every strategy: an endpoint holding queued requests has a `floor`, the instances
its queue needs (see `queue_floors`), and every strategy first minimises the capacity missing below the
floors, then applies its own preferences. An async request cannot move to another endpoint once queued, so
capacity must go where the queue is; a floor never makes a plan less exact, it only chooses among the plans
of the same capacity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fleetscaler.logic.server_config import STRATEGIES

# Upper bound on the instance count of an endpoint without a cap, in the search only: the search never
# needs more than the desired capacity plus one instance, so this only guards against absurd input.
_SEARCH_LIMIT = 100_000


@dataclass(frozen=True)
class EndpointSlot:
    """What placement needs to know about one endpoint.

    `current`: the instance count the endpoint has or is already heading to (its baseline: instances that
    need not move). `serving`: instances serving now (race keeps what serves). `cap`: max_instance_count,
    None for no cap. `available`: False while the endpoint is backed off after a failure; it may then keep
    or shed instances but gets no new ones. `floor`: instances the endpoint's queue needs (0 without a
    queue); plans first keep endpoints at their floors where the desired capacity allows.
    """

    current: int
    units: int = 1
    cap: int | None = None
    available: bool = True
    serving: int | None = None
    floor: int = 0

    @property
    def upper(self) -> int:
        """Most instances the plan may give this endpoint."""
        limit = _SEARCH_LIMIT if self.cap is None else self.cap
        if not self.available:
            limit = min(limit, self.current)
        return max(limit, 0)

    @property
    def baseline(self) -> int:
        """Instances that may stay where they are."""
        return min(self.current, self.upper)


@dataclass(frozen=True)
class Placement:
    targets: tuple[int, ...]
    capacity: int
    desired: int
    # None when the targets give exactly `desired`; else why not (caps, unavailable endpoints, units).
    shortfall_reason: str | None = None

    @property
    def exact(self) -> bool:
        return self.capacity == self.desired


def capacity_of(counts: Sequence[int], units: Sequence[int]) -> int:
    return sum(n * u for n, u in zip(counts, units, strict=True))


def max_capacity(slots: Sequence[EndpointSlot]) -> int | None:
    """The most capacity the available endpoints could give, None when some endpoint has no cap."""
    total = 0
    for slot in slots:
        if slot.available and slot.cap is None:
            return None
        total += slot.upper * slot.units
    return total


# A per-endpoint cost; plans minimise the sum, compared as tuples (lexicographic order is additive).
CostFn = Callable[[int, int, EndpointSlot], tuple[int, ...]]


def _below_floor(count: int, slot: EndpointSlot) -> int:
    """Capacity units missing under the endpoint's floor: the first thing every strategy minimises."""
    return max(0, min(slot.floor, slot.upper) - count) * slot.units


def queue_floors(
    backlog: Sequence[float], units: Sequence[int], uppers: Sequence[int], desired: int, target_per_unit: float
) -> tuple[int, ...]:
    """Instances each endpoint's queue needs, within `desired` capacity units.

    An endpoint with `backlog` queued requests needs ceil(backlog / (target_per_unit x units)) instances to
    hold its queue at the target backlog per capacity unit (at least one; at most `uppers`). When the
    desired capacity cannot cover every queue, every endpoint with a queue gets one instance first (largest
    queue first: a queue with no capacity at all is stranded), then instances go one at a time to the queue
    with the most requests per unit still uncovered.
    """
    n = len(backlog)
    wanted = [
        min(uppers[i], max(1, math.ceil(backlog[i] / (target_per_unit * units[i]) - 1e-9))) if backlog[i] > 0 else 0
        for i in range(n)
    ]
    if sum(w * u for w, u in zip(wanted, units, strict=True)) <= desired:
        return tuple(wanted)
    floors = [0] * n
    room = desired
    for i in sorted((i for i in range(n) if wanted[i] > 0), key=lambda i: (-backlog[i], i)):
        if units[i] <= room:
            floors[i] = 1
            room -= units[i]

    def uncovered(i: int) -> float:
        return (backlog[i] - floors[i] * units[i] * target_per_unit) / units[i]

    while True:
        candidates = [i for i in range(n) if floors[i] and floors[i] < wanted[i] and units[i] <= room]
        if not candidates:
            return tuple(floors)
        best = max(candidates, key=lambda i: (uncovered(i), -i))
        floors[best] += 1
        room -= units[best]


def _search(desired: int, slots: Sequence[EndpointSlot], cost: CostFn) -> Placement:
    """The cheapest targets whose capacity is exactly `desired`; else the nearest capacity above; else the
    largest capacity below (every endpoint at its upper bound), each with the reason it is not exact."""
    units = [s.units for s in slots]
    limit = desired + max(units, default=1)  # overshoot by less than one instance at most
    # best[c] = (cost, targets) of the cheapest assignment of the endpoints seen so far with capacity c.
    best: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {0: ((), ())}
    last = len(slots) - 1
    for index, slot in enumerate(slots):
        step: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        top = min(slot.upper, limit // slot.units)
        for capacity, (spent, targets) in best.items():
            first = 0
            if index == last and capacity < desired:
                # Only totals from `desired` up are kept at the end (below it, `top_capacity` decides).
                first = min(-(-(desired - capacity) // slot.units), top)
            for count in range(first, top + 1):
                reached = capacity + count * slot.units
                if reached > limit:
                    break
                own = cost(index, count, slot)
                total = tuple(a + b for a, b in zip(spent, own, strict=True)) if spent else own
                known = step.get(reached)
                if known is None or total < known[0]:
                    step[reached] = (total, (*targets, count))
        best = step
    if desired in best:
        targets = best[desired][1]
        return Placement(targets, desired, desired)
    above = sorted(c for c in best if c > desired)
    top_capacity = max_capacity(slots)
    if top_capacity is not None and top_capacity < desired:
        # Not enough room: everything that may run, runs.
        targets = tuple(s.upper for s in slots)
        return Placement(
            targets,
            top_capacity,
            desired,
            f"the endpoints can give at most {top_capacity} capacity units "
            f"(max_instance_count x capacity_units of the available endpoints); desired is {desired}",
        )
    if above:
        capacity = above[0]
        return Placement(
            best[capacity][1],
            capacity,
            desired,
            f"no combination of instances gives exactly {desired} capacity units with capacity_units "
            f"{list(units)} within the caps; the nearest above is {capacity}",
        )
    capacity = max(best)
    return Placement(
        best[capacity][1],
        capacity,
        desired,
        f"no combination of instances gives {desired} capacity units; the most is {capacity}",
    )


def _first_in_order(index: int, count: int, n: int) -> int:
    """Tie-break towards earlier endpoints holding more (negative: minimised)."""
    return -count * (n - index)


def plan_balanced(desired: int, slots: Sequence[EndpointSlot]) -> Placement:
    n = len(slots)
    kept = capacity_of([s.baseline for s in slots], [s.units for s in slots])
    scaling_out = desired >= kept

    def cost(index: int, count: int, slot: EndpointSlot) -> tuple[int, ...]:
        base = slot.baseline
        # Capacity moved against the direction of the scaling: on scale-out a removal below the baseline
        # (it forces an equal addition elsewhere), on scale-in an addition above it.
        against = (base - count if count < base else 0) if scaling_out else (count - base if count > base else 0)
        load = count * slot.units
        changed = abs(count - slot.current)
        return (
            _below_floor(count, slot),
            against * slot.units,
            load * load,
            changed,
            _first_in_order(index, count, n),
        )

    return _search(desired, slots, cost)


def plan_prioritized(desired: int, slots: Sequence[EndpointSlot]) -> Placement:
    n = len(slots)

    def cost(index: int, count: int, slot: EndpointSlot) -> tuple[int, ...]:
        # One position per endpoint: maximise the first endpoint's count, then the second's, and so on.
        vector = [0] * (n + 1)
        vector[0] = _below_floor(count, slot)
        vector[index + 1] = -count
        return tuple(vector)

    return _search(desired, slots, cost)


def race_requests(desired: int, slots: Sequence[EndpointSlot]) -> tuple[int, ...] | None:
    """The race's scale-out: every available endpoint is asked for the whole shortfall on its own.

    None when the serving capacity already covers `desired` (nothing to race for)."""
    serving = [s.serving if s.serving is not None else s.current for s in slots]
    shortfall = desired - capacity_of(serving, [s.units for s in slots])
    if shortfall <= 0:
        return None
    requests = []
    for slot, now in zip(slots, serving, strict=True):
        if not slot.available:
            requests.append(min(max(now, slot.floor), slot.upper))
            continue
        wanted = now + -(-shortfall // slot.units)
        requests.append(min(max(wanted, slot.current, slot.floor), slot.upper))
    return tuple(requests)


def plan_race(desired: int, slots: Sequence[EndpointSlot], arrival_rank: Sequence[int] | None = None) -> Placement:
    """Race: the shortfall is requested everywhere; once serving capacity covers `desired`, keep the
    capacity that arrived first and trim the rest. `arrival_rank[i]`: 0 for the endpoint that settled first,
    equal ranks for endpoints that settled together (they are trimmed evenly); default: servers order."""
    units = [s.units for s in slots]
    requests = race_requests(desired, slots)
    if requests is not None:
        capacity = capacity_of(requests, units)
        reason = None
        if capacity < desired:
            reason = (
                f"the endpoints can give at most {capacity} capacity units "
                f"(max_instance_count x capacity_units of the available endpoints); desired is {desired}"
            )
        return Placement(requests, capacity, desired, reason)
    n = len(slots)
    ranks = list(arrival_rank) if arrival_rank is not None else list(range(n))
    if len(ranks) != n:
        raise ValueError("one arrival rank per endpoint")
    # Trim only what serves: no endpoint keeps more than it serves now, except up to its queue's floor.
    trimmed = [
        EndpointSlot(
            current=s.serving if s.serving is not None else s.current,
            units=s.units,
            # An endpoint below its queue's floor may grow to it (the surplus elsewhere goes instead).
            cap=min(s.upper, max(s.serving if s.serving is not None else s.current, s.floor)),
            available=True,
            floor=s.floor,
        )
        for s in slots
    ]

    def cost(index: int, count: int, slot: EndpointSlot) -> tuple[int, ...]:
        vector = [0] * (n + 3)
        vector[0] = _below_floor(count, slot)  # queued work keeps its capacity
        vector[1 + ranks[index]] = -count * slot.units  # earlier arrivals keep the most
        vector[n + 1] = (count * slot.units) ** 2  # endpoints that arrived together are trimmed evenly
        vector[n + 2] = _first_in_order(index, count, n)
        return tuple(vector)

    return _search(desired, trimmed, cost)


def plan(
    strategy: str, desired: int, slots: Sequence[EndpointSlot], arrival_rank: Sequence[int] | None = None
) -> Placement:
    """Place `desired` capacity units on `slots` with the named strategy."""
    if desired < 0:
        raise ValueError("desired capacity must be >= 0")
    if any(s.units < 1 for s in slots):
        raise ValueError("capacity units must be >= 1")
    if strategy == "balanced":
        return plan_balanced(desired, slots)
    if strategy == "prioritized":
        return plan_prioritized(desired, slots)
    if strategy == "race":
        return plan_race(desired, slots, arrival_rank)
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
