"""Run a scenario on the local fleet: real handlers, emulated SageMaker and Application Auto Scaling, fleet time.

Each step of fleet time: the emulator catches up (queues drain, updates finish, events reach the endpoint-state
handler), Application Auto Scaling evaluates its policies and calls the scaling API, and the step's requests go
through the router Lambda. What happened is sampled into a `SimulationResult` for the picture and the summary.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from fleetscaler.local.sagemaker_emulator import EventFaults
from fleetscaler.local.scenario import PolicySpec, Scenario
from fleetscaler.local.stack import LocalStack

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
    rejected_updates: int = 0
    events: dict[str, int] = field(default_factory=dict)
    autoscaling: str = ""
    checks: list[tuple[str, bool]] = field(default_factory=list)

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
        if not self.queue_seconds:
            return None
        ordered = sorted(self.queue_seconds)
        index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
        return ordered[index]

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
        """An oracle that knows demand: capacity ceil(rate / unit throughput), ordered one provisioning delay
        ahead (paid while it provisions), released the moment it is not needed. The floor no policy beats."""
        scenario = self.scenario
        step = scenario.step_seconds
        ahead = max(1, math.ceil(scenario.provisioning_seconds / step))
        needs = [math.ceil(s.rate / scenario.unit_throughput - 1e-9) for s in self.samples]
        paid = [max(needs[i : i + ahead + 1]) for i in range(len(needs))]
        return sum(paid) * step / 60

    def load_step_responses(self) -> list[tuple[float, float | None]]:
        """For each rise of the load: (when the load reached its new level, seconds until the InService capacity
        met the new demand, or None if it did not before the load fell again)."""
        scenario = self.scenario
        caps = sum(e.capacity_units * (e.max_instances or 10**6) for e in scenario.endpoints)
        ceiling = min(caps, scenario.policy.max_capacity if scenario.policy.max_capacity is not None else caps)
        responses: list[tuple[float, float | None]] = []
        previous_rate = scenario.traffic[0].rate_to if scenario.traffic else 0.0
        for phase in scenario.traffic[1:]:
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
        "headers": {
            "InputLocation": f"s3://fleetscaler-local-inputs/payload-{index}.json",
            "ContentType": "application/json",
            "InferenceId": f"req-{index:06d}",
        },
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


def _post_through_gateway(stack: LocalStack, fleet: str, index: int) -> tuple[int, str]:
    """One caller's request: SigV4-signed HTTP to the local router API, as curl or an SDK would send it."""
    from fleetscaler.local.sigv4 import send_signed

    headers = {k: v for k, v in router_event(fleet, index, 0)["headers"].items()}
    answer = send_signed("POST", f"{stack.router_url}/endpoints/{fleet}", stack.credentials, headers=headers)
    return answer.status, answer.body.decode("utf-8", "replace")


def endpoint_state_sink() -> Callable[[dict[str, Any]], None] | None:
    """The endpoint-state Lambda as EventBridge's target, when the scaling engine is installed."""
    try:
        endpoint_state = importlib.import_module("fleetscaler.handlers.endpoint_state")
    except ImportError:
        return None
    context = _LambdaContext()

    def deliver(event: dict[str, Any]) -> None:
        endpoint_state.handler(event, context)

    return deliver


AutoscalerFactory = Callable[[LocalStack, Scenario], tuple[Autoscaler | None, str]]


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        *,
        autoscaler_factory: AutoscalerFactory | None = None,
        progress: Progress | None = None,
        progress_every: float = 120.0,
        through_gateway: bool = False,
        on_start: Callable[[LocalStack, str], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.through_gateway = through_gateway
        self.on_start = on_start
        self.autoscaler_factory = autoscaler_factory or default_autoscaler
        self.progress = progress
        self.progress_every = progress_every

    def stack(self) -> LocalStack:
        s = self.scenario
        return LocalStack(
            resource_name=s.resource_name,
            table_name=f"fleetscaler-{s.resource_name}",
            endpoints=s.endpoints,
            strategy=s.strategy,
            provisioning_seconds=s.provisioning_seconds,
            scale_in_seconds=s.scale_in_seconds,
            rollback_seconds=s.rollback_seconds,
            seed=s.seed,
            event_faults=EventFaults(s.events.loss, s.events.duplicate, s.events.delay_seconds),
        )

    def run(self, lambda_log: TextIO | None = None) -> SimulationResult:
        """Run the scenario. What the Lambdas print (JSON logs, EMF metrics) goes to `lambda_log`."""
        with self.stack() as stack, contextlib.redirect_stdout(lambda_log or io.StringIO()):
            return self._run(stack)

    def _run(self, stack: LocalStack) -> SimulationResult:
        from fleetscaler.dal.store import get_store
        from fleetscaler.handlers.router import handler as router

        scenario = self.scenario
        emulator = stack.emulator
        assert emulator is not None
        emulator.event_sink = endpoint_state_sink()
        autoscaler, autoscaling = self.autoscaler_factory(stack, scenario)
        if self.on_start is not None:
            self.on_start(stack, autoscaling)
        names = [scenario.endpoint_name(e.server) for e in scenario.endpoints]
        result = SimulationResult(scenario, scenario.strategy, names, autoscaling=autoscaling)
        store = get_store()
        context = _LambdaContext()
        start = stack.clock.now()
        step = scenario.step_seconds
        steps = math.ceil(scenario.duration / step)
        credit = 0.0
        open_activity: ScalingActivity | None = None
        last_desired: float | None = None
        next_progress = 0.0
        previous: Sample | None = None
        table: tuple[Any, dict[str, Any]] = (None, {})
        server_of = {name: e.server for name, e in zip(names, scenario.endpoints, strict=True)}
        for index in range(steps + 1):
            t = index * step
            now = start + t
            stack.clock.set(now)
            for shortage in scenario.shortages:
                emulator.set_capacity_shortage(
                    scenario.endpoint_name(shortage.server), shortage.start <= t < shortage.end
                )
            emulator.advance_to(now)
            if autoscaler is not None:
                autoscaler.tick(now)
            rate = scenario.rate_at(t)
            credit += rate * step if index < steps else 0.0
            routed = dict.fromkeys(names, 0)
            while credit >= 1.0:
                credit -= 1.0
                if self.through_gateway:
                    status, body = _post_through_gateway(stack, scenario.resource_name, result.sent)
                else:
                    event = router_event(scenario.resource_name, result.sent, int(now * 1000))
                    response = router(event, context)  # type: ignore[arg-type]
                    status, body = int(response["statusCode"]), response["body"]
                result.sent += 1
                if status == 202:
                    result.routed += 1
                    routed[json.loads(body)["endpointName"]] += 1
                else:
                    result.rejected[status] = result.rejected.get(status, 0) + 1
            if index % TABLE_SAMPLE_EVERY == 0 or previous is None:
                table = _read_table(store)
            sample = self._sample(t, rate, emulator, table, routed, server_of)
            previous = sample
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
        emulator.advance_to(stack.clock.now())
        completions = [c for c in emulator.completed if c.inference_id.startswith("req-")]
        result.completed = sum(1 for c in completions if not c.failed)
        result.failed = sum(1 for c in completions if c.failed)
        result.queue_seconds = [c.queue_seconds for c in completions if not c.failed]
        result.still_queued = sum(emulator.endpoint(n).backlog for n in names)
        result.update_calls = emulator.update_calls
        result.rejected_updates = sum(emulator.endpoint(n).rejected_updates for n in names)
        result.events = {
            "emitted": emulator.events_emitted,
            "lost": emulator.events_lost,
            "duplicated": emulator.events_duplicated,
            "delivered": emulator.events_delivered,
        }
        if autoscaler is not None and hasattr(autoscaler, "activities"):
            result.activities = [
                ScalingActivity(
                    started=a.start_time - start,
                    desired_from=float(a.previous_capacity),
                    desired_to=float(a.desired_capacity),
                    ended=None if a.end_time is None else a.end_time - start,
                    outcome=a.status_code,
                    message=a.status_message if a.status_code == "Failed" else "",
                )
                for a in autoscaler.activities
            ]
        result.checks = expectation_checks(result)
        return result

    @staticmethod
    def _sample(
        t: float,
        rate: float,
        emulator: Any,
        table: tuple[Any, dict[str, Any]],
        routed: dict[str, int],
        server_of: dict[str, str],
    ) -> Sample:
        emulator_snapshot = {s.name: s for s in emulator.snapshot()}
        dimension, config = table
        servers = [str(s) for s in config.get("servers", [])]
        weights = [int(w) for w in config.get("weights", [])]
        endpoints = []
        serving = 0
        for name, snapshot in emulator_snapshot.items():
            server = server_of[name]
            weight = weights[servers.index(server)] if server in servers and len(weights) == len(servers) else 0
            serving += snapshot.current_count * snapshot.capacity_units
            endpoints.append(
                EndpointSample(
                    instances=snapshot.current_count,
                    desired_instances=snapshot.desired_count,
                    status=snapshot.status,
                    weight=weight,
                    backlog=snapshot.backlog,
                    routed=routed.get(name, 0),
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


def default_autoscaler(stack: LocalStack, scenario: Scenario) -> tuple[Autoscaler | None, str]:
    """The Application Auto Scaling emulator with the scenario's policies, calling the scaling API over
    signed HTTP through the local gateway: target tracking on the fleet's backlog per instance (the template's
    metric math) and, when `wake_up`, the step policy on HasBacklogWithoutCapacity that wakes a fleet at zero."""
    if not scenario.policy.enabled:
        return None, "off (scenario policy disabled)"
    try:
        aas_module = importlib.import_module("fleetscaler.local.autoscaling")
        importlib.import_module("fleetscaler.handlers.scaling_api")
    except ImportError as exc:
        return None, f"unavailable ({exc.name} is not installed): the fleet keeps its size"
    import boto3

    policy = scenario.policy
    servers = [e.server for e in scenario.endpoints]
    ceiling = sum(e.capacity_units * (100 if e.max_instances is None else e.max_instances) for e in scenario.endpoints)
    aas = aas_module.ApplicationAutoScaling(
        stack.scaling_resource_id,
        policy.min_capacity,
        policy.max_capacity if policy.max_capacity is not None else ceiling,
        stack.credentials,
        cloudwatch=boto3.client("cloudwatch", endpoint_url=stack.moto_url),
        poll_interval=max(scenario.step_seconds, 30.0),
    )
    backlog = aas_module.fleet_backlog_metric(scenario.resource_name, servers)
    if policy.type == "StepScaling":
        for step_policy in step_scaling_policies(aas_module, backlog, policy):
            aas.put_scaling_policy(step_policy)
        described = (
            f"step scaling: out at backlog per instance >= {policy.target_backlog_per_instance:g}, "
            f"in below {policy.step_scale_in_backlog_per_instance:g}"
        )
    else:
        aas.put_scaling_policy(
            aas_module.TargetTrackingPolicy(
                "fleet-backlog",
                backlog,
                policy.target_backlog_per_instance,
                scale_out_cooldown=policy.scale_out_cooldown,
                scale_in_cooldown=policy.scale_in_cooldown,
            )
        )
        described = f"target tracking: backlog per instance {policy.target_backlog_per_instance:g}"
    if policy.wake_up:
        aas.put_scaling_policy(
            aas_module.scale_from_zero_policy(scenario.resource_name, servers[0], cooldown=policy.scale_out_cooldown)
        )
        described += f", wake-up on {scenario.endpoint_name(servers[0])}"
    return aas, described + f", capacity {aas.min_capacity}..{aas.max_capacity}"


def step_scaling_policies(aas_module: Any, backlog: Any, policy: PolicySpec) -> list[Any]:
    """The template's StepScaling pair on the fleet's MAX backlog per instance: +1 from the threshold, +2 from
    twice it (2 of 2 minutes); -1 after 15 minutes below the scale-in level."""
    target = policy.target_backlog_per_instance
    step, alarm = aas_module.StepAdjustment, aas_module.Alarm
    scale_out = aas_module.StepScalingPolicy(
        "step-out",
        alarm("step-out", backlog, target, "GreaterThanOrEqualToThreshold", 2, 2),
        (step(1, lower_bound=0, upper_bound=target), step(2, lower_bound=target)),
        "ChangeInCapacity",
        policy.scale_out_cooldown,
    )
    scale_in = aas_module.StepScalingPolicy(
        "step-in",
        alarm("step-in", backlog, policy.step_scale_in_backlog_per_instance, "LessThanThreshold", 15, 15),
        (step(-1, upper_bound=0),),
        "ChangeInCapacity",
        policy.scale_in_cooldown,
    )
    return [scale_out, scale_in]


def _read_table(store: Any) -> tuple[Any, dict[str, Any]]:
    return store.get_dimension(), store.get_server_config() or {}


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
