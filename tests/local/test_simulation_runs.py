"""Whole runs: the fast path agrees with the full stack, the native baseline, seeds, summary.json, events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleetscaler.cli.main import main
from fleetscaler.local import simulator
from fleetscaler.local.prices import load_prices
from fleetscaler.local.report import summary_json
from fleetscaler.local.scenario import parse_scenario
from fleetscaler.local.simulator import Simulation, scheduled_event
from tests.conftest import EVENTS

SMALL = {
    "name": "small",
    "seed": 5,
    "arrivals": "poisson",
    "fleet": {
        "resource_name": "small",
        "unit_requests_per_second": 0.05,
        "provisioning_seconds": 60,
        "scale_in_seconds": 30,
        "service": {"distribution": "exponential"},
        "endpoints": [
            {"server": "a", "instance_type": "ml.g5.xlarge", "capacity_units": 1, "initial_instances": 1,
             "max_instances": 6},
            {"server": "b", "instance_type": "ml.g5.2xlarge", "capacity_units": 2, "initial_instances": 0,
             "max_instances": 3},
        ],
    },
    "traffic": [{"minutes": 5, "rps": 0.4}, {"minutes": 5, "rps": 0.05}],
    "drain_minutes": 3,
    "faults": {"events": {"loss": 0.2, "duplicate": 0.2, "delay_seconds": [0, 20]}},
    "policy": {"min_capacity": 1, "max_capacity": 12, "target_backlog_per_instance": 3,
               "scale_out_cooldown": 60, "scale_in_cooldown": 60},
}


def outcome(result: Any) -> dict[str, Any]:
    per_endpoint = [sum(s.endpoints[i].routed for s in result.samples) for i in range(len(result.endpoint_names))]
    return {
        "sent": result.sent,
        "completed": result.completed,
        "routed": per_endpoint,
        "desired": [(a.started, a.desired_to, a.outcome) for a in result.activities],
        "updates": result.update_calls,
        "serving": [s.serving_units for s in result.samples],
        "ttr": result.queue_seconds,
    }


def test_the_fast_path_and_the_full_stack_agree() -> None:
    # Given a small scenario that scales out and back, with lossy, duplicated and late events
    scenario = parse_scenario(SMALL, "small.yaml")
    # When it runs in process and over the whole HTTP stack (moto, gateway, emulator over HTTP)
    fast = Simulation(scenario).run()
    full = Simulation(scenario, full_stack=True).run()
    # Then the same requests went to the same endpoints, completed at the same times, and Application Auto
    # Scaling asked for the same capacities at the same moments
    assert fast.backend == "fast" and full.backend == "full"
    assert fast.activities, "the scenario is meant to scale"
    assert outcome(fast) == outcome(full)


def test_native_baseline_wakes_each_endpoint_from_zero_and_tracks_its_own_backlog() -> None:
    # Given two endpoints at zero and a batch of 60 requests split 2:1 by the client
    raw = {
        **SMALL,
        "arrivals": "uniform",
        "fleet": {**SMALL["fleet"], "endpoints": [  # type: ignore[dict-item]
            {"server": "a", "capacity_units": 1, "initial_instances": 0, "max_instances": 6},
            {"server": "b", "capacity_units": 1, "initial_instances": 0, "max_instances": 6},
        ]},
        "traffic": [{"minutes": 1, "rps": 0}, {"requests": 60}],
        "drain_minutes": 40,
        "native": {"weights": [2, 1]},
    }
    result = Simulation(parse_scenario(raw, "native.yaml"), mode="native").run()
    # Then each endpoint has its own scalable target, woken by +1 (AWS's step policy on HasBacklogWithoutCapacity,
    # 2 of 2 one-minute datapoints) before target tracking on its own backlog per instance takes over
    by_target: dict[str, list[Any]] = {}
    for activity in result.activities:
        by_target.setdefault(activity.target, []).append(activity)
    assert set(by_target) == {"endpoint/small-a/variant/AllTraffic", "endpoint/small-b/variant/AllTraffic"}
    for activities in by_target.values():
        first = activities[0]
        assert (first.desired_from, first.desired_to) == (0, 1)
        assert 120 <= first.started - 60 <= 180  # two datapoints after the batch, at the next evaluation
        assert any(a.desired_from >= 1 and a.desired_to > a.desired_from for a in activities[1:])
    # And the endpoint with twice the requests grew larger; the split stayed 40:20; nothing was lost
    peak = [max(s.endpoints[i].instances for s in result.samples) for i in range(2)]
    assert peak[0] > peak[1]
    assert [sum(s.endpoints[i].routed for s in result.samples) for i in range(2)] == [40, 20]
    assert result.lost == 0 and result.still_queued == 0
    assert result.first_capacity_seconds is not None and result.first_capacity_seconds >= 60 + 120


def test_same_seed_same_run_other_seed_other_run() -> None:
    scenario = parse_scenario(SMALL, "small.yaml")
    prices = load_prices()
    once = summary_json(Simulation(scenario).run(), prices)
    again = summary_json(Simulation(scenario).run(), prices)
    other = summary_json(Simulation(scenario.with_seed(6)).run(), prices)
    assert once == again
    assert other["sent"] != once["sent"] or other["time_to_result_seconds"] != once["time_to_result_seconds"]


SUMMARY_KEYS = {
    "scenario": str, "mode": str, "strategy": (str, type(None)), "seed": int, "sent": int, "completed": int,
    "lost": int, "still_queued": int, "time_to_result_seconds": dict, "unit_minutes": float,
    "instance_minutes": float, "oracle_unit_minutes": float, "cost_usd": (float, type(None)),
    "first_capacity_seconds": (float, type(None)), "activities": dict, "update_calls": int,
    "unpriced_instance_types": list,
}


@pytest.mark.parametrize("baseline", [None, "native"])
def test_summary_json_has_the_documented_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], baseline: str | None
) -> None:
    # Given the small scenario as a file; When it is simulated (fleetscaler, or the native baseline)
    path = tmp_path / "small.json"
    path.write_text(json.dumps(SMALL))
    out = tmp_path / "out"
    extra = ["--baseline", baseline] if baseline else []
    status = main(["simulate", str(path), "--quiet", "--out", str(out), *extra])
    assert status == 0, capsys.readouterr().out
    # Then summary.json holds exactly the documented keys, with their types, beside summary.txt and the picture
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == set(SUMMARY_KEYS)
    for key, kind in SUMMARY_KEYS.items():
        assert isinstance(summary[key], kind), (key, summary[key])
    assert set(summary["time_to_result_seconds"]) == {"p50", "p95", "p99", "max"}
    assert set(summary["activities"]) == {"total", "failed"}
    assert summary["mode"] == (baseline or "fleetscaler")
    assert summary["sent"] == summary["completed"] + summary["lost"] + summary["still_queued"]
    assert summary["cost_usd"] > 0 and summary["unpriced_instance_types"] == []
    assert (out / "summary.txt").exists() and (out / "timeline.png").stat().st_size > 10_000


def test_unknown_instance_price_is_named_and_cost_is_null(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = json.loads(json.dumps(SMALL))
    raw["fleet"]["endpoints"][1]["instance_type"] = "ml.x9.mega"
    path = tmp_path / "s.json"
    path.write_text(json.dumps(raw))
    assert main(["simulate", str(path), "--quiet", "--out", str(tmp_path / "o")]) == 0
    assert "cost                            unknown: no price for ml.x9.mega" in capsys.readouterr().out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["cost_usd"] is None and summary["unpriced_instance_types"] == ["ml.x9.mega"]


def test_misspelt_key_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({**SMALL, "arrivalz": "poisson"}))
    assert main(["simulate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "arrivalz: unknown key (did you mean 'arrivals'?)" in err


def test_a_scheduled_event_reaches_the_endpoint_state_lambda_every_fleet_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the endpoint-state Lambda as EventBridge's target, its answers recorded
    answers: list[tuple[str, dict[str, Any]]] = []
    real_sink = simulator.endpoint_state_sink

    def recording_sink() -> Any:
        from fleetscaler.handlers import endpoint_state

        context = simulator._LambdaContext()

        def deliver(event: dict[str, Any]) -> None:
            answers.append((event["detail-type"], endpoint_state.handler(event, context)))

        return deliver if real_sink() is not None else None

    monkeypatch.setattr(simulator, "endpoint_state_sink", recording_sink)
    # When the small scenario (13 minutes of fleet time) runs
    Simulation(parse_scenario(SMALL, "small.yaml")).run()
    # Then one Scheduled Event arrived per fleet minute, shaped like the sample, and each published the fleet's
    # scaling signal
    scheduled = [answer for kind, answer in answers if kind == "Scheduled Event"]
    assert len(scheduled) == 14
    assert all(answer["handled"] is True and "CapacityShortfallUnits" in answer["signal"] for answer in scheduled)
    sample = json.loads((EVENTS / "eventbridge_scheduled_event.json").read_text())
    event = scheduled_event(1_800_000_060.0)
    assert set(event) == set(sample) and event["source"] == sample["source"] == "aws.events"
    assert event["time"] == "2027-01-15T08:01:00Z" and event["detail"] == {}


def test_a_lambda_that_fails_is_counted_and_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the scaling engine's schedule broken
    def broken(self: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("fleetscaler.services.scaling.ScalingEngine.publish_signal", broken)
    # When the small scenario runs / Then every failed invocation is counted and the run does not pass
    result = Simulation(parse_scenario(SMALL, "small.yaml")).run()
    assert result.lambda_errors >= 13
    assert not result.ok
    assert any(text.startswith("Lambda errors") and not passed for text, passed in result.checks)
