"""The EventBridge rules: SageMaker endpoint state changes feed the endpoint-state function (with a dead-letter
queue behind its retries), a one-minute schedule has it publish the fleet's scaling signal, and failed endpoint
updates go to the alarm topic."""

from __future__ import annotations

from fleetscaler.deploy.template.common import (
    Json,
    allow_service,
    att,
    from_source,
    lambda_permission,
    policy_document,
    ref,
    skip_checkov,
    sub,
)


def resources() -> Json:
    return {
        "EndpointStateDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
            "Metadata": skip_checkov(
                ("CKV_AWS_27", "Encrypted with SQS-managed keys (SqsManagedSseEnabled); messages are "
                 "SageMaker state-change events, no customer data."),
            ),
        },
        "EndpointStateDeadLetterQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [ref("EndpointStateDeadLetterQueue")],
                "PolicyDocument": policy_document(
                    allow_service(
                        "events.amazonaws.com",
                        "sqs:SendMessage",
                        from_source(att("EndpointStateRule", "Arn")),
                        resource=att("EndpointStateDeadLetterQueue", "Arn"),
                        sid="EventBridgeDeadLetters",
                    )
                ),
            },
        },
        "EndpointStateRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": sub("SageMaker endpoint state changes of fleet ${ResourceName}"),
                "EventPattern": {
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Endpoint State Change"],
                    "detail": {"EndpointName": [{"prefix": sub("${ResourceName}-")}]},
                },
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": "endpoint-state",
                        "Arn": att("EndpointStateFunction", "Arn"),
                        "DeadLetterConfig": {"Arn": att("EndpointStateDeadLetterQueue", "Arn")},
                        "RetryPolicy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600},
                    }
                ],
            },
        },
        "EndpointStatePermission": lambda_permission(
            "EndpointStateFunction", att("EndpointStateRule", "Arn"), principal="events.amazonaws.com"
        ),
        # Once a minute the endpoint-state function snapshots the queues and publishes the fleet's scaling signal.
        "FleetSignalSchedule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": sub("Fleet ${ResourceName}: publish the scaling signal every minute"),
                "ScheduleExpression": "rate(1 minute)",
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": "fleet-signal",
                        "Arn": att("EndpointStateFunction", "Arn"),
                        # A missed minute is replaced by the next one: no retries, no dead letters.
                        "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60},
                    }
                ],
            },
        },
        "FleetSignalPermission": lambda_permission(
            "EndpointStateFunction", att("FleetSignalSchedule", "Arn"), principal="events.amazonaws.com"
        ),
        # Failed or rolled-back endpoint updates are what a failed scaling action looks like in AWS itself.
        "EndpointFailureRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": sub("Failed or rolled-back updates of fleet ${ResourceName}'s endpoints"),
                "EventPattern": {
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Endpoint State Change"],
                    "detail": {
                        "EndpointName": [{"prefix": sub("${ResourceName}-")}],
                        "EndpointStatus": ["FAILED", "ROLLING_BACK", "UPDATE_ROLLBACK_FAILED"],
                    },
                },
                "State": "ENABLED",
                "Targets": [{"Id": "alarm-topic", "Arn": ref("AlarmTopic")}],
            },
        },
    }
