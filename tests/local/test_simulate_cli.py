"""`fleetscaler simulate` end to end on the local stack (moto server, SageMaker emulator, router Lambda)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleetscaler.cli.main import main

FIXED_FLEET = """
name: fixed
seed: 3
fleet:
  resource_name: tiny
  unit_requests_per_second: 0.05
  endpoints:
    - {server: a, capacity_units: 1, initial_instances: 2}
    - {server: b, capacity_units: 2, initial_instances: 1}
traffic:
  - {minutes: 3, rps: 0.15}
drain_minutes: 2
policy: {enabled: false}
expect: {lost: 0, final_capacity: 4}
"""


def test_simulate_runs_a_scenario_and_writes_the_picture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fixed fleet of 4 units (0.2 requests/s) and 0.15 requests/s for 3 minutes
    scenario = tmp_path / "fixed.yaml"
    scenario.write_text(FIXED_FLEET)
    out = tmp_path / "out"
    # When it is simulated
    status = main(["simulate", str(scenario), "--out", str(out), "--quiet"])
    # Then every request was routed and completed, split 2:1... by capacity 2:2, and the outputs exist
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert re.search(r"^requests sent +27$", printed, re.M)
    assert re.search(r"^completed +27$", printed, re.M)
    assert re.search(r"^lost +0 ", printed, re.M)
    assert re.search(r"^still queued at the end +0$", printed, re.M)
    assert "PASS  final InService capacity: 4 units" in printed
    assert (out / "timeline.png").stat().st_size > 10_000
    assert (out / "summary.txt").read_text().startswith("scenario")


def test_simulate_fails_when_the_fleet_cannot_keep_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the same fleet with three times the load and too short a drain to catch up
    scenario = tmp_path / "overload.yaml"
    scenario.write_text(FIXED_FLEET.replace("rps: 0.15", "rps: 0.6").replace("drain_minutes: 2", "drain_minutes: 1"))
    # When it is simulated
    status = main(["simulate", str(scenario), "--out", str(tmp_path / "o"), "--quiet"])
    # Then requests are still queued at the end, nothing is lost, and the exit status is 1 with the reason.
    # Each instance serves one request at a time for 20 s (b: 10 s) from its first arrival (1.7, 3.3 and 5 s):
    # 11 + 11 + 23 results in 240 s; the 3 requests in service at the end count as still queued.
    captured = capsys.readouterr()
    assert status == 1
    assert "FAIL  requests still queued at the end: 63 (allowed 0)" in captured.out
    assert "PASS  requests lost: 0" in captured.out
    assert "PASS  requests sent = completed + lost + still queued: 108 = 45 + 0 + 63" in captured.out
    assert captured.err.startswith("error: scenario expectations not met: requests still queued")


def test_bad_scenario_and_strategy_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a scenario with a bad field
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(FIXED_FLEET.replace("capacity_units: 2", "capacity_units: 0"))
    # When simulated, or given an unknown strategy
    bad_file = main(["simulate", str(scenario)])
    bad_file_err = capsys.readouterr().err
    bad_strategy = main(["simulate", str(scenario), "--strategy", "cheapest"])
    bad_strategy_err = capsys.readouterr().err
    # Then each is exit 2 with a message naming the field
    assert bad_file == 2
    assert bad_file_err.startswith("error: ") and "fleet.endpoints[1].capacity_units" in bad_file_err
    assert bad_file_err.count("\n") == 1
    assert bad_strategy == 2 and "--strategy" in bad_strategy_err


STEP_FLEET = """
name: stepped
seed: 5
step_seconds: 5
fleet:
  resource_name: stepped
  unit_requests_per_second: 0.05
  provisioning_seconds: 120
  endpoints:
    - {server: a, capacity_units: 1, initial_instances: 1, max_instances: 6}
    - {server: b, capacity_units: 2, initial_instances: 0, max_instances: 3}
traffic:
  - {minutes: 8, rps: 0.3}
  - {minutes: 22, rps: 0.02}
drain_minutes: 2
policy:
  min_capacity: 1
  max_capacity: 10
  target_backlog_per_instance: 3
  step_scale_in_backlog_per_instance: 1
  scale_out_cooldown: 60
  scale_in_cooldown: 60
  wake_up: false             # the step pair alone (the shortfall step would answer the overload first,
  surplus_step: false        # the surplus step release the capacity sooner)
expect: {lost: 0}
"""


def test_simulate_with_the_templates_step_scaling_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a one-instance fleet six times overloaded, then nearly idle
    scenario = tmp_path / "stepped.yaml"
    scenario.write_text(STEP_FLEET)
    # When simulated with the template's StepScaling policy instead of the scenario's target tracking
    status = main(["simulate", str(scenario), "--policy", "StepScaling", "--out", str(tmp_path / "o"), "--quiet"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "step scaling on the fleet's backlog per unit: out at >= 3, in below 1, capacity" in printed
    # Then it scales out by the big step (+2: backlog per instance at least twice the threshold)
    assert re.search(r"desired +1 -> 3 +Successful", printed), printed
    # And back in one unit at a time once the backlog stayed low for 15 minutes
    steps_in = [(int(a), int(b)) for a, b in re.findall(r"desired +(\d+) -> (\d+) ", printed) if int(b) < int(a)]
    assert steps_in and all(a - b == 1 for a, b in steps_in), printed
