"""Application Auto Scaling, emulated for one custom-resource scalable target.

It does what the service does for fleetscaler: reads the scaling metrics from CloudWatch (through boto3, so
moto stands in), evaluates the alarms of its policies once per 60 s period, decides a desired capacity, and
tells the custom resource over **SigV4-signed HTTP**: `GET` and `PATCH {"desiredCapacity": 4.0}` on the
target's ResourceId URL (`.../scalableTargetDimensions/{id}`), exactly the calls the deployed service makes.
Each decision is a scaling activity (as `DescribeScalingActivities` shows them) that stays open until the
resource reports `Successful` or `Failed`.

It owns no thread: the caller drives it with `tick(now)` (epoch seconds, a virtual clock's time in the local
fleet), so an hour of fleet time runs in a minute and the same inputs give the same activities.

    aas = ApplicationAutoScaling(resource_id, min_capacity=0, max_capacity=12, credentials=creds)
    aas.put_scaling_policy(TargetTrackingPolicy("backlog", fleet_backlog_metric("endpoint", ["1", "2"]), 5.0))
    aas.put_scaling_policy(scale_from_zero_policy("endpoint", "1"))
    aas.register(now)                  # GET, and PATCH into [min, max] when outside, as RegisterScalableTarget
    for now in range(t0, t0 + 3600, 10):
        aas.tick(now)
    aas.describe_scaling_activities()

Semantics (following the AWS documentation where it speaks, and observed behaviour where it does not):

- Target tracking. The alarms AAS creates for a target tracking policy: scale out when the metric is above the
  target for 3 consecutive 1-minute datapoints, scale in when it is below 90 % of the target for 15. The new
  capacity is `ceil(actualCapacity * metric / target)` (metric = the newest datapoint), bounded by min/max;
  during a scale-out cooldown the multiplier is the actual capacity from before that scale-out, since the
  newest datapoints may still be per instance of it.
  Target tracking cannot scale out from 0 (there is no per-instance metric then): that is what the
  scale-from-zero step policy is for. `DisableScaleIn` is honoured.
- Step scaling. An alarm (M of N datapoints of a 60 s period against a threshold) and step adjustments whose
  bounds are relative to the threshold, as in the step-scaling seed; `ChangeInCapacity` and
  `PercentChangeInCapacity` are relative to the current desired capacity, `ExactCapacity` sets it. While the
  alarm stays in ALARM the policy runs again every period, subject to its cooldown.
- Cooldowns (default 300 s, per policy) run from the end of the activity; an open activity counts as in
  cooldown. During a scale-out cooldown, the capacity added by the activity that started it counts as part
  of the next scale-out: a step policy adds to the capacity from before that activity, and only a larger
  result scales out again (a `+1` alarm that stays in ALARM while instances start does not add more).
  During a scale-in cooldown no further scale-in happens, but a scale-out proceeds at once.
- Several policies: scale out to the largest capacity any policy asks for; scale in only when no policy asks
  to scale out, to the largest of the scale-in capacities (the most conservative).
- A PATCH answered with an error (4xx/5xx, or no answer) ends its activity `Failed` with the HTTP status and
  message and starts no cooldown; the next evaluation decides again. While activities are open, the resource
  is polled with `GET` every `poll_interval` seconds; its `scalingStatus` closes them.

Simplifications: no CloudWatch metric delay (the newest complete period is used at once), no alarm actions
through SNS, missing datapoints never breach (`TreatMissingData: missing`), no instance warm-up, no
predictive or scheduled scaling, no suspension of scaling, no retry of a failed PATCH beyond the next
evaluation, no time-out of an activity (the custom resource reports `Failed` after its own timeout), the
`GET` polling interval of the service is undocumented (observed: minutes apart) and here configurable, and
"current capacity" for target tracking is the resource's `actualCapacity` (the capacity that produced the
per-instance metric).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from botocore.credentials import Credentials, ReadOnlyCredentials

from fleetscaler import clock
from fleetscaler.local.sigv4 import HttpAnswer, Transport, send_signed

SERVICE_NAMESPACE = "custom-resource"
SCALABLE_DIMENSION = "custom-resource:ResourceType:Property"
PERIOD_SECONDS = 60
DEFAULT_COOLDOWN_SECONDS = 300
# Shape of the alarms Application Auto Scaling creates for a target tracking policy (observed, not an API).
TARGET_TRACKING_OUT_DATAPOINTS = 3
TARGET_TRACKING_IN_DATAPOINTS = 15
TARGET_TRACKING_IN_RATIO = 0.9

ActivityStatus = Literal["Pending", "InProgress", "Successful", "Failed"]
Direction = Literal["out", "in"]
_STATS = ("Average", "Sum", "Maximum", "Minimum", "SampleCount")
_COMBINERS: dict[str, Callable[[Sequence[float]], float]] = {
    "MAX": max,
    "MIN": min,
    "SUM": math.fsum,
    "AVG": lambda values: math.fsum(values) / len(values),
}


class ScalingConfigurationError(ValueError):
    """A policy, metric or target is not valid; the message names the field and the rule."""


class RegistrationError(RuntimeError):
    """RegisterScalableTarget failed: the custom resource did not answer GET (or PATCH) with 200."""


# --- metrics ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricStat:
    """One CloudWatch metric and the statistic taken over each 60 s period."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = "Average"

    def __post_init__(self) -> None:
        if self.stat not in _STATS:
            raise ScalingConfigurationError(f"Stat: must be one of {', '.join(_STATS)}, got {self.stat!r}")

    def query(self, query_id: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric_name,
                    "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
                },
                "Period": PERIOD_SECONDS,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }

    @classmethod
    def from_spec(cls, metric: Mapping[str, Any], stat: str) -> MetricStat:
        try:
            return cls(
                namespace=metric["Namespace"],
                metric_name=metric["MetricName"],
                dimensions=tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])),
                stat=stat,
            )
        except KeyError as missing:
            raise ScalingConfigurationError(f"Metric: {missing.args[0]} is required") from None


@dataclass(frozen=True)
class MetricMath:
    """Metrics combined per period by `FUNC(METRICS())` (FUNC one of MAX, MIN, SUM, AVG), or a single metric.

    Periods where no metric has data are missing; otherwise FUNC runs over the metrics that have data.
    """

    metrics: tuple[MetricStat, ...]
    expression: str | None = "MAX(METRICS())"

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ScalingConfigurationError("Metrics: at least one metric is required")
        if self.expression is None:
            if len(self.metrics) != 1:
                raise ScalingConfigurationError("Expression: required when there is more than one metric")
        elif _combiner_name(self.expression) is None:
            raise ScalingConfigurationError(
                f"Expression: only MAX, MIN, SUM or AVG of METRICS() is supported, got {self.expression!r}"
            )

    def combine(self, values: Sequence[float]) -> float:
        if self.expression is None:
            return values[0]
        name = _combiner_name(self.expression)
        assert name is not None
        return float(_COMBINERS[name](values))

    @classmethod
    def from_customized_metric_specification(cls, spec: Mapping[str, Any]) -> MetricMath:
        """Parse the `CustomizedMetricSpecification` of a target tracking policy (plain or metric math)."""
        if "Metrics" not in spec:
            return cls((MetricStat.from_spec(spec, spec.get("Statistic", "Average")),), None)
        stats: list[MetricStat] = []
        expressions: list[str] = []
        for index, query in enumerate(spec["Metrics"]):
            if "MetricStat" in query:
                stats.append(MetricStat.from_spec(query["MetricStat"]["Metric"], query["MetricStat"].get("Stat", "")))
            elif "Expression" in query:
                if query.get("ReturnData", True):
                    expressions.append(query["Expression"])
            else:
                raise ScalingConfigurationError(f"Metrics[{index}]: needs MetricStat or Expression")
        if len(expressions) > 1:
            raise ScalingConfigurationError("Metrics: exactly one expression may return data")
        return cls(tuple(stats), expressions[0] if expressions else None)


def _combiner_name(expression: str) -> str | None:
    match = re.fullmatch(r"\s*(MAX|MIN|SUM|AVG)\s*\(\s*METRICS\s*\(\s*\)\s*\)\s*", expression)
    return match.group(1) if match else None


def fleet_backlog_metric(resource_name: str, servers: Iterable[str], stat: str = "Average") -> MetricMath:
    """The template's scaling metric: MAX over every endpoint's `ApproximateBacklogSizePerInstance`."""
    return MetricMath(
        tuple(
            MetricStat(
                "AWS/SageMaker", "ApproximateBacklogSizePerInstance", (("EndpointName", f"{resource_name}-{s}"),), stat
            )
            for s in servers
        ),
        "MAX(METRICS())",
    )


# --- alarms and policies ---------------------------------------------------------------------------------------

_COMPARISONS = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch alarm on 60 s periods: ALARM when `datapoints_to_alarm` of the last `evaluation_periods`
    datapoints breach the threshold (missing datapoints do not breach)."""

    name: str
    metric: MetricMath
    threshold: float
    comparison: str = "GreaterThanOrEqualToThreshold"
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None

    def __post_init__(self) -> None:
        if self.comparison not in _COMPARISONS:
            raise ScalingConfigurationError(
                f"ComparisonOperator: must be one of {', '.join(_COMPARISONS)}, got {self.comparison!r}"
            )
        if self.evaluation_periods < 1:
            raise ScalingConfigurationError("EvaluationPeriods: must be >= 1")
        if not 1 <= self.required_datapoints <= self.evaluation_periods:
            raise ScalingConfigurationError("DatapointsToAlarm: must be from 1 to EvaluationPeriods")

    @property
    def required_datapoints(self) -> int:
        return self.datapoints_to_alarm if self.datapoints_to_alarm is not None else self.evaluation_periods

    def breaches(self, value: float) -> bool:
        return bool(_COMPARISONS[self.comparison](value, self.threshold))

    def evaluate(self, series: Sequence[float | None]) -> float | None:
        """The newest breaching value when the alarm is in ALARM over `series` (oldest first), else None."""
        window = list(series[-self.evaluation_periods :])
        breaching = [value for value in window if value is not None and self.breaches(value)]
        if len(breaching) < self.required_datapoints:
            return None
        return breaching[-1]


@dataclass(frozen=True)
class TargetTrackingPolicy:
    """Keep `metric` at `target_value` (the template's policy: target 5.0 on the fleet backlog per instance)."""

    name: str
    metric: MetricMath
    target_value: float
    scale_out_cooldown: float = DEFAULT_COOLDOWN_SECONDS
    scale_in_cooldown: float = DEFAULT_COOLDOWN_SECONDS
    disable_scale_in: bool = False

    def __post_init__(self) -> None:
        if not (self.target_value > 0 and math.isfinite(self.target_value)):
            raise ScalingConfigurationError(f"TargetValue: must be a finite number > 0, got {self.target_value}")
        if self.scale_out_cooldown < 0 or self.scale_in_cooldown < 0:
            raise ScalingConfigurationError("ScaleOutCooldown/ScaleInCooldown: must be >= 0")

    @property
    def alarm_high(self) -> Alarm:
        return Alarm(
            f"TargetTracking-{self.name}-AlarmHigh",
            self.metric,
            self.target_value,
            "GreaterThanThreshold",
            TARGET_TRACKING_OUT_DATAPOINTS,
        )

    @property
    def alarm_low(self) -> Alarm:
        return Alarm(
            f"TargetTracking-{self.name}-AlarmLow",
            self.metric,
            self.target_value * TARGET_TRACKING_IN_RATIO,
            "LessThanThreshold",
            TARGET_TRACKING_IN_DATAPOINTS,
        )

    @classmethod
    def from_configuration(cls, name: str, configuration: Mapping[str, Any]) -> TargetTrackingPolicy:
        """From a `TargetTrackingScalingPolicyConfiguration` as in PutScalingPolicy or the template."""
        if "CustomizedMetricSpecification" not in configuration:
            raise ScalingConfigurationError("CustomizedMetricSpecification: required for a custom resource")
        return cls(
            name=name,
            metric=MetricMath.from_customized_metric_specification(configuration["CustomizedMetricSpecification"]),
            target_value=float(configuration["TargetValue"]),
            scale_out_cooldown=float(configuration.get("ScaleOutCooldown", DEFAULT_COOLDOWN_SECONDS)),
            scale_in_cooldown=float(configuration.get("ScaleInCooldown", DEFAULT_COOLDOWN_SECONDS)),
            disable_scale_in=bool(configuration.get("DisableScaleIn", False)),
        )


@dataclass(frozen=True)
class StepAdjustment:
    """Applies when `lower_bound <= metric - threshold < upper_bound` (None: unbounded)."""

    scaling_adjustment: float
    lower_bound: float | None = None
    upper_bound: float | None = None

    def covers(self, difference: float) -> bool:
        above_lower = self.lower_bound is None or difference >= self.lower_bound
        below_upper = self.upper_bound is None or difference < self.upper_bound
        return above_lower and below_upper


AdjustmentType = Literal["ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"]


@dataclass(frozen=True)
class StepScalingPolicy:
    """A step scaling policy and the alarm that runs it."""

    name: str
    alarm: Alarm
    steps: tuple[StepAdjustment, ...]
    adjustment_type: AdjustmentType = "ChangeInCapacity"
    cooldown: float = DEFAULT_COOLDOWN_SECONDS
    min_adjustment_magnitude: int | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise ScalingConfigurationError("StepAdjustments: at least one step is required")
        if self.adjustment_type not in ("ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"):
            raise ScalingConfigurationError(f"AdjustmentType: unknown {self.adjustment_type!r}")
        if self.cooldown < 0:
            raise ScalingConfigurationError("Cooldown: must be >= 0")

    def capacity_for(self, value: float, base: int) -> int | None:
        """The capacity this policy asks for when its alarm is in ALARM at `value`, from `base` capacity."""
        step = next((s for s in self.steps if s.covers(value - self.alarm.threshold)), None)
        if step is None:
            return None
        if self.adjustment_type == "ExactCapacity":
            return int(step.scaling_adjustment)
        if self.adjustment_type == "ChangeInCapacity":
            return base + int(step.scaling_adjustment)
        change = base * step.scaling_adjustment / 100
        change = math.floor(change) if change > 0 else math.ceil(change)  # AAS rounds toward zero
        if self.min_adjustment_magnitude and step.scaling_adjustment and abs(change) < self.min_adjustment_magnitude:
            change = math.copysign(self.min_adjustment_magnitude, step.scaling_adjustment)
        return base + int(change)


def scale_from_zero_policy(
    resource_name: str, server: str, *, name: str = "scale-from-zero", cooldown: float = DEFAULT_COOLDOWN_SECONDS
) -> StepScalingPolicy:
    """AWS's recommended wake-up policy: +1 when `HasBacklogWithoutCapacity` (Average, 60 s) is >= 1 for 2 of 2
    datapoints, on the endpoint where a fleet at zero queues its requests."""
    metric = MetricMath(
        (MetricStat("AWS/SageMaker", "HasBacklogWithoutCapacity", (("EndpointName", f"{resource_name}-{server}"),)),),
        None,
    )
    alarm = Alarm(f"{name}-HasBacklogWithoutCapacity", metric, 1.0, "GreaterThanOrEqualToThreshold", 2, 2)
    return StepScalingPolicy(name, alarm, (StepAdjustment(1, lower_bound=0),), "ChangeInCapacity", cooldown)


Policy = TargetTrackingPolicy | StepScalingPolicy


def _alarm_metric(properties: Mapping[str, Any]) -> MetricMath:
    if "Metrics" in properties:
        return MetricMath.from_customized_metric_specification({"Metrics": properties["Metrics"]})
    return MetricMath((MetricStat.from_spec(properties, properties.get("Statistic", "Average")),), None)


def policies_from_resources(
    policies: Mapping[str, Mapping[str, Any]], alarms: Mapping[str, Mapping[str, Any]]
) -> list[Policy]:
    """Emulator policies from a template's resolved resources: `AWS::ApplicationAutoScaling::ScalingPolicy`
    properties by logical id, and the `AWS::CloudWatch::Alarm` properties whose AlarmActions name them (a step
    policy runs while its alarm is in ALARM). Alarms that act on anything else (a topic) are not scaling."""
    found: list[Policy] = []
    for name, properties in policies.items():
        if properties["PolicyType"] == "TargetTrackingScaling":
            found.append(
                TargetTrackingPolicy.from_configuration(name, properties["TargetTrackingScalingPolicyConfiguration"])
            )
            continue
        configuration = properties["StepScalingPolicyConfiguration"]
        triggers = [a for a in alarms.values() if {"Ref": name} in a.get("AlarmActions", [])]
        if len(triggers) != 1:
            raise ScalingConfigurationError(f"{name}: a step policy needs exactly one alarm, found {len(triggers)}")
        trigger = triggers[0]
        alarm = Alarm(
            name,
            _alarm_metric(trigger),
            float(trigger["Threshold"]),
            trigger["ComparisonOperator"],
            int(trigger["EvaluationPeriods"]),
            int(trigger.get("DatapointsToAlarm", trigger["EvaluationPeriods"])),
        )
        steps = tuple(
            StepAdjustment(
                float(step["ScalingAdjustment"]),
                None if "MetricIntervalLowerBound" not in step else float(step["MetricIntervalLowerBound"]),
                None if "MetricIntervalUpperBound" not in step else float(step["MetricIntervalUpperBound"]),
            )
            for step in configuration["StepAdjustments"]
        )
        found.append(
            StepScalingPolicy(
                name, alarm, steps, configuration["AdjustmentType"], float(configuration.get("Cooldown", 300))
            )
        )
    return found


# --- activities ------------------------------------------------------------------------------------------------


@dataclass
class ScalingActivity:
    """One scaling activity, as DescribeScalingActivities reports it."""

    activity_id: str
    resource_id: str
    description: str
    cause: str
    start_time: float
    desired_capacity: int
    previous_capacity: int
    direction: Direction
    policy_name: str | None
    # The resource's actualCapacity when the activity started: the capacity behind the metric it acted on.
    actual_at_start: int = 0
    service_namespace: str = SERVICE_NAMESPACE
    scalable_dimension: str = SCALABLE_DIMENSION
    status_code: ActivityStatus = "Pending"
    status_message: str = ""
    end_time: float | None = None

    @property
    def is_open(self) -> bool:
        return self.status_code in ("Pending", "InProgress")

    def to_dict(self) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "ActivityId": self.activity_id,
            "ServiceNamespace": self.service_namespace,
            "ResourceId": self.resource_id,
            "ScalableDimension": self.scalable_dimension,
            "Description": self.description,
            "Cause": self.cause,
            "StartTime": dt.datetime.fromtimestamp(self.start_time, dt.UTC),
            "StatusCode": self.status_code,
            "StatusMessage": self.status_message,
        }
        if self.end_time is not None:
            activity["EndTime"] = dt.datetime.fromtimestamp(self.end_time, dt.UTC)
        return activity


@dataclass
class _PolicyState:
    last_out: ScalingActivity | None = None
    last_in: ScalingActivity | None = None


@dataclass(frozen=True)
class _Proposal:
    policy: Policy
    capacity: int
    cause: str


@dataclass
class ResourceState:
    """The custom resource's last answer to GET or PATCH."""

    actual_capacity: float
    desired_capacity: float
    scaling_status: str
    failure_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # The resource refuses changes right now (a SageMaker endpoint that is not InService): no activity starts.
    blocked: bool = False


SAGEMAKER_NAMESPACE = "sagemaker"
SAGEMAKER_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# Endpoint status -> the activity's progress. After a failed update the endpoint is InService again at the old
# count with a FailureReason: the activity that asked for the update failed.
_VARIANT_PROGRESS = {"Updating": "InProgress", "RollingBack": "InProgress", "SystemUpdating": "InProgress",
                     "Creating": "InProgress", "Failed": "Failed", "UpdateRollbackFailed": "Failed"}


class SageMakerVariant:
    """A SageMaker endpoint variant as a scalable target (`sagemaker:variant:DesiredInstanceCount`), through a
    boto3-shaped SageMaker client: capacity is the variant's instance count, a change is
    UpdateEndpointWeightsAndCapacities, progress is DescribeEndpoint's status.

    As the service: scaling is blocked while the endpoint is not InService (SageMaker's documentation: "auto
    scaling is blocked while the update operation is in progress"); an update SageMaker refuses (e.g.
    `ValidationException: Cannot update in-progress endpoint`) fails the activity; an update that rolls back
    (capacity error) fails the activity with the endpoint's FailureReason. Neither starts a cooldown, so the
    next evaluation tries again.
    """

    def __init__(self, client: Any, endpoint_name: str, variant_name: str = "AllTraffic") -> None:
        self.client = client
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name

    @property
    def resource_id(self) -> str:
        return f"endpoint/{self.endpoint_name}/variant/{self.variant_name}"

    def get(self) -> ResourceState | str:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.describe_endpoint(EndpointName=self.endpoint_name)
        except ClientError as exc:
            return f"{exc.response['Error'].get('Code')}: {exc.response['Error'].get('Message')}"
        variant = next(
            (v for v in answer.get("ProductionVariants", []) if v.get("VariantName") == self.variant_name), None
        )
        if variant is None:
            return f"variant {self.variant_name} is not on endpoint {self.endpoint_name}"
        status = str(answer.get("EndpointStatus"))
        failure = answer.get("FailureReason")
        progress = _VARIANT_PROGRESS.get(status, "Failed" if failure else "Successful")
        current = float(variant.get("CurrentInstanceCount") or 0)
        return ResourceState(
            actual_capacity=current,
            desired_capacity=float(variant.get("DesiredInstanceCount", current)),
            scaling_status=progress,
            failure_reason=failure,
            raw=dict(answer),
            blocked=status != "InService",
        )

    def set_desired(self, capacity: int) -> ResourceState | str:
        from botocore.exceptions import ClientError

        try:
            self.client.update_endpoint_weights_and_capacities(
                EndpointName=self.endpoint_name,
                DesiredWeightsAndCapacities=[{"VariantName": self.variant_name, "DesiredInstanceCount": capacity}],
            )
        except ClientError as exc:
            return f"{exc.response['Error'].get('Code')}: {exc.response['Error'].get('Message')}"
        return self.get()


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
