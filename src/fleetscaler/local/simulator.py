"""Run a scenario on the local fleet: real handlers, emulated SageMaker and Application Auto Scaling, fleet time.

The workload (every arrival and its service time) is drawn first, from the scenario's seed. Then each step of
fleet time: the emulator catches up (queues drain, updates finish, events reach the endpoint-state handler),
once a minute EventBridge's scheduled event reaches the endpoint-state handler, Application Auto Scaling
evaluates its policies and scales, and the requests arriving during the step go out at their own arrival
times: through the router Lambda (fleetscaler), or straight to InvokeEndpointAsync with a fixed split
(native). What happened is sampled into a `SimulationResult` for the picture, the summary and summary.json.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from botocore.exceptions import ClientError

from fleetscaler.local.backend import Backend, FullStackBackend, make_backend
from fleetscaler.local.oracle import OracleRun, run_oracle
from fleetscaler.local.scenario import Scenario
from fleetscaler.local.sigv4 import send_signed
from fleetscaler.local.workload import RateSegment, rate_arrivals, seeded, spread_counts
from fleetscaler.logic.wrr import pick

Progress = Callable[[str], None]
# The table (desired, actual, weights) is read every few steps: each read is a DynamoDB round trip.
TABLE_SAMPLE_EVERY = 3


class Autoscaler(Protocol):
    def tick(self, now: float) -> None: ...


@dataclass
class EndpointSample:
    instances: int
    desired_instances: int
    status: str
    weight: int
    backlog: int
    routed: int


@dataclass
class Sample:
    t: float  # seconds since the start of the run
    rate: float
    desired: float | None
    actual: float | None
    scaling_status: str
    serving_units: int
    endpoints: list[EndpointSample]


@dataclass
class ScalingActivity:
    started: float
    desired_from: float | None
    desired_to: float
    ended: float | None = None
    outcome: str = "open"
    message: str = ""
    target: str = ""  # the scalable target (native runs have one per endpoint)

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


@dataclass
class SimulationResult:
    scenario: Scenario
    strategy: str
    endpoint_names: list[str]
    samples: list[Sample] = field(default_factory=list)
    sent: int = 0
    routed: int = 0
    rejected: dict[int, int] = field(default_factory=dict)
    completed: int = 0
    failed: int = 0
    still_queued: int = 0
    queue_seconds: list[float] = field(default_factory=list)
    activities: list[ScalingActivity] = field(default_factory=list)
    update_calls: int = 0
    # The endpoint-state Lambda's invocations (events, the schedule) that raised: a run with any is not trusted.
    lambda_errors: int = 0
    rejected_updates: int = 0
    events: dict[str, int] = field(default_factory=dict)
    autoscaling: str = ""
    checks: list[tuple[str, bool]] = field(default_factory=list)
    mode: str = "fleetscaler"  # or "native"
    backend: str = "fast"  # or "full" (the whole local stack over HTTP)
    arrivals: list[float] = field(default_factory=list)  # seconds from the start, every request sent
    works: list[float] = field(default_factory=list)  # service time of each, in multiples of the mean
    # Each cold start (a request arriving while no capacity serves): seconds until capacity served, None if never.
    cold_starts: list[float | None] = field(default_factory=list)
    wall_seconds: float = 0.0
    completion_times: list[float] = field(default_factory=list)  # seconds from the start, as queue_seconds

    @functools.cached_property
    def oracle(self) -> OracleRun:
        return run_oracle(self.scenario, self.arrivals, self.works)

    @property
    def first_capacity_seconds(self) -> float | None:
        """From the first request of a cold start to the first InService capacity; the longest when the fleet
        started cold more than once; None if capacity never came or the fleet never started cold."""
        if not self.cold_starts or any(c is None for c in self.cold_starts):
            return None
        return max(c for c in self.cold_starts if c is not None)

    @property
    def failed_activities(self) -> int:
        return sum(1 for a in self.activities if a.outcome == "Failed")

    @property
    def lost(self) -> int:
        """Requests that will never have a result: refused by the router or expired in a queue."""
        return sum(self.rejected.values()) + self.failed

    @property
    def unfinished(self) -> int:
        """Requests accepted but still queued when the run ended (async: they would complete later)."""
        return self.still_queued

    @property
    def ok(self) -> bool:
        return all(passed for _, passed in self.checks)

    def percentile(self, q: float) -> float | None:
        return nearest_rank(self.queue_seconds, q)

    def instance_minutes(self) -> dict[str, float]:
        step = self.scenario.step_seconds / 60
        return {
            name: sum(s.endpoints[i].instances for s in self.samples) * step
            for i, name in enumerate(self.endpoint_names)
        }

    def unit_minutes(self) -> float:
        step = self.scenario.step_seconds / 60
        return sum(s.serving_units for s in self.samples) * step

    def oracle_unit_minutes(self) -> float:
        """Unit-minutes of the oracle (`fleetscaler.local.oracle`) on this run's very requests."""
        return self.oracle.unit_minutes

    def load_step_responses(self) -> list[tuple[float, float | None]]:
        """For each rise of the load: (when the load reached its new level, seconds until the InService capacity
        met the new demand, or None if it did not before the load fell again)."""
        scenario = self.scenario
        ceiling = scenario.capacity_range[1]  # the most Application Auto Scaling may ask for
        responses: list[tuple[float, float | None]] = []
        previous_rate = scenario.traffic[0].rate_to if scenario.traffic else 0.0
        for phase in scenario.traffic[1:]:
            if phase.kind != "rate":
                continue
            peak = max(phase.rate_from, phase.rate_to)
            if peak > previous_rate * 1.2 and peak > 0:
                need = min(ceiling, math.ceil(peak / scenario.unit_throughput - 1e-9))
                level = [s for s in self.samples if s.t >= phase.start and s.rate >= peak * 0.999]
                if level:
                    since = level[0].t
                    reached: float | None = None
                    for sample in self.samples:
                        if sample.t < since:
                            continue
                        if sample.rate < peak * 0.8:
                            break
                        if sample.serving_units >= need:
                            reached = sample.t - since
                            break
                    responses.append((since, reached))
            previous_rate = phase.rate_to
        return responses

    def peak_overshoot(self) -> float:
        """Largest InService capacity above what Application Auto Scaling asked for (units): what placement
        over-provisions. The desired capacity of the last scale-in delay counts, so that SageMaker taking
        `scale_in_seconds` to remove instances is not counted as overshoot."""
        scenario = self.scenario
        window = scenario.scale_in_seconds + 2 * scenario.step_seconds + 60
        lookback = math.ceil(window / scenario.step_seconds)
        gaps = [0.0]
        for i, sample in enumerate(self.samples):
            recent = [s.desired for s in self.samples[max(0, i - lookback) : i + 1] if s.desired is not None]
            if recent:
                gaps.append(sample.serving_units - max(recent))
        return max(gaps)


def nearest_rank(values: list[float] | tuple[float, ...], q: float) -> float | None:
    """The q-quantile by nearest rank (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class _LambdaContext:
    function_name = "fleetscaler-local"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:fleetscaler-local"
    aws_request_id = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def router_event(fleet: str, index: int, now_ms: int) -> dict[str, Any]:
    """An API Gateway REST proxy event as the router's API delivers it."""
    return {
        "resource": "/endpoints/{EndpointName}",
        "path": f"/endpoints/{fleet}",
        "httpMethod": "POST",
        "headers": request_headers(index),
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": {"EndpointName": fleet},
        "requestContext": {
            "requestId": f"local-{index}",
            "stage": "local",
            "resourcePath": "/endpoints/{EndpointName}",
            "httpMethod": "POST",
            "path": f"/local/endpoints/{fleet}",
            "requestTimeEpoch": now_ms,
        },
        "body": None,
        "isBase64Encoded": False,
    }


def request_headers(index: int) -> dict[str, str]:
    """What one simulated caller sends: an S3 input and the request's own InferenceId (`req-000123`)."""
    return {
        "InputLocation": f"s3://fleetscaler-local-inputs/payload-{index}.json",
        "ContentType": "application/json",
        "InferenceId": inference_id(index),
    }


def inference_id(index: int) -> str:
    return f"req-{index:06d}"


SCHEDULE_RULE_ARN = "arn:aws:events:us-east-1:000000000000:rule/fleetscaler-local-every-minute"


def scheduled_event(when: float) -> dict[str, Any]:
    """What an EventBridge `rate(1 minute)` rule delivers to its target (the endpoint-state Lambda)."""
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SCHEDULE_RULE_ARN}#{int(when)}")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [SCHEDULE_RULE_ARN],
        "detail": {},
    }


def endpoint_state_sink() -> Callable[[dict[str, Any]], None] | None:
    """The endpoint-state Lambda as EventBridge's target."""
    from fleetscaler.handlers import endpoint_state

    context = _LambdaContext()

    def deliver(event: dict[str, Any]) -> None:
        endpoint_state.handler(event, context)  # type: ignore[arg-type]

    return deliver


@dataclass(frozen=True)
class Workload:
    """Every request of a run, known before it starts: arrival times (seconds from the start) and works."""

    arrivals: tuple[float, ...]
    works: tuple[float, ...]


def build_workload(scenario: Scenario) -> Workload:
    """The scenario's arrivals and service-time multipliers, from RNGs seeded per purpose."""
    arrival_rng = seeded(scenario.seed, "arrivals")
    times: list[float] = []
    rates: list[RateSegment] = []

    def flush() -> None:
        times.extend(rate_arrivals(rates, scenario.arrivals, arrival_rng))
        rates.clear()

    for phase in scenario.traffic:
        if phase.kind == "rate":
            rates.append(RateSegment(phase.start, phase.end, phase.rate_from, phase.rate_to))
            continue
        flush()
        if phase.batch:
            times.extend([phase.start] * phase.batch)
        elif phase.trace is not None and phase.trace.times is not None:
            times.extend(phase.start + t for t in phase.trace.times)
        elif phase.trace is not None and phase.trace.counts is not None:
            times.extend(
                spread_counts(phase.start, phase.trace.counts, phase.trace.period, scenario.arrivals, arrival_rng)
            )
    flush()
    times.sort()
    service = scenario.service.sampler(seeded(scenario.seed, "service"))
    return Workload(tuple(times), tuple(next(service) for _ in times))


AutoscalerFactory = Callable[[Any, Scenario], tuple[Autoscaler | None, str]]
MODES = ("fleetscaler", "native")


class Simulation:
    """One run of a scenario: `mode` fleetscaler (the router, scaling API and endpoint-state Lambdas with
    Application Auto Scaling on the fleet) or native (per-endpoint autoscaling, a fixed client split, no
    fleetscaler Lambda); in process (default) or over the whole local stack (`full_stack`)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        mode: str = "fleetscaler",
        full_stack: bool = False,
        autoscaler_factory: AutoscalerFactory | None = None,
        progress: Progress | None = None,
        progress_every: float = 120.0,
        on_start: Callable[[Backend, str], None] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.scenario = scenario
        self.mode = mode
        self.full_stack = full_stack
        self.on_start = on_start
        self.autoscaler_factory = autoscaler_factory or (
            native_autoscaler if mode == "native" else default_autoscaler
        )
        self.progress = progress
        self.progress_every = progress_every

    def run(self, lambda_log: TextIO | None = None) -> SimulationResult:
        """Run the scenario. What the Lambdas print (JSON logs, EMF metrics) goes to `lambda_log`."""
        started = time.monotonic()
        workload = build_workload(self.scenario)
        backend = make_backend(self.scenario, full_stack=self.full_stack)
        with backend, contextlib.redirect_stdout(lambda_log or io.StringIO()):
            result = self._run(backend, workload)
        result.wall_seconds = time.monotonic() - started
        return result

    def _send(self, backend: Backend, index: int, now: float) -> tuple[int, str]:
        """One request, as the run's client sends it: the endpoint it went to (or the error) and the status."""
        scenario = self.scenario
        if self.mode == "native":
            names = self._endpoint_names
            name = names[pick(self._client_weights, index)]
            headers = request_headers(index)
            try:
                backend.sagemaker_runtime.invoke_endpoint_async(
                    EndpointName=name,
                    InputLocation=headers["InputLocation"],
                    ContentType=headers["ContentType"],
                    InferenceId=headers["InferenceId"],
                )
            except ClientError as exc:
                return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)), ""
            return 202, name
        if isinstance(backend, FullStackBackend):
            answer = send_signed(
                "POST",
                f"{backend.stack.router_url}/endpoints/{scenario.resource_name}",
                backend.credentials,
                headers=request_headers(index),
            )
            status, body = answer.status, answer.body.decode("utf-8", "replace")
        else:
            from fleetscaler.handlers.router import handler as router

            response = router(router_event(scenario.resource_name, index, int(now * 1000)), self._context)  # type: ignore[arg-type]
            status, body = int(response["statusCode"]), response["body"]
        return status, json.loads(body)["endpointName"] if status == 202 else ""

    @staticmethod
    def _counting_failures(
        deliver: Callable[[dict[str, Any]], None] | None, errors: list[int]
    ) -> Callable[[dict[str, Any]], None] | None:
        """The Lambda as EventBridge calls it: a failure is logged and counted (EventBridge would retry, then
        drop it), and the run goes on."""
        if deliver is None:
            return None

        def counted(event: dict[str, Any]) -> None:
            try:
                deliver(event)
            except Exception:
                errors[0] += 1
                logging.getLogger(__name__).exception("endpoint-state Lambda failed on a %s", event.get("detail-type"))

        return counted

    def _run(self, backend: Backend, workload: Workload) -> SimulationResult:
        scenario = self.scenario
        emulator = backend.emulator
        native = self.mode == "native"
        self._context = _LambdaContext()
        self._endpoint_names = names = [scenario.endpoint_name(e.server) for e in scenario.endpoints]
        self._client_weights = list(scenario.client_weights)
        works = {inference_id(i): w for i, w in enumerate(workload.works)}
        emulator.work_for = lambda inference: works.get(inference, 1.0)
        result_errors = [0]
        sink = None if native else self._counting_failures(endpoint_state_sink(), result_errors)
        emulator.event_sink = sink
        autoscaler, autoscaling = self.autoscaler_factory(backend, scenario)
        if self.on_start is not None:
            self.on_start(backend, autoscaling)
        result = SimulationResult(
            scenario, scenario.strategy, names, autoscaling=autoscaling, mode=self.mode, backend=backend.mode,
            arrivals=list(workload.arrivals), works=list(workload.works),
        )
        store = None if native else _table_reader()
        start = backend.clock.now()
        step = scenario.step_seconds
        steps = math.ceil(scenario.duration / step)
        open_activity: ScalingActivity | None = None
        last_desired: float | None = None
        next_progress = 0.0
        next_schedule = 0.0
        table: tuple[Any, dict[str, Any]] = (None, {})
        server_of = {name: e.server for name, e in zip(names, scenario.endpoints, strict=True)}
        units_of = {name: e.capacity_units for name, e in zip(names, scenario.endpoints, strict=True)}
        arrivals = workload.arrivals
        next_request = 0
        cold_since: float | None = None
        serving = sum(e.initial_instances * e.capacity_units for e in scenario.endpoints)
        for index in range(steps + 1):
            t = index * step
            now = start + t
            backend.clock.set(now)
            for shortage in scenario.shortages:
                emulator.set_capacity_shortage(
                    scenario.endpoint_name(shortage.server), shortage.start <= t < shortage.end
                )
            emulator.advance_to(now)
            if sink is not None and t >= next_schedule:
                sink(scheduled_event(now))
                next_schedule += 60.0
            if autoscaler is not None:
                autoscaler.tick(now)
            snapshot = emulator.snapshot()
            serving = sum(e.current_count * e.capacity_units for e in snapshot)
            if cold_since is not None and serving > 0:
                result.cold_starts.append(t - cold_since)
                cold_since = None
            routed = dict.fromkeys(names, 0)
            until = t + step if index < steps else math.inf
            while next_request < len(arrivals) and arrivals[next_request] < until:
                arrived = arrivals[next_request]
                backend.clock.set(start + max(t, arrived))
                if serving == 0 and cold_since is None:
                    cold_since = arrived
                status, endpoint = self._send(backend, next_request, start + arrived)
                next_request += 1
                result.sent += 1
                if status == 202:
                    result.routed += 1
                    routed[endpoint] += 1
                else:
                    result.rejected[status] = result.rejected.get(status, 0) + 1
            if store is not None and (index % TABLE_SAMPLE_EVERY == 0 or not result.samples):
                table = store()
            if native:
                desired = float(sum(e.desired_count * units_of[e.name] for e in snapshot))
                table = (_NativeDimension(desired, float(serving)), {"servers": [server_of[n] for n in names],
                                                                    "weights": self._client_weights})
            sample = self._sample(t, scenario.rate_at(t), snapshot, table, routed, server_of)
            result.samples.append(sample)
            # Scaling activities as Application Auto Scaling sees them: a new desired opens one, status ends it.
            if sample.desired is not None and sample.desired != last_desired and last_desired is not None:
                if open_activity is not None:
                    open_activity.ended, open_activity.outcome = t, "superseded"
                open_activity = ScalingActivity(t, last_desired, sample.desired)
                result.activities.append(open_activity)
            last_desired = sample.desired if sample.desired is not None else last_desired
            if open_activity is not None and sample.scaling_status in ("Successful", "Failed"):
                open_activity.ended, open_activity.outcome = t, sample.scaling_status
                open_activity = None
            if self.progress is not None and t >= next_progress:
                self.progress(progress_line(sample, names))
                next_progress += self.progress_every
        if cold_since is not None:
            result.cold_starts.append(None)
        emulator.advance_to(backend.clock.now())
        completions = [c for c in emulator.completed if c.inference_id.startswith("req-")]
        result.completed = sum(1 for c in completions if not c.failed)
        result.failed = sum(1 for c in completions if c.failed)
        result.queue_seconds = [c.queue_seconds for c in completions if not c.failed]
        result.completion_times = [c.completed_at - start for c in completions if not c.failed]
        result.still_queued = sum(emulator.endpoint(n).backlog for n in names)
        result.update_calls = emulator.update_calls
        result.rejected_updates = sum(emulator.endpoint(n).rejected_updates for n in names)
        result.events = {
            "emitted": emulator.events_emitted,
            "lost": emulator.events_lost,
            "duplicated": emulator.events_duplicated,
            "delivered": emulator.events_delivered,
        }
        result.lambda_errors = result_errors[0]
        scalers: list[Any] = (
            autoscaler.targets if isinstance(autoscaler, NativeAutoscaling) else [autoscaler] if autoscaler else []
        )
        if scalers and all(hasattr(scaler, "activities") for scaler in scalers):
            reported = [a for scaler in scalers for a in scaler.activities]
            result.activities = sorted(
                (
                    ScalingActivity(
                        started=a.start_time - start,
                        desired_from=float(a.previous_capacity),
                        desired_to=float(a.desired_capacity),
                        ended=None if a.end_time is None else a.end_time - start,
                        outcome=a.status_code,
                        message=a.status_message if a.status_code == "Failed" else "",
                        target=a.resource_id if native else "",
                    )
                    for a in reported
                ),
                key=lambda a: a.started,
            )
        result.checks = expectation_checks(result)
        return result

    @staticmethod
    def _sample(
        t: float,
        rate: float,
        snapshot: list[Any],
        table: tuple[Any, dict[str, Any]],
        routed: dict[str, int],
        server_of: dict[str, str],
    ) -> Sample:
        dimension, config = table
        servers = [str(s) for s in config.get("servers", [])]
        weights = [int(w) for w in config.get("weights", [])]
        endpoints = []
        serving = 0
        for endpoint in snapshot:
            server = server_of[endpoint.name]
            weight = weights[servers.index(server)] if server in servers and len(weights) == len(servers) else 0
            serving += endpoint.current_count * endpoint.capacity_units
            endpoints.append(
                EndpointSample(
                    instances=endpoint.current_count,
                    desired_instances=endpoint.desired_count,
                    status=endpoint.status,
                    weight=weight,
                    backlog=endpoint.backlog,
                    routed=routed.get(endpoint.name, 0),
                )
            )
        return Sample(
            t=t,
            rate=rate,
            desired=_number(None if dimension is None else dimension.desired_capacity),
            actual=_number(None if dimension is None else dimension.actual_capacity),
            scaling_status=(dimension.scaling_status if dimension is not None else None) or "",
            serving_units=serving,
            endpoints=endpoints,
        )


@dataclass(frozen=True)
class _NativeDimension:
    """A native run has no fleet dimension: its desired capacity is the endpoints' desired counts in units."""

    desired_capacity: float
    actual_capacity: float
    scaling_status: str = ""


def progress_line(sample: Sample, names: list[str]) -> str:
    minutes, seconds = divmod(int(sample.t), 60)
    desired = "-" if sample.desired is None else f"{sample.desired:g}"
    actual = "-" if sample.actual is None else f"{sample.actual:g}"
    parts = [
        f"{minutes:3d}:{seconds:02d}",
        f"load {sample.rate:4.2f}/s",
        f"desired {desired:>3} actual {actual:>3} {sample.scaling_status or '-':<10}",
    ]
    for name, endpoint in zip(names, sample.endpoints, strict=True):
        status = {"InService": "ok", "Updating": "upd", "RollingBack": "RB!", "Failed": "FAIL"}.get(
            endpoint.status, endpoint.status
        )
        parts.append(
            f"{name.rsplit('-', 1)[-1]}: {endpoint.instances:2d}i w{endpoint.weight:<2d} {status:<3} "
            f"q{endpoint.backlog:<4d}"
        )
    return " | ".join(parts)


def expectation_checks(result: SimulationResult) -> list[tuple[str, bool]]:
    expect = result.scenario.expect
    checks = [
        (f"requests lost: {result.lost} (allowed {expect.lost})", result.lost <= expect.lost),
        (
            f"requests still queued at the end: {result.unfinished} (allowed {expect.unfinished})",
            result.unfinished <= expect.unfinished,
        ),
        (
            f"requests sent = completed + lost + still queued: {result.sent} = "
            f"{result.completed} + {result.lost} + {result.unfinished}",
            result.sent == result.completed + result.lost + result.unfinished,
        ),
        (f"Lambda errors: {result.lambda_errors} (allowed 0)", result.lambda_errors == 0),
    ]
    last = result.samples[-1] if result.samples else None
    if expect.final_capacity is not None and last is not None:
        low, high = expect.final_capacity
        wanted = f"{low}" if low == high else f"{low}..{high}"
        checks.append(
            (
                f"final InService capacity: {last.serving_units} units (scenario says {wanted})",
                low <= last.serving_units <= high,
            )
        )
        if last.desired is not None:
            checks.append(
                (f"final desired capacity: {last.desired:g} (scenario says {wanted})", low <= last.desired <= high)
            )
    if expect.final_status and last is not None:
        checks.append(
            (
                f"final scaling status: {last.scaling_status or '-'} (scenario says {expect.final_status})",
                last.scaling_status == expect.final_status,
            )
        )
    return checks


def template_parameters(scenario: Scenario, max_capacity: int) -> dict[str, Any]:
    """The fleet template's parameters for this scenario's policy (what `fleetscaler deploy` would be given)."""
    from fleetscaler.local.stack import LOCAL_METRICS_NAMESPACE

    policy = scenario.policy
    return {
        "ResourceName": scenario.resource_name,
        "EndpointSuffixes": ",".join(e.server for e in scenario.endpoints),
        "MinCapacity": policy.min_capacity,
        "MaxCapacity": max_capacity,
        "TargetBacklogPerInstance": policy.target_backlog_per_instance,
        "StepScaleInBacklogPerInstance": policy.step_scale_in_backlog_per_instance,
        "ScaleOutCooldown": policy.scale_out_cooldown,
        "ScaleInCooldown": policy.scale_in_cooldown,
        "ScalingPolicyType": policy.type,
        "SurplusScaleInMinutes": policy.surplus_minutes,
        "MetricsNamespace": LOCAL_METRICS_NAMESPACE,
    }


# The template's policy that wakes a fleet at zero (and answers bursts): `wake_up: false` leaves it out; and the
# one that releases a surplus after five minutes: `surplus_step: false` leaves it out.
SHORTFALL_POLICY = "ShortfallScaleOutPolicy"
SURPLUS_POLICY = "SurplusScaleInPolicy"


def fleet_policies(scenario: Scenario, max_capacity: int) -> list[Any]:
    """The Application Auto Scaling policies a stack deployed from cfn/fleet-autoscaler.yaml has, for this
    scenario's parameters: read from the template's own resources, so the simulator runs what a stack runs."""
    from fleetscaler.deploy.template import fleet_template
    from fleetscaler.deploy.template.evaluate import TemplateView
    from fleetscaler.local.autoscaling import policies_from_resources

    view = TemplateView(fleet_template(), template_parameters(scenario, max_capacity))
    policies = view.resources_of_type("AWS::ApplicationAutoScaling::ScalingPolicy")
    if not scenario.policy.wake_up:
        policies.pop(SHORTFALL_POLICY, None)
    if not scenario.policy.surplus_step:
        policies.pop(SURPLUS_POLICY, None)
    return policies_from_resources(policies, view.resources_of_type("AWS::CloudWatch::Alarm"))


def default_autoscaler(stack: Any, scenario: Scenario) -> tuple[Autoscaler | None, str]:
    """The Application Auto Scaling emulator with the template's policies for the scenario's parameters, calling
    the scaling API with signed requests (over HTTP through the local gateway, or in process: the stack's
    `scaling_transport`): target tracking (or the step pair) on the fleet's BacklogPerCapacityUnit and, when
    `wake_up`, the shortfall step policy that wakes a fleet at zero sized to its queue."""
    if not scenario.policy.enabled:
        return None, "off (scenario policy disabled)"
    aas_module = importlib.import_module("fleetscaler.local.autoscaling")
    policy = scenario.policy
    minimum, maximum = scenario.capacity_range
    aas = aas_module.ApplicationAutoScaling(
        stack.scaling_resource_id,
        minimum,
        maximum,
        stack.credentials,
        cloudwatch=stack.cloudwatch,
        poll_interval=max(scenario.step_seconds, 30.0),
        transport=stack.scaling_transport,
    )
    for scaling_policy in fleet_policies(scenario, maximum):
        aas.put_scaling_policy(scaling_policy)
    if policy.type == "StepScaling":
        described = (
            f"step scaling on the fleet's backlog per unit: out at >= {policy.target_backlog_per_instance:g}, "
            f"in below {policy.step_scale_in_backlog_per_instance:g}"
        )
    else:
        described = f"target tracking: fleet backlog per unit {policy.target_backlog_per_instance:g}"
    if policy.wake_up:
        described += ", shortfall step (wake-up and bursts)"
    if policy.surplus_step:
        described += ", surplus step"
    return aas, described + f", capacity {aas.min_capacity}..{aas.max_capacity}"


class NativeAutoscaling:
    """One Application Auto Scaling target per endpoint, ticked together."""

    def __init__(self, targets: list[Any]) -> None:
        self.targets = targets

    def tick(self, now: float) -> None:
        for target in self.targets:
            target.tick(now)


# AWS's documented wake-up policy for an endpoint at zero: +1 instance, cooldown 300 s (aws-contracts.md).
NATIVE_WAKE_UP_COOLDOWN = 300.0


def native_autoscaler(backend: Any, scenario: Scenario) -> tuple[Autoscaler | None, str]:
    """What users run without fleetscaler: per endpoint its own scalable target
    (`sagemaker:variant:DesiredInstanceCount`, 0..max_instances), target tracking on its own
    ApproximateBacklogSizePerInstance (the scenario's target and cooldowns) and AWS's wake-up step policy on its
    own HasBacklogWithoutCapacity."""
    if not scenario.policy.enabled:
        return None, "off (scenario policy disabled)"
    from fleetscaler.local import autoscaling as aas_module

    policy = scenario.policy
    targets = []
    for endpoint in scenario.endpoints:
        name = scenario.endpoint_name(endpoint.server)
        target = aas_module.ApplicationAutoScaling(
            "",
            0,
            endpoint.max_instances if endpoint.max_instances is not None else 100,
            backend.credentials,
            cloudwatch=backend.cloudwatch,
            poll_interval=max(scenario.step_seconds, 30.0),
            variant=aas_module.SageMakerVariant(backend.sagemaker_control, name),
        )
        metric = aas_module.MetricMath(
            (aas_module.MetricStat("AWS/SageMaker", "ApproximateBacklogSizePerInstance", (("EndpointName", name),)),),
            None,
        )
        target.put_scaling_policy(
            aas_module.TargetTrackingPolicy(
                f"{name}-backlog",
                metric,
                policy.target_backlog_per_instance,
                scale_out_cooldown=policy.scale_out_cooldown,
                scale_in_cooldown=policy.scale_in_cooldown,
            )
        )
        target.put_scaling_policy(
            aas_module.scale_from_zero_policy(
                scenario.resource_name, endpoint.server, name=f"{name}-wake-up", cooldown=NATIVE_WAKE_UP_COOLDOWN
            )
        )
        targets.append(target)
    split = ":".join(str(w) for w in scenario.client_weights)
    return NativeAutoscaling(targets), (
        f"native: per endpoint, target tracking on its own backlog per instance {policy.target_backlog_per_instance:g}"
        f" and +1 wake-up on its own HasBacklogWithoutCapacity; client split {split}"
    )


def _table_reader() -> Callable[[], tuple[Any, dict[str, Any]]]:
    from fleetscaler.dal.store import get_store

    store = get_store()
    return lambda: (store.get_dimension(), store.get_server_config() or {})


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
