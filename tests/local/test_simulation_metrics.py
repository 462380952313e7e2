"""The benchmark's measures on hand-made samples: load-step response, overshoot, oracle, percentiles."""

from __future__ import annotations

import pytest

from fleetscaler.local.oracle import run_oracle
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


def test_oracle_orders_capacity_one_provisioning_delay_ahead_and_is_billed_from_the_order() -> None:
    # Given 0.2 requests/s for 2 minutes, 1.0 for 6, then none (unit throughput 0.1/s, provisioning 2 min)
    arrivals = [i * 5.0 for i in range(24)] + [120 + i * 1.0 for i in range(360)]
    run = run_oracle(SCENARIO, arrivals, [1.0] * len(arrivals))
    # Then it serves 2 units, then 10 while the load is 1.0, then 0 once its queue is empty
    assert run.capacities[0] == 2 and run.capacities[3] == 10 and run.capacities[-1] == 0
    # And it pays each capacity from two minutes before it serves (10 units from minute 0)
    assert run.paid[0] == 10
    # And its requests wait no more than a step (the fluid queue is served at once)
    assert max(run.time_to_result) <= SCENARIO.step_seconds


def test_a_batch_on_a_cold_fleet_makes_the_oracle_use_n_over_target_units_until_drained() -> None:
    # Given 600 requests at once at minute 1, target backlog 5 per unit, at most 20 units
    batch = parse_scenario(
        {
            "step_seconds": 60,
            "fleet": {"unit_requests_per_second": 0.1, "provisioning_seconds": 120,
                      "endpoints": [{"server": "a", "max_instances": 20}]},
            "traffic": [{"minutes": 1, "rps": 0}, {"requests": 600}],
            "drain_minutes": 30,
            "policy": {"target_backlog_per_instance": 5},
        }
    )
    run = run_oracle(batch, [60.0] * 600, [1.0] * 600)
    # Then it uses min(20, ceil(600 / 5)) = 20 units until the 600 are served (20 x 6 per minute: 5 minutes)
    assert run.capacities[1:6] == (20, 20, 20, 20, 20) and run.capacities[7] == 0
    assert max(run.time_to_result) == pytest.approx(5 * 60)


def test_percentiles_of_time_to_result() -> None:
    # Given twenty results taking 1..20 s
    result = result_with([1], [1])
    result.queue_seconds = [float(s) for s in range(1, 21)]
    # Then p50 is 10 s and p95 is 19 s (nearest rank)
    assert result.percentile(0.5) == 10
    assert result.percentile(0.95) == 19
