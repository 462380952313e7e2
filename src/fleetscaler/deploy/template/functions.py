"""The three Lambda functions, each with its own least-privilege role and log group."""

from __future__ import annotations

from fleetscaler.dal.keys import IDEMPOTENCY_ID_PREFIX
from fleetscaler.deploy.template.common import (
    Json,
    allow,
    allow_service,
    att,
    from_this_account,
    log_group,
    policy_document,
    ref,
    skip_checkov,
    sub,
)

HANDLERS = {
    "Router": "fleetscaler.handlers.router.handler",
    "ScalingApi": "fleetscaler.handlers.scaling_api.handler",
    "EndpointState": "fleetscaler.handlers.endpoint_state.handler",
}
LAMBDA_SKIPS = (
    ("CKV_AWS_116", "Invoked synchronously (API Gateway) or through EventBridge, whose target has its own "
     "dead-letter queue and retry policy; a function DLQ would never receive anything."),
    ("CKV_AWS_117", "Calls only public AWS APIs (DynamoDB, SageMaker) and reaches no private resource; a VPC "
     "would add NAT or endpoints for no isolation gain."),
    ("CKV_AWS_173", "Environment variables hold names and numbers only, no secrets; the service encrypts them "
     "at rest with its own key."),
    ("CKV_AWS_115", "Reserved concurrency would take from the account's unreserved pool (as low as 10 in new "
     "accounts) and can fail the deployment; the API stages throttle callers instead."),
)
TABLE_ARN = att("MetadataTable", "Arn")
ENDPOINTS_ARN = sub("arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/${ResourceName}-*")


def resources() -> Json:
    table_rw = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
    endpoint_control = ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"]
    return {
        "RouterLogGroup": _function_log_group("router"),
        "ScalingApiLogGroup": _function_log_group("scaling-api"),
        "EndpointStateLogGroup": _function_log_group("endpoint-state"),
        "RouterRole": _role(
            "router",
            [
                allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], TABLE_ARN, "MetadataTable"),
                {
                    # Creating and clearing items: its idempotency records only, never the fleet's items.
                    **allow(["dynamodb:PutItem", "dynamodb:DeleteItem"], TABLE_ARN, "IdempotencyRecords"),
                    "Condition": {
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{IDEMPOTENCY_ID_PREFIX}*"]}
                    },
                },
                allow(["sagemaker:InvokeEndpointAsync"], ENDPOINTS_ARN, "FleetEndpoints"),
            ],
        ),
        "ScalingApiRole": _role(
            "scaling-api",
            [
                allow(table_rw, TABLE_ARN, "MetadataTable"),
                allow(endpoint_control, ENDPOINTS_ARN, "FleetEndpoints"),
            ],
        ),
        "EndpointStateRole": _role(
            "endpoint-state",
            [
                allow(table_rw, TABLE_ARN, "MetadataTable"),
                allow(endpoint_control, ENDPOINTS_ARN, "FleetEndpoints"),
                # The queues come from SageMaker's metrics; GetMetricData has no resource-level permissions.
                allow(["cloudwatch:GetMetricData"], "*", "ReadQueues"),
                {
                    **allow(["cloudwatch:PutMetricData"], "*", "PublishFleetSignal"),
                    "Condition": {"StringEquals": {"cloudwatch:namespace": sub("${MetricsNamespace}")}},
                },
            ],
        ),
        "RouterFunction": _function(
            "router",
            "RouterRole",
            {
                **_common_env("fleetscaler-router"),
                "ALLOWED_INPUT_PREFIXES": ref("AllowedInputPrefixes"),
                "IDEMPOTENCY_TTL_SECONDS": ref("IdempotencyTtlSeconds"),
            },
            timeout=29,
            memory=512,
        ),
        "ScalingApiFunction": _function(
            "scaling-api", "ScalingApiRole", _scaling_env("fleetscaler-scaling-api"), timeout=29, memory=512
        ),
        "EndpointStateFunction": _function(
            "endpoint-state", "EndpointStateRole", _scaling_env("fleetscaler-endpoint-state"), timeout=60, memory=512
        ),
    }


def _function(function: str, role: str, env: Json, timeout: int, memory: int) -> Json:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": sub(f"${{AWS::StackName}}-{function}"),
            "Description": sub(f"fleetscaler {function}: fleet ${{ResourceName}}, variant ${{VariantName}}"),
            "Runtime": "python3.12",
            "Architectures": ["x86_64"],
            "Handler": HANDLERS[_handler_key(function)],
            "Code": {"S3Bucket": ref("CodeBucket"), "S3Key": ref("CodeKey")},
            "Role": att(role, "Arn"),
            "Timeout": timeout,
            "MemorySize": memory,
            "LoggingConfig": {"LogGroup": ref(f"{_handler_key(function)}LogGroup")},
            "Environment": {"Variables": env},
        },
        "Metadata": skip_checkov(*LAMBDA_SKIPS),
    }


def _function_log_group(function: str) -> Json:
    return log_group(f"/aws/lambda/${{AWS::StackName}}-{function}")


def _handler_key(function: str) -> str:
    return {"router": "Router", "scaling-api": "ScalingApi", "endpoint-state": "EndpointState"}[function]


def _common_env(service: str) -> Json:
    return {
        "TABLE_NAME": ref("MetadataTable"),
        "RESOURCE_NAME": ref("ResourceName"),
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_LOG_LEVEL": ref("LogLevel"),
        "POWERTOOLS_METRICS_NAMESPACE": ref("MetricsNamespace"),
    }


def _scaling_env(service: str) -> Json:
    return {
        **_common_env(service),
        "SCALING_TIMEOUT_SECONDS": ref("ScalingTimeoutSeconds"),
        "FAILOVER_BACKOFF_SECONDS": ref("FailoverBackoffSeconds"),
        "MIN_CAPACITY": ref("MinCapacity"),
        "MAX_CAPACITY": ref("MaxCapacity"),
        "TARGET_BACKLOG_PER_UNIT": ref("TargetBacklogPerInstance"),
    }


def _role(function: str, statements: list[Json]) -> Json:
    own_log_group = att(f"{_handler_key(function)}LogGroup", "Arn")
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": sub(f"fleetscaler {function} of ${{AWS::StackName}}"),
            "AssumeRolePolicyDocument": policy_document(
                allow_service("lambda.amazonaws.com", "sts:AssumeRole", from_this_account())
            ),
            "Policies": [
                {
                    "PolicyName": "least-privilege",
                    "PolicyDocument": policy_document(
                        allow(["logs:CreateLogStream", "logs:PutLogEvents"], own_log_group, "OwnLogGroup"),
                        *statements,
                    ),
                }
            ],
        },
    }
