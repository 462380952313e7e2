"""Scenario files: every shipped scenario loads, and a broken file names each field and rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fleetscaler.local.scenario import ScenarioError, load_scenario, parse_scenario
from fleetscaler.local.scenario_schema import SCENARIO_SCHEMA
from tests.conftest import ROOT

SCENARIOS = sorted((ROOT / "data" / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path) -> None:
    # Given a scenario shipped in data/scenarios; When it is loaded
    scenario = load_scenario(path)
    # Then it has endpoints, traffic and a duration
    assert scenario.endpoints and scenario.traffic
    assert scenario.duration > 0


def test_the_demo_scenario_tells_the_story_of_make_demo() -> None:
    # Given the demo scenario
    scenario = load_scenario(ROOT / "data" / "scenarios" / "demo.yaml")
    # Then it has three instance types of 1, 2 and 4 units, a shortage during the ramp, and load falling to zero
    assert [e.capacity_units for e in scenario.endpoints] == [1, 2, 4]
    ramp = next(p for p in scenario.traffic if p.label == "ramp")
    assert any(s.start < ramp.end and s.end > ramp.start for s in scenario.shortages)
    assert any(p.rate_to == 0 for p in scenario.traffic)
    assert scenario.traffic[-1].rate_to > 0  # load returns: the fleet wakes up
    halfway = ramp.start + (ramp.end - ramp.start) / 2
    assert scenario.rate_at(halfway) == pytest.approx((ramp.rate_from + ramp.rate_to) / 2)


def test_every_problem_is_named_with_its_field() -> None:
    # Given a scenario with several mistakes
    raw = {
        "fleet": {
            "strategy": "cheapest",
            "endpoints": [{"server": "a", "capacity_units": 0}, {"server": "a", "max_instances": -1}],
        },
        "traffic": [{"minutes": 0, "rps": 1}, {"minutes": 5}],
        "faults": {"capacity_shortage": [{"server": "zz", "to_minute": 3}], "events": {"loss": 2}},
        "expect": {"final_capacity": "lots"},
        "policy": {"type": "Reactive"},
    }
    # When it is parsed
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(raw, "bad.yaml")
    # Then each mistake is reported with its path and rule
    problems = caught.value.problems
    expected = [
        "fleet.strategy: must be one of balanced, prioritized, race",
        "fleet.endpoints[0].capacity_units: must be a whole number >= 1",
        "fleet.endpoints[1].server: 'a' appears more than once",
        "fleet.endpoints[1].max_instances: must be a whole number >= 0",
        "traffic[0].minutes: must be a number > 0",
        "traffic[1].to: is required",
        "faults.capacity_shortage[0].server: 'zz' is not one of the fleet's servers",
        "faults.events.loss: must be a number >= 0.0 and <= 1.0",
        "expect.final_capacity: must be a whole number or [low, high]",
        "policy.type: must be one of TargetTracking, StepScaling, got 'Reactive'",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)
    assert str(caught.value).startswith("bad.yaml: ")


def test_unreadable_and_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    # Given a missing file and a file that is not YAML
    broken = tmp_path / "broken.yaml"
    broken.write_text("fleet: [unclosed\n")
    # Then both raise ScenarioError naming the file
    with pytest.raises(ScenarioError, match=r"missing\.yaml: cannot read the file"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: not valid YAML"):
        load_scenario(broken)


def test_unknown_keys_anywhere_are_named_by_path_with_the_closest_key() -> None:
    # Given misspelt keys at the top, in the fleet, an endpoint, a traffic segment, the service and the policy
    raw = {
        "arrivalz": "poisson",
        "fleet": {
            "endpoints": [{"server": "a", "instnce_type": "ml.g5.xlarge"}],
            "service": {"distribution": "lognormal", "cvv": 2},
        },
        "traffic": [{"minutes": 5, "rps": 0.1, "lable": "x"}, {"requests": 10, "minutes": 1}],
        "policy": {"scale_out_cooldwn": 60, "zzz": 1},
    }
    # When it is parsed
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(raw, "typo.yaml")
    # Then every unknown key is reported, with its full path and a suggestion when one is close
    problems = caught.value.problems
    for expected in (
        "arrivalz: unknown key (did you mean 'arrivals'?)",
        "fleet.endpoints[0].instnce_type: unknown key (did you mean 'instance_type'?)",
        "fleet.service.cvv: unknown key (did you mean 'cv'?)",
        "traffic[0].lable: unknown key (did you mean 'label'?)",
        "traffic[1].minutes: unknown key (known keys: label, requests)",
        "policy.scale_out_cooldwn: unknown key (did you mean 'scale_out_cooldown'?)",
    ):
        assert expected in problems, (expected, problems)
    assert any(p.startswith("policy.zzz: unknown key (known keys: type, ") for p in problems)


def test_workload_keys_are_validated() -> None:
    raw = {
        "arrivals": "bursty",
        "fleet": {"service": {"distribution": "pareto"}, "endpoints": [{"max_concurrent_invocations_per_instance": 0}]},
        "traffic": [{"requests": 0}, {"trace": "missing.csv"}],
        "native": {"weights": [1, 2]},
    }
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(raw, "bad.yaml")
    problems = caught.value.problems
    for expected in (
        "arrivals: must be one of uniform, poisson, got 'bursty'",
        "fleet.service.distribution: must be one of constant, exponential, lognormal, got 'pareto'",
        "fleet.endpoints[0].max_concurrent_invocations_per_instance: must be a whole number >= 1",
        "traffic[0].requests: must be a whole number >= 1",
        "traffic[1].trace: missing.csv: cannot read the file",
        "native.weights: must be 1 whole numbers >= 0",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)


def test_cv_belongs_to_lognormal_only() -> None:
    with pytest.raises(ScenarioError, match=r"fleet.service.cv: applies to lognormal only"):
        parse_scenario({"fleet": {"endpoints": [{}], "service": {"distribution": "exponential", "cv": 2}},
                        "traffic": [{"minutes": 1, "rps": 1}]})


def test_a_key_left_out_takes_the_default_the_reference_page_documents() -> None:
    # Given the smallest scenario: one endpoint, one rate phase, nothing else
    scenario = parse_scenario({"fleet": {"endpoints": [{}]}, "traffic": [{"minutes": 1, "rps": 1}]})
    documented = {
        (section, spec.name): spec.default for section, s in SCENARIO_SCHEMA.items() for spec in s.keys
    }
    # Then every plain default of the reference page is the value the loader used
    endpoint = scenario.endpoints[0]
    loaded = {
        ("top", "seed"): scenario.seed,
        ("top", "step_seconds"): scenario.step_seconds,
        ("top", "arrivals"): scenario.arrivals,
        ("top", "drain_minutes"): scenario.drain_seconds / 60,
        ("top", "description"): scenario.description,
        ("fleet", "resource_name"): scenario.resource_name,
        ("fleet", "strategy"): scenario.strategy,
        ("fleet", "provisioning_seconds"): scenario.provisioning_seconds,
        ("fleet", "scale_in_seconds"): scenario.scale_in_seconds,
        ("fleet", "rollback_seconds"): scenario.rollback_seconds,
        ("service", "distribution"): scenario.service.distribution,
        ("endpoint", "instance_type"): endpoint.instance_type,
        ("endpoint", "capacity_units"): endpoint.capacity_units,
        ("endpoint", "initial_instances"): endpoint.initial_instances,
        ("endpoint", "max_concurrent_invocations_per_instance"): endpoint.max_concurrent_invocations_per_instance,
        ("events", "loss"): scenario.events.loss,
        ("events", "duplicate"): scenario.events.duplicate,
        ("policy", "type"): scenario.policy.type,
        ("policy", "min_capacity"): scenario.policy.min_capacity,
        ("policy", "target_backlog_per_instance"): scenario.policy.target_backlog_per_instance,
        ("policy", "step_scale_in_backlog_per_instance"): scenario.policy.step_scale_in_backlog_per_instance,
        ("policy", "scale_out_cooldown"): scenario.policy.scale_out_cooldown,
        ("policy", "scale_in_cooldown"): scenario.policy.scale_in_cooldown,
        ("policy", "wake_up"): scenario.policy.wake_up,
        ("policy", "surplus_step"): scenario.policy.surplus_step,
        ("policy", "surplus_minutes"): scenario.policy.surplus_minutes,
        ("policy", "enabled"): scenario.policy.enabled,
        ("expect", "lost"): scenario.expect.lost,
        ("expect", "unfinished"): scenario.expect.unfinished,
    }
    wrong = {key: (documented[key], value) for key, value in loaded.items() if yaml.safe_load(documented[key]) != value}
    assert not wrong, f"documented default != loaded value: {wrong}"
