"""What operators watch: the alarm topic and its alarms, the scaling Lambdas' error metric filters, and the
fleet's dashboard."""

from __future__ import annotations

import json
from typing import Any

from fleetscaler.deploy.template.common import (
    STAGE_NAME,
    Json,
    allow_service,
    att,
    from_source,
    from_this_account,
    policy_document,
    ref,
    skip_checkov,
    sub,
)
from fleetscaler.logic.signal import (
    BACKLOG_PER_UNIT,
    CAPACITY_BOUND,
    CAPACITY_SERVING_OR_COMING,
    FLEET_BACKLOG,
    SHORTFALL,
)

# The router's metrics (handlers.router emits them with dimension Fleet).
THROTTLED_REQUESTS = "ThrottledRequests"
THROTTLE_RETRIES = "ThrottleRetries"
IDEMPOTENT_REPEATS = "IdempotentRepeats"


def resources() -> Json:
    return {**_alarms(), **_dashboard()}


def _alarms() -> Json:
    return {
        "AlarmTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"DisplayName": sub("fleetscaler ${ResourceName} alarms")},
            "Metadata": skip_checkov(
                ("CKV_AWS_26", "CloudWatch alarms and EventBridge cannot publish to a topic encrypted with the "
                 "AWS managed SNS key; notifications carry alarm names and states only."),
            ),
        },
        "AlarmTopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [ref("AlarmTopic")],
                "PolicyDocument": policy_document(
                    allow_service(
                        "events.amazonaws.com",
                        "sns:Publish",
                        from_source(att("EndpointFailureRule", "Arn")),
                        resource=ref("AlarmTopic"),
                        sid="EndpointFailureEvents",
                    ),
                    allow_service(
                        "cloudwatch.amazonaws.com",
                        "sns:Publish",
                        from_this_account(),
                        resource=ref("AlarmTopic"),
                        sid="CloudWatchAlarms",
                    ),
                ),
            },
        },
        "AlarmEmailSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasEmail",
            "Properties": {"TopicArn": ref("AlarmTopic"), "Protocol": "email", "Endpoint": ref("NotificationEmail")},
        },
        # The scaling Lambdas log at ERROR when a scaling action fails (powertools JSON logs).
        "ScalingApiErrorFilter": _error_filter("ScalingApiLogGroup"),
        "EndpointStateErrorFilter": _error_filter("EndpointStateLogGroup"),
        "ScalingFailedAlarm": _alarm_on_first(
            "a scaling action failed (scaling Lambdas logged ERROR)",
            ref("MetricsNamespace"),
            sub("${AWS::StackName}-ScalingErrors"),
            "Sum",
        ),
        "RouterServerErrorAlarm": _alarm_on_first(
            "the router API answered 5xx",
            "AWS/ApiGateway",
            "5XXError",
            "Sum",
            [
                {"Name": "ApiName", "Value": sub("${AWS::StackName}-router")},
                {"Name": "Stage", "Value": ref("RouterStage")},
            ],
        ),
        # Application Auto Scaling asks for more than the endpoints can give (caps, endpoints backed off after a
        # failure): the fleet runs at what it can, every activity succeeds, and this says so.
        "CapacityBoundAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": sub(
                    "${AWS::StackName}: the desired capacity is more than the endpoints can give "
                    "(raise max_instance_count or quotas, add an endpoint, or lower MaxCapacity)"
                ),
                "Namespace": ref("MetricsNamespace"),
                "MetricName": CAPACITY_BOUND,
                "Dimensions": [{"Name": "Fleet", "Value": ref("ResourceName")}],
                "Statistic": "Minimum",
                "Period": 60,
                "EvaluationPeriods": 5,
                "DatapointsToAlarm": 5,
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [ref("AlarmTopic")],
                "OKActions": [ref("AlarmTopic")],
            },
        },
        # Callers are being told to slow down: the fleet runs at the ceiling of its counter item (about 1,000
        # requests/s) or at SageMaker's invocation quota. A batch client backing off causes a few; this is more.
        "RouterThrottledAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": sub(
                    "${AWS::StackName}: the router answers 429 (throttled by DynamoDB or SageMaker after one retry) "
                    "${ThrottledAlarmThreshold} times a minute or more: the fleet is at its routing ceiling or "
                    "its invocation quota"
                ),
                "Namespace": ref("MetricsNamespace"),
                "MetricName": THROTTLED_REQUESTS,
                "Dimensions": [{"Name": "Fleet", "Value": ref("ResourceName")}],
                "Statistic": "Sum",
                "Period": 60,
                "EvaluationPeriods": 5,
                "DatapointsToAlarm": 5,
                "Threshold": ref("ThrottledAlarmThreshold"),
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [ref("AlarmTopic")],
                "OKActions": [ref("AlarmTopic")],
            },
        },
        "DeadLetterQueueAlarm": _alarm_on_first(
            "endpoint state events could not be delivered",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            [{"Name": "QueueName", "Value": att("EndpointStateDeadLetterQueue", "QueueName")}],
        ),
    }


def _alarm_on_first(
    description: str, namespace: Any, metric: Any, statistic: str, dimensions: list[Json] | None = None
) -> Json:
    """An alarm to the topic as soon as one 5-minute period counts 1 (each of these is worth a look at once)."""
    properties: Json = {
        "AlarmDescription": sub(f"${{AWS::StackName}}: {description}"),
        "Namespace": namespace,
        "MetricName": metric,
    }
    if dimensions:
        properties["Dimensions"] = dimensions
    properties.update(
        {
            "Statistic": statistic,
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [ref("AlarmTopic")],
        }
    )
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _error_filter(log_group: str) -> Json:
    return {
        "Type": "AWS::Logs::MetricFilter",
        "Properties": {
            "LogGroupName": ref(log_group),
            "FilterPattern": '{ $.level = "ERROR" }',
            "MetricTransformations": [
                {
                    "MetricNamespace": ref("MetricsNamespace"),
                    "MetricName": sub("${AWS::StackName}-ScalingErrors"),
                    "MetricValue": "1",
                    "DefaultValue": 0,
                }
            ],
        },
    }


def _dashboard_body() -> Json:
    """Widgets use SEARCH over the fleet's name, so the dashboard follows endpoints added later."""

    def search(namespace: str, metric: str, stat: str, term: str = '${ResourceName}') -> str:
        return f"SEARCH('Namespace=\"{namespace}\" MetricName=\"{metric}\" {term}', '{stat}', 60)"

    def fleet(metric: str, label: str, stat: str = "Average") -> list[Any]:
        return ["${MetricsNamespace}", metric, "Fleet", "${ResourceName}", {"stat": stat, "label": label}]

    widgets = [
        _widget("Fleet backlog per capacity unit serving or coming (the scaling metric)", [
            fleet(BACKLOG_PER_UNIT, "backlog per unit"),
        ], 0, 0, annotation=True),
        _widget("Queued work and capacity (units)", [
            fleet(FLEET_BACKLOG, "requests queued", "Maximum"),
            fleet(CAPACITY_SERVING_OR_COMING, "units serving or coming", "Maximum"),
            fleet(SHORTFALL, "shortfall (wake-up / burst step)", "Maximum"),
            fleet(CAPACITY_BOUND, "bound by the endpoints (1)", "Maximum"),
            [{"expression": search("AWS/SageMaker", "ApproximateBacklogSize", "Maximum"), "id": "backlog"}],
        ], 12, 0),
        _widget("Instances per endpoint (InstanceCount metric of the scaling Lambdas)", [
            [{"expression": search("${MetricsNamespace}", "InstanceCount", "Maximum"), "id": "instances"}],
        ], 0, 6),
        _widget("Desired vs actual capacity (DesiredCapacity, ActualCapacity of the scaling Lambdas)", [
            [{"expression": search("${MetricsNamespace}", "DesiredCapacity", "Maximum"), "id": "desired"}],
            [{"expression": search("${MetricsNamespace}", "ActualCapacity", "Maximum"), "id": "actual"}],
        ], 12, 6),
        _widget("Routed requests per endpoint", [
            [{"expression": search("${MetricsNamespace}", "RoutedRequests", "Sum", ""), "id": "routed"}],
        ], 0, 12),
        _widget("Errors", [
            [{"expression": search("${MetricsNamespace}", "RouterErrors", "Sum", ""), "id": "routererrors"}],
            ["AWS/ApiGateway", "5XXError", "ApiName", "${AWS::StackName}-router", "Stage", STAGE_NAME,
             {"stat": "Sum"}],
            ["AWS/ApiGateway", "4XXError", "ApiName", "${AWS::StackName}-router", "Stage", STAGE_NAME,
             {"stat": "Sum"}],
            ["${MetricsNamespace}", "${AWS::StackName}-ScalingErrors", {"stat": "Sum"}],
            ["AWS/Lambda", "Errors", "FunctionName", "${AWS::StackName}-scaling-api", {"stat": "Sum"}],
            ["AWS/Lambda", "Errors", "FunctionName", "${AWS::StackName}-endpoint-state", {"stat": "Sum"}],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${DeadLetterQueueName}",
             {"stat": "Maximum"}],
        ], 12, 12),
        _widget("Router at its ceiling: 429 answers, throttles absorbed by the retry, Idempotency-Key repeats", [
            fleet(THROTTLED_REQUESTS, "429 answers (throttled)", "Sum"),
            fleet(THROTTLE_RETRIES, "retried after a throttle", "Sum"),
            fleet(IDEMPOTENT_REPEATS, "repeats answered from the record", "Sum"),
        ], 0, 18),
    ]
    body = json.dumps({"widgets": widgets}, separators=(",", ":"))
    return {"Fn::Sub": [body, {"DeadLetterQueueName": att("EndpointStateDeadLetterQueue", "QueueName")}]}


def _widget(title: str, metrics: list[Any], x: int, y: int, annotation: bool = False) -> Json:
    properties: Json = {
        "title": title,
        "region": "${AWS::Region}",
        "view": "timeSeries",
        "stat": "Average",
        "period": 60,
        "metrics": metrics,
    }
    if annotation:
        properties["annotations"] = {"horizontal": [{"label": "target", "value": "__TARGET__"}]}
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": properties}


def _dashboard() -> Json:
    body = _dashboard_body()
    # The target is a number in the dashboard JSON: splice the parameter in unquoted.
    text, variables = body["Fn::Sub"]
    text = text.replace('"__TARGET__"', "${TargetBacklogPerInstance}")
    return {
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {"DashboardName": sub("${AWS::StackName}"), "DashboardBody": {"Fn::Sub": [text, variables]}},
        }
    }
