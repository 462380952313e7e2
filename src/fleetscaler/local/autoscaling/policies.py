"""Alarms and scaling policies (target tracking, step scaling), and the template's policies read from its resources."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fleetscaler.local.autoscaling.base import (
    DEFAULT_COOLDOWN_SECONDS,
    TARGET_TRACKING_IN_DATAPOINTS,
    TARGET_TRACKING_IN_RATIO,
    TARGET_TRACKING_OUT_DATAPOINTS,
    ScalingConfigurationError,
)
from fleetscaler.local.autoscaling.metrics import MetricMath, MetricStat

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
