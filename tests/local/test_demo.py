"""The demo scenario end to end, at small scale: real handlers behind the gateway, emulated SageMaker and AAS."""

from __future__ import annotations

from pathlib import Path

from fleetscaler.local.report import run_and_report, summary_text
from fleetscaler.local.scenario import load_scenario
from tests.conftest import ROOT


def test_demo_scenario_loses_nothing_scales_to_zero_wakes_up_and_draws_the_picture(tmp_path: Path) -> None:
    # Given the demo scenario with half of its requests (load and throughput scaled alike)
    scenario = load_scenario(ROOT / "data" / "scenarios" / "demo.yaml").lighter(0.5, step_seconds=10)
    # When it runs through the local gateway, the router, the scaling API and the endpoint-state handler
    result = run_and_report(scenario, tmp_path, full_stack=True)
    # Then no request was lost and the fleet ended where the scenario says
    assert result.sent > 100
    assert result.lost == 0 and result.unfinished == 0, summary_text(result)
    assert result.completed == result.sent
    assert result.ok, summary_text(result)
    low, high = scenario.expect.final_capacity or (0, 0)
    assert low <= result.samples[-1].serving_units <= high
    # And on the way it scaled out, rolled back the endpoint short of capacity, reached zero and woke up
    medium = [e.server for e in scenario.endpoints].index("medium")
    assert any(s.endpoints[medium].status == "RollingBack" for s in result.samples)
    assert max(s.serving_units for s in result.samples) > 20
    at_zero = [s.t for s in result.samples if s.serving_units == 0]
    assert at_zero and result.samples[-1].serving_units > 0 and at_zero[-1] < result.samples[-1].t
    # And the picture and the summary were written
    assert (tmp_path / "timeline.png").stat().st_size > 30_000
    summary = (tmp_path / "summary.txt").read_text()
    assert "PASS  requests lost: 0" in summary and "PASS  requests still queued at the end: 0" in summary
