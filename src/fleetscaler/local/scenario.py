"""Scenario files for the local fleet and the simulator (`data/scenarios/*.yaml` or `.json`).

A scenario says what the fleet is (endpoints, instance types, capacity units, caps, provisioning delays), what
load it sees (phases of requests per second, batches, replayed traces; uniform or Poisson arrivals; constant
or random service times), what goes wrong (capacity shortages, event loss/dup/delay), the scaling policy, the
placement strategy, and where the fleet must end. Every problem in a file is reported at once with the
field's path, e.g. `traffic[2].minutes: must be a number > 0`; a key the format does not know is a problem
too (`arrivalz: unknown key (did you mean 'arrivals'?)`), never silently ignored.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from fleetscaler.local.scenario_schema import POLICY_TYPES, SCENARIO_SCHEMA
from fleetscaler.local.scenario_schema import documented_default as _default
from fleetscaler.local.trace import Trace, TraceError, load_trace
from fleetscaler.local.workload import ARRIVAL_MODELS, SERVICE_DISTRIBUTIONS, ServiceSpec
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
    max_concurrent_invocations_per_instance: int = 1

    @property
    def instance_throughput(self) -> float:
        """Requests per second one busy instance completes (concurrent slots x 1 / mean service time)."""
        return self.requests_per_second_per_instance * self.max_concurrent_invocations_per_instance


@dataclass(frozen=True)
class TrafficPhase:
    """Load between `start` and `end` (seconds from the start), rising linearly from `rate_from` to `rate_to`;
    or a batch of `batch` requests at `start` (`end == start`); or a replayed `trace`."""

    start: float
    end: float
    rate_from: float
    rate_to: float
    label: str = ""
    batch: int = 0
    trace: Trace | None = None

    @property
    def kind(self) -> str:
        return "batch" if self.batch else "trace" if self.trace is not None else "rate"

    def rate_at(self, t: float) -> float:
        if self.trace is not None:
            return self.trace.rate_at(t - self.start)
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
    # fleetscaler: the template's shortfall step (wake-up and bursts); native: each endpoint's wake-up policy on its
    # own HasBacklogWithoutCapacity (+1 instance).
    wake_up: bool = True
    surplus_step: bool = True  # fleetscaler: the template's surplus step (releases capacity no longer needed)
    surplus_minutes: int = 5  # ... after this many minutes (the template's SurplusScaleInMinutes)
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
    arrivals: str = "uniform"
    service: ServiceSpec = field(default_factory=ServiceSpec)
    # The native baseline's client split (None: max_instances x capacity_units per endpoint).
    native_weights: tuple[int, ...] | None = None

    @property
    def duration(self) -> float:
        """Seconds of fleet time: the traffic, then a quiet tail for queues to drain and the fleet to settle."""
        return self.traffic_seconds + self.drain_seconds

    @property
    def traffic_seconds(self) -> float:
        return self.traffic[-1].end if self.traffic else 0.0

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
        return min(e.instance_throughput / e.capacity_units for e in self.endpoints)

    @property
    def capacity_range(self) -> tuple[int, int]:
        """The fleet's [MinCapacity, MaxCapacity] as the template registers it: the policy's, or without a
        max_capacity the endpoints' caps (an uncapped endpoint counts 100 instances)."""
        caps = sum(e.capacity_units * (100 if e.max_instances is None else e.max_instances) for e in self.endpoints)
        maximum = self.policy.max_capacity if self.policy.max_capacity is not None else caps
        return self.policy.min_capacity, maximum

    @property
    def client_weights(self) -> tuple[int, ...]:
        """The native baseline's fixed split: the scenario's, else max_instances x capacity_units."""
        if self.native_weights is not None:
            return self.native_weights
        return tuple((e.max_instances if e.max_instances is not None else 10) * e.capacity_units
                     for e in self.endpoints)

    def with_strategy(self, strategy: str) -> Scenario:
        if strategy not in STRATEGIES:
            raise ScenarioError(self.source or self.name, [f"strategy: must be one of {', '.join(STRATEGIES)}"])
        return replace(self, strategy=strategy)

    def with_seed(self, seed: int) -> Scenario:
        if seed < 0:
            raise ScenarioError(self.source or self.name, [f"seed: must be a whole number >= 0, got {seed}"])
        return replace(self, seed=seed)

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
            traffic=tuple(
                replace(
                    p,
                    rate_from=p.rate_from * factor,
                    rate_to=p.rate_to * factor,
                    batch=max(1, round(p.batch * factor)) if p.batch else 0,
                )
                for p in self.traffic
            ),
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


# The keys each mapping of a scenario file may hold.
TOP_KEYS = SCENARIO_SCHEMA["top"].names
FLEET_KEYS = SCENARIO_SCHEMA["fleet"].names
SERVICE_KEYS = SCENARIO_SCHEMA["service"].names
ENDPOINT_KEYS = SCENARIO_SCHEMA["endpoint"].names
RATE_KEYS = SCENARIO_SCHEMA["rate"].names
BATCH_KEYS = SCENARIO_SCHEMA["batch"].names
TRACE_KEYS = SCENARIO_SCHEMA["trace"].names
FAULT_KEYS = SCENARIO_SCHEMA["faults"].names
SHORTAGE_KEYS = SCENARIO_SCHEMA["shortage"].names
EVENT_KEYS = SCENARIO_SCHEMA["events"].names
POLICY_KEYS = SCENARIO_SCHEMA["policy"].names
EXPECT_KEYS = SCENARIO_SCHEMA["expect"].names
NATIVE_KEYS = SCENARIO_SCHEMA["native"].names


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file (YAML or JSON). Trace paths are relative to the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read the file ({exc.strerror})"]) from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError(str(path), [f"not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})"]) from exc
    return parse_scenario(raw, str(path), base_dir=path.parent)


def _check_keys(r: _Reader, raw: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    """Report every key of `raw` that `allowed` does not hold, by its full path, with the closest known key."""
    for key in raw:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(allowed)}"
        r.problems.append(f"{path}{key}: unknown key ({hint})")


def _parse_endpoints(r: _Reader, fleet: Mapping[str, Any], unit_rps: float) -> list[EndpointScenario]:
    endpoints: list[EndpointScenario] = []
    for i, entry in enumerate(r.sequence(fleet, "endpoints", "fleet.", required=True)):
        path = f"fleet.endpoints[{i}]."
        if not isinstance(entry, Mapping):
            r.problems.append(f"fleet.endpoints[{i}]: must be a mapping")
            continue
        _check_keys(r, entry, ENDPOINT_KEYS, path)
        server = str(entry.get("server", i + 1))
        if not SERVER_SUFFIX_RE.match(server):
            r.problems.append(f"{path}server: {server!r} is not valid in an endpoint name")
        if any(e.server == server for e in endpoints):
            r.problems.append(f"{path}server: {server!r} appears more than once")
        units = r.integer(entry, "capacity_units", path, _default("endpoint", "capacity_units"), minimum=1)
        cap = entry.get("max_instances")
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0):
            r.problems.append(f"{path}max_instances: must be a whole number >= 0, got {cap!r}")
            cap = None
        endpoints.append(
            EndpointScenario(
                server=server,
                instance_type=str(entry.get("instance_type", _default("endpoint", "instance_type"))),
                capacity_units=units,
                initial_instances=r.integer(
                    entry, "initial_instances", path, _default("endpoint", "initial_instances")
                ),
                max_instances=cap,
                requests_per_second_per_instance=r.number(
                    entry, "requests_per_second_per_instance", path, unit_rps * units, strict=True
                ),
                max_concurrent_invocations_per_instance=r.integer(
                    entry, "max_concurrent_invocations_per_instance", path,
                    _default("endpoint", "max_concurrent_invocations_per_instance"), minimum=1
                ),
            )
        )
    if not endpoints and "endpoints" in fleet:
        r.problems.append("fleet.endpoints: needs at least one endpoint")
    return endpoints


def _parse_service(r: _Reader, fleet: Mapping[str, Any]) -> ServiceSpec:
    raw = r.mapping(fleet, "service", "fleet.")
    _check_keys(r, raw, SERVICE_KEYS, "fleet.service.")
    distribution = raw.get("distribution", _default("service", "distribution"))
    if distribution not in SERVICE_DISTRIBUTIONS:
        r.problems.append(
            f"fleet.service.distribution: must be one of {', '.join(SERVICE_DISTRIBUTIONS)}, got {distribution!r}"
        )
        distribution = "constant"
    cv = r.number(raw, "cv", "fleet.service.", _default("service", "cv"), strict=True)
    if "cv" in raw and distribution != "lognormal":
        rule = "is 1 by definition" if distribution == "exponential" else "is 0 by definition"
        r.problems.append(f"fleet.service.cv: applies to lognormal only (the cv of {distribution} {rule})")
    return ServiceSpec(str(distribution), cv)


def _parse_traffic(r: _Reader, raw: Mapping[str, Any], base_dir: Path | None) -> list[TrafficPhase]:
    phases: list[TrafficPhase] = []
    start = 0.0
    last_rate = 0.0
    for i, entry in enumerate(r.sequence(raw, "traffic", "", required=True)):
        path = f"traffic[{i}]."
        if not isinstance(entry, Mapping):
            r.problems.append(f"traffic[{i}]: must be a mapping like {{minutes: 5, rps: 0.5}}")
            continue
        label = str(entry.get("label", ""))
        if "requests" in entry:
            _check_keys(r, entry, BATCH_KEYS, path)
            count = r.integer(entry, "requests", path, 1, minimum=1)
            phases.append(TrafficPhase(start, start, 0.0, 0.0, label or _default("batch", "label"), batch=count))
            last_rate = 0.0
            continue
        if "trace" in entry:
            _check_keys(r, entry, TRACE_KEYS, path)
            trace = _read_trace(r, entry.get("trace"), f"{path}trace", base_dir)
            if trace is not None:
                phases.append(TrafficPhase(start, start + trace.duration, 0.0, 0.0, label, trace=trace))
                start += trace.duration
            last_rate = 0.0
            continue
        _check_keys(r, entry, RATE_KEYS, path)
        minutes = r.number(entry, "minutes", path, None, strict=True)
        if "rps" in entry:
            rate_from = rate_to = r.number(entry, "rps", path)
        else:
            rate_from = r.number(entry, "from", path, last_rate)
            rate_to = r.number(entry, "to", path, None)
        phases.append(TrafficPhase(start, start + minutes * 60, rate_from, rate_to, label))
        start += minutes * 60
        last_rate = rate_to
    return phases


def _read_trace(r: _Reader, value: Any, where: str, base_dir: Path | None) -> Trace | None:
    if not isinstance(value, str) or not value:
        r.problems.append(f"{where}: must be a file path (relative to the scenario file)")
        return None
    path = Path(value)
    if not path.is_absolute():
        path = (base_dir or Path(".")) / path
    try:
        return load_trace(path)
    except TraceError as exc:
        r.problems.append(f"{where}: {exc}")
        return None


def _parse_faults(
    r: _Reader, raw: Mapping[str, Any], servers: set[str]
) -> tuple[list[CapacityShortage], EventFaultSpec]:
    faults = r.mapping(raw, "faults", "")
    _check_keys(r, faults, FAULT_KEYS, "faults.")
    shortages: list[CapacityShortage] = []
    for i, entry in enumerate(r.sequence(faults, "capacity_shortage", "faults.")):
        path = f"faults.capacity_shortage[{i}]."
        if not isinstance(entry, Mapping):
            r.problems.append(f"faults.capacity_shortage[{i}]: must be a mapping")
            continue
        _check_keys(r, entry, SHORTAGE_KEYS, path)
        server = str(entry.get("server", ""))
        if server not in servers:
            r.problems.append(f"{path}server: {server!r} is not one of the fleet's servers")
        begin = r.number(entry, "from_minute", path, _default("shortage", "from_minute"))
        end = r.number(entry, "to_minute", path, None)
        if end <= begin:
            r.problems.append(f"{path}to_minute: must be after from_minute")
        shortages.append(CapacityShortage(server, begin * 60, end * 60))
    events_raw = r.mapping(faults, "events", "faults.")
    _check_keys(r, events_raw, EVENT_KEYS, "faults.events.")
    delay = events_raw.get("delay_seconds", _default("events", "delay_seconds"))
    if (
        not isinstance(delay, Sequence)
        or len(delay) != 2
        or not all(isinstance(d, int | float) and not isinstance(d, bool) and d >= 0 for d in delay)
        or delay[0] > delay[1]
    ):
        r.problems.append("faults.events.delay_seconds: must be [low, high] with 0 <= low <= high")
        delay = [0, 0]
    events = EventFaultSpec(
        loss=r.number(events_raw, "loss", "faults.events.", _default("events", "loss"), maximum=1.0),
        duplicate=r.number(events_raw, "duplicate", "faults.events.", _default("events", "duplicate"), maximum=1.0),
        delay_seconds=(float(delay[0]), float(delay[1])),
    )
    return shortages, events


def _parse_policy(r: _Reader, raw: Mapping[str, Any]) -> PolicySpec:
    policy_raw = r.mapping(raw, "policy", "")
    _check_keys(r, policy_raw, POLICY_KEYS, "policy.")
    max_capacity = policy_raw.get("max_capacity")
    if max_capacity is not None and (not isinstance(max_capacity, int) or max_capacity < 0):
        r.problems.append(f"policy.max_capacity: must be a whole number >= 0, got {max_capacity!r}")
        max_capacity = None
    policy_type = policy_raw.get("type", _default("policy", "type"))
    if policy_type not in POLICY_TYPES:
        r.problems.append(f"policy.type: must be one of {', '.join(POLICY_TYPES)}, got {policy_type!r}")
        policy_type = "TargetTracking"
    return PolicySpec(
        type=str(policy_type),
        step_scale_in_backlog_per_instance=r.number(
            policy_raw, "step_scale_in_backlog_per_instance", "policy.",
            _default("policy", "step_scale_in_backlog_per_instance")
        ),
        min_capacity=r.integer(policy_raw, "min_capacity", "policy.", _default("policy", "min_capacity")),
        max_capacity=max_capacity,
        target_backlog_per_instance=r.number(
            policy_raw, "target_backlog_per_instance", "policy.", _default("policy", "target_backlog_per_instance"),
            strict=True,
        ),
        scale_out_cooldown=r.number(
            policy_raw, "scale_out_cooldown", "policy.", _default("policy", "scale_out_cooldown")
        ),
        scale_in_cooldown=r.number(policy_raw, "scale_in_cooldown", "policy.", _default("policy", "scale_in_cooldown")),
        wake_up=_flag(r, policy_raw, "wake_up", "policy.", _default("policy", "wake_up")),
        surplus_step=_flag(r, policy_raw, "surplus_step", "policy.", _default("policy", "surplus_step")),
        surplus_minutes=r.integer(
            policy_raw, "surplus_minutes", "policy.", _default("policy", "surplus_minutes"), minimum=1
        ),
        enabled=_flag(r, policy_raw, "enabled", "policy.", _default("policy", "enabled")),
    )


def _flag(r: _Reader, raw: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        r.problems.append(f"{path}{key}: must be true or false, got {value!r}")
        return default
    return value


def _parse_expect(r: _Reader, raw: Mapping[str, Any]) -> Expectations:
    expect_raw = r.mapping(raw, "expect", "")
    _check_keys(r, expect_raw, EXPECT_KEYS, "expect.")
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
    return Expectations(
        lost=r.integer(expect_raw, "lost", "expect.", _default("expect", "lost")),
        unfinished=r.integer(expect_raw, "unfinished", "expect.", _default("expect", "unfinished")),
        final_capacity=final_range,
        final_status=expect_raw.get("final_status"),
    )


def _parse_native(r: _Reader, raw: Mapping[str, Any], endpoints: int) -> tuple[int, ...] | None:
    native = r.mapping(raw, "native", "")
    _check_keys(r, native, NATIVE_KEYS, "native.")
    weights = native.get("weights")
    if weights is None:
        return None
    if (
        not isinstance(weights, Sequence)
        or isinstance(weights, str)
        or len(weights) != endpoints
        or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 0 for w in weights)
        or not any(weights)
    ):
        r.problems.append(f"native.weights: must be {endpoints} whole numbers >= 0 (one per endpoint), not all 0")
        return None
    return tuple(int(w) for w in weights)


def parse_scenario(raw: Any, source: str = "scenario", *, base_dir: Path | None = None) -> Scenario:
    if not isinstance(raw, Mapping):
        raise ScenarioError(source, ["the file must hold a mapping (name, fleet, traffic, ...)"])
    r = _Reader()
    _check_keys(r, raw, TOP_KEYS, "")
    fleet = r.mapping(raw, "fleet", "")
    _check_keys(r, fleet, FLEET_KEYS, "fleet.")
    resource_name = fleet.get("resource_name", _default("fleet", "resource_name"))
    if not isinstance(resource_name, str) or not SERVER_SUFFIX_RE.match(resource_name):
        r.problems.append("fleet.resource_name: must be letters, digits and hyphens")
        resource_name = "fleet"
    strategy = fleet.get("strategy", _default("fleet", "strategy"))
    if strategy not in STRATEGIES:
        r.problems.append(f"fleet.strategy: must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    unit_rps = r.number(
        fleet, "unit_requests_per_second", "fleet.", _default("fleet", "unit_requests_per_second"), strict=True
    )
    endpoints = _parse_endpoints(r, fleet, unit_rps)
    service = _parse_service(r, fleet)
    arrivals = raw.get("arrivals", _default("top", "arrivals"))
    if arrivals not in ARRIVAL_MODELS:
        r.problems.append(f"arrivals: must be one of {', '.join(ARRIVAL_MODELS)}, got {arrivals!r}")
        arrivals = "uniform"
    phases = _parse_traffic(r, raw, base_dir)
    shortages, events = _parse_faults(r, raw, {e.server for e in endpoints})
    policy = _parse_policy(r, raw)
    expect = _parse_expect(r, raw)
    native_weights = _parse_native(r, raw, len(endpoints))
    seed = r.integer(raw, "seed", "", _default("top", "seed"))
    step = r.number(raw, "step_seconds", "", _default("top", "step_seconds"), strict=True)
    scenario = Scenario(
        name=str(raw.get("name", Path(source).stem)),
        description=str(raw.get("description", _default("top", "description"))),
        seed=seed,
        step_seconds=step,
        resource_name=resource_name,
        strategy=str(strategy),
        provisioning_seconds=r.number(
            fleet, "provisioning_seconds", "fleet.", _default("fleet", "provisioning_seconds")
        ),
        scale_in_seconds=r.number(fleet, "scale_in_seconds", "fleet.", _default("fleet", "scale_in_seconds")),
        rollback_seconds=r.number(fleet, "rollback_seconds", "fleet.", _default("fleet", "rollback_seconds")),
        endpoints=tuple(endpoints),
        traffic=tuple(phases),
        drain_seconds=r.number(raw, "drain_minutes", "", _default("top", "drain_minutes")) * 60,
        shortages=tuple(shortages),
        events=events,
        policy=policy,
        expect=expect,
        source=source,
        arrivals=str(arrivals),
        service=service,
        native_weights=native_weights,
    )
    if r.problems:
        raise ScenarioError(source, r.problems)
    return scenario
