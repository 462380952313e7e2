"""The service: registration, evaluation of the policies once a period, activities, the custom resource's answers."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.credentials import Credentials, ReadOnlyCredentials

from fleetscaler import clock
from fleetscaler.local.autoscaling.activities import ResourceState, ScalingActivity
from fleetscaler.local.autoscaling.base import (
    PERIOD_SECONDS,
    SCALABLE_DIMENSION,
    SERVICE_NAMESPACE,
    TARGET_TRACKING_IN_DATAPOINTS,
    Direction,
    RegistrationError,
    ScalingConfigurationError,
)
from fleetscaler.local.autoscaling.metrics import MetricMath, MetricStat
from fleetscaler.local.autoscaling.policies import Policy, TargetTrackingPolicy
from fleetscaler.local.autoscaling.variant import SAGEMAKER_DIMENSION, SAGEMAKER_NAMESPACE, SageMakerVariant
from fleetscaler.local.sigv4 import HttpAnswer, Transport, send_signed


@dataclass
class _PolicyState:
    last_out: ScalingActivity | None = None
    last_in: ScalingActivity | None = None


@dataclass(frozen=True)
class _Proposal:
    policy: Policy
    capacity: int
    cause: str



# --- the service -----------------------------------------------------------------------------------------------


class ApplicationAutoScaling:
    """Application Auto Scaling for one registered scalable target (see the module docstring): the custom
    resource at `resource_id` (a URL), or, given `variant`, a SageMaker endpoint variant."""

    def __init__(
        self,
        resource_id: str,
        min_capacity: int,
        max_capacity: int,
        credentials: Credentials | ReadOnlyCredentials,
        *,
        region: str = "us-east-1",
        cloudwatch: Any | None = None,
        poll_interval: float = 60.0,
        transport: Transport | None = None,
        variant: SageMakerVariant | None = None,
    ) -> None:
        self.variant = variant
        if variant is not None:
            resource_id = variant.resource_id
        elif not resource_id.startswith(("http://", "https://")) or len(resource_id) > 1600:
            raise ScalingConfigurationError("ResourceId: must be the dimension's URL, at most 1600 characters")
        self.resource_id = resource_id
        self.service_namespace = SAGEMAKER_NAMESPACE if variant is not None else SERVICE_NAMESPACE
        self.scalable_dimension = SAGEMAKER_DIMENSION if variant is not None else SCALABLE_DIMENSION
        self.credentials = credentials
        self.region = region
        self.poll_interval = poll_interval
        self.transport = transport
        self._check_bounds(min_capacity, max_capacity)
        self.min_capacity = min_capacity
        self.max_capacity = max_capacity
        self._cloudwatch = cloudwatch
        self._policies: dict[str, Policy] = {}
        self._policy_state: dict[str, _PolicyState] = {}
        self.activities: list[ScalingActivity] = []
        self.resource: ResourceState | None = None
        self.registered = False
        self.last_error: str | None = None
        self._last_poll = -math.inf
        self._last_evaluated_period: int | None = None

    # --- configuration ---------------------------------------------------------------------------------------

    @staticmethod
    def _check_bounds(min_capacity: int, max_capacity: int) -> None:
        if min_capacity < 0:
            raise ScalingConfigurationError(f"MinCapacity: must be >= 0, got {min_capacity}")
        if max_capacity < min_capacity:
            raise ScalingConfigurationError(f"MaxCapacity: must be >= MinCapacity ({min_capacity}), got {max_capacity}")

    def put_scaling_policy(self, policy: Policy) -> None:
        """Add a policy, or replace the one with the same name (its cooldown state is kept)."""
        self._policies[policy.name] = policy
        self._policy_state.setdefault(policy.name, _PolicyState())

    def delete_scaling_policy(self, name: str) -> None:
        if name not in self._policies:
            raise ScalingConfigurationError(f"PolicyName: no policy named {name!r}")
        del self._policies[name]

    @property
    def policies(self) -> tuple[Policy, ...]:
        return tuple(self._policies.values())

    def register(
        self, now: float | None = None, *, min_capacity: int | None = None, max_capacity: int | None = None
    ) -> ScalingActivity | None:
        """RegisterScalableTarget (again, to change the bounds): GET the resource; PATCH it into [min, max].

        Raises RegistrationError when the resource does not answer 200, as the service refuses to register it.
        Returns the activity started when the capacity had to move.
        """
        now = clock.now() if now is None else now
        new_min = self.min_capacity if min_capacity is None else min_capacity
        new_max = self.max_capacity if max_capacity is None else max_capacity
        self._check_bounds(new_min, new_max)
        state = self._get(now)
        if state is None:
            raise RegistrationError(f"GET {self.resource_id} answered {self.last_error}")
        self.min_capacity, self.max_capacity = new_min, new_max
        self.registered = True
        desired = _whole(state.desired_capacity)
        bounded = min(max(desired, new_min), new_max)
        if bounded == desired:
            return None
        bound = "minimum" if bounded == new_min and desired < new_min else "maximum"
        return self._scale(now, bounded, desired, None, f"{bound} capacity was set to {bounded}")

    # --- the loop --------------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[ScalingActivity]:
        """Advance to `now`: poll the resource for open activities, evaluate the alarms once per period, scale.

        Returns the activities started during this tick.
        """
        started: list[ScalingActivity] = []
        if not self.registered:
            activity = self.register(now)
            started.extend([activity] if activity else [])
        if self.open_activities() and now - self._last_poll >= self.poll_interval:
            self._refresh(now)
        period = math.floor(now / PERIOD_SECONDS)
        if self._last_evaluated_period is None or period > self._last_evaluated_period:
            self._last_evaluated_period = period
            activity = self._evaluate(now, period * PERIOD_SECONDS)
            started.extend([activity] if activity else [])
        return started

    def open_activities(self) -> list[ScalingActivity]:
        return [activity for activity in self.activities if activity.is_open]

    def describe_scaling_activities(self) -> list[dict[str, Any]]:
        """The activities, newest first, in the shape of DescribeScalingActivities' `ScalingActivities`."""
        return [activity.to_dict() for activity in reversed(self.activities)]

    def describe_scaling_activities_request(self, params: dict[str, Any]) -> dict[str, Any]:
        """The DescribeScalingActivities API call (request parameters in, response out), for this one target."""
        wanted = (
            params.get("ServiceNamespace") == self.service_namespace
            and params.get("ResourceId", self.resource_id) == self.resource_id
            and params.get("ScalableDimension", self.scalable_dimension) == self.scalable_dimension
        )
        activities = self.describe_scaling_activities() if wanted else []
        limit = int(params.get("MaxResults") or 50)
        return {"ScalingActivities": activities[:limit]}

    # --- HTTP to the custom resource ---------------------------------------------------------------------------

    def _call(self, method: str, now: float, body: dict[str, Any] | None = None) -> HttpAnswer:
        payload = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            return send_signed(
                method,
                self.resource_id,
                self.credentials,
                region=self.region,
                headers=headers,
                body=payload,
                when=now,
                transport=self.transport,
            )
        except OSError as exc:
            return HttpAnswer(0, {}, json.dumps({"message": f"no answer: {exc}"}).encode())

    def _read_state(self, answer: HttpAnswer) -> ResourceState | None:
        if answer.status != 200:
            self.last_error = f"{answer.status}: {_message(answer)}"
            return None
        try:
            raw = answer.json()
            state = ResourceState(
                actual_capacity=float(raw["actualCapacity"]),
                desired_capacity=float(raw["desiredCapacity"]),
                scaling_status=str(raw["scalingStatus"]),
                failure_reason=raw.get("failureReason"),
                raw=raw,
            )
        except (ValueError, KeyError, TypeError) as exc:
            self.last_error = f"200 with a body that is not a scalable dimension: {exc!r}"
            return None
        self.resource = state
        self.last_error = None
        return state

    def _get(self, now: float) -> ResourceState | None:
        """The resource's state (None, with `last_error`, when it cannot be read)."""
        if self.variant is None:
            return self._read_state(self._call("GET", now))
        return self._variant_state(self.variant.get())

    def _set_desired(self, now: float, capacity: int) -> ResourceState | None:
        if self.variant is None:
            return self._read_state(self._call("PATCH", now, {"desiredCapacity": float(capacity)}))
        return self._variant_state(self.variant.set_desired(capacity))

    def _variant_state(self, answer: ResourceState | str) -> ResourceState | None:
        if isinstance(answer, str):
            self.last_error = answer
            return None
        self.resource = answer
        self.last_error = None
        return answer

    def _refresh(self, now: float) -> ResourceState | None:
        self._last_poll = now
        state = self._get(now)
        if state is not None:
            self._settle(now, state)
        return state

    def _settle(self, now: float, state: ResourceState) -> None:
        """Move the open activities along with the resource's scalingStatus."""
        for activity in self.open_activities():
            if state.scaling_status == "Successful":
                activity.status_code = "Successful"
                activity.end_time = now
                activity.status_message = (
                    f"Successfully set desired capacity to {activity.desired_capacity}. "
                    f"Change successfully fulfilled by {self.service_namespace}."
                )
            elif state.scaling_status == "Failed":
                activity.status_code = "Failed"
                activity.end_time = now
                activity.status_message = f"Failed to set desired capacity to {activity.desired_capacity}: " + (
                    state.failure_reason or "the resource reported Failed"
                )
            else:
                activity.status_code = "InProgress"
                activity.status_message = (
                    f"Waiting for {self.service_namespace} to fulfill capacity {activity.desired_capacity}."
                )

    def _scale(self, now: float, capacity: int, previous: int, policy: Policy | None, cause: str) -> ScalingActivity:
        activity = ScalingActivity(
            activity_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.resource_id}#{len(self.activities)}")),
            resource_id=self.resource_id,
            description=f"Setting desired capacity to {capacity}.",
            cause=f"at {_iso(now)} {cause}",
            start_time=now,
            desired_capacity=capacity,
            previous_capacity=previous,
            direction="out" if capacity > previous else "in",
            policy_name=policy.name if policy else None,
            actual_at_start=_whole(self.resource.actual_capacity) if self.resource else 0,
            service_namespace=self.service_namespace,
            scalable_dimension=self.scalable_dimension,
        )
        self.activities.append(activity)
        if policy is not None:
            state = self._policy_state[policy.name]
            if activity.direction == "out":
                state.last_out = activity
            else:
                state.last_in = activity
        resource = self._set_desired(now, capacity)
        self._last_poll = now
        if resource is None:
            activity.status_code = "Failed"
            activity.end_time = now
            where = "HTTP " if self.variant is None else ""
            activity.status_message = f"Failed to set desired capacity to {capacity}: {where}{self.last_error}"
        else:
            self._settle(now, resource)
        return activity

    # --- decisions -------------------------------------------------------------------------------------------

    def _evaluate(self, now: float, period_start: float) -> ScalingActivity | None:
        if not self._policies:
            return None
        series = self._metric_series(period_start)
        # (policy, alarm name, newest breaching value, the only direction it may scale, if limited)
        alarmed: list[tuple[Policy, str, float, Direction | None]] = []
        for policy in self._policies.values():
            if isinstance(policy, TargetTrackingPolicy):
                values = series[policy.metric]
                high = policy.alarm_high.evaluate(values)
                low = None if policy.disable_scale_in else policy.alarm_low.evaluate(values)
                if high is not None:
                    alarmed.append((policy, policy.alarm_high.name, high, "out"))
                elif low is not None:
                    alarmed.append((policy, policy.alarm_low.name, low, "in"))
            else:
                value = policy.alarm.evaluate(series[policy.alarm.metric])
                if value is not None:
                    alarmed.append((policy, policy.alarm.name, value, None))
        if not alarmed:
            return None
        # Every evaluation that may scale reads the resource first (unless this tick just did): the capacities it
        # computes from are current.
        state = self.resource if self._last_poll == now and self.last_error is None else self._refresh(now)
        if state is None or state.blocked:
            return None
        desired = _whole(state.desired_capacity)
        actual = _whole(state.actual_capacity)
        outs: list[_Proposal] = []
        ins: list[_Proposal] = []
        for policy, alarm_name, value, direction in alarmed:
            cause = f"monitor alarm {alarm_name} in state ALARM triggered policy {policy.name}"
            for proposal in self._proposals(now, policy, value, desired, actual, cause):
                scales_out = proposal.capacity > desired
                if direction is None or direction == ("out" if scales_out else "in"):
                    (outs if scales_out else ins).append(proposal)
        if outs:
            best = max(outs, key=lambda p: p.capacity)
            return self._scale(now, best.capacity, desired, best.policy, best.cause)
        if ins:
            best = max(ins, key=lambda p: p.capacity)
            return self._scale(now, best.capacity, desired, best.policy, best.cause)
        return None

    def _proposals(
        self, now: float, policy: Policy, value: float, desired: int, actual: int, cause: str
    ) -> list[_Proposal]:
        state = self._policy_state[policy.name]
        out_cooldown = policy.scale_out_cooldown if isinstance(policy, TargetTrackingPolicy) else policy.cooldown
        in_cooldown = policy.scale_in_cooldown if isinstance(policy, TargetTrackingPolicy) else policy.cooldown
        out_active = _in_cooldown(state.last_out, now, out_cooldown)
        if isinstance(policy, TargetTrackingPolicy):
            if actual == 0:
                return []  # no per-instance metric without instances: the scale-from-zero policy acts
            multiplier = actual
            if out_active and state.last_out is not None and actual * value > desired * policy.target_value:
                # In a scale-out cooldown the newest datapoints may still be per instance of the capacity from
                # before the last scale-out: the capacity it added counts toward this one, as AWS describes it.
                multiplier = state.last_out.actual_at_start
            wanted: int | None = math.ceil(multiplier * value / policy.target_value - 1e-9)
        else:
            wanted = policy.capacity_for(value, desired)
            if wanted is not None and wanted > desired and out_active and state.last_out is not None:
                # In a scale-out cooldown, the capacity added by the activity that started it counts toward this one;
                # a scale-out that comes to no more than what is already asked for does nothing (it never turns
                # into a scale-in).
                wanted = policy.capacity_for(value, state.last_out.previous_capacity)
                if wanted is not None and wanted <= desired:
                    return []
        if wanted is None:
            return []
        bounded = min(max(wanted, self.min_capacity), self.max_capacity)
        if bounded > desired:
            if out_active and state.last_out is not None and bounded <= state.last_out.desired_capacity:
                return []
            return [_Proposal(policy, bounded, cause)]
        if bounded < desired and not _in_cooldown(state.last_in, now, in_cooldown):
            return [_Proposal(policy, bounded, cause)]
        return []

    def _metric_series(self, period_start: float) -> dict[MetricMath, list[float | None]]:
        """For each policy metric, one value per complete 60 s period, oldest first, ending before `period_start`."""
        maths: list[MetricMath] = []
        for policy in self._policies.values():
            maths.append(policy.metric if isinstance(policy, TargetTrackingPolicy) else policy.alarm.metric)
        periods = max(
            TARGET_TRACKING_IN_DATAPOINTS if isinstance(p, TargetTrackingPolicy) else p.alarm.evaluation_periods
            for p in self._policies.values()
        )
        stats = sorted({stat for math_ in maths for stat in math_.metrics}, key=repr)
        ids = {stat: f"m{index}" for index, stat in enumerate(stats)}
        start = period_start - periods * PERIOD_SECONDS
        raw = self._get_metric_data([stat.query(ids[stat]) for stat in stats], start, period_start)
        per_stat: dict[MetricStat, list[float | None]] = {}
        for stat in stats:
            values: list[float | None] = [None] * periods
            for timestamp, value in raw.get(ids[stat], []):
                index = int((timestamp - start) // PERIOD_SECONDS)
                if 0 <= index < periods:
                    values[index] = value
            per_stat[stat] = values
        series: dict[MetricMath, list[float | None]] = {}
        for math_ in maths:
            combined: list[float | None] = []
            for index in range(periods):
                present = [v for stat in math_.metrics if (v := per_stat[stat][index]) is not None]
                combined.append(math_.combine(present) if present else None)
            series[math_] = combined
        return series

    def _get_metric_data(
        self, queries: list[dict[str, Any]], start: float, end: float
    ) -> dict[str, list[tuple[float, float]]]:
        if self._cloudwatch is None:
            self._cloudwatch = boto3.client("cloudwatch", region_name=self.region)
        found: dict[str, list[tuple[float, float]]] = {}
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": dt.datetime.fromtimestamp(start, dt.UTC),
            "EndTime": dt.datetime.fromtimestamp(end, dt.UTC),
            "ScanBy": "TimestampAscending",
        }
        while True:
            page = self._cloudwatch.get_metric_data(**kwargs)
            for result in page["MetricDataResults"]:
                pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                found.setdefault(result["Id"], []).extend((ts.timestamp(), float(v)) for ts, v in pairs)
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]


def _in_cooldown(activity: ScalingActivity | None, now: float, cooldown: float) -> bool:
    """An open activity, or one that succeeded less than `cooldown` ago, holds its direction's cooldown."""
    if activity is None or activity.status_code == "Failed":
        return False
    if activity.is_open:
        return True
    assert activity.end_time is not None
    return now < activity.end_time + cooldown


def _whole(capacity: float) -> int:
    return math.ceil(capacity - 1e-9)


def _message(answer: HttpAnswer) -> str:
    try:
        return str(answer.json().get("message", answer.body[:200].decode("utf-8", "replace")))
    except (ValueError, AttributeError):
        return answer.body[:200].decode("utf-8", "replace")


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
