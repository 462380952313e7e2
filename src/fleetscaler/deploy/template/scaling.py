"""Application Auto Scaling of the fleet: the scalable target (the scaling API's dimension), the target
tracking or step policies on the fleet's MAX backlog per instance with their alarms, and the wake-up policy."""

from __future__ import annotations

from typing import Any

from fleetscaler.dal.models import DIMENSION_ID
from fleetscaler.deploy.template.common import (
    BACKLOG_METRIC,
    MAX_ENDPOINTS,
    SCALING_RESOURCE_ID,
    WAKE_UP_METRIC,
    Json,
    endpoint_name,
    in_slot,
    ref,
    sub,
)


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
                    "CustomizedMetricSpecification": {"Metrics": _backlog_queries()},
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
        # AWS's recipe for async endpoints at zero: requests queued with no instance wake the fleet up.
        "ScaleFromZeroPolicy": _step_policy(
            "wake-up", 300, [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}], condition="CanScaleFromZero"
        ),
        "ScaleFromZeroAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Condition": "CanScaleFromZero",
            "Properties": {
                "AlarmDescription": sub(
                    f"${{AWS::StackName}}: {WAKE_UP_METRIC} on the first endpoint (requests wait there at zero "
                    "capacity)"
                ),
                "Namespace": "AWS/SageMaker",
                "MetricName": WAKE_UP_METRIC,
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name(0)}],
                "Statistic": "Average",
                "Period": 60,
                "EvaluationPeriods": 2,
                "DatapointsToAlarm": 2,
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [ref("ScaleFromZeroPolicy")],
            },
        },
    }


def _backlog_queries(stat: str = "Average") -> list[Any]:
    """MAX over every endpoint's backlog per instance: the fleet is as late as its most loaded endpoint."""
    queries: list[Any] = [
        in_slot(
            slot,
            {
                "Id": f"backlog{slot + 1}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": BACKLOG_METRIC,
                        "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name(slot)}],
                    },
                    "Stat": stat,
                },
                "ReturnData": False,
            },
        )
        for slot in range(MAX_ENDPOINTS)
    ]
    return [*queries, {"Id": "fleetbacklog", "Expression": 'MAX(METRICS("backlog"))', "ReturnData": True}]


def _alarm_query(queries: list[Any]) -> list[Any]:
    """CloudWatch alarms spell the same queries with a period on each MetricStat."""
    result: list[Any] = []
    for query in queries:
        if "Fn::If" in query:
            condition, inner, no_value = query["Fn::If"]
            inner = {**inner, "MetricStat": {**inner["MetricStat"], "Period": 60}}
            result.append({"Fn::If": [condition, inner, no_value]})
        elif "MetricStat" in query:
            result.append({**query, "MetricStat": {**query["MetricStat"], "Period": 60}})
        else:
            result.append({**query, "Label": "fleet backlog per instance (max)"})
    return result


def _step_policy(name: str, cooldown: Any, steps: list[Json], condition: str) -> Json:
    return {
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Condition": condition,
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


def _backlog_alarm(name: str, threshold: Any, comparison: str, periods: int, policy: str) -> Json:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Condition": "UseStepScaling",
        "Properties": {
            "AlarmDescription": sub(f"${{AWS::StackName}} {name}: fleet MAX {BACKLOG_METRIC}"),
            "Metrics": _alarm_query(_backlog_queries()),
            "Threshold": threshold,
            "ComparisonOperator": comparison,
            "EvaluationPeriods": periods,
            "DatapointsToAlarm": periods,
            "TreatMissingData": "notBreaching" if comparison.startswith("Greater") else "missing",
            "AlarmActions": [ref(policy)],
        },
    }
