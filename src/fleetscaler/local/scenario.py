"""Scenario files for the local fleet and the simulator (`data/scenarios/*.yaml` or `.json`).

A scenario says what the fleet is (endpoints, instance types, capacity units, caps, provisioning delays), what
load it sees (phases of requests per second), what goes wrong (capacity shortages, event loss/dup/delay),
the scaling policy, the placement strategy, and where the fleet must end. Every problem in a file is reported
at once with the field's path, e.g. `traffic[2].minutes: must be a number > 0`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from fleetscaler.logic.server_config import SERVER_SUFFIX_RE, STRATEGIES


class ScenarioError(ValueError):
    """A scenario file breaks a rule; the message names every field and rule."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class EndpointScenario:
    """One endpoint of the local fleet as the table and the emulator both see it."""

    server: str
    instance_type: str = "ml.m5.xlarge"
    capacity_units: int = 1
    initial_instances: int = 1
    max_instances: int | None = 10
    requests_per_second_per_instance: float = 0.05


@dataclass(frozen=True)
class TrafficPhase:
    """Load between `start` and `end` (seconds from the start), rising linearly from `rate_from` to `rate_to`."""

    start: float
    end: float
    rate_from: float
    rate_to: float
    label: str = ""

    def rate_at(self, t: float) -> float:
        if self.end <= self.start:
            return self.rate_to
        share = min(1.0, max(0.0, (t - self.start) / (self.end - self.start)))
        return self.rate_from + (self.rate_to - self.rate_from) * share


@dataclass(frozen=True)
class CapacityShortage:
    server: str
    start: float
    end: float


@dataclass(frozen=True)
class EventFaultSpec:
    loss: float = 0.0
    duplicate: float = 0.0
    delay_seconds: tuple[float, float] = (0.0, 0.0)


POLICY_TYPES: tuple[str, ...] = ("TargetTracking", "StepScaling")


@dataclass(frozen=True)
class PolicySpec:
    """The fleet's Application Auto Scaling set-up (capacity counted in units), as the template's parameters:
    `type` is ScalingPolicyType, `target_backlog_per_instance` the target (or step scale-out threshold)."""

    type: str = "TargetTracking"
    step_scale_in_backlog_per_instance: float = 1.0
    min_capacity: int = 0
    max_capacity: int | None = None
    target_backlog_per_instance: float = 5.0
    scale_out_cooldown: float = 300.0
    scale_in_cooldown: float = 300.0
    wake_up: bool = True  # step policy on HasBacklogWithoutCapacity: +1 unit from zero
    enabled: bool = True


@dataclass(frozen=True)
class Expectations:
    lost: int = 0
    unfinished: int = 0  # requests still queued when the run ends
    final_capacity: tuple[int, int] | None = None  # inclusive range of the actual capacity at the end
    final_status: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    step_seconds: float
    resource_name: str
    strategy: str
    provisioning_seconds: float
    scale_in_seconds: float
    rollback_seconds: float
    endpoints: tuple[EndpointScenario, ...]
    traffic: tuple[TrafficPhase, ...]
    drain_seconds: float
    shortages: tuple[CapacityShortage, ...] = ()
    events: EventFaultSpec = field(default_factory=EventFaultSpec)
    policy: PolicySpec = field(default_factory=PolicySpec)
    expect: Expectations = field(default_factory=Expectations)
    source: str = ""

    @property
    def duration(self) -> float:
        """Seconds of fleet time: the traffic, then a quiet tail for queues to drain and the fleet to settle."""
        return (self.traffic[-1].end if self.traffic else 0.0) + self.drain_seconds

    def rate_at(self, t: float) -> float:
        for phase in self.traffic:
            if phase.start <= t < phase.end:
                return phase.rate_at(t)
        return 0.0

    def endpoint_name(self, server: str) -> str:
        return f"{self.resource_name}-{server}"

    @property
    def unit_throughput(self) -> float:
        """Requests per second one capacity unit serves (the smallest per-unit rate of the fleet)."""
        return min(e.requests_per_second_per_instance / e.capacity_units for e in self.endpoints)

    def with_strategy(self, strategy: str) -> Scenario:
        if strategy not in STRATEGIES:
            raise ScenarioError(self.source or self.name, [f"strategy: must be one of {', '.join(STRATEGIES)}"])
        return replace(self, strategy=strategy)

    def with_policy_type(self, policy_type: str) -> Scenario:
        if policy_type not in POLICY_TYPES:
            raise ScenarioError(self.source or self.name, [f"policy.type: must be one of {', '.join(POLICY_TYPES)}"])
        return replace(self, policy=replace(self.policy, type=policy_type))

    def lighter(self, factor: float, step_seconds: float | None = None) -> Scenario:
        """The same story with `factor` times the requests: load, per-instance throughput and the backlog target
        scaled alike, so capacities and scaling decisions stay close (tests run the demo this way)."""
        return replace(
            self,
            step_seconds=step_seconds or self.step_seconds,
            policy=replace(self.policy, target_backlog_per_instance=self.policy.target_backlog_per_instance * factor),
            traffic=tuple(replace(p, rate_from=p.rate_from * factor, rate_to=p.rate_to * factor) for p in self.traffic),
            endpoints=tuple(
                replace(e, requests_per_second_per_instance=e.requests_per_second_per_instance * factor)
                for e in self.endpoints
            ),
        )

    def scaled(self, time_factor: float, rate_factor: float = 1.0) -> Scenario:
        """The same story, shorter or longer (tests run the demo at small scale)."""
        return replace(
            self,
            traffic=tuple(
                replace(
                    p,
                    start=p.start * time_factor,
                    end=p.end * time_factor,
                    rate_from=p.rate_from * rate_factor,
                    rate_to=p.rate_to * rate_factor,
                )
                for p in self.traffic
            ),
            shortages=tuple(replace(s, start=s.start * time_factor, end=s.end * time_factor) for s in self.shortages),
            drain_seconds=self.drain_seconds * time_factor,
        )


class _Reader:
    """Typed reads of a nested mapping that collect problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def number(
        self, raw: Mapping[str, Any], key: str, path: str, default: float | None = None, *, minimum: float = 0.0,
        strict: bool = False, maximum: float | None = None,
    ) -> float:
        value = raw.get(key, default)
        where = f"{path}{key}"
        if value is None:
            self.problems.append(f"{where}: is required")
            return default or 0.0
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if ok and (value < minimum or (strict and value == minimum) or (maximum is not None and value > maximum)):
            ok = False
        if not ok:
            rule = f"> {minimum}" if strict else f">= {minimum}"
            if maximum is not None:
                rule += f" and <= {maximum}"
            self.problems.append(f"{where}: must be a number {rule}, got {value!r}")
            return default or 0.0
        return float(value)

    def integer(
        self, raw: Mapping[str, Any], key: str, path: str, default: int | None = None, *, minimum: int = 0
    ) -> int:
        value = raw.get(key, default)
        where = f"{path}{key}"
        if value is None:
            self.problems.append(f"{where}: is required")
            return default or 0
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.problems.append(f"{where}: must be a whole number >= {minimum}, got {value!r}")
            return default or 0
        return value

    def mapping(self, raw: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, Mapping):
            self.problems.append(f"{path}{key}: must be a mapping")
            return {}
        return value

    def sequence(self, raw: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> Sequence[Any]:
        value = raw.get(key)
        if value is None:
            if required:
                self.problems.append(f"{path}{key}: is required (a list)")
            return ()
        if not isinstance(value, Sequence) or isinstance(value, str):
            self.problems.append(f"{path}{key}: must be a list")
            return ()
        return value


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file (YAML or JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read the file ({exc.strerror})"]) from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError(str(path), [f"not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})"]) from exc
    return parse_scenario(raw, str(path))


def parse_scenario(raw: Any, source: str = "scenario") -> Scenario:
    if not isinstance(raw, Mapping):
        raise ScenarioError(source, ["the file must hold a mapping (name, fleet, traffic, ...)"])
    r = _Reader()
    fleet = r.mapping(raw, "fleet", "")
    resource_name = fleet.get("resource_name", "fleet")
    if not isinstance(resource_name, str) or not SERVER_SUFFIX_RE.match(resource_name):
        r.problems.append("fleet.resource_name: must be letters, digits and hyphens")
        resource_name = "fleet"
    strategy = fleet.get("strategy", "balanced")
    if strategy not in STRATEGIES:
        r.problems.append(f"fleet.strategy: must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    unit_rps = r.number(fleet, "unit_requests_per_second", "fleet.", 0.05, strict=True)
    endpoints: list[EndpointScenario] = []
    for i, entry in enumerate(r.sequence(fleet, "endpoints", "fleet.", required=True)):
        path = f"fleet.endpoints[{i}]."
        if not isinstance(entry, Mapping):
            r.problems.append(f"fleet.endpoints[{i}]: must be a mapping")
            continue
        server = str(entry.get("server", i + 1))
        if not SERVER_SUFFIX_RE.match(server):
            r.problems.append(f"{path}server: {server!r} is not valid in an endpoint name")
        if any(e.server == server for e in endpoints):
            r.problems.append(f"{path}server: {server!r} appears more than once")
        units = r.integer(entry, "capacity_units", path, 1, minimum=1)
        cap = entry.get("max_instances")
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0):
            r.problems.append(f"{path}max_instances: must be a whole number >= 0, got {cap!r}")
            cap = None
        endpoints.append(
            EndpointScenario(
                server=server,
                instance_type=str(entry.get("instance_type", "ml.m5.xlarge")),
                capacity_units=units,
                initial_instances=r.integer(entry, "initial_instances", path, 1),
                max_instances=cap,
                requests_per_second_per_instance=r.number(
                    entry, "requests_per_second_per_instance", path, unit_rps * units, strict=True
                ),
            )
        )
    if not endpoints and "endpoints" in fleet:
        r.problems.append("fleet.endpoints: needs at least one endpoint")

    phases: list[TrafficPhase] = []
    start = 0.0
    last_rate = 0.0
    for i, entry in enumerate(r.sequence(raw, "traffic", "", required=True)):
        path = f"traffic[{i}]."
        if not isinstance(entry, Mapping):
            r.problems.append(f"traffic[{i}]: must be a mapping like {{minutes: 5, rps: 0.5}}")
            continue
        minutes = r.number(entry, "minutes", path, None, strict=True)
        if "rps" in entry:
            rate_from = rate_to = r.number(entry, "rps", path)
        else:
            rate_from = r.number(entry, "from", path, last_rate)
            rate_to = r.number(entry, "to", path, None)
        phases.append(TrafficPhase(start, start + minutes * 60, rate_from, rate_to, str(entry.get("label", ""))))
        start += minutes * 60
        last_rate = rate_to

    faults = r.mapping(raw, "faults", "")
    shortages: list[CapacityShortage] = []
    servers = {e.server for e in endpoints}
    for i, entry in enumerate(r.sequence(faults, "capacity_shortage", "faults.")):
        path = f"faults.capacity_shortage[{i}]."
        if not isinstance(entry, Mapping):
            r.problems.append(f"faults.capacity_shortage[{i}]: must be a mapping")
            continue
        server = str(entry.get("server", ""))
        if server not in servers:
            r.problems.append(f"{path}server: {server!r} is not one of the fleet's servers")
        begin = r.number(entry, "from_minute", path, 0.0)
        end = r.number(entry, "to_minute", path, None)
        if end <= begin:
            r.problems.append(f"{path}to_minute: must be after from_minute")
        shortages.append(CapacityShortage(server, begin * 60, end * 60))
    events_raw = r.mapping(faults, "events", "faults.")
    delay = events_raw.get("delay_seconds", [0, 0])
    if (
        not isinstance(delay, Sequence)
        or len(delay) != 2
        or not all(isinstance(d, int | float) and not isinstance(d, bool) and d >= 0 for d in delay)
        or delay[0] > delay[1]
    ):
        r.problems.append("faults.events.delay_seconds: must be [low, high] with 0 <= low <= high")
        delay = [0, 0]
    events = EventFaultSpec(
        loss=r.number(events_raw, "loss", "faults.events.", 0.0, maximum=1.0),
        duplicate=r.number(events_raw, "duplicate", "faults.events.", 0.0, maximum=1.0),
        delay_seconds=(float(delay[0]), float(delay[1])),
    )

    policy_raw = r.mapping(raw, "policy", "")
    max_capacity = policy_raw.get("max_capacity")
    if max_capacity is not None and (not isinstance(max_capacity, int) or max_capacity < 0):
        r.problems.append(f"policy.max_capacity: must be a whole number >= 0, got {max_capacity!r}")
        max_capacity = None
    policy_type = policy_raw.get("type", "TargetTracking")
    if policy_type not in POLICY_TYPES:
        r.problems.append(f"policy.type: must be one of {', '.join(POLICY_TYPES)}, got {policy_type!r}")
        policy_type = "TargetTracking"
    policy = PolicySpec(
        type=str(policy_type),
        step_scale_in_backlog_per_instance=r.number(
            policy_raw, "step_scale_in_backlog_per_instance", "policy.", 1.0
        ),
        min_capacity=r.integer(policy_raw, "min_capacity", "policy.", 0),
        max_capacity=max_capacity,
        target_backlog_per_instance=r.number(policy_raw, "target_backlog_per_instance", "policy.", 5.0, strict=True),
        scale_out_cooldown=r.number(policy_raw, "scale_out_cooldown", "policy.", 300.0),
        scale_in_cooldown=r.number(policy_raw, "scale_in_cooldown", "policy.", 300.0),
        wake_up=bool(policy_raw.get("wake_up", True)),
        enabled=bool(policy_raw.get("enabled", True)),
    )

    expect_raw = r.mapping(raw, "expect", "")
    final = expect_raw.get("final_capacity")
    final_range: tuple[int, int] | None = None
    if isinstance(final, int) and not isinstance(final, bool) and final >= 0:
        final_range = (final, final)
    elif (
        isinstance(final, Sequence)
        and not isinstance(final, str)
        and len(final) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in final)
        and final[0] <= final[1]
    ):
        final_range = (int(final[0]), int(final[1]))
    elif final is not None:
        r.problems.append("expect.final_capacity: must be a whole number or [low, high]")
    expect = Expectations(
        lost=r.integer(expect_raw, "lost", "expect.", 0),
        unfinished=r.integer(expect_raw, "unfinished", "expect.", 0),
        final_capacity=final_range,
        final_status=expect_raw.get("final_status"),
    )

    seed = r.integer(raw, "seed", "", 0)
    step = r.number(raw, "step_seconds", "", 5.0, strict=True)
    scenario = Scenario(
        name=str(raw.get("name", Path(source).stem)),
        description=str(raw.get("description", "")),
        seed=seed,
        step_seconds=step,
        resource_name=resource_name,
        strategy=str(strategy),
        provisioning_seconds=r.number(fleet, "provisioning_seconds", "fleet.", 240.0),
        scale_in_seconds=r.number(fleet, "scale_in_seconds", "fleet.", 60.0),
        rollback_seconds=r.number(fleet, "rollback_seconds", "fleet.", 90.0),
        endpoints=tuple(endpoints),
        traffic=tuple(phases),
        drain_seconds=r.number(raw, "drain_minutes", "", 10.0) * 60,
        shortages=tuple(shortages),
        events=events,
        policy=policy,
        expect=expect,
        source=source,
    )
    if r.problems:
        raise ScenarioError(source, r.problems)
    return scenario
