"""Application Auto Scaling of the fleet: the scalable target (the scaling API's dimension), target tracking or
step policies on the fleet's backlog per capacity unit, and the step policy on the capacity shortfall that wakes
the fleet from zero and answers bursts (the metrics: `fleetscaler.logic.signal`, published once a minute by the
endpoint-state function)."""

from __future__ import annotations

from typing import Any

from fleetscaler.dal.models import DIMENSION_ID
from fleetscaler.deploy.template.common import (
    SCALING_RESOURCE_ID,
    Json,
    ref,
    sub,
)
from fleetscaler.logic.signal import BACKLOG_PER_UNIT, SHORTFALL, SHORTFALL_STEPS, SURPLUS


def fleet_metric(name: str) -> Json:
    """One of the fleet's own metrics (namespace MetricsNamespace, dimension Fleet=ResourceName)."""
    return {
        "Namespace": ref("MetricsNamespace"),
        "MetricName": name,
        "Dimensions": [{"Name": "Fleet", "Value": ref("ResourceName")}],
    }


def resources() -> Json:
    resource_id = sub(SCALING_RESOURCE_ID)
    return {
        "ScalableTarget": {
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            # Registration calls GET and PATCH on the scaling API: both must be invocable first.
            "DependsOn": ["ScalingStage", "ScalingApiGetPermission", "ScalingApiPatchPermission", "MetadataTable"],
            "Properties": {
                "ServiceNamespace": "custom-resource",
                "ScalableDimension": DIMENSION_ID,
                "ResourceId": resource_id,
                "MinCapacity": ref("MinCapacity"),
                "MaxCapacity": ref("MaxCapacity"),
            },
        },
        "TargetTrackingPolicy": {
            "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
            "Condition": "UseTargetTracking",
            "Properties": {
                "PolicyName": sub("${AWS::StackName}-backlog-target"),
                "PolicyType": "TargetTrackingScaling",
                "ScalingTargetId": ref("ScalableTarget"),
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": ref("TargetBacklogPerInstance"),
                    "ScaleOutCooldown": ref("ScaleOutCooldown"),
                    "ScaleInCooldown": ref("ScaleInCooldown"),
                    "CustomizedMetricSpecification": {**fleet_metric(BACKLOG_PER_UNIT), "Statistic": "Average"},
                },
            },
        },
        "StepScaleOutPolicy": _step_policy(
            "step-out",
            ref("ScaleOutCooldown"),
            # Steps are relative to the alarm threshold (the target): +1 up to 2x the target, +2 beyond.
            [
                {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": ref("TargetBacklogPerInstance"),
                 "ScalingAdjustment": 1},
                {"MetricIntervalLowerBound": ref("TargetBacklogPerInstance"), "ScalingAdjustment": 2},
            ],
            condition="UseStepScaling",
        ),
        "StepScaleOutAlarm": _backlog_alarm(
            "step-out", ref("TargetBacklogPerInstance"), "GreaterThanOrEqualToThreshold", 2, "StepScaleOutPolicy"
        ),
        "StepScaleInPolicy": _step_policy(
            "step-in", ref("ScaleInCooldown"), [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}],
            condition="UseStepScaling",
        ),
        "StepScaleInAlarm": _backlog_alarm(
            "step-in", ref("StepScaleInBacklogPerInstance"), "LessThanThreshold", 15, "StepScaleInPolicy"
        ),
        # Queued work beyond the capacity serving or coming, anywhere in the fleet (an endpoint at zero included):
        # one step sized to it. This is what wakes a fleet at zero, with a batch's worth of capacity at once.
        "ShortfallScaleOutPolicy": _step_policy("shortfall", ref("ScaleOutCooldown"), _steps(sign=1)),
        "ShortfallScaleOutAlarm": _signal_alarm(
            SHORTFALL,
            f"{SHORTFALL} >= 1 (queued work and arrivals need capacity the fleet neither has nor is getting)",
            1,
            "ShortfallScaleOutPolicy",
            "Maximum",
        ),
        # Capacity beyond what the queue and the arrivals need (the arrivals counted generously) for
        # SurplusScaleInMinutes: released in one step, sooner than target tracking's fifteen-minute scale-in.
        # Target tracking still takes an idle fleet to MinCapacity.
        "SurplusScaleInPolicy": _step_policy("surplus", ref("ScaleInCooldown"), _steps(sign=-1)),
        "SurplusScaleInAlarm": _signal_alarm(
            SURPLUS,
            f"{SURPLUS} >= 1 for SurplusScaleInMinutes (capacity beyond what the queue and the arrivals need)",
            ref("SurplusScaleInMinutes"),
            "SurplusScaleInPolicy",
            "Minimum",
        ),
    }


def _steps(sign: int) -> list[Json]:
    """The shortfall (sign 1) or surplus (sign -1) steps: alarm threshold 1, one step per range of units."""
    return [
        {
            "MetricIntervalLowerBound": low - 1,
            **({} if high is None else {"MetricIntervalUpperBound": high - 1}),
            "ScalingAdjustment": sign * add,
        }
        for low, high, add in SHORTFALL_STEPS
    ]


def _signal_alarm(metric: str, description: str, minutes: Any, policy: str, statistic: str) -> Json:
    """An alarm on one of the fleet's own metrics: >= 1 for `minutes` one-minute datapoints runs `policy`."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": sub(f"${{AWS::StackName}}: {description}"),
            **fleet_metric(metric),
            "Statistic": statistic,
            "Period": 60,
            "EvaluationPeriods": minutes,
            "DatapointsToAlarm": minutes,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [ref(policy)],
        },
    }


def _step_policy(name: str, cooldown: Any, steps: list[Json], condition: str | None = None) -> Json:
    policy: Json = {
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Properties": {
            "PolicyName": sub(f"${{AWS::StackName}}-{name}"),
            "PolicyType": "StepScaling",
            "ScalingTargetId": ref("ScalableTarget"),
            "StepScalingPolicyConfiguration": {
                "AdjustmentType": "ChangeInCapacity",
                "Cooldown": cooldown,
                "MetricAggregationType": "Maximum",
                "StepAdjustments": steps,
            },
        },
    }
    if condition:
        policy["Condition"] = condition
    return policy


def _backlog_alarm(name: str, threshold: Any, comparison: str, periods: int, policy: str) -> Json:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Condition": "UseStepScaling",
        "Properties": {
            "AlarmDescription": sub(f"${{AWS::StackName}} {name}: the fleet's {BACKLOG_PER_UNIT}"),
            **fleet_metric(BACKLOG_PER_UNIT),
            "Statistic": "Average",
            "Period": 60,
            "Threshold": threshold,
            "ComparisonOperator": comparison,
            "EvaluationPeriods": periods,
            "DatapointsToAlarm": periods,
            "TreatMissingData": "notBreaching" if comparison.startswith("Greater") else "missing",
            "AlarmActions": [ref(policy)],
        },
    }
