"""A SageMaker fleet emulator: the control-plane and runtime calls fleetscaler makes, over real HTTP.

Unmodified boto3 clients reach it through `AWS_ENDPOINT_URL_SAGEMAKER` and
`AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` (one server answers both):

- control plane, JSON 1.1 (`X-Amz-Target: SageMaker.DescribeEndpoint`, `SageMaker.UpdateEndpointWeightsAndCapacities`),
  errors shaped like the service's (`ValidationException: Cannot update in-progress endpoint`);
- runtime `POST /endpoints/{name}/async-invocations` (answers 202 with the output and failure locations).

Behaviour follows the service where fleetscaler depends on it: an update keeps the endpoint `Updating` for a
provisioning delay while the old instances keep serving; a capacity shortage (switchable per endpoint) makes a
scale-out roll back (`RollingBack`, then `InService` at the old count, FailureReason `CapacityError: ...`);
each endpoint is a multi-server FIFO queue (every instance serves up to
`max_concurrent_invocations_per_instance` requests at once, each for its own service time), results written
to S3 when an S3 client is given;
backlog metrics are published to CloudWatch every minute; "SageMaker Endpoint State Change" events go to a
sink with optional loss, duplication and delay from a seeded RNG.

Nothing here reads wall time: the state moves only in `advance_to(now)`, and request timestamps come from
`fleetscaler.clock`, so a run is deterministic for a seed and an hour of fleet time can pass in a minute.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import random
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fleetscaler import clock

logger = logging.getLogger(__name__)

ACCOUNT = "000000000000"
REGION = "us-east-1"
VARIANT_NAME = "AllTraffic"
METRICS_NAMESPACE = "AWS/SageMaker"
METRIC_PERIOD_SECONDS = 60.0
DEFAULT_REQUEST_TTL_SECONDS = 6 * 3600  # SageMaker's default for async requests
CAPACITY_ERROR = (
    "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."
)
CANNOT_UPDATE = 'Cannot update in-progress endpoint "{arn}".'
ENDPOINT_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")

EventSink = Callable[[dict[str, Any]], None]


class EmulatorError(Exception):
    """A call SageMaker would refuse; rendered in the service's error shape."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class QueuedRequest:
    inference_id: str
    enqueued_at: float
    expires_at: float
    output_location: str
    failure_location: str
    input_location: str | None
    body: bytes | None
    # Service time in multiples of the endpoint's mean (1 / requests_per_second_per_instance).
    work: float = 1.0


@dataclass(frozen=True)
class CompletedRequest:
    endpoint_name: str
    inference_id: str
    enqueued_at: float
    completed_at: float
    failed: bool = False

    @property
    def queue_seconds(self) -> float:
        return self.completed_at - self.enqueued_at


@dataclass
class EndpointSpec:
    """How one emulated endpoint behaves. Throughput is per instance, in requests per second."""

    name: str
    instance_type: str = "ml.m5.xlarge"
    capacity_units: int = 1
    requests_per_second_per_instance: float = 0.1
    initial_instances: int = 1
    provisioning_seconds: float = 240.0  # scale-out: instances found, booted, container healthy
    scale_in_seconds: float = 60.0
    rollback_seconds: float = 90.0
    # AsyncInferenceConfig.ClientConfig.MaxConcurrentInvocationsPerInstance: requests one instance serves at once.
    max_concurrent_invocations_per_instance: int = 1


@dataclass
class EmulatedEndpoint:
    spec: EndpointSpec
    created_at: float
    status: str = "InService"
    current_count: int = 0
    desired_count: int = 0
    weight: float = 1.0
    update_done_at: float | None = None
    rollback_done_at: float | None = None
    previous_count: int = 0
    failure_reason: str | None = None
    last_modified: float = 0.0
    capacity_shortage: bool = False
    queue: deque[QueuedRequest] = field(default_factory=deque)  # accepted, not started
    # Requests being served: (finish time, sequence, request), earliest first.
    running: list[tuple[float, int, QueuedRequest]] = field(default_factory=list)
    accepted: int = 0
    completed: int = 0
    expired: int = 0
    updates: int = 0
    rejected_updates: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def backlog(self) -> int:
        """ApproximateBacklogSize: requests queued or being processed."""
        return len(self.queue) + len(self.running)

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{self.name.lower()}"

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "EndpointConfigName": f"{self.name}-config",
            "ProductionVariants": [
                {
                    "VariantName": VARIANT_NAME,
                    "CurrentWeight": self.weight,
                    "DesiredWeight": self.weight,
                    "CurrentInstanceCount": self.current_count,
                    "DesiredInstanceCount": self.desired_count,
                }
            ],
            "EndpointStatus": self.status,
            "CreationTime": self.created_at,
            "LastModifiedTime": self.last_modified,
            "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": output_path(self.name)}},
        }
        if self.failure_reason:
            description["FailureReason"] = self.failure_reason
        return description


def output_path(endpoint_name: str) -> str:
    return f"s3://{OUTPUT_BUCKET}/{endpoint_name}/"


OUTPUT_BUCKET = "fleetscaler-local-async"


@dataclass(frozen=True)
class EventFaults:
    """What happens to state-change events on their way to the handler (EventBridge is at-least-once)."""

    loss: float = 0.0
    duplicate: float = 0.0
    delay_seconds: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class EndpointSnapshot:
    name: str
    status: str
    current_count: int
    desired_count: int
    capacity_units: int
    backlog: int
    failure_reason: str | None


_EVENT_STATUS = {
    "InService": "IN_SERVICE",
    "Updating": "UPDATING",
    "RollingBack": "ROLLING_BACK",
    "Failed": "FAILED",
}


class SageMakerEmulator:
    """The emulated endpoints, their queues, metrics and events. Thread-safe; time moves in `advance_to`."""

    def __init__(
        self,
        *,
        seed: int = 0,
        event_sink: EventSink | None = None,
        event_faults: EventFaults | None = None,
        s3_client: Any = None,
        cloudwatch_client: Any = None,
    ) -> None:
        self._lock = threading.RLock()
        self._endpoints: dict[str, EmulatedEndpoint] = {}
        self._rng = random.Random(seed)
        self._event_rng = random.Random(seed + 1)
        self.event_sink = event_sink
        self.event_faults = event_faults or EventFaults()
        self._pending_events: list[tuple[float, int, dict[str, Any]]] = []
        self._event_seq = 0
        self.events_emitted = 0
        self.events_lost = 0
        self.events_duplicated = 0
        self.events_delivered = 0
        self.completed: list[CompletedRequest] = []
        self.update_calls = 0
        self._s3 = s3_client
        self._cloudwatch = cloudwatch_client
        self._bucket_ready = False
        self._next_metrics_at: float | None = None
        self._now = clock.now()
        self._sequence = 0
        # Service time of a request in multiples of the mean, by InferenceId (the simulator's workload model);
        # None: every request takes the mean.
        self.work_for: Callable[[str], float] | None = None

    # ----- fleet set-up and fault switches (the simulator's handles, not SageMaker APIs) -----

    def add_endpoint(self, spec: EndpointSpec) -> None:
        if not ENDPOINT_NAME_RE.match(spec.name):
            raise ValueError(f"endpoint name {spec.name!r} is not a valid SageMaker endpoint name")
        if (
            spec.capacity_units < 1
            or spec.requests_per_second_per_instance <= 0
            or spec.initial_instances < 0
            or spec.max_concurrent_invocations_per_instance < 1
        ):
            raise ValueError(
                f"{spec.name}: capacity_units >= 1, throughput > 0, initial_instances >= 0 and "
                "max_concurrent_invocations_per_instance >= 1 required"
            )
        now = clock.now()
        with self._lock:
            self._endpoints[spec.name] = EmulatedEndpoint(
                spec=spec,
                created_at=now,
                current_count=spec.initial_instances,
                desired_count=spec.initial_instances,
                previous_count=spec.initial_instances,
                last_modified=now,
            )

    def set_capacity_shortage(self, endpoint_name: str, short: bool) -> None:
        """While short, a scale-out of this endpoint fails and rolls back to the old count."""
        with self._lock:
            self._endpoint(endpoint_name).capacity_shortage = short

    def endpoint_names(self) -> list[str]:
        with self._lock:
            return list(self._endpoints)

    def snapshot(self) -> list[EndpointSnapshot]:
        with self._lock:
            return [
                EndpointSnapshot(
                    name=ep.name,
                    status=ep.status,
                    current_count=ep.current_count,
                    desired_count=ep.desired_count,
                    capacity_units=ep.spec.capacity_units,
                    backlog=ep.backlog,
                    failure_reason=ep.failure_reason,
                )
                for ep in self._endpoints.values()
            ]

    def endpoint(self, name: str) -> EmulatedEndpoint:
        """The live state of one endpoint (read it under no assumption of stability while the server runs)."""
        with self._lock:
            return self._endpoint(name)

    def _endpoint(self, name: str) -> EmulatedEndpoint:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise EmulatorError("ValidationException", f'Could not find endpoint "{name}".')
        return endpoint

    # ----- control plane -----

    def describe_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _required_string(params, "EndpointName")
        with self._lock:
            return self._endpoint(name).describe()

    def update_endpoint_weights_and_capacities(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _required_string(params, "EndpointName")
        desired = params.get("DesiredWeightsAndCapacities")
        if not isinstance(desired, list) or len(desired) != 1 or not isinstance(desired[0], dict):
            raise EmulatorError(
                "ValidationException",
                "1 validation error detected: Value at 'desiredWeightsAndCapacities' failed to satisfy constraint: "
                "Member must have length 1 (one entry per variant; emulated endpoints have one variant)",
            )
        entry = desired[0]
        count = entry.get("DesiredInstanceCount")
        with self._lock:
            endpoint = self._endpoint(name)
            self.update_calls += 1
            if entry.get("VariantName") != VARIANT_NAME:
                endpoint.rejected_updates += 1
                raise EmulatorError(
                    "ValidationException",
                    f"The variant name(s) [{entry.get('VariantName')}] is/are not present in the endpoint "
                    f'"{endpoint.arn}".',
                )
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                endpoint.rejected_updates += 1
                raise EmulatorError(
                    "ValidationException", f"DesiredInstanceCount must be a whole number >= 0, got {count!r}"
                )
            if endpoint.status != "InService":
                endpoint.rejected_updates += 1
                raise EmulatorError("ValidationException", CANNOT_UPDATE.format(arn=endpoint.arn))
            now = clock.now()
            endpoint.updates += 1
            endpoint.previous_count = endpoint.current_count
            endpoint.desired_count = count
            if "DesiredWeight" in entry:
                endpoint.weight = float(entry["DesiredWeight"])
            endpoint.status = "Updating"
            endpoint.failure_reason = None
            scale_out = count > endpoint.current_count
            delay = endpoint.spec.provisioning_seconds if scale_out else endpoint.spec.scale_in_seconds
            endpoint.update_done_at = now + delay
            endpoint.last_modified = now
            self._emit(endpoint, now)
            return {"EndpointArn": endpoint.arn}

    # ----- runtime -----

    def invoke_endpoint_async(self, name: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        def header(suffix: str) -> str | None:
            return headers.get(f"x-amzn-sagemaker-{suffix}".lower())

        input_location = header("inputlocation")
        if input_location is None and not body:
            raise EmulatorError("ValidationException", "Either InputLocation or Body must be provided.")
        if input_location is not None and body:
            raise EmulatorError("ValidationException", "InputLocation and Body are mutually exclusive.")
        if input_location is not None and not input_location.startswith(("s3://", "https://")):
            raise EmulatorError("ValidationException", "InputLocation must be an s3:// or https:// location.")
        ttl = _int_header(header("requestttlseconds"), "RequestTTLSeconds", 60, 21600) or DEFAULT_REQUEST_TTL_SECONDS
        _int_header(header("invocationtimeoutseconds"), "InvocationTimeoutSeconds", 1, 3600)
        inference_id = header("inference-id") or str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        now = clock.now()
        with self._lock:
            endpoint = self._endpoints.get(name)
            if endpoint is None:
                raise EmulatorError("ValidationException", f"Endpoint {name} of account {ACCOUNT} not found.")
            base = output_path(name)
            request = QueuedRequest(
                inference_id=inference_id,
                enqueued_at=now,
                expires_at=now + ttl,
                output_location=f"{base}{inference_id}.out",
                failure_location=f"{base}failures/{inference_id}-error.out",
                input_location=input_location,
                body=body or None,
                work=self.work_for(inference_id) if self.work_for is not None else 1.0,
            )
            endpoint.queue.append(request)
            endpoint.accepted += 1
        return {
            "InferenceId": inference_id,
            "OutputLocation": request.output_location,
            "FailureLocation": request.failure_location,
        }

    # ----- time -----

    def advance_to(self, now: float) -> None:
        """Move every endpoint to `now`: finish updates, drain queues, publish metrics, deliver events.

        Events are handed to the sink after the emulator's lock is released, because the endpoint-state
        handler calls back into this emulator over HTTP.
        """
        with self._lock:
            if now < self._now:
                raise ValueError("the emulator's time does not go backwards")
            started = self._now
            finished: list[tuple[EmulatedEndpoint, list[CompletedRequest], list[QueuedRequest]]] = []
            for endpoint in self._endpoints.values():
                done: list[CompletedRequest] = []
                expired: list[QueuedRequest] = []
                cursor = started
                # Serve with the capacity of each interval between state transitions (an update finishing
                # changes the instances that serve at that moment, not at the end of the step).
                while True:
                    transition = self._transition_due(endpoint)
                    until = now if transition is None else min(transition, now)
                    self._serve(endpoint, cursor, until, done, expired)
                    if transition is None or transition > now:
                        break
                    self._finish_transition(endpoint)
                    cursor = transition
                while endpoint.queue and endpoint.queue[0].expires_at < now:
                    expired.append(endpoint.queue.popleft())
                self._record(endpoint, done, expired)
                finished.append((endpoint, done, expired))
            self._now = now
            due_metrics = self._next_metrics_at is None or now >= self._next_metrics_at
            metric_rows = [self._metric_row(ep) for ep in self._endpoints.values()] if due_metrics else []
            if due_metrics:
                self._next_metrics_at = (self._next_metrics_at or now) + METRIC_PERIOD_SECONDS
                while self._next_metrics_at <= now:
                    self._next_metrics_at += METRIC_PERIOD_SECONDS
            events = self._due_events(now)
        self._write_results(finished)
        if metric_rows:
            self._publish_metrics(metric_rows, now)
        for event in events:
            self._deliver(event)

    def _serve(
        self,
        endpoint: EmulatedEndpoint,
        start: float,
        end: float,
        done: list[CompletedRequest],
        expired: list[QueuedRequest],
    ) -> None:
        """Serve the queue from `start` to `end` with the instances InService (FIFO, `instances x concurrency`
        slots; each request occupies a slot for its own service time). Requests already running when capacity
        shrinks finish on their instance (SageMaker drains in-flight work); no new one starts beyond capacity."""
        slots = endpoint.current_count * endpoint.spec.max_concurrent_invocations_per_instance
        mean_seconds = 1.0 / endpoint.spec.requests_per_second_per_instance
        queue, running = endpoint.queue, endpoint.running
        cursor = start
        while True:
            if queue and len(running) < slots:
                request = queue[0]
                begins = max(cursor, request.enqueued_at)
                if begins > end:
                    break
                while running and running[0][0] <= begins:
                    self._complete(endpoint, heapq.heappop(running), done)
                queue.popleft()
                if request.expires_at < begins:
                    expired.append(request)
                    continue
                self._sequence += 1
                heapq.heappush(running, (begins + request.work * mean_seconds, self._sequence, request))
                cursor = begins
            elif running and running[0][0] <= end:
                finished = heapq.heappop(running)
                self._complete(endpoint, finished, done)
                cursor = max(cursor, finished[0])
            else:
                break

    @staticmethod
    def _complete(
        endpoint: EmulatedEndpoint, finished: tuple[float, int, QueuedRequest], done: list[CompletedRequest]
    ) -> None:
        at, _, request = finished
        done.append(CompletedRequest(endpoint.name, request.inference_id, request.enqueued_at, at))

    def _record(self, endpoint: EmulatedEndpoint, done: list[CompletedRequest], expired: list[QueuedRequest]) -> None:
        endpoint.completed += len(done)
        endpoint.expired += len(expired)
        self.completed.extend(done)
        self.completed.extend(
            CompletedRequest(endpoint.name, r.inference_id, r.enqueued_at, r.expires_at, failed=True) for r in expired
        )

    @staticmethod
    def _transition_due(endpoint: EmulatedEndpoint) -> float | None:
        """When the endpoint's current update or rollback ends (None: it is not changing)."""
        if endpoint.status == "Updating":
            return endpoint.update_done_at
        if endpoint.status == "RollingBack":
            return endpoint.rollback_done_at
        return None

    def _finish_transition(self, endpoint: EmulatedEndpoint) -> None:
        """End the update (or rollback) that `_transition_due` names, at its own time."""
        if endpoint.status == "Updating" and endpoint.update_done_at is not None:
            when = endpoint.update_done_at
            endpoint.update_done_at = None
            if endpoint.capacity_shortage and endpoint.desired_count > endpoint.current_count:
                endpoint.status = "RollingBack"
                endpoint.failure_reason = CAPACITY_ERROR
                endpoint.rollback_done_at = when + endpoint.spec.rollback_seconds
            else:
                endpoint.current_count = endpoint.desired_count
                endpoint.status = "InService"
        elif endpoint.status == "RollingBack" and endpoint.rollback_done_at is not None:
            when = endpoint.rollback_done_at
            endpoint.rollback_done_at = None
            endpoint.desired_count = endpoint.previous_count
            endpoint.current_count = endpoint.previous_count
            endpoint.status = "InService"
        else:
            return
        endpoint.last_modified = when
        self._emit(endpoint, when)

    # ----- S3 results -----

    def _write_results(
        self, finished: list[tuple[EmulatedEndpoint, list[CompletedRequest], list[QueuedRequest]]]
    ) -> None:
        if self._s3 is None:
            return
        self._ensure_bucket()
        for endpoint, done, expired in finished:
            base = output_path(endpoint.name)[len(f"s3://{OUTPUT_BUCKET}/") :]
            for result in done:
                self._s3.put_object(
                    Bucket=OUTPUT_BUCKET,
                    Key=f"{base}{result.inference_id}.out",
                    Body=json.dumps(
                        {"inferenceId": result.inference_id, "endpoint": endpoint.name, "at": result.completed_at}
                    ).encode(),
                    ContentType="application/json",
                )
            for request in expired:
                self._s3.put_object(
                    Bucket=OUTPUT_BUCKET,
                    Key=f"{base}failures/{request.inference_id}-error.out",
                    Body=b'{"error": "RequestTTLExpired: the request stayed queued longer than RequestTTLSeconds"}',
                    ContentType="application/json",
                )

    def _ensure_bucket(self) -> None:
        if not self._bucket_ready:
            with contextlib.suppress(self._s3.exceptions.BucketAlreadyOwnedByYou):
                self._s3.create_bucket(Bucket=OUTPUT_BUCKET)
            self._bucket_ready = True

    # ----- CloudWatch metrics -----

    def _metric_row(self, endpoint: EmulatedEndpoint) -> tuple[str, int, int, float]:
        waiting = [r.enqueued_at for _, _, r in endpoint.running] + [r.enqueued_at for r in list(endpoint.queue)[:1]]
        oldest = self._now - min(waiting) if waiting else 0.0
        return endpoint.name, endpoint.backlog, endpoint.current_count, oldest

    def _publish_metrics(self, rows: list[tuple[str, int, int, float]], now: float) -> None:
        if self._cloudwatch is None:
            return
        timestamp = datetime.fromtimestamp(now, tz=UTC)
        for name, backlog, instances, oldest in rows:
            dimensions = [{"Name": "EndpointName", "Value": name}]
            data: list[dict[str, Any]] = [
                {"MetricName": "ApproximateBacklogSize", "Value": float(backlog), "Unit": "Count"},
                {
                    "MetricName": "HasBacklogWithoutCapacity",
                    "Value": 1.0 if backlog > 0 and instances == 0 else 0.0,
                    "Unit": "Count",
                },
                {"MetricName": "ApproximateAgeOfOldestRequest", "Value": oldest, "Unit": "Seconds"},
            ]
            if instances > 0:
                # Undefined without instances; the service publishes nothing for it then.
                data.append(
                    {"MetricName": "ApproximateBacklogSizePerInstance", "Value": backlog / instances, "Unit": "Count"}
                )
            for datum in data:
                datum["Dimensions"] = dimensions
                datum["Timestamp"] = timestamp
            self._cloudwatch.put_metric_data(Namespace=METRICS_NAMESPACE, MetricData=data)

    # ----- EventBridge -----

    def _emit(self, endpoint: EmulatedEndpoint, when: float) -> None:
        """Queue a state-change event (lock held); loss, duplication and delay are decided here, seeded."""
        event = self._event(endpoint, when)
        self.events_emitted += 1
        faults = self.event_faults
        if faults.loss and self._event_rng.random() < faults.loss:
            self.events_lost += 1
            return
        copies = 1
        if faults.duplicate and self._event_rng.random() < faults.duplicate:
            copies = 2
            self.events_duplicated += 1
        low, high = faults.delay_seconds
        for _ in range(copies):
            delay = self._event_rng.uniform(low, high) if high > 0 else 0.0
            self._event_seq += 1
            self._pending_events.append((when + delay, self._event_seq, event))

    def _event(self, endpoint: EmulatedEndpoint, when: float) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "EndpointName": endpoint.name,
            "EndpointArn": endpoint.arn,
            "EndpointConfigName": f"{endpoint.name}-config",
            "EndpointStatus": _EVENT_STATUS.get(endpoint.status, endpoint.status.upper()),
            "ProductionVariants": [
                {
                    "VariantName": VARIANT_NAME,
                    "DesiredInstanceCount": endpoint.desired_count,
                    "CurrentInstanceCount": endpoint.current_count,
                    "DesiredWeight": endpoint.weight,
                }
            ],
            "CreationTime": int(endpoint.created_at * 1000),
            "LastModifiedTime": int(when * 1000),
        }
        if endpoint.failure_reason:
            detail["FailureReason"] = endpoint.failure_reason
        return {
            "version": "0",
            "id": str(uuid.UUID(int=self._event_rng.getrandbits(128), version=4)),
            "detail-type": "SageMaker Endpoint State Change",
            "source": "aws.sagemaker",
            "account": ACCOUNT,
            "time": datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [endpoint.arn],
            "detail": detail,
        }

    def _due_events(self, now: float) -> list[dict[str, Any]]:
        due = sorted(e for e in self._pending_events if e[0] <= now)
        self._pending_events = [e for e in self._pending_events if e[0] > now]
        return [json.loads(json.dumps(event)) for _, _, event in due]

    def _deliver(self, event: dict[str, Any]) -> None:
        if self.event_sink is None:
            return
        self.events_delivered += 1
        try:
            self.event_sink(event)
        except Exception:
            # EventBridge retries and then drops; the scaling API's reconcile on GET repairs the state.
            logger.exception("endpoint-state event delivery failed")

    # ----- HTTP -----

    def serve(self, host: str = "127.0.0.1", port: int = 0, upstream: str | None = None) -> EmulatorServer:
        """Serve over HTTP. With `upstream` (moto's URL), every other AWS request is passed on to it."""
        server = EmulatorServer(self, host, port, upstream)
        server.start()
        return server


def _required_string(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise EmulatorError("ValidationException", f"1 validation error detected: Value null at '{name}' failed")
    return value


def _int_header(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise EmulatorError("ValidationException", f"{name} must be a whole number, got {value!r}") from exc
    if not low <= number <= high:
        raise EmulatorError("ValidationException", f"{name} must be between {low} and {high}, got {number}")
    return number


_INVOKE_PATH = re.compile(r"^/endpoints/([^/]+)/async-invocations$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: boto3 reuses connections
    # One segment per response: headers and body written separately would wait on delayed ACKs (40 ms).
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    emulator: SageMakerEmulator
    upstream: str | None = None
    # Other emulated JSON 1.1 operations by X-Amz-Target (the local stack adds Application Auto Scaling's).
    operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request headers may carry credentials; the emulator logs nothing per request

    def handle_expect_100(self) -> bool:
        """`Expect: 100-continue` (botocore sends it with S3 uploads): the interim answer must leave at once, not
        wait in the write buffer for the final one, or the client waits a second before sending the body."""
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target") or ""
        match = _INVOKE_PATH.match(self.path.split("?", 1)[0])
        if target.startswith("SageMaker."):
            self._control(target, raw)
        elif target in self.operations:
            self._operation(target, raw)
        elif match:
            self._runtime(_unquote(match.group(1)), raw)
        else:
            self._forward(raw)

    def _other(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._forward(self.rfile.read(length) if length else b"")

    do_GET = do_PUT = do_DELETE = do_HEAD = _other

    def _forward(self, raw: bytes) -> None:
        """Not SageMaker: pass the request on to `upstream` (moto), so one URL serves every AWS call."""
        upstream = self.upstream
        if not upstream:
            self._send(404, b'{"message": "unknown operation"}', {"Content-Type": "application/json"})
            return
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(upstream)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
            connection.request(self.command, self.path, body=raw or None, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            skip = ("content-length", "transfer-encoding", "connection", "keep-alive", "server", "date")
            out = {k: v for k, v in answer.getheaders() if k.lower() not in skip}
        finally:
            connection.close()
        if self.command == "HEAD":
            self.send_response(answer.status)
            for name, value in out.items():
                self.send_header(name, value)
            self.send_header("Content-Length", answer.getheader("Content-Length") or "0")
            self.end_headers()
            return
        self._send(answer.status, body, out)

    def _control(self, target: str, raw: bytes) -> None:
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}
        try:
            params = json.loads(raw or b"{}")
            operation = target.removeprefix("SageMaker.")
            if operation == "DescribeEndpoint":
                result = self.emulator.describe_endpoint(params)
            elif operation == "UpdateEndpointWeightsAndCapacities":
                result = self.emulator.update_endpoint_weights_and_capacities(params)
            else:
                raise EmulatorError("UnknownOperationException", f"{operation} is not emulated")
        except EmulatorError as exc:
            body = {"__type": exc.code, "message": exc.message}
            self._send(exc.status, json.dumps(body).encode(), headers)
            return
        except json.JSONDecodeError:
            self._send(400, b'{"__type": "SerializationException", "message": "bad JSON"}', headers)
            return
        self._send(200, json.dumps(result).encode(), headers)

    def _operation(self, target: str, raw: bytes) -> None:
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}
        try:
            params = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, b'{"__type": "SerializationException", "message": "bad JSON"}', headers)
            return
        try:
            result = self.operations[target](params)
        except EmulatorError as exc:
            self._send(exc.status, json.dumps({"__type": exc.code, "message": exc.message}).encode(), headers)
            return
        self._send(200, json.dumps(result, default=_json_time).encode(), headers)

    def _runtime(self, endpoint_name: str, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            result = self.emulator.invoke_endpoint_async(endpoint_name, headers, raw or None)
        except EmulatorError as exc:
            self._send(
                exc.status,
                json.dumps({"message": exc.message}).encode(),
                {"Content-Type": "application/json", "x-amzn-ErrorType": exc.code},
            )
            return
        self._send(
            202,
            json.dumps({"InferenceId": result["InferenceId"]}).encode(),
            {
                "Content-Type": "application/json",
                "X-Amzn-SageMaker-OutputLocation": result["OutputLocation"],
                "X-Amzn-SageMaker-FailureLocation": result["FailureLocation"],
            },
        )


def _json_time(value: Any) -> float:
    """JSON 1.1 protocols send timestamps as epoch seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


class EmulatorServer:
    """The emulator on 127.0.0.1 in a background thread."""

    def __init__(
        self, emulator: SageMakerEmulator, host: str = "127.0.0.1", port: int = 0, upstream: str | None = None
    ) -> None:
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        handler = type(
            "EmulatorHandler", (_Handler,), {"emulator": emulator, "upstream": upstream, "operations": self.operations}
        )
        self._host = host
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sagemaker-emulator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_address[1]}"

    def add_operation(self, target: str, operation: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Answer `X-Amz-Target: target` (JSON 1.1) with `operation(params)`, e.g. another emulated service."""
        self.operations[target] = operation

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
