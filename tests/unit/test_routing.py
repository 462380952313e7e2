"""Routing by expected finishing time: queues levelled first, then the exact smooth round-robin; waking a
fleet at zero fills endpoints in order up to what their caps can work through."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscaler.logic.routing import RoutingHints, choose_endpoint, parse_routing_hints, routed_counts
from fleetscaler.logic.wrr import pick


def hints(backlog: tuple[int, ...], wake_up: tuple[int, ...] | None = None, ahead: tuple[int, ...] | None = None,
          counter: int = 100) -> RoutingHints:
    n = len(backlog)
    return RoutingHints(backlog, counter, 1_700_000_000.0, wake_up or (0,) * n, ahead or (0,) * n)


@st.composite
def routing_cases(draw: st.DrawFn) -> tuple[tuple[int, ...], RoutingHints]:
    n = draw(st.integers(1, 4))
    weights = tuple(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)))
    backlog = tuple(draw(st.lists(st.integers(0, 40), min_size=n, max_size=n)))
    ahead = tuple(draw(st.lists(st.sampled_from([0, 0, 5, 10]), min_size=n, max_size=n)))
    wake_up = tuple(draw(st.lists(st.sampled_from([0, 5, 20, 50]), min_size=n, max_size=n)))
    return weights, hints(backlog, wake_up, ahead)


# --- the snapshot as stored in server_config ----------------------------------------------------------


def test_hints_round_trip_through_the_item() -> None:
    # Given hints as the engine writes them
    written = hints((3, 0, 7), (50, 0, 20), (0, 5, 0))
    # When read back / Then they are the same
    parsed, problems = parse_routing_hints(written.to_item(), 3)
    assert problems == [] and parsed == written


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"backlog": [1, 2], "counter": 1, "at": 1.0, "wake_up": [0, 0], "ahead": [0, 0], "backlogg": 1},
         "routing.backlogg: unknown key"),
        ({"backlog": [1], "counter": 1, "at": 1.0, "wake_up": [0, 0], "ahead": [0, 0]},
         "routing.backlog: has 1 entries but servers has 2"),
        ({"backlog": [1, -2], "counter": 1, "at": 1.0, "wake_up": [0, 0], "ahead": [0, 0]},
         "routing.backlog[1]: must be a whole number >= 0, got -2"),
        ({"backlog": [1, 2], "counter": "x", "at": 1.0, "wake_up": [0, 0], "ahead": [0, 0]},
         "routing.counter: must be a whole number >= 0"),
        ({"backlog": [1, 2], "counter": 1, "at": None, "wake_up": [0, 0], "ahead": [0, 0]},
         "routing.at: must be a time in epoch seconds"),
        ("nope", "routing: must be a map"),
    ],
)
def test_a_bad_snapshot_is_refused_naming_the_field(raw: object, problem: str) -> None:
    # Given a routing attribute that breaks a rule / When parsed
    parsed, problems = parse_routing_hints(raw, 2)
    # Then nothing is used and the problem names the field
    assert parsed is None
    assert any(p.startswith(problem) for p in problems), problems


# --- with capacity -----------------------------------------------------------------------------------


def capacity_room(weights: tuple[int, ...], snapshot: RoutingHints) -> int | None:
    """Requests the endpoints with weight take before a backlog overflows (None: no quotas, never)."""
    if not any(snapshot.wake_up):
        return None
    return sum(max(0, q - b) for q, b, w in zip(snapshot.wake_up, snapshot.queued, weights, strict=True) if w)


@settings(max_examples=300, deadline=None)
@given(case=routing_cases(), k=st.integers(0, 200))
def test_never_an_endpoint_that_can_neither_serve_nor_take_capacity(case: tuple, k: int) -> None:
    # Given weights where at least one endpoint serves (or has capacity coming)
    weights, snapshot = case
    if not any(weights):
        return
    # When any request since the snapshot is routed
    index = choose_endpoint(snapshot.counter + k, weights, snapshot)
    # Then it goes to an endpoint with weight, or (a backlog too deep for them) to one that may take capacity
    assert index is not None and (weights[index] > 0 or snapshot.wake_up[index] > 0)
    room = capacity_room(weights, snapshot)
    if weights[index] == 0:
        assert room is not None and k >= room


@settings(max_examples=200, deadline=None)
@given(weights=st.lists(st.integers(0, 6), min_size=1, max_size=4).filter(any), level=st.integers(0, 5),
       start=st.integers(0, 50))
def test_level_queues_give_the_exact_smooth_round_robin(weights: list[int], level: int, start: int) -> None:
    # Given queues already level (each holds `level` requests per unit of weight)
    snapshot = hints(tuple(level * w for w in weights), counter=start)
    # When 60 requests are routed / Then they follow the smooth round-robin exactly
    routed = [choose_endpoint(start + k, weights, snapshot) for k in range(60)]
    assert routed == [pick(weights, k) for k in range(60)]


def finish_time(backlog: int, assigned: int, weight: int) -> float:
    return (backlog + assigned + 1) / weight


@settings(max_examples=300, deadline=None)
@given(case=routing_cases())
def test_each_request_goes_where_it_finishes_first_until_the_queues_are_level(case: tuple) -> None:
    # Given queues that are not level
    weights, snapshot = case
    if not any(weights):
        return
    queued = snapshot.queued
    top = max(queued[i] / weights[i] for i in range(len(weights)) if weights[i])
    room = capacity_room(weights, snapshot)
    assigned = [0] * len(weights)
    # When requests are routed one after the other, while the endpoints with weight have room below their quotas
    for k in range(150 if room is None else min(150, room)):
        index = choose_endpoint(snapshot.counter + k, weights, snapshot)
        assert index is not None
        best = min(finish_time(queued[i], assigned[i], weights[i]) for i in range(len(weights)) if weights[i])
        if best <= top + 1e-9:
            # Then while some endpoint is below the most loaded one's finishing time, the request goes to an
            # endpoint where it finishes first
            assert finish_time(queued[index], assigned[index], weights[index]) == pytest.approx(best)
        assigned[index] += 1


def test_a_batch_too_deep_for_the_serving_endpoint_overflows_to_the_others_by_quota() -> None:
    # Given endpoint 0 serving (quota 40 requests at its cap), endpoint 1 at zero with a quota of 60, endpoint 2
    # backed off (quota 0)
    snapshot = hints((0, 0, 0), wake_up=(40, 60, 0))
    # When a batch of 1,000 comes at once
    routed = Counter(choose_endpoint(snapshot.counter + k, (2, 0, 0), snapshot) for k in range(1000))
    # Then endpoint 0 takes its quota, endpoint 1 its own, and the rest is spread 40:60; nothing to the backed-off one
    assert routed[2] == 0
    assert routed[0] == pytest.approx(40 + 900 * 0.4, abs=1) and routed[1] == pytest.approx(60 + 900 * 0.6, abs=1)


def test_a_long_queue_gets_nothing_until_the_others_catch_up() -> None:
    # Given two equal endpoints, the first holding 10 queued requests
    snapshot = hints((10, 0))
    # When 14 requests come
    routed = [choose_endpoint(snapshot.counter + k, (1, 1), snapshot) for k in range(14)]
    # Then the first 10 go to the empty one, then they alternate
    assert routed[:10] == [1] * 10
    assert Counter(routed[10:]) == {0: 2, 1: 2}


def test_capacity_still_starting_waits_for_the_serving_endpoints_target_backlog() -> None:
    # Given endpoint 0 serving 2 units with 4 queued, endpoint 1 with 2 units coming (10 counted ahead)
    snapshot = hints((4, 0), ahead=(0, 10))
    routed = [choose_endpoint(snapshot.counter + k, (2, 2), snapshot) for k in range(12)]
    # Then requests go to the serving endpoint until its queue is as long, then both share
    assert routed[:6] == [0] * 6
    assert set(routed[6:]) == {0, 1}


@settings(max_examples=200, deadline=None)
@given(case=routing_cases(), count=st.integers(0, 150))
def test_routed_counts_are_what_the_router_chose(case: tuple, count: int) -> None:
    # Given any snapshot / When the engine counts what went where since it
    weights, snapshot = case
    counts = routed_counts(count, weights, snapshot)
    # Then it is exactly what the router chose for those requests
    chosen = Counter(choose_endpoint(snapshot.counter + k, weights, snapshot) for k in range(count))
    chosen.pop(None, None)
    assert counts == [chosen.get(i, 0) for i in range(len(weights))]


def test_no_snapshot_is_the_plain_round_robin() -> None:
    assert [choose_endpoint(k, (5, 3, 2)) for k in range(10)] == [pick((5, 3, 2), k) for k in range(10)]


def test_a_snapshot_taken_after_the_counter_is_ignored() -> None:
    # Given a counter below the snapshot's (the item was restored, say) / Then the plain round-robin decides
    snapshot = hints((100, 0), counter=500)
    assert choose_endpoint(10, (1, 1), snapshot) == pick((1, 1), 10)


# --- a fleet at zero ---------------------------------------------------------------------------------


def test_a_trickle_at_zero_waits_on_the_first_endpoint_that_may_wake() -> None:
    # Given a fleet at zero whose first endpoint is short of capacity (backed off: it may not wake)
    snapshot = hints((0, 0, 0), wake_up=(0, 50, 50))
    # When three requests come / Then they wait on the second endpoint
    assert [choose_endpoint(snapshot.counter + k, (0, 0, 0), snapshot) for k in range(3)] == [1, 1, 1]


def test_a_batch_at_zero_fills_endpoints_in_order_then_spreads_by_quota() -> None:
    # Given quotas of 50, 50 and 100 requests and 10 already queued on the first endpoint
    snapshot = hints((10, 0, 0), wake_up=(50, 50, 100))
    # When a batch of 400 comes
    routed = Counter(choose_endpoint(snapshot.counter + k, (0, 0, 0), snapshot) for k in range(400))
    # Then the first 40 fill endpoint 0, the next 50 endpoint 1, 100 endpoint 2, and the remaining 210 are spread
    # 1:1:2 like the quotas
    assert sum(routed.values()) == 400
    assert routed[2] == pytest.approx(100 + 210 / 2, abs=1)
    assert routed[0] - 40 == pytest.approx(210 / 4, abs=1) and routed[1] - 50 == pytest.approx(210 / 4, abs=1)


def test_nowhere_to_go_is_none() -> None:
    # Given no weight and no endpoint that may wake (all draining or backed off) / Then no endpoint is chosen
    assert choose_endpoint(7, (0, 0), hints((0, 0), wake_up=(0, 0))) is None
    assert choose_endpoint(7, (0, 0)) is None
