"""The benchmark's measures on hand-made samples: load-step response, overshoot, oracle, percentiles."""

from __future__ import annotations

import pytest

from fleetscaler.local.scenario import parse_scenario
from fleetscaler.local.simulator import EndpointSample, Sample, SimulationResult

SCENARIO = parse_scenario(
    {
        "step_seconds": 60,
        "fleet": {
            "unit_requests_per_second": 0.1,
            "provisioning_seconds": 120,
            "scale_in_seconds": 60,
            "endpoints": [{"server": "a", "capacity_units": 1, "max_instances": 20}],
        },
        "traffic": [{"minutes": 2, "rps": 0.2}, {"minutes": 6, "rps": 1.0}, {"minutes": 2, "rps": 0.0}],
        "drain_minutes": 0,
    }
)


def result_with(serving: list[int], desired: list[float]) -> SimulationResult:
    result = SimulationResult(SCENARIO, "balanced", ["fleet-a"])
    for minute, (units, wanted) in enumerate(zip(serving, desired, strict=True)):
        t = minute * 60.0
        endpoint = EndpointSample(units, units, "InService", 1, 0, 0)
        result.samples.append(Sample(t, SCENARIO.rate_at(t), wanted, units, "Successful", units, [endpoint]))
    return result


def test_load_step_response_is_measured_from_the_step_to_capacity_meeting_demand() -> None:
    # Given a step from 0.2 to 1.0 requests/s at minute 2 (demand 10 units) met at minute 6
    result = result_with([2, 2, 2, 2, 6, 6, 10, 10, 10, 0], [2, 2, 10, 10, 10, 10, 10, 10, 10, 0])
    # Then the response is 4 minutes
    assert result.load_step_responses() == [(120.0, 240.0)]


def test_a_step_never_met_is_reported_as_none() -> None:
    # Given capacity that never reaches the demand of 10 units
    result = result_with([2, 2, 2, 4, 6, 8, 8, 8, 8, 0], [2] * 10)
    # Then the step is reported, unmet
    assert result.load_step_responses() == [(120.0, None)]


def test_overshoot_counts_capacity_above_desired_but_not_the_scale_in_delay() -> None:
    # Given 3 units above desired during a scale-out, and a scale-in from 10 to 0 taking one step
    result = result_with([2, 2, 13, 10, 10, 10, 10, 10, 10, 0], [2, 2, 10, 10, 10, 10, 10, 10, 0, 0])
    # Then the overshoot is 3 units (the step at minute 8 with 10 InService and desired 0 is the scale-in delay)
    assert result.peak_overshoot() == 3


def test_oracle_pays_demand_one_provisioning_delay_ahead() -> None:
    # Given demand 2 units for 2 minutes, then 10 units for 6, then 0 for 2, provisioning taking 2 minutes
    result = result_with([0] * 10, [0] * 10)
    # Then the oracle pays 10 units from minute 0 (two minutes ahead of the step) to minute 8, then 0
    assert result.oracle_unit_minutes() == pytest.approx(10 * 8)


def test_percentiles_of_time_to_result() -> None:
    # Given twenty results taking 1..20 s
    result = result_with([1], [1])
    result.queue_seconds = [float(s) for s in range(1, 21)]
    # Then p50 is 10 s and p95 is 19 s (nearest rank)
    assert result.percentile(0.5) == 10
    assert result.percentile(0.95) == 19
