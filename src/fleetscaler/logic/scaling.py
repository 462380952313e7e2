"""The scaling state machine: from recorded state + observed endpoints to the next updates, weights, status.

Pure and level-triggered: `reconcile` looks at what every endpoint really is now (DescribeEndpoint) and
what the fleet wants, and says what to do next. Running it twice on the same input gives the same answer,
so any GET, PATCH or event may run it, and a lost event is repaired by the next run.

Statuses (Application Auto Scaling's custom-resource contract):
- Pending: a desired capacity is recorded and no update has been issued for it yet.
- InProgress: updates were issued or endpoints are updating.
- Successful: every endpoint that can be updated is at its target, none is updating, and the capacity
  serving is the one placed: the desired one (or, when capacity units cannot make it exactly, the nearest
  above), or, when the endpoints cannot give that much (caps, endpoints backed off after a failure), all
  they can give. actualCapacity then says how much serves, and the decision's `bound_reason` why it is less:
  a desired capacity inside the registered bounds is never refused and never fails an activity by itself.
- Failed: the scaling stayed unfinished longer than the timeout. The best possible plan keeps being
  applied; a scaling that converges after all still turns Successful, and a new desired capacity starts
  afresh.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeGuard

from fleetscaler.logic.placement import EndpointSlot, Placement, capacity_of, max_capacity, plan, queue_floors
from fleetscaler.logic.routing import UNBOUNDED_QUOTA
from fleetscaler.logic.server_config import FleetConfig
from fleetscaler.logic.signal import DEFAULT_TARGET_BACKLOG_PER_UNIT, Throughput
from fleetscaler.logic.wrr import reduce_weights

PENDING = "Pending"
IN_PROGRESS = "InProgress"
SUCCESSFUL = "Successful"
FAILED = "Failed"
SCALING_STATUSES = (PENDING, IN_PROGRESS, SUCCESSFUL, FAILED)

IN_SERVICE = "InService"
MISSING = "Missing"  # DescribeEndpoint says the endpoint does not exist
# Statuses in which an endpoint still answers from its current instances.
SERVING_STATUSES = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})
# Statuses that mean the endpoint is still changing: a scaling is not finished while one is in them.
CHANGING_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
# Statuses that mean the last update failed: the endpoint is backed off.
FAILED_STATUSES = frozenset({"Failed", "RollingBack", "UpdateRollbackFailed", MISSING})
# How soon an endpoint backed off after a failure is tried again when backing off cannot help (see reconcile).
STRANDED_RETRY_SECONDS = 60.0
# How long queues that announce a scale-out hold capacity where it is, waiting for Application Auto Scaling
# (its shortfall step acts on the next minute's datapoint, target tracking on the third); past it (scaling
# suspended, a policy that does not act) the queues move capacity again.
SCALE_OUT_WAIT_SECONDS = 180.0
# The most capacity units the engine places (its placement search is exact; beyond this it gets slow). A
# larger desired capacity is recorded as it is and this much is placed.
ENGINE_MAX_CAPACITY = 1000


def status_from_event(raw: str) -> str:
    """EventBridge's `IN_SERVICE` as DescribeEndpoint's `InService` (one vocabulary inside)."""
    special = {"OUT_OF_SERVICE": "OutOfService", "IN_SERVICE": "InService"}
    if raw in special:
        return special[raw]
    if raw.isupper() or "_" in raw:
        return "".join(part.capitalize() for part in raw.split("_"))
    return raw


@dataclass(frozen=True)
class EndpointObservation:
    """One endpoint as DescribeEndpoint shows it."""

    status: str
    current: int = 0
    desired: int = 0
    last_modified_ms: int | None = None
    failure_reason: str | None = None
    variant_name: str | None = None

    @property
    def serving(self) -> int:
        return self.current if self.status in SERVING_STATUSES else 0

    @property
    def heading(self) -> int:
        """The count the endpoint has or is already on its way to."""
        if self.status == "Updating":
            return self.desired
        return self.serving


@dataclass(frozen=True)
class EndpointRuntime:
    """What the engine remembers about one endpoint between runs."""

    target: int | None = None
    issued_target: int | None = None
    # The endpoint's LastModifiedTime when the update was issued: a later one means the update has run.
    issued_base_ms: int | None = None
    unavailable_until: float = 0.0
    unavailable_reason: str | None = None
    last_event_ms: int = 0
    # When the endpoint last settled (InService) at a new count; the race keeps the earliest arrivals.
    settled_at: float = 0.0
    settled_count: int | None = None

    def available(self, now: float) -> bool:
        return self.unavailable_until <= now


@dataclass(frozen=True)
class ScalingState:
    """The scaling in progress (or last finished), as recorded on the dimension item."""

    desired: int
    status: str = SUCCESSFUL
    failure_reason: str | None = None
    started_at: float = 0.0
    issued_any: bool = False
    endpoints: Mapping[str, EndpointRuntime] = field(default_factory=dict)
    # What one capacity unit completes per second, as observed while the fleet was busy.
    throughput: Throughput = field(default_factory=Throughput)
    # Since when the queues have announced a scale-out that has not come yet (None: they announce none).
    scale_out_awaited_since: float | None = None
    # What could not be read back from the stored record (and was dropped); empty when it read cleanly.
    discarded: tuple[str, ...] = field(default=(), compare=False)

    def runtime(self, server: str) -> EndpointRuntime:
        return self.endpoints.get(server) or EndpointRuntime()

    def with_runtime(self, server: str, runtime: EndpointRuntime) -> ScalingState:
        return replace(self, endpoints={**self.endpoints, server: runtime})

    def engine_json(self) -> str:
        """The part of the state stored as one JSON attribute (the rest has its own attributes)."""
        return json.dumps(
            {
                "startedAt": self.started_at,
                "issuedAny": self.issued_any,
                "throughput": [self.throughput.completed, self.throughput.unit_seconds],
                "scaleOutAwaitedSince": self.scale_out_awaited_since,
                "endpoints": {name: asdict(runtime) for name, runtime in sorted(self.endpoints.items())},
            },
            sort_keys=True,
        )

    @staticmethod
    def from_record(
        desired: int, status: str | None, failure_reason: str | None, engine_json: str | None
    ) -> ScalingState:
        engine, problems = _engine_memory(engine_json)
        endpoints: dict[str, EndpointRuntime] = {}
        raw_endpoints = engine.get("endpoints") or {}
        if not isinstance(raw_endpoints, dict):
            problems.append("endpoints: not a map")
            raw_endpoints = {}
        for name, raw in raw_endpoints.items():
            runtime, problem = _endpoint_runtime(raw)
            if runtime is None:
                problems.append(f"endpoints.{name}: {problem}")
            else:
                endpoints[str(name)] = runtime
        started_at = engine.get("startedAt") or 0.0
        if not _is_number(started_at):
            problems.append(f"startedAt: not a number ({started_at!r})")
            started_at = 0.0
        throughput = Throughput()
        raw_throughput = engine.get("throughput")
        if raw_throughput is not None:
            if (
                isinstance(raw_throughput, list)
                and len(raw_throughput) == 2
                and all(_is_number(v) and v >= 0 for v in raw_throughput)
            ):
                throughput = Throughput(float(raw_throughput[0]), float(raw_throughput[1]))
            else:
                problems.append(f"throughput: not [completed, unit-seconds] ({raw_throughput!r})")
        awaited = engine.get("scaleOutAwaitedSince")
        if awaited is not None and not _is_number(awaited):
            problems.append(f"scaleOutAwaitedSince: not a number ({awaited!r})")
            awaited = None
        return ScalingState(
            desired=desired,
            status=status if status in SCALING_STATUSES else SUCCESSFUL,
            failure_reason=failure_reason or None,
            started_at=float(started_at),
            issued_any=engine.get("issuedAny") is True,
            endpoints=endpoints,
            throughput=throughput,
            scale_out_awaited_since=None if awaited is None else float(awaited),
            discarded=tuple(problems),
        )


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _engine_memory(engine_json: str | None) -> tuple[dict[str, Any], list[str]]:
    if not engine_json:
        return {}, []
    try:
        loaded = json.loads(engine_json)
    except ValueError:
        return {}, ["not valid JSON"]
    if not isinstance(loaded, dict):
        return {}, ["not a JSON object"]
    return loaded, []


# The type each remembered field must have; anything else (a hand edit, a bug) is discarded with the endpoint's
# memory: the next observation of SageMaker rebuilds it.
_RUNTIME_FIELDS: dict[str, tuple[type, ...]] = {
    "target": (int, type(None)),
    "issued_target": (int, type(None)),
    "issued_base_ms": (int, type(None)),
    "unavailable_until": (int, float),
    "unavailable_reason": (str, type(None)),
    "last_event_ms": (int,),
    "settled_at": (int, float),
    "settled_count": (int, type(None)),
}


def _endpoint_runtime(raw: object) -> tuple[EndpointRuntime | None, str]:
    if not isinstance(raw, dict):
        return None, "not a map"
    values: dict[str, Any] = {}
    for key, value in raw.items():
        kinds = _RUNTIME_FIELDS.get(key)
        if kinds is None:
            continue  # written by a newer or older engine: not ours to judge
        if isinstance(value, bool) or not isinstance(value, kinds) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            return None, f"{key} has a wrong value ({value!r})"
        values[key] = float(value) if float in kinds and _is_number(value) else value
    return EndpointRuntime(**values), ""


def new_desired(state: ScalingState, desired: int, now: float) -> ScalingState:
    """Record a new desired capacity: a new scaling starts (the same value again changes nothing)."""
    if desired == state.desired:
        return state
    return replace(state, desired=desired, status=PENDING, failure_reason=None, started_at=now, issued_any=False)


def mark_unavailable(state: ScalingState, server: str, reason: str, now: float, backoff_seconds: float) -> ScalingState:
    runtime = state.runtime(server)
    return state.with_runtime(
        server,
        replace(
            runtime,
            unavailable_until=now + backoff_seconds,
            unavailable_reason=reason,
            issued_target=None,
            issued_base_ms=None,
        ),
    )


def record_event(
    state: ScalingState,
    server: str,
    status: str,
    last_modified_ms: int,
    failure_reason: str | None,
    now: float,
    backoff_seconds: float,
) -> ScalingState | None:
    """Apply an endpoint state-change event; None when it is a duplicate or older than one already seen."""
    runtime = state.runtime(server)
    if last_modified_ms <= runtime.last_event_ms:
        return None
    state = state.with_runtime(server, replace(runtime, last_event_ms=last_modified_ms))
    if status in FAILED_STATUSES:
        reason = f"endpoint update failed ({status}{': ' + failure_reason if failure_reason else ''})"
        state = mark_unavailable(state, server, reason, now, backoff_seconds)
    return state


@dataclass(frozen=True)
class Update:
    """One UpdateEndpointWeightsAndCapacities call to make."""

    index: int
    server: str
    instance_count: int
    variant_name: str | None
    base_modified_ms: int | None


@dataclass(frozen=True)
class Decision:
    state: ScalingState
    placement: Placement
    updates: tuple[Update, ...]
    actual_capacity: int
    serving_counts: tuple[int, ...]
    weights: tuple[int, ...]
    # Capacity units serving, or on their way, on the endpoints that take requests: what the fleet's
    # scaling signal divides the queued work by.
    coming_capacity: int = 0
    # The most the endpoints can give now (None: no cap anywhere, the engine's own limit applies).
    feasible_capacity: int | None = None
    # Why the fleet runs below the desired capacity (caps, endpoints backed off), None when it does not.
    bound_reason: str | None = None
    # Per endpoint: requests it may hold while no capacity serves or comes anywhere (RoutingHints.wake_up),
    # and requests counted ahead of its queue while its capacity is on its way (RoutingHints.ahead).
    wake_up: tuple[int, ...] = ()
    ahead: tuple[int, ...] = ()

    @property
    def bound(self) -> bool:
        return self.bound_reason is not None


def capacity_ceiling(fleet: FleetConfig) -> int | None:
    """The most capacity units the endpoints that take requests can give (their max_instance_count x
    capacity_units; None when one has no cap): a desired capacity above it is placed up to it."""
    return max_capacity([EndpointSlot(0, u, cap) for u, cap in zip(fleet.capacity_units, fleet.placement_caps,
                                                                    strict=True)])


def bound_warning(desired: int | None, ceiling: int | None, what: str = "the desired capacity") -> str | None:
    """A warning when `desired` (a desired capacity, or MaxCapacity) is more than the endpoints can give."""
    if desired is None or ceiling is None or desired <= ceiling:
        return None
    return (
        f"{what} ({desired}) is more than the endpoints can give ({ceiling} capacity units: max_instance_count x "
        "capacity_units of the endpoints that take requests); the fleet runs at most that, Application Auto "
        "Scaling's activities still succeed, and the CapacityBound alarm fires. Raise max_instance_count, add "
        "an endpoint, or lower MaxCapacity"
    )


def routing_weights(counts: Sequence[int], units: Sequence[int]) -> tuple[int, ...]:
    """Instances x capacity units per endpoint, divided by their gcd (all zero stays all zero)."""
    return reduce_weights([n * u for n, u in zip(counts, units, strict=True)])


def _observe(
    runtime: EndpointRuntime, seen: EndpointObservation, now: float, backoff_seconds: float
) -> EndpointRuntime:
    """Update one endpoint's memory from what DescribeEndpoint shows: failures, finished updates, arrivals."""
    if runtime.available(now) and (runtime.unavailable_until or runtime.unavailable_reason):
        runtime = replace(runtime, unavailable_until=0.0, unavailable_reason=None)  # back-off over
    if seen.status in FAILED_STATUSES and runtime.available(now):
        detail = f": {seen.failure_reason}" if seen.failure_reason else ""
        runtime = replace(
            runtime,
            unavailable_until=now + backoff_seconds,
            unavailable_reason=f"endpoint is {seen.status}{detail}",
            issued_target=None,
            issued_base_ms=None,
        )
    if seen.status == IN_SERVICE:
        if runtime.settled_count != seen.current:
            runtime = replace(runtime, settled_at=now, settled_count=seen.current)
        issued = runtime.issued_target
        if issued is not None:
            moved = (
                seen.last_modified_ms is None
                or runtime.issued_base_ms is None
                or seen.last_modified_ms > runtime.issued_base_ms
            )
            if seen.current == issued:
                runtime = replace(runtime, issued_target=None, issued_base_ms=None)
            elif moved and seen.current < issued:
                # The update ran and ended below its target (capacity shortage, rollback): fail over.
                runtime = replace(
                    runtime,
                    unavailable_until=now + backoff_seconds,
                    unavailable_reason=(
                        f"update to {issued} instances ended at {seen.current}"
                        + (f": {seen.failure_reason}" if seen.failure_reason else "")
                    ),
                    issued_target=None,
                    issued_base_ms=None,
                )
            elif moved:
                runtime = replace(runtime, issued_target=None, issued_base_ms=None)
    return runtime



def _scale_out_announced(
    placed: int,
    *,
    planned: Sequence[EndpointRuntime],
    units: Sequence[int],
    coming: int,
    queued: Sequence[float],
    target_per_unit: float,
    room: int,
) -> bool:
    """The capacity placed is the one already planned, the fleet's queues need more than the `coming` capacity
    units serve or bring (the shortfall the scaling signal reports), and the fleet may still grow: a scale-out is
    on its way."""
    targets = [runtime.target for runtime in planned]
    if None in targets or capacity_of([t or 0 for t in targets], units) != placed:
        return False
    return placed < room and math.ceil(sum(queued) / target_per_unit - 1e-9) > coming


def reconcile(
    state: ScalingState,
    fleet: FleetConfig,
    observations: Sequence[EndpointObservation],
    now: float,
    *,
    timeout_seconds: float,
    backoff_seconds: float,
    backlog: Sequence[float] | None = None,
    target_per_unit: float = DEFAULT_TARGET_BACKLOG_PER_UNIT,
    registered_max: int | None = None,
) -> Decision:
    """The next step of the scaling: updates to issue now, status, actual capacity and routing weights.

    `backlog`: requests queued per endpoint (the engine's latest snapshot), so that capacity goes where the
    queues are (`queue_floors`); `target_per_unit`: the backlog per capacity unit the fleet is scaled to;
    `registered_max`: the most Application Auto Scaling may ask for (MAX_CAPACITY; None: no bound)."""
    if len(observations) != len(fleet.servers):
        raise ValueError("one observation per server, in servers order")
    runtimes = [
        _observe(state.runtime(server), seen, now, backoff_seconds)
        for server, seen in zip(fleet.servers, observations, strict=True)
    ]
    # A draining endpoint gets no share of the plan: the others take its capacity while it finishes its queue.
    draining = [fleet.is_draining(i) for i in range(len(fleet.servers))]
    available = [runtime.available(now) for runtime in runtimes]
    # An endpoint backed off counts with what it serves: an update still running on it is a retry that may
    # fail again, not capacity on its way.
    slots = [
        EndpointSlot(
            current=seen.heading if usable else seen.serving,
            units=units,
            cap=cap,
            available=usable,
            serving=0 if leaving else seen.serving,
        )
        for seen, units, cap, usable, leaving in zip(
            observations, fleet.capacity_units, fleet.placement_caps, available, draining, strict=True
        )
    ]
    # A back-off moves an endpoint's share to the others. Where that cannot help, it is cut short: an endpoint
    # whose queue has no instance (its requests cannot move), or any endpoint while the others cannot give the
    # desired capacity, is tried again STRANDED_RETRY_SECONDS after its failure (once SageMaker takes updates).
    # The most the endpoints that work can give now (None: no cap anywhere).
    ceiling = max_capacity(slots)
    bound = ceiling is not None and ceiling < state.desired
    retried: set[int] = set()
    for i, runtime in enumerate(runtimes):
        stranded = backlog is not None and backlog[i] > 0 and observations[i].heading == 0
        failed_at = runtime.unavailable_until - backoff_seconds
        if not available[i] and not draining[i] and (stranded or bound) and now >= failed_at + STRANDED_RETRY_SECONDS:
            slots[i] = replace(slots[i], available=True)
            retried.add(i)
    # Never more than the endpoints can give (or the engine's own limit): the desired capacity stays recorded
    # as Application Auto Scaling set it, and this much is placed.
    feasible = max_capacity(slots)
    placed = min(state.desired, ENGINE_MAX_CAPACITY if feasible is None else feasible, ENGINE_MAX_CAPACITY)
    awaited_since = state.scale_out_awaited_since
    if backlog is not None:
        queued = [0.0 if leaving else max(0.0, float(b)) for b, leaving in zip(backlog, draining, strict=True)]
        floors = queue_floors(queued, fleet.capacity_units, [s.upper for s in slots], placed, target_per_unit)
        room = min(bound for bound in (registered_max, feasible, ENGINE_MAX_CAPACITY) if bound is not None)
        coming_now = capacity_of(_serving_or_coming(observations, runtimes, draining, now), fleet.capacity_units)
        if _scale_out_announced(placed, planned=runtimes, units=fleet.capacity_units, coming=coming_now,
                                queued=queued, target_per_unit=target_per_unit, room=room):
            awaited_since = now if awaited_since is None else awaited_since
            if now - awaited_since < SCALE_OUT_WAIT_SECONDS:
                # The queues need more than serves or comes and the fleet has room to grow: the scale-out they
                # announce (the shortfall step acts on the same queues) gives every queue capacity, stranded
                # ones first. Until it comes, capacity stays where it is: an endpoint raised now would still be
                # Updating when the scale-out comes (SageMaker takes one update at a time), and its part of the
                # scale-out would wait a whole provisioning delay.
                floors = tuple(min(f, seen.heading) for f, seen in zip(floors, observations, strict=True))
        else:
            awaited_since = None
        slots = [replace(slot, floor=f) for slot, f in zip(slots, floors, strict=True)]
    settle_times = sorted({runtime.settled_at for runtime in runtimes})
    arrival_rank = [settle_times.index(runtime.settled_at) for runtime in runtimes]
    # Endpoints tried again because the others cannot give the desired capacity are a probe on top: the
    # endpoints that work are filled first, and only what they cannot give goes to the retried ones.
    probes = retried if bound else set()
    placement = (
        _plan_with_probes(fleet.strategy, placed, slots, arrival_rank, probes)
        if probes
        else plan(fleet.strategy, placed, slots, arrival_rank)
    )

    serving = tuple(seen.serving for seen in observations)
    # Capacity that takes new requests: a draining endpoint's instances only finish what it already queued.
    actual = sum(
        n * u for n, u, leaving in zip(serving, fleet.capacity_units, draining, strict=True) if not leaving
    )
    # Make before break: a removal goes out only while the capacity left serving stays at the level the
    # plan aims for; instances moving between endpoints are retired once their replacements serve.
    floor = min(placed, placement.capacity)
    left = actual
    updates: list[Update] = []
    held = False
    for index, (server, seen, target) in enumerate(zip(fleet.servers, observations, placement.targets, strict=True)):
        runtime = replace(runtimes[index], target=target)
        # SageMaker rejects updates of an endpoint that is not InService: that part of the plan waits.
        if draining[index] and fleet.max_instance_count[index] != 0:
            # Pinned until the operator releases it (cap 0): its instances stay to work through its queue.
            runtime = replace(runtime, target=seen.heading)
        elif draining[index]:
            # Released (cap 0): it takes no requests, so its instances go now, outside make-before-break;
            # not while it is backed off after a rejected update (the back-off is the retry pace).
            if seen.status == IN_SERVICE and target != seen.current and runtime.available(now):
                updates.append(Update(index, server, target, seen.variant_name, seen.last_modified_ms))
                runtime = replace(runtime, issued_target=target, issued_base_ms=seen.last_modified_ms)
        elif seen.status == IN_SERVICE and target != seen.current:
            removed = (seen.current - target) * fleet.capacity_units[index]
            if removed > 0 and left - removed < floor:
                held = True
            else:
                left -= max(removed, 0)
                updates.append(Update(index, server, target, seen.variant_name, seen.last_modified_ms))
                runtime = replace(runtime, issued_target=target, issued_base_ms=seen.last_modified_ms)
        runtimes[index] = runtime

    # A retry still running (or failing again) does not hold the scaling open: it is done when every other
    # endpoint is at its target and the retried ones serve what they served before.
    changing = any(seen.status in CHANGING_STATUSES for i, seen in enumerate(observations) if i not in probes)
    settled_capacity = sum(
        (observations[i].serving if i in probes else target) * u
        for i, (target, u) in enumerate(zip(placement.targets, fleet.capacity_units, strict=True))
    )
    applied = (
        not any(update.index not in probes for update in updates)
        and not held
        and not changing
        and actual == settled_capacity
    )

    issued_any = state.issued_any or bool(updates)
    status, reason = state.status, state.failure_reason
    started_at = state.started_at
    if status == SUCCESSFUL and not applied:
        # A settled fleet has work again without a new desired capacity (drained endpoint, failover, an
        # edited cap, a back-off that ended): that is a new activity, timed from now, not from the last PATCH.
        started_at = now
    unavailable = [
        f"{server}: {runtime.unavailable_reason}"
        for server, runtime in zip(fleet.servers, runtimes, strict=True)
        if not runtime.available(now) and runtime.unavailable_reason
    ]
    if applied:
        status, reason = SUCCESSFUL, None
    elif status == FAILED:
        pass  # a failed scaling stays failed until it converges or a new desired capacity arrives
    elif started_at and now - started_at > timeout_seconds:
        status = FAILED
        reason = f"scaling to {state.desired} did not finish within {int(timeout_seconds)} seconds"
        if unavailable:
            reason += f" (unavailable: {'; '.join(unavailable)})"
    elif issued_any or changing:
        status, reason = IN_PROGRESS, None
    else:
        status, reason = PENDING, None

    bound_reason = None
    if ceiling is not None and ceiling < min(state.desired, ENGINE_MAX_CAPACITY):
        bound_reason = (
            f"the endpoints can give at most {ceiling} capacity units (max_instance_count x capacity_units "
            f"of the endpoints that take requests and are not backed off); desired is {state.desired}"
        )
    elif state.desired > ENGINE_MAX_CAPACITY:
        bound_reason = f"the engine places at most {ENGINE_MAX_CAPACITY} capacity units; desired is {state.desired}"
    if bound_reason and unavailable:
        bound_reason += f" (unavailable: {'; '.join(unavailable)}"
        if retried:
            bound_reason += f"; tried again: {', '.join(fleet.servers[i] for i in sorted(retried))}"
        bound_reason += ")"

    new_state = replace(
        state,
        started_at=started_at,
        status=status,
        failure_reason=reason,
        issued_any=issued_any,
        endpoints={**state.endpoints, **dict(zip(fleet.servers, runtimes, strict=True))},
        scale_out_awaited_since=awaited_since,
    )
    heading = _serving_or_coming(observations, runtimes, draining, now)
    coming = capacity_of(heading, fleet.capacity_units)
    # Routing follows the capacity that serves or is on its way; the part still starting counts behind its own
    # target backlog (`ahead`) while capacity serves somewhere: a request finishes sooner where capacity serves
    # until those queues are as long.
    routed = heading
    serves_somewhere = any(n and seen.serving for n, seen in zip(routed, observations, strict=True))
    ahead = tuple(
        math.ceil(target_per_unit * (n - seen.serving) * u) if n > seen.serving and serves_somewhere else 0
        for n, u, seen in zip(routed, fleet.capacity_units, observations, strict=True)
    )
    # What each endpoint can work through at the target, now or once scaled to its cap (RoutingHints.wake_up):
    # an endpoint backed off after a failure only with what it serves, one leaving the fleet nothing.
    wake_up = tuple(
        0
        if not fleet.takes_requests(i) or draining[i]
        else math.ceil(observations[i].serving * fleet.capacity_units[i] * target_per_unit)
        if not runtimes[i].available(now)
        else UNBOUNDED_QUOTA
        if fleet.max_instance_count[i] is None
        else math.ceil((fleet.max_instance_count[i] or 0) * fleet.capacity_units[i] * target_per_unit)
        for i in range(len(fleet.servers))
    )
    return Decision(
        state=new_state,
        placement=placement,
        updates=tuple(updates),
        actual_capacity=actual,
        serving_counts=serving,
        weights=routing_weights(routed, fleet.capacity_units),
        coming_capacity=coming,
        feasible_capacity=ceiling,
        bound_reason=bound_reason,
        wake_up=wake_up,
        ahead=ahead,
    )


def _plan_with_probes(
    strategy: str, placed: int, slots: list[EndpointSlot], arrival_rank: Sequence[int], probes: set[int]
) -> Placement:
    """Place `placed` units with the endpoints in `probes` (backed off, tried again) as a top-up: the others
    are planned alone first, at all they can give, and the probes get only what is still missing, one endpoint
    after the other. A retry that fails again then takes nothing from capacity that arrives."""
    alone = [replace(slot, available=False) if i in probes else slot for i, slot in enumerate(slots)]
    base = plan(strategy, min(placed, max_capacity(alone) or 0), alone, arrival_rank)
    targets = list(base.targets)
    missing = placed - base.capacity
    for i in sorted(probes):
        if missing <= 0:
            break
        slot = slots[i]
        extra = min(slot.upper - targets[i], math.ceil(missing / slot.units))
        if extra > 0:
            targets[i] += extra
            missing -= extra * slot.units
    capacity = capacity_of(targets, [slot.units for slot in slots])
    reason = None if capacity == placed else base.shortfall_reason
    return Placement(tuple(targets), capacity, placed, reason)


def _serving_or_coming(
    observations: Sequence[EndpointObservation], runtimes: Sequence[EndpointRuntime], draining: Sequence[bool],
    now: float,
) -> list[int]:
    """Instances serving or on their way on each endpoint that takes requests: what the scaling signal counts
    (an endpoint backed off counts what it serves, one leaving the fleet or winding down to 0 nothing)."""
    return [
        0
        if draining[i] or _winding_down(seen, runtimes[i])
        else (seen.heading if runtimes[i].available(now) else seen.serving)
        for i, seen in enumerate(observations)
    ]


def _winding_down(seen: EndpointObservation, runtime: EndpointRuntime) -> bool:
    """An endpoint on its way to 0 instances: its removal went out (now or earlier), whatever the plan says
    next. It gets no new requests, which would wait for capacity it is about to lose. While make-before-break
    still holds a removal, nothing went out yet: it keeps serving and keeps its weight."""
    return runtime.issued_target == 0 or seen.heading == 0
