"""The fleet's scaling signal: queued work and arrivals per capacity unit, the shortfall and surplus steps, the
throughput learnt from the queues, and each endpoint's queue estimate."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscaler.logic.signal import (
    BACKLOG_PER_UNIT,
    CAPACITY_BOUND,
    SHORTFALL,
    SURPLUS,
    FleetSignal,
    Throughput,
    estimate_backlog,
    fleet_signal,
)


def signal(backlog: int, capacity: int, arrivals: int = 0, seconds: float = 60.0, throughput: float | None = None,
           bound: bool = False) -> FleetSignal:
    return FleetSignal(backlog, capacity, 5.0, bound, arrivals, seconds, throughput)


def test_backlog_per_unit_counts_capacity_on_its_way_and_the_arrivals_once_throughput_is_known() -> None:
    # Given 20 queued on 4 units serving or coming, no throughput known yet / Then 20 / 4
    assert signal(20, 4).backlog_per_unit == 5.0
    # Given 30 arrivals a minute and a unit that completes 0.1 a second: the arrivals need 5 units, which at the
    # target hold 25 requests: (20 + 25) / 4
    assert signal(20, 4, arrivals=30, throughput=0.1).backlog_per_unit == pytest.approx(45 / 4)


def test_no_backlog_per_unit_datapoint_while_nothing_serves_or_comes() -> None:
    # Given a fleet at zero with 7 queued / Then the scaling metric has no datapoint, the shortfall says 2 units
    metrics = signal(7, 0).metrics()
    assert BACKLOG_PER_UNIT not in metrics
    assert metrics[SHORTFALL] == 2
    assert metrics[CAPACITY_BOUND] == 0


def test_shortfall_sizes_a_wake_up_to_the_queue() -> None:
    # Given a batch of 600 on a fleet at zero, target 5 / Then 120 units in one step
    assert signal(600, 0).shortfall_units == 120
    # And what is on its way counts: 100 coming leaves 20
    assert signal(600, 100).shortfall_units == 20


def test_a_steady_busy_minute_adds_nothing_but_a_step_in_the_load_does() -> None:
    # Given 10 units at 0.1 per unit per second: 60 arrivals a minute is exactly their throughput
    steady = signal(0, 10, arrivals=60, throughput=0.1)
    assert steady.shortfall_units == 0
    # When a minute brings 68 (a Poisson count of 60 varies by about 8) / Then still nothing
    assert signal(0, 10, arrivals=68, throughput=0.1).shortfall_units == 0
    # When the load steps to 150 a minute / Then the arrivals' capacity is added at once
    assert signal(0, 10, arrivals=150, throughput=0.1).shortfall_units == math.ceil((150 - math.sqrt(150)) / 6) - 10


def test_surplus_is_capacity_beyond_what_the_queue_and_generous_arrivals_need() -> None:
    # Given 30 units, nothing queued, 60 arrivals a minute at 0.1 per unit per second
    idle = signal(0, 30, arrivals=60, throughput=0.1)
    # Then everything beyond ceil((60 + sqrt(60) + 1) / 6) units is surplus
    assert idle.surplus_units == 30 - math.ceil((60 + math.sqrt(60) + 1) / 6)
    # And without a known throughput nothing is called surplus
    assert signal(0, 30, arrivals=60).surplus_units == 0
    assert signal(0, 30, arrivals=60, throughput=0.1).metrics()[SURPLUS] == idle.surplus_units


@settings(max_examples=500, deadline=None)
@given(
    backlog=st.integers(0, 2000),
    capacity=st.integers(0, 300),
    arrivals=st.integers(0, 3000),
    throughput=st.one_of(st.none(), st.floats(0.001, 2.0)),
)
def test_never_asks_to_add_and_to_remove_at_once(backlog: int, capacity: int, arrivals: int,
                                                 throughput: float | None) -> None:
    # Given any queue, capacity, arrivals and throughput / Then shortfall and surplus are never both positive
    current = signal(backlog, capacity, arrivals=arrivals, throughput=throughput)
    assert current.shortfall_units == 0 or current.surplus_units == 0
    assert current.shortfall_units >= 0 and current.surplus_units >= 0


def test_endpoints_leaving_the_fleet_work_through_their_queues_on_their_own() -> None:
    # Given 10 queued on a draining endpoint / Then they are not the fleet's to scale for
    assert fleet_signal([4, 10], [True, False], 2, 5.0, False).backlog == 4


def test_throughput_is_learnt_only_while_the_fleet_is_busy() -> None:
    # Given 4 units with 40 queued, 60 arriving and 28 left a minute later: 72 completed, 0.3 per unit per second
    learnt = Throughput().observe([30, 10], [20, 8], 60, 60.0, 4)
    assert learnt.per_unit == pytest.approx(72 / 240)
    # When the queue ran dry (fewer requests than units) / Then the minute says nothing about the throughput
    assert Throughput().observe([30, 10], [1, 0], 60, 60.0, 4).per_unit is None
    # And later minutes weigh in with decay
    later = learnt.observe([20, 8], [10, 10], 60, 60.0, 4)
    assert learnt.per_unit is not None and later.per_unit is not None
    assert min(learnt.per_unit, 68 / 240) <= later.per_unit <= max(learnt.per_unit, 68 / 240)


def test_a_queue_where_nothing_serves_counts_what_was_routed_there_since() -> None:
    # Given endpoint 0 serving (CloudWatch says 5) and endpoint 1 at zero (CloudWatch has no datapoint yet)
    estimate = estimate_backlog([5.0, None], [3, 2], [4, 7], [2, 0])
    # Then CloudWatch's value where capacity serves, the last snapshot plus what was routed where none serves
    assert estimate == (5, 9)
