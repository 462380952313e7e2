"""The scaling engine's use cases: report/reconcile (GET), set desired capacity (PATCH), endpoint events.

Every use case is a reconcile: read the dimension and server_config, DescribeEndpoint every endpoint, let the
pure state machine decide, issue the updates, then write the new state with optimistic locking. A lost
race (another writer committed first) re-runs the whole step from fresh reads, a bounded number of times.
Updates name absolute instance counts, so a step re-run after acting can never add instances twice; an
endpoint a concurrent run already set updating simply answers "in-progress" and its part waits.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from fleetscaler import clock
from fleetscaler.aws.cloudwatch import publish_metrics, read_backlog
from fleetscaler.aws.sagemaker import describe_endpoint, update_instance_count
from fleetscaler.config import Settings, get_settings
from fleetscaler.dal.models import DIMENSION_ID
from fleetscaler.dal.store import MetadataStore, VersionedConfig, VersionedDimension, get_store
from fleetscaler.errors import (
    ConcurrentModification,
    ConfigurationUnusable,
    EndpointBusy,
    FleetNotFound,
    InvalidRequest,
    Throttled,
    UpstreamRejected,
)
from fleetscaler.logic.routing import RoutingHints, routed_counts
from fleetscaler.logic.scaling import (
    FAILED,
    PENDING,
    Decision,
    EndpointObservation,
    ScalingState,
    mark_unavailable,
    new_desired,
    reconcile,
    record_event,
    status_from_event,
)
from fleetscaler.logic.server_config import FleetConfig, validate_server_config
from fleetscaler.logic.signal import FleetSignal, estimate_backlog, fleet_signal

MAX_ATTEMPTS = 10
# failureReason's start while server_config cannot be used: a scaling failed for that alone resumes once it is.
UNUSABLE_CONFIG = "server_config is unusable"
# Application Auto Scaling's capacities are 32-bit integers: nothing larger can come from it.
LARGEST_CAPACITY = 2**31 - 1
# Pause between attempts after losing a write race: random, growing, bounded (total well under a second).
RETRY_PAUSE_SECONDS = 0.02


def _pause_before_retry(attempt: int) -> None:
    time.sleep(random.uniform(0, RETRY_PAUSE_SECONDS * min(attempt + 1, 5)))


Describer = Callable[[str], EndpointObservation]
Updater = Callable[[str, str, int], None]
BacklogReader = Callable[[Sequence[str], float], dict[str, float]]
MetricPublisher = Callable[[str, Mapping[str, str], Mapping[str, float], float], None]


@dataclass(frozen=True)
class EndpointGauge:
    """One endpoint as the reconcile left it: what the dashboard's per-endpoint widgets plot."""

    endpoint_name: str
    instances: int
    weight: int


@dataclass(frozen=True)
class DimensionView:
    """What GET and PATCH answer (Application Auto Scaling's custom-resource contract)."""

    dimension_id: str
    desired: int
    actual: int
    status: str
    version: str
    resource_name: str | None
    dimension_name: str | None
    failure_reason: str | None
    # Not part of the API answer: for metrics and the alarm on a scaling that turns Failed.
    fleet_name: str | None = None
    previous_status: str | None = None
    endpoints: tuple[EndpointGauge, ...] = ()
    # Why the fleet runs below the desired capacity (the endpoints cannot give it), None when it does not.
    bound_reason: str | None = None
    # The scaling signal, when this step published it (once a minute, on the schedule).
    signal: FleetSignal | None = None
    # Things the handlers log as warnings: engine memory that could not be read back and was rebuilt.
    warnings: tuple[str, ...] = ()

    @property
    def became_failed(self) -> bool:
        return self.status == FAILED and self.previous_status != FAILED

    def to_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "actualCapacity": float(self.actual),
            "desiredCapacity": float(self.desired),
            "scalableTargetDimensionId": self.dimension_id,
            "scalingStatus": self.status,
            "version": self.version,
        }
        if self.resource_name:
            body["resourceName"] = self.resource_name
        if self.dimension_name:
            body["dimensionName"] = self.dimension_name
        if self.status == FAILED:
            body["failureReason"] = self.failure_reason or "scaling failed"
        return body


@dataclass(frozen=True)
class EventOutcome:
    handled: bool
    reason: str
    view: DimensionView | None = None


def _as_int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    return int(Decimal(str(value)))


def capacity_bounds(settings: Settings) -> tuple[int, int | None]:
    """MIN_CAPACITY..MAX_CAPACITY, the range Application Auto Scaling registers (None: no upper bound). What the
    endpoints can give is not a bound: a larger desired capacity is recorded and as much as they can give is
    placed."""
    return settings.min_capacity, settings.max_capacity


def parse_desired_capacity(body: Any, bounds: tuple[int, int | None]) -> int:
    """The PATCH body's desiredCapacity as a whole number within bounds, or InvalidRequest naming the rule."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("body", 'must be a JSON object such as {"desiredCapacity": 2}')
    if "desiredCapacity" not in body:
        raise InvalidRequest("desiredCapacity", "is required")
    value = body["desiredCapacity"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest("desiredCapacity", f"must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequest("desiredCapacity", f"must be a finite number, got {value!r}")
    if value < 0:
        raise InvalidRequest("desiredCapacity", f"must be >= 0, got {value!r}")
    if value != int(value):
        raise InvalidRequest("desiredCapacity", f"must be a whole number (no fractional part), got {value!r}")
    desired = int(value)
    low, high = bounds
    if desired < low:
        raise InvalidRequest("desiredCapacity", f"must be at least {low} (MIN_CAPACITY), got {desired}")
    shown = str(desired) if desired < 10**12 else f"a {len(str(desired))}-digit number"
    if high is not None and desired > high:
        raise InvalidRequest("desiredCapacity", f"must be at most {high} (MAX_CAPACITY), got {shown}")
    if desired > LARGEST_CAPACITY:
        raise InvalidRequest(
            "desiredCapacity",
            f"must be at most {LARGEST_CAPACITY} (the largest capacity Application Auto Scaling has), got {shown}",
        )
    return desired


class ScalingEngine:
    def __init__(
        self,
        settings: Settings,
        store: MetadataStore,
        describer: Describer = describe_endpoint,
        updater: Updater = update_instance_count,
        backlog_reader: BacklogReader = read_backlog,
        metric_publisher: MetricPublisher = publish_metrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.describer = describer
        self.updater = updater
        self.backlog_reader = backlog_reader
        self.metric_publisher = metric_publisher

    # -- reads -------------------------------------------------------------------------------------------

    def _dimension(self, dimension_id: str | None = None) -> VersionedDimension:
        read = self.store.get_versioned_dimension()
        if read is None:
            raise FleetNotFound(f"no scalable dimension: the table has no '{DIMENSION_ID}' item")
        if dimension_id is not None:
            wanted = unquote(dimension_id)
            known = {DIMENSION_ID, read.item.scalable_target_dimension_id or DIMENSION_ID}
            if wanted not in known:
                raise FleetNotFound(f"scalableTargetDimensionId {wanted!r} is not known here")
        return read

    def _resource_name(self, read: VersionedDimension) -> str:
        name = self.settings.resource_name or read.item.resource_name
        if not name:
            raise ConfigurationUnusable(
                f"the fleet has no name: set RESOURCE_NAME or resourceName on the {DIMENSION_ID} item"
            )
        return name

    def _fleet(self, resource_name: str) -> tuple[FleetConfig, VersionedConfig]:
        read = self.store.get_versioned_server_config()
        if read is None:
            raise ConfigurationUnusable("the table has no 'server_config' item")
        return validate_server_config(read.config, resource_name), read

    @staticmethod
    def _state(read: VersionedDimension) -> ScalingState:
        item = read.item
        return ScalingState.from_record(
            desired=_as_int(item.desired_capacity),
            status=item.scaling_status,
            failure_reason=item.failure_reason,
            engine_json=item.scaling_state,
        )

    def _view(
        self,
        read: VersionedDimension,
        state: ScalingState,
        actual: int,
        *,
        previous_status: str | None = None,
        endpoints: tuple[EndpointGauge, ...] = (),
        bound_reason: str | None = None,
        signal: FleetSignal | None = None,
        warnings: tuple[str, ...] = (),
    ) -> DimensionView:
        item = read.item
        return DimensionView(
            dimension_id=item.scalable_target_dimension_id or DIMENSION_ID,
            desired=state.desired,
            actual=actual,
            status=state.status,
            version=item.version or "1",
            resource_name=item.resource_name,
            dimension_name=item.dimension_name,
            failure_reason=state.failure_reason,
            fleet_name=self.settings.resource_name or item.resource_name,
            previous_status=previous_status if previous_status is not None else item.scaling_status,
            endpoints=endpoints,
            bound_reason=bound_reason,
            signal=signal,
            warnings=warnings,
        )

    # -- use cases ---------------------------------------------------------------------------------------

    def get(self, dimension_id: str) -> DimensionView:
        """GET: reconcile and report."""
        self._dimension(dimension_id)
        view = self._reconcile(lambda state: state)
        assert view is not None
        return view

    def set_desired(self, dimension_id: str, body: Any) -> DimensionView:
        """PATCH: record the desired capacity at once (last writer wins), then reconcile and report.

        Only the registered bounds (MIN_CAPACITY, MAX_CAPACITY) can refuse a value: neither what the endpoints
        can give nor an unusable server_config stops it from being recorded."""
        self._dimension(dimension_id)
        desired = parse_desired_capacity(body, capacity_bounds(self.settings))
        for attempt in range(MAX_ATTEMPTS):
            read = self._dimension()
            state = self._state(read)
            updated = new_desired(state, desired, clock.now())
            if updated is state:
                break  # the same value again: nothing new to record
            try:
                self.store.update_dimension(
                    {
                        "desired_capacity": desired,
                        "scaling_status": updated.status,
                        "failure_reason": None,
                        "last_modified": clock.now_ms(),
                        "scaling_state": updated.engine_json(),
                    },
                    read.lock,
                )
                break
            except ConcurrentModification:
                _pause_before_retry(attempt)
        else:
            raise ConcurrentModification("desiredCapacity could not be recorded: too many concurrent writers")
        view = self._reconcile(lambda state: state, tolerate_upstream=True)
        assert view is not None
        return view

    def on_endpoint_event(self, event: Mapping[str, Any]) -> EventOutcome:
        """An EventBridge 'SageMaker Endpoint State Change': record it once, in order, and continue the plan."""
        detail = event.get("detail") or {}
        endpoint_name = str(detail.get("EndpointName") or "")
        read = self._dimension()
        resource_name = self._resource_name(read)
        try:
            fleet, _ = self._fleet(resource_name)
        except ConfigurationUnusable as error:
            # Retrying the event cannot fix the config; the scaling says Failed until it is fixed, and the next
            # GET after the fix reconciles from what SageMaker shows.
            self._record_unusable(error)
            return EventOutcome(False, f"{UNUSABLE_CONFIG}: {error.message}")
        index = fleet.index_of_endpoint(resource_name, endpoint_name)
        if index is None:
            return EventOutcome(False, f"endpoint {endpoint_name!r} is not in fleet {resource_name!r}")
        server = fleet.servers[index]
        modified = event_time_ms(detail.get("LastModifiedTime"), event.get("time"))
        status = status_from_event(str(detail.get("EndpointStatus") or ""))
        failure = detail.get("FailureReason")
        stale = False

        def apply(state: ScalingState) -> ScalingState | None:
            nonlocal stale
            recorded = record_event(
                state, server, status, modified, failure, clock.now(), self.settings.failover_backoff_seconds
            )
            stale = recorded is None
            return recorded

        view = self._reconcile(apply)
        if stale or view is None:
            return EventOutcome(False, f"event for {endpoint_name} at {modified} already seen or older than one seen")
        return EventOutcome(True, f"{endpoint_name} is {status}", view)

    def publish_signal(self) -> DimensionView:
        """Once a minute (the schedule): snapshot every endpoint's queue for the router and the placement,
        reconcile, and publish the fleet's scaling signal to CloudWatch."""
        view = self._reconcile(lambda state: state, snapshot=True)
        assert view is not None
        if view.signal is not None:
            dimensions = {"Fleet": view.fleet_name or view.dimension_id}
            # Stamped in the minute the snapshot closes (its arrivals are that minute's), so an alarm evaluating
            # that minute sees it as soon as the minute is complete.
            stamp = clock.now() - 1.0
            self.metric_publisher(self.settings.metrics_namespace, dimensions, view.signal.metrics(), stamp)
        return view

    # -- the reconcile step ------------------------------------------------------------------------------

    def _observe(self, fleet: FleetConfig, resource_name: str) -> list[EndpointObservation]:
        return [self.describer(name) for name in fleet.endpoint_names(resource_name)]

    def _snapshot(
        self, fleet: FleetConfig, counter: int, resource_name: str, observations: list[EndpointObservation]
    ) -> RoutingHints:
        """Every endpoint's queue now, and the router's counter that goes with it."""
        now = clock.now()
        names = fleet.endpoint_names(resource_name)
        seen = self.backlog_reader(names, now)
        previous = fleet.routing
        routed = [0] * len(names)
        if previous is not None and counter >= previous.counter:
            routed = routed_counts(counter - previous.counter, fleet.weights, previous)
        backlog = estimate_backlog(
            [seen.get(name) for name in names],
            previous.backlog if previous is not None else None,
            routed,
            [o.serving for o in observations],
        )
        zeros = (0,) * len(names)
        return RoutingHints(backlog, counter, now, previous.wake_up if previous else zeros,
                            previous.ahead if previous else zeros)

    @staticmethod
    def _measure(
        state: ScalingState,
        fleet: FleetConfig,
        previous: RoutingHints | None,
        current: RoutingHints,
        observations: list[EndpointObservation],
    ) -> tuple[ScalingState, int, float]:
        """The arrivals since the previous snapshot (the router's counter) and over how long, with the
        throughput per capacity unit the queues showed meanwhile folded into the engine's estimate."""
        if previous is None or not previous.at or current.at <= previous.at or current.counter < previous.counter:
            return state, 0, 0.0
        seconds = current.at - previous.at
        arrivals = current.counter - previous.counter
        serving = sum(o.serving * u for o, u in zip(observations, fleet.capacity_units, strict=True))
        throughput = state.throughput.observe(previous.backlog, current.backlog, arrivals, seconds, serving)
        return replace(state, throughput=throughput), arrivals, seconds

    @staticmethod
    def _fresh_backlog(hints: RoutingHints | None) -> tuple[int, ...] | None:
        if hints is None or not hints.fresh(clock.now()):
            return None
        return hints.backlog

    def _record_unusable(self, error: ConfigurationUnusable) -> DimensionView:
        """server_config cannot be used: the scaling says Failed with the reason (desired stays recorded), until
        a reconcile with a usable config converges again."""
        reason = f"{UNUSABLE_CONFIG}: {error.message}"
        for attempt in range(MAX_ATTEMPTS):
            read = self._dimension()
            state = self._state(read)
            failed = replace(state, status=FAILED, failure_reason=reason)
            if state.status == FAILED and state.failure_reason == reason:
                return self._view(read, state, _as_int(read.item.actual_capacity))
            try:
                self.store.update_dimension(
                    {"scaling_status": FAILED, "failure_reason": reason, "last_modified": clock.now_ms()}, read.lock
                )
            except ConcurrentModification:
                _pause_before_retry(attempt)
                continue
            return self._view(read, failed, _as_int(read.item.actual_capacity), previous_status=state.status)
        raise ConcurrentModification("the scaling state kept changing under this request; try again")

    def _reconcile(
        self,
        mutate: Callable[[ScalingState], ScalingState | None],
        *,
        tolerate_upstream: bool = False,
        snapshot: bool = False,
    ) -> DimensionView | None:
        # Updates issued by an attempt whose write lost the race: remembered so the next attempt knows them.
        issued: dict[str, tuple[int, int | None]] = {}
        for attempt in range(MAX_ATTEMPTS):
            read = self._dimension()
            resource_name = self._resource_name(read)
            try:
                fleet, config = self._fleet(resource_name)
            except ConfigurationUnusable as error:
                return self._record_unusable(error)
            recorded = self._state(read)
            state = mutate(recorded)
            if state is None:
                return None
            if state.status == FAILED and (state.failure_reason or "").startswith(UNUSABLE_CONFIG):
                state = replace(state, status=PENDING, failure_reason=None)  # usable again: carry on
            for server, (target, base) in issued.items():
                if state.runtime(server).issued_target is None:
                    state = state.with_runtime(
                        server, replace(state.runtime(server), issued_target=target, issued_base_ms=base)
                    )
            try:
                observations = self._observe(fleet, resource_name)
                hints = fleet.routing
                arrivals, seconds = 0, 0.0
                if snapshot:
                    hints = self._snapshot(fleet, config.request_count, resource_name, observations)
                    state, arrivals, seconds = self._measure(state, fleet, fleet.routing, hints, observations)
            except (Throttled, UpstreamRejected):
                if not tolerate_upstream:
                    raise
                # The desired capacity is recorded; the next GET or event carries the plan out.
                return self._view(read, state, _as_int(read.item.actual_capacity))
            decision = self._act(state, fleet, resource_name, observations, issued, self._fresh_backlog(hints))
            try:
                self._commit(read, recorded, decision)
                self._write_weights(fleet, config, decision, hints)
            except ConcurrentModification:
                _pause_before_retry(attempt)
                continue
            gauges = tuple(
                EndpointGauge(name, count, weight)
                for name, count, weight in zip(
                    fleet.endpoint_names(resource_name), decision.serving_counts, decision.weights, strict=True
                )
            )
            signal = None
            if snapshot and hints is not None:
                takes = [fleet.takes_requests(i) for i in range(len(fleet.servers))]
                signal = fleet_signal(
                    hints.backlog, takes, decision.coming_capacity, self.settings.target_backlog_per_unit,
                    decision.bound, arrivals, seconds, decision.state.throughput.per_unit,
                )
            warnings = tuple(f"scaling state: {problem} (dropped; rebuilt from SageMaker)" for problem in
                             recorded.discarded)
            warnings += tuple(f"server_config.{problem} (ignored; the next snapshot replaces it)" for problem in
                              fleet.routing_problems)
            return self._view(
                read,
                decision.state,
                decision.actual_capacity,
                previous_status=recorded.status,
                endpoints=gauges,
                bound_reason=decision.bound_reason,
                signal=signal,
                warnings=warnings,
            )
        raise ConcurrentModification("the scaling state kept changing under this request; try again")

    def _decide(
        self,
        state: ScalingState,
        fleet: FleetConfig,
        observations: list[EndpointObservation],
        backlog: Sequence[int] | None,
    ) -> Decision:
        return reconcile(
            state,
            fleet,
            observations,
            clock.now(),
            timeout_seconds=self.settings.scaling_timeout_seconds,
            backoff_seconds=self.settings.failover_backoff_seconds,
            backlog=backlog,
            target_per_unit=self.settings.target_backlog_per_unit,
            registered_max=self.settings.max_capacity,
        )

    def _act(
        self,
        state: ScalingState,
        fleet: FleetConfig,
        resource_name: str,
        observations: list[EndpointObservation],
        issued: dict[str, tuple[int, int | None]],
        backlog: Sequence[int] | None,
    ) -> Decision:
        """Decide and issue the updates; an endpoint that rejects its update is backed off and the plan is
        placed again on the others (at most once per endpoint)."""
        observations = list(observations)
        decision = self._decide(state, fleet, observations, backlog)
        for _ in range(len(fleet.servers) + 1):
            rejected = False
            for update in decision.updates:
                name = fleet.endpoint_name(resource_name, update.index)
                try:
                    self.updater(name, update.variant_name or "AllTraffic", update.instance_count)
                except (EndpointBusy, Throttled):
                    # Not InService any more (a concurrent run or SageMaker itself): this part waits.
                    state = decision.state.with_runtime(
                        update.server,
                        replace(decision.state.runtime(update.server), issued_target=None, issued_base_ms=None),
                    )
                    decision = replace(decision, state=state)
                    seen = observations[update.index]
                    observations[update.index] = replace(seen, status="Updating", desired=seen.current)
                    continue
                except UpstreamRejected as exc:
                    state = mark_unavailable(
                        decision.state, update.server, exc.message, clock.now(), self.settings.failover_backoff_seconds
                    )
                    rejected = True
                    decision = replace(decision, state=state)
                    continue
                issued[update.server] = (update.instance_count, update.base_modified_ms)
                seen = observations[update.index]
                observations[update.index] = replace(seen, status="Updating", desired=update.instance_count)
            if not rejected:
                return decision
            # Place the rejected share on the others; endpoints already updating are not asked twice.
            decision = self._decide(decision.state, fleet, observations, backlog)
        return decision

    def _commit(self, read: VersionedDimension, recorded: ScalingState, decision: Decision) -> None:
        item = read.item
        new = decision.state
        changes: dict[str, Any] = {}
        if _as_int(item.actual_capacity, -1) != decision.actual_capacity:
            changes["actual_capacity"] = decision.actual_capacity
        if item.scaling_status != new.status:
            changes["scaling_status"] = new.status
        if (item.failure_reason or None) != new.failure_reason:
            changes["failure_reason"] = new.failure_reason
        engine = new.engine_json()
        if item.scaling_state != engine:
            changes["scaling_state"] = engine
        if _as_int(item.desired_capacity, -1) != new.desired:
            changes["desired_capacity"] = new.desired
        if not changes:
            return  # nothing new: a GET on a steady fleet writes nothing
        if "scaling_status" in changes or "desired_capacity" in changes:
            changes["last_modified"] = clock.now_ms()
        self.store.update_dimension(changes, read.lock)

    def _write_weights(
        self, fleet: FleetConfig, config: VersionedConfig, decision: Decision, hints: RoutingHints | None
    ) -> None:
        """Weights, counts and the queue snapshot go to server_config, where the router's single UpdateItem
        reads them; only what changed is written."""
        changes: dict[str, Any] = {}
        if tuple(fleet.weights) != decision.weights:
            changes["weights"] = list(decision.weights)
        if tuple(fleet.current_instance_count) != decision.serving_counts:
            changes["current_instance_count"] = list(decision.serving_counts)
        zeros = (0,) * len(fleet.servers)
        # Before the first snapshot: no queue known (a snapshot time of 0 is never fresh), but the wake-up
        # quotas and counts ahead already steer the router.
        base = hints or RoutingHints(zeros, config.request_count, 0.0, zeros, zeros)
        routing = replace(base, wake_up=decision.wake_up, ahead=decision.ahead)
        if routing != fleet.routing:
            changes["routing"] = routing.to_item()
        if changes:
            self.store.update_server_config(changes, config.version)


def event_time_ms(last_modified: Any, event_time: Any) -> int:
    """The event's LastModifiedTime in epoch ms (a number, or an ISO-8601 string), else the envelope's time."""
    from datetime import datetime

    for value in (last_modified, event_time):
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, int | float | Decimal):
            return int(value)
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        try:
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            continue
    raise InvalidRequest("detail.LastModifiedTime", "must be epoch milliseconds or an ISO-8601 time")


@functools.cache
def get_engine() -> ScalingEngine:
    """The process-wide engine (one per Lambda container), created on first use."""
    return ScalingEngine(get_settings(), get_store())
