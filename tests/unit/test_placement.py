"""Placement strategies: exact when the caps allow, caps respected, balanced moves the fewest instances."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscaler.logic.placement import EndpointSlot, capacity_of, plan, plan_race, queue_floors, race_requests


@st.composite
def fleets(draw: st.DrawFn, *, allow_unavailable: bool = True) -> tuple[list[EndpointSlot], int]:
    n = draw(st.integers(1, 3))
    slots = []
    for _ in range(n):
        cap = draw(st.one_of(st.none(), st.integers(0, 4)))
        current = draw(st.integers(0, 5))
        serving = draw(st.integers(0, current))
        available = draw(st.booleans()) if allow_unavailable else True
        slots.append(EndpointSlot(current, draw(st.integers(1, 3)), cap, available, serving))
    return slots, draw(st.integers(0, 16))


def all_assignments(slots: list[EndpointSlot], desired: int) -> list[tuple[int, ...]]:
    """Every assignment within the slots' upper bounds (uncapped endpoints: never more than desired)."""
    ranges = [range(min(s.upper, desired + 1) + 1) for s in slots]
    return list(itertools.product(*ranges))


def exact_assignments(slots: list[EndpointSlot], desired: int) -> list[tuple[int, ...]]:
    units = [s.units for s in slots]
    return [a for a in all_assignments(slots, desired) if capacity_of(a, units) == desired]


def against(slots: list[EndpointSlot], desired: int, targets: tuple[int, ...]) -> int:
    """Capacity moved against the scaling direction: the instances that move between endpoints."""
    kept = capacity_of([s.baseline for s in slots], [s.units for s in slots])
    if desired >= kept:
        return sum(max(s.baseline - t, 0) * s.units for s, t in zip(slots, targets, strict=True))
    return sum(max(t - s.baseline, 0) * s.units for s, t in zip(slots, targets, strict=True))


@pytest.mark.parametrize("strategy", ["balanced", "prioritized"])
@settings(max_examples=300, deadline=None)
@given(fleet=fleets())
def test_exact_when_caps_allow_else_says_why_and_respects_caps(strategy: str, fleet: tuple) -> None:
    # Given any endpoints, caps, units, availability and desired capacity
    slots, desired = fleet
    # When placed
    placement = plan(strategy, desired, slots)
    # Then every endpoint stays within its cap (and a backed-off endpoint gets no new instance)
    for slot, target in zip(slots, placement.targets, strict=True):
        assert 0 <= target <= slot.upper
    assert placement.capacity == capacity_of(placement.targets, [s.units for s in slots])
    # And the plan is exact whenever some assignment is, otherwise it says why
    if exact_assignments(slots, desired):
        assert placement.capacity == desired
        assert placement.shortfall_reason is None
    else:
        assert placement.capacity != desired
        assert placement.shortfall_reason


@settings(max_examples=300, deadline=None)
@given(fleet=fleets())
def test_balanced_moves_the_fewest_instances(fleet: tuple) -> None:
    # Given any fleet where desired can be met exactly
    slots, desired = fleet
    exact = exact_assignments(slots, desired)
    if not exact:
        return
    # When balanced places it
    placement = plan("balanced", desired, slots)
    # Then no exact plan moves less capacity between endpoints
    assert against(slots, desired, placement.targets) == min(against(slots, desired, a) for a in exact)


@settings(max_examples=300, deadline=None)
@given(fleet=fleets(allow_unavailable=False))
def test_balanced_with_one_unit_only_adds_or_only_removes(fleet: tuple) -> None:
    # Given endpoints of one capacity unit each, all available, desired within the caps
    slots, desired = fleet
    slots = [EndpointSlot(min(s.current, s.upper), 1, s.cap) for s in slots]
    if not exact_assignments(slots, desired):
        return
    # When balanced places it
    targets = plan("balanced", desired, slots).targets
    # Then the number of instances changed is exactly the capacity change: no instance moves
    assert sum(abs(t - s.current) for t, s in zip(targets, slots, strict=True)) == abs(
        desired - sum(s.current for s in slots)
    )


@settings(max_examples=300, deadline=None)
@given(fleet=fleets())
def test_prioritized_fills_in_servers_order(fleet: tuple) -> None:
    # Given any fleet where desired can be met exactly
    slots, desired = fleet
    exact = exact_assignments(slots, desired)
    if not exact:
        return
    # Then prioritized picks the exact plan with the most on the first endpoint, then the second, ...
    assert plan("prioritized", desired, slots).targets == max(exact)


@settings(max_examples=300, deadline=None)
@given(fleet=fleets())
def test_race_asks_every_endpoint_for_the_whole_shortfall(fleet: tuple) -> None:
    # Given any fleet whose serving capacity is below desired
    slots, desired = fleet
    serving = [s.serving or 0 for s in slots]
    shortfall = desired - capacity_of(serving, [s.units for s in slots])
    requests = race_requests(desired, slots)
    if shortfall <= 0:
        assert requests is None
        return
    assert requests is not None
    # Then each available endpoint alone is asked to cover the shortfall, as far as its cap allows
    for slot, now, request in zip(slots, serving, requests, strict=True):
        assert request <= slot.upper
        if slot.available:
            assert (request - now) * slot.units >= shortfall or request == slot.upper
        else:
            assert request <= max(now, slot.current)


@settings(max_examples=300, deadline=None)
@given(fleet=fleets(), order_seed=st.randoms())
def test_race_trims_to_desired_keeping_the_first_arrived(fleet: tuple, order_seed: object) -> None:
    # Given a fleet serving at least desired after a race
    slots, desired = fleet
    if race_requests(desired, slots) is not None:
        return
    order = list(range(len(slots)))
    order_seed.shuffle(order)  # type: ignore[attr-defined]
    # When the surplus is trimmed, endpoints having arrived in `order`
    placement = plan_race(desired, slots, [order.index(i) for i in range(len(slots))])
    serving_slots = [EndpointSlot(s.serving or 0, s.units, min(s.upper, s.serving or 0)) for s in slots]
    exact = exact_assignments(serving_slots, desired)
    # Then nothing grows, the result is exact when it can be, and the earliest arrival keeps the most
    for slot, target in zip(slots, placement.targets, strict=True):
        assert target <= (slot.serving or 0)
    if exact:
        assert placement.capacity == desired
        best = max(exact, key=lambda a: [a[i] for i in order])
        assert placement.targets == best
    else:
        assert placement.shortfall_reason


def test_balanced_scale_out_adds_where_there_is_least() -> None:
    # Given 3 one-unit endpoints at 3, 1, 2 (6 in all)
    slots = [EndpointSlot(3), EndpointSlot(1), EndpointSlot(2)]
    # When the fleet goes to 9 / Then the additions go to the emptier endpoints, nothing is removed
    assert plan("balanced", 9, slots).targets == (3, 3, 3)
    # And to 7: the one with least gets it
    assert plan("balanced", 7, slots).targets == (3, 2, 2)


def test_balanced_scale_in_removes_where_there_is_most() -> None:
    slots = [EndpointSlot(3), EndpointSlot(1), EndpointSlot(2)]
    assert plan("balanced", 4, slots).targets == (2, 1, 1)


def test_balanced_spreads_by_units_not_instances() -> None:
    # Given endpoints whose instances are worth 1 and 2 units, empty
    slots = [EndpointSlot(0, 1), EndpointSlot(0, 2)]
    # When 8 units are wanted / Then each endpoint carries 4 units
    assert plan("balanced", 8, slots).targets == (4, 2)


def test_from_zero_the_first_endpoint_wakes_first() -> None:
    # Given a fleet scaled to zero / When one unit is wanted / Then it goes to servers[0]
    slots = [EndpointSlot(0), EndpointSlot(0), EndpointSlot(0)]
    assert plan("balanced", 1, slots).targets == (1, 0, 0)
    assert plan("prioritized", 1, slots).targets == (1, 0, 0)
    assert plan_race(1, slots).targets == (1, 1, 1)


def test_scale_to_zero_takes_every_endpoint_to_zero() -> None:
    slots = [EndpointSlot(2, 1, 10), EndpointSlot(1, 3, 10)]
    for strategy in ("balanced", "prioritized", "race"):
        placement = plan(strategy, 0, slots)
        assert placement.targets == (0, 0)
        assert placement.exact


def test_drained_endpoint_share_moves_elsewhere() -> None:
    # Given endpoint 2 drained (cap 0) while it holds 2 of 6 instances
    slots = [EndpointSlot(2, 1, 10), EndpointSlot(2, 1, 0), EndpointSlot(2, 1, 10)]
    # When placed for the same capacity / Then its two instances move to the others
    assert plan("balanced", 6, slots).targets == (3, 0, 3)


def test_unavailable_endpoint_keeps_what_it_serves_but_grows_no_more() -> None:
    slots = [EndpointSlot(1, 1, 10, available=False), EndpointSlot(1), EndpointSlot(1)]
    assert plan("balanced", 7, slots).targets == (1, 3, 3)


def test_not_enough_room_says_so() -> None:
    placement = plan("balanced", 10, [EndpointSlot(0, 1, 2), EndpointSlot(0, 2, 3)])
    assert placement.targets == (2, 3)
    assert placement.capacity == 8
    assert "at most 8 capacity units" in (placement.shortfall_reason or "")


def test_units_that_cannot_make_the_value_exactly_overshoot_by_less_than_one_instance() -> None:
    placement = plan("balanced", 3, [EndpointSlot(0, 2), EndpointSlot(0, 2)])
    assert placement.capacity == 4
    assert "exactly 3" in (placement.shortfall_reason or "")


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="strategy must be one of"):
        plan("cheapest", 1, [EndpointSlot(0)])


# --- queued work comes first ---------------------------------------------------------------------------


def deficit(slots: list[EndpointSlot], targets: tuple[int, ...]) -> int:
    return sum(max(0, min(s.floor, s.upper) - t) * s.units for s, t in zip(slots, targets, strict=True))


@st.composite
def fleets_with_queues(draw: st.DrawFn) -> tuple[list[EndpointSlot], int]:
    slots, desired = draw(fleets())
    queued = [replace(s, floor=draw(st.integers(0, 3))) for s in slots]
    return queued, desired


@pytest.mark.parametrize("strategy", ["balanced", "prioritized", "race"])
@settings(max_examples=300, deadline=None)
@given(fleet=fleets_with_queues())
def test_endpoints_holding_queues_get_capacity_first(strategy: str, fleet: tuple) -> None:
    # Given any fleet whose endpoints have floors (the instances their queues need)
    slots, desired = fleet
    # When placed
    placement = plan(strategy, desired, slots)
    # Then caps still hold, and no plan of the same capacity leaves less capacity missing under the floors
    for slot, target in zip(slots, placement.targets, strict=True):
        assert 0 <= target <= max(slot.upper, 0)
    if strategy == "race" and race_requests(desired, slots) is not None:
        assert all(t >= min(s.floor, s.upper) for s, t in zip(slots, placement.targets, strict=True))
        return
    candidates = [a for a in all_assignments(slots, desired) if capacity_of(a, [s.units for s in slots])
                  == placement.capacity]
    if strategy == "race":
        candidates = [a for a in candidates if all(t <= max(s.serving or 0, s.floor) for s, t in zip(slots, a,
                                                                                                        strict=True))]
    if candidates:
        assert deficit(slots, placement.targets) == min(deficit(slots, a) for a in candidates)


def test_a_stranded_queue_gets_an_instance_moved_to_it() -> None:
    # Given 2 instances serving on endpoint 0 and a queue stranded on endpoint 1 (no instance), desired 2
    slots = [EndpointSlot(2, serving=2), EndpointSlot(0, serving=0, floor=1)]
    # Then every strategy moves one instance to the queue
    for strategy in ("balanced", "prioritized", "race"):
        assert plan(strategy, 2, slots).targets == (1, 1), strategy


@settings(max_examples=300, deadline=None)
@given(
    backlog=st.lists(st.integers(0, 60), min_size=1, max_size=4),
    data=st.data(),
    desired=st.integers(0, 30),
    target=st.sampled_from([1.0, 2.5, 5.0]),
)
def test_queue_floors_fit_the_desired_capacity(backlog: list[int], data: st.DataObject, desired: int,
                                               target: float) -> None:
    n = len(backlog)
    units = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    uppers = data.draw(st.lists(st.integers(0, 10), min_size=n, max_size=n))
    # When floors are computed
    floors = queue_floors([float(b) for b in backlog], units, uppers, desired, target)
    # Then no floor exceeds its cap or is set without a queue, and they fit in the desired capacity
    assert all(0 <= f <= u for f, u in zip(floors, uppers, strict=True))
    assert all(f == 0 for f, b in zip(floors, backlog, strict=True) if b == 0)
    total = sum(f * u for f, u in zip(floors, units, strict=True))
    full = [min(u, max(1, math.ceil(b / (target * un)))) if b else 0 for b, u, un in zip(backlog, uppers, units,
                                                                                          strict=True)]
    if sum(f * u for f, u in zip(full, units, strict=True)) <= desired:
        # And when the desired capacity covers every queue, each gets what it needs at the target
        assert list(floors) == full
    else:
        assert total <= desired
        # And every queue that could get one instance without another queue losing its first one has one
        first = sorted((i for i in range(n) if backlog[i] and uppers[i]), key=lambda i: (-backlog[i], i))
        room = desired
        for i in first:
            if units[i] <= room:
                assert floors[i] >= 1
                room -= units[i]


def test_queue_floors_share_a_small_capacity_by_queue_size() -> None:
    # Given queues of 40 and 10 requests (target 5 per unit) and only 6 units to place
    floors = queue_floors([40.0, 10.0], [1, 1], [10, 10], 6, 5.0)
    # Then both get one instance, and the rest goes to the longer queue
    assert floors == (5, 1)
