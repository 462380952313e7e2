"""What the scaling engine promises where async fleets live, run end to end on the local fleet (fast path):
a batch on a cold fleet, the wake-up type short of capacity, a backlog deeper than the serving endpoint's cap,
and a desired capacity above what the endpoints can give. Every placement strategy."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleetscaler.local.scenario import parse_scenario
from fleetscaler.local.simulator import Simulation, SimulationResult

PROVISIONING = 240
COLD_BATCH: dict[str, Any] = {
    "name": "cold-batch",
    "seed": 9,
    "arrivals": "poisson",
    "fleet": {
        "resource_name": "cold",
        "unit_requests_per_second": 0.04,
        "provisioning_seconds": PROVISIONING,
        "scale_in_seconds": 60,
        "rollback_seconds": 90,
        "service": {"distribution": "exponential"},
        "endpoints": [
            {"server": "a", "instance_type": "ml.g5.xlarge", "capacity_units": 1, "max_instances": 6,
             "initial_instances": 0},
            {"server": "b", "instance_type": "ml.g5.2xlarge", "capacity_units": 2, "max_instances": 3,
             "initial_instances": 0},
            {"server": "c", "instance_type": "ml.g6.xlarge", "capacity_units": 1, "max_instances": 6,
             "initial_instances": 0},
        ],
    },
    "traffic": [{"minutes": 2, "rps": 0}, {"requests": 400}],
    "drain_minutes": 60,
    "policy": {"min_capacity": 0, "max_capacity": 18, "target_backlog_per_instance": 5, "scale_out_cooldown": 60,
               "scale_in_cooldown": 300},
    "expect": {"lost": 0, "unfinished": 0, "final_capacity": 0, "final_status": "Successful"},
}
STRATEGIES = ("balanced", "prioritized", "race")


def run(raw: dict[str, Any], strategy: str) -> SimulationResult:
    return Simulation(parse_scenario(raw, "quality.yaml").with_strategy(strategy)).run()


def queues_empty_at(result: SimulationResult) -> float:
    """When the last queue emptied (seconds from the start)."""
    busy = [s.t for s in result.samples if any(e.backlog for e in s.endpoints)]
    return max(busy) if busy else 0.0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_batch_on_a_cold_fleet_wakes_it_in_one_step_and_goes_back_to_zero(strategy: str) -> None:
    # Given three endpoints at zero and a batch of 400 (the oracle wants min(18, 400 / 5) = 18 units)
    result = run(COLD_BATCH, strategy)
    # Then nothing is lost or left, nothing fails, and the fleet ends where it started
    assert result.lost == 0 and result.unfinished == 0 and result.completed == 400
    assert result.failed_activities == 0
    assert result.ok, result.checks
    # And the first activity asks for at least half of what the oracle uses, at once
    first = result.activities[0]
    assert first.desired_from == 0 and first.desired_to >= 9
    # And capacity serves within the provisioning delay plus three minutes of the first request
    assert result.first_capacity_seconds is not None
    assert result.first_capacity_seconds <= PROVISIONING + 180
    # And every endpoint that holds part of the batch gets capacity (the batch was spread over the caps)
    peak = {i: max(s.endpoints[i].instances for s in result.samples) for i in range(3)}
    assert all(peak.values()), peak
    # And the fleet is back at its minimum within target tracking's scale-in window (15 minutes) plus the scale-in
    # cooldown after the queues empty
    at_zero = next(s.t for s in result.samples if s.t > queues_empty_at(result) and s.desired == 0)
    assert at_zero - queues_empty_at(result) <= (15 + 5 + 2) * 60


def test_the_wake_up_type_short_of_capacity_strands_nothing() -> None:
    # Given the first endpoint's type short of capacity for the first ten minutes
    raw = copy.deepcopy(COLD_BATCH)
    raw["faults"] = {"capacity_shortage": [{"server": "a", "from_minute": 0, "to_minute": 10}]}
    result = run(raw, "balanced")
    # Then every request is served, the part queued on the short type too (it is retried soon after the shortage)
    assert result.lost == 0 and result.unfinished == 0 and result.completed == 400
    assert result.failed_activities == 0
    served_late = max(result.completion_times)
    assert served_late <= 40 * 60


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_backlog_deeper_than_the_serving_endpoint_can_take_spreads_over_the_fleet(strategy: str) -> None:
    # Given endpoint a serving one instance and the others at zero, then a batch of 1,000 (far beyond a's cap)
    raw = copy.deepcopy(COLD_BATCH)
    raw["fleet"]["endpoints"][0]["initial_instances"] = 1
    raw["traffic"] = [{"minutes": 2, "rps": 0.02}, {"requests": 1000}]
    raw["drain_minutes"] = 90
    raw["policy"]["min_capacity"] = 1
    raw["expect"] = {"lost": 0, "unfinished": 0}
    result = run(raw, strategy)
    # Then the other endpoints take their share of the queue (a alone would need 1,000 / (6 x 0.04) = 70 minutes)
    routed = [sum(s.endpoints[i].routed for s in result.samples) for i in range(3)]
    assert routed[1] > 200 and routed[2] > 200, routed
    assert result.lost == 0 and result.unfinished == 0
    assert max(result.completion_times) <= 60 * 60


def test_a_desired_capacity_above_what_the_endpoints_give_never_fails_an_activity() -> None:
    # Given MaxCapacity 60 over endpoints that give 18 units, and a batch that wants all of it
    raw = copy.deepcopy(COLD_BATCH)
    raw["policy"]["max_capacity"] = 60
    result = run(raw, "balanced")
    # Then Application Auto Scaling's activities all succeed while the fleet runs at its 18 units
    assert result.failed_activities == 0
    assert max(s.serving_units for s in result.samples) == 18
    assert max(a.desired_to for a in result.activities) > 18
    assert result.lost == 0 and result.unfinished == 0


MIDRUN_SHORTAGE: dict[str, Any] = {
    "name": "midrun-shortage",
    "seed": 13,
    "arrivals": "poisson",
    "fleet": {
        "resource_name": "mid",
        "unit_requests_per_second": 0.03,
        "provisioning_seconds": PROVISIONING,
        "scale_in_seconds": 60,
        "rollback_seconds": 90,
        "service": {"distribution": "exponential"},
        "endpoints": [
            {"server": "a", "instance_type": "ml.g5.xlarge", "capacity_units": 1, "max_instances": 20,
             "initial_instances": 4},
            {"server": "b", "instance_type": "ml.g6.xlarge", "capacity_units": 1, "max_instances": 20,
             "initial_instances": 0},
            {"server": "c", "instance_type": "ml.g5.4xlarge", "capacity_units": 4, "max_instances": 3,
             "initial_instances": 0},
        ],
    },
    "traffic": [{"minutes": 10, "rps": 0.1}, {"minutes": 5, "from": 0.1, "to": 0.8}, {"minutes": 25, "rps": 0.8},
                {"minutes": 10, "from": 0.8, "to": 0.1}],
    "drain_minutes": 25,
    "faults": {"capacity_shortage": [{"server": "a", "from_minute": 12, "to_minute": 40}]},
    "policy": {"min_capacity": 1, "max_capacity": 40, "target_backlog_per_instance": 5, "scale_out_cooldown": 60,
               "scale_in_cooldown": 300},
    "expect": {"lost": 0, "unfinished": 0},
}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_type_short_in_the_middle_of_a_scale_out_fails_no_activity(strategy: str) -> None:
    # Given a scale-out to MaxCapacity 40 while the main type goes short of capacity: the other two types give 32
    result = run(MIDRUN_SHORTAGE, strategy)
    # Then the types that have capacity go to their caps (the short type's retries take nothing from them)
    peak = [max(s.endpoints[i].instances for s in result.samples) for i in range(3)]
    assert peak[1:] == [20, 3], peak
    # And Application Auto Scaling's activities succeed at what the fleet can give while the short type is
    # tried again in the background, instead of failing at the scaling timeout
    assert result.failed_activities == 0, [a.message for a in result.activities if a.outcome == "Failed"]
    assert result.lost == 0 and result.unfinished == 0
