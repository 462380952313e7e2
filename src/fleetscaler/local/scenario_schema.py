"""The scenario file format as data: every mapping of a scenario file, its keys, their types, defaults, rules and
meanings. The loader (`fleetscaler.local.scenario`) takes its key lists and plain defaults from here, and
docs/reference/scenario-schema.md is generated from it, so the reference cannot drift from the loader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from fleetscaler.local.workload import ARRIVAL_MODELS, SERVICE_DISTRIBUTIONS
from fleetscaler.logic.server_config import STRATEGIES

POLICY_TYPES: tuple[str, ...] = ("TargetTracking", "StepScaling")


@dataclass(frozen=True)
class KeySpec:
    """One key of a scenario file's mapping: its type, its default (or "required"), its rule and its meaning."""

    name: str
    type: str
    default: str
    rule: str
    description: str


@dataclass(frozen=True)
class SectionSpec:
    """One mapping of a scenario file: where it sits (`path`, e.g. `fleet.endpoints[]`), what it is, its keys."""

    path: str
    title: str
    description: str
    keys: tuple[KeySpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)


REQUIRED = "required"

# The scenario format, one section per mapping. The loader's key lists come from here (anything else in a mapping is
# reported, with a close match if any), and docs/reference/scenario-schema.md is generated from it.
SCENARIO_SCHEMA: dict[str, SectionSpec] = {
    "top": SectionSpec("", "The file", "The top-level mapping.", (
        KeySpec("name", "string", "the file name without its extension", "any",
                "The scenario's name, in reports and pictures."),
        KeySpec("description", "string", '""', "any", "What the scenario tells, in a sentence or two."),
        KeySpec("seed", "whole number", "0", ">= 0",
                "Every random choice comes from it (one generator per purpose: arrivals, service times, event "
                "faults, ids; changing the service model moves no arrival). `fleetscaler simulate --seed` "
                "overrides it."),
        KeySpec("step_seconds", "number", "5", "> 0", "The fleet-time step of the simulation."),
        KeySpec("arrivals", "string", "uniform", "one of " + ", ".join(ARRIVAL_MODELS),
                "`uniform`: evenly spaced, the k-th request when the integrated rate reaches k; `poisson`: a "
                "non-homogeneous Poisson process at the same rate."),
        KeySpec("fleet", "mapping", REQUIRED, "see `fleet`", "The endpoints and how they behave."),
        KeySpec("traffic", "list of phases", REQUIRED, "see `traffic[]`",
                "The load, phase after phase: a rate, a batch or a replayed trace."),
        KeySpec("drain_minutes", "number", "10", ">= 0",
                "Quiet time at the end for queues to drain and the fleet to settle."),
        KeySpec("faults", "mapping", "none", "see `faults`", "What goes wrong: capacity shortages, event faults."),
        KeySpec("policy", "mapping", "the template's defaults", "see `policy`",
                "The Application Auto Scaling set-up, as the template's parameters."),
        KeySpec("expect", "mapping", "no lost or unfinished request", "see `expect`",
                "Checked at the end of the run; any failure makes the exit status 1."),
        KeySpec("native", "mapping", "none", "see `native`",
                "The native baseline's client (`fleetscaler simulate --baseline native`)."),
    )),
    "fleet": SectionSpec("fleet", "The fleet", "The endpoints, in priority order, and how SageMaker treats them.", (
        KeySpec("resource_name", "string", "fleet", "letters, digits and hyphens",
                "The fleet name: endpoints are named `{resource_name}-{server}`."),
        KeySpec("strategy", "string", "balanced", "one of " + ", ".join(STRATEGIES),
                "The placement strategy (`fleetscaler simulate --strategy` overrides it)."),
        KeySpec("unit_requests_per_second", "number", "0.05", "> 0",
                "Requests per second one capacity unit serves (1 / its mean service time)."),
        KeySpec("provisioning_seconds", "number", "240", ">= 0", "How long a scale-out stays Updating."),
        KeySpec("scale_in_seconds", "number", "60", ">= 0", "How long a scale-in stays Updating."),
        KeySpec("rollback_seconds", "number", "90", ">= 0",
                "How long an endpoint stays RollingBack after a failed scale-out."),
        KeySpec("service", "mapping", "constant service times", "see `fleet.service`",
                "The service-time model."),
        KeySpec("endpoints", "list of endpoints", REQUIRED, "at least one; see `fleet.endpoints[]`",
                "The endpoints; their order is the priority order."),
    )),
    "service": SectionSpec(
        "fleet.service", "Service times",
        "Each request's service time is its own multiple of the serving endpoint's mean "
        "(1 / `requests_per_second_per_instance`), drawn when it arrives.", (
            KeySpec("distribution", "string", "constant", "one of " + ", ".join(SERVICE_DISTRIBUTIONS),
                    "`constant`: every request takes the mean; `exponential`: cv 1; `lognormal`: mean 1 and the "
                    "given cv."),
            KeySpec("cv", "number", "1", "> 0; lognormal only",
                    "The coefficient of variation (standard deviation / mean) of a lognormal service time."),
        )),
    "endpoint": SectionSpec("fleet.endpoints[]", "An endpoint", "One endpoint of the fleet.", (
        KeySpec("server", "string", "its position (1, 2, ...)", "valid in an endpoint name; once each",
                "The endpoint name suffix (a number such as 3 means \"3\")."),
        KeySpec("instance_type", "string", "ml.m5.xlarge", "any", "The instance type, as SageMaker names it."),
        KeySpec("capacity_units", "whole number", "1", ">= 1",
                "The relative throughput of one instance; capacity is counted in these units."),
        KeySpec("initial_instances", "whole number", "1", ">= 0", "Instances at the start."),
        KeySpec("max_instances", "whole number or null", "no cap", ">= 0", "The endpoint's instance cap."),
        KeySpec("requests_per_second_per_instance", "number",
                "capacity_units x fleet.unit_requests_per_second", "> 0",
                "Requests per second one instance completes per concurrent slot (1 / its mean service time)."),
        KeySpec("max_concurrent_invocations_per_instance", "whole number", "1", ">= 1",
                "Requests an instance serves at once (AsyncInferenceConfig's); one busy instance completes "
                "this many times requests_per_second_per_instance."),
    )),
    "rate": SectionSpec(
        "traffic[]", "A rate phase",
        "Requests at a rate for some minutes: `rps` for a constant rate, or `from` and `to` for a linear ramp.", (
            KeySpec("label", "string", '""', "any", "The phase's name in reports and pictures."),
            KeySpec("minutes", "number", REQUIRED, "> 0", "How long the phase lasts."),
            KeySpec("rps", "number", "none", ">= 0", "A constant rate, requests per second."),
            KeySpec("from", "number", "the previous phase's end rate (0 first)", ">= 0",
                    "The ramp's rate at the start, requests per second."),
            KeySpec("to", "number", "required without rps", ">= 0",
                    "The ramp's rate at the end, requests per second."),
        )),
    "batch": SectionSpec(
        "traffic[]", "A batch", "Many requests at once (a phase with `requests`; it takes no time).", (
            KeySpec("label", "string", "batch", "any", "The phase's name in reports and pictures."),
            KeySpec("requests", "whole number", REQUIRED, ">= 1", "How many requests arrive at once."),
        )),
    "trace": SectionSpec(
        "traffic[]", "A replayed trace",
        "Arrivals read from a file (a phase with `trace`): one arrival timestamp in seconds per line, per-minute "
        "counts as CSV `timestamp,count`, or the JSON of `aws cloudwatch get-metric-data` for an endpoint's "
        "Invocations.", (
            KeySpec("label", "string", '""', "any", "The phase's name in reports and pictures."),
            KeySpec("trace", "string", REQUIRED, "a file path, relative to the scenario file",
                    "The trace to replay; the phase lasts as long as the trace."),
        )),
    "faults": SectionSpec("faults", "Faults", "What goes wrong during the run.", (
        KeySpec("capacity_shortage", "list of shortages", "none", "see `faults.capacity_shortage[]`",
                "Windows during which an endpoint's scale-outs roll back."),
        KeySpec("events", "mapping", "no event fault", "see `faults.events`",
                "Faults of the endpoint-state events (EventBridge)."),
    )),
    "shortage": SectionSpec(
        "faults.capacity_shortage[]", "A capacity shortage", "Scale-outs of one endpoint roll back in a window.", (
            KeySpec("server", "string", REQUIRED, "one of the fleet's servers", "The endpoint short of capacity."),
            KeySpec("from_minute", "number", "0", ">= 0", "Start of the window, minutes from the start."),
            KeySpec("to_minute", "number", REQUIRED, "after from_minute",
                    "End of the window, minutes from the start."),
        )),
    "events": SectionSpec("faults.events", "Event faults", "What happens to the endpoint-state events.", (
        KeySpec("loss", "number", "0", ">= 0 and <= 1", "The share of events lost."),
        KeySpec("duplicate", "number", "0", ">= 0 and <= 1", "The share of events delivered twice."),
        KeySpec("delay_seconds", "[low, high]", "[0, 0]", "0 <= low <= high",
                "Each event is delayed by a uniformly random number of seconds in this range."),
    )),
    "policy": SectionSpec(
        "policy", "Scaling policy",
        "The fleet's Application Auto Scaling set-up, capacity counted in units, as the template's parameters.", (
            KeySpec("type", "string", "TargetTracking", "one of " + ", ".join(POLICY_TYPES),
                    "ScalingPolicyType (`fleetscaler simulate --policy` overrides it)."),
            KeySpec("min_capacity", "whole number", "0", ">= 0",
                    "The fleet's minimum capacity (MinCapacity; the scaling Lambdas' MIN_CAPACITY)."),
            KeySpec("max_capacity", "whole number or null",
                    "the endpoints' caps (max_instances x capacity_units, 100 instances for an uncapped endpoint)",
                    ">= 0", "The fleet's maximum capacity (MaxCapacity; the scaling Lambdas' MAX_CAPACITY)."),
            KeySpec("target_backlog_per_instance", "number", "5", "> 0",
                    "The target-tracking target on the fleet's backlog per capacity unit; with StepScaling, +1 "
                    "from it and +2 from twice it (TargetBacklogPerInstance)."),
            KeySpec("step_scale_in_backlog_per_instance", "number", "1", ">= 0",
                    "StepScaling: -1 after 15 minutes below this (StepScaleInBacklogPerInstance)."),
            KeySpec("scale_out_cooldown", "number", "300", ">= 0", "Seconds (ScaleOutCooldown)."),
            KeySpec("scale_in_cooldown", "number", "300", ">= 0", "Seconds (ScaleInCooldown)."),
            KeySpec("wake_up", "true or false", "true", "a boolean",
                    "fleetscaler: the template's shortfall step (wake-up and bursts); native: each endpoint's "
                    "+1 wake-up policy."),
            KeySpec("surplus_step", "true or false", "true", "a boolean",
                    "The template's surplus step, which releases capacity no longer needed."),
            KeySpec("surplus_minutes", "whole number", "5", ">= 1",
                    "Minutes of surplus before the surplus step releases it (SurplusScaleInMinutes)."),
            KeySpec("enabled", "true or false", "true", "a boolean", "false: the fleet keeps its size."),
        )),
    "expect": SectionSpec(
        "expect", "Expectations", "Checked at the end of the run; any failure makes the exit status 1.", (
            KeySpec("lost", "whole number", "0", ">= 0",
                    "Requests refused by the router or expired in a queue, at most."),
            KeySpec("unfinished", "whole number", "0", ">= 0",
                    "Requests still queued or in service when the run ends, at most."),
            KeySpec("final_capacity", "whole number or [low, high]", "not checked", ">= 0; low <= high",
                    "The InService and desired capacity at the end, in units."),
            KeySpec("final_status", "string", "not checked", "any",
                    "The scalable dimension's status at the end, e.g. Successful."),
        )),
    "native": SectionSpec(
        "native", "Native baseline", "How the native baseline's client splits requests.", (
            KeySpec("weights", "list of whole numbers", "max_instances x capacity_units per endpoint",
                    "one >= 0 per endpoint, not all 0", "The client's fixed split."),
        )),
}


def documented_default(section: str, key: str) -> Any:
    """The key's default as the schema documents it, read as a YAML value ("5", "true", "[0, 0]", "uniform").

    The loader takes its literal defaults from here, so the generated reference cannot say one thing while the
    loader does another.
    """
    for spec in SCENARIO_SCHEMA[section].keys:
        if spec.name == key:
            return yaml.safe_load(spec.default)
    raise KeyError(f"{section}.{key} is not in the scenario schema")
