"""The fleet template's parameters, and the conditions derived from them."""

from __future__ import annotations

from fleetscaler.config import DEFAULT_IDEMPOTENCY_TTL_SECONDS, IDEMPOTENCY_TTL_RANGE
from fleetscaler.deploy.template.common import MAX_ENDPOINTS, Json, ref

DEFAULT_MAX_CAPACITY = 10


def parameters() -> Json:
    return {
        "ResourceName": {
            "Type": "String",
            "Description": "Fleet name: endpoint i is named {ResourceName}-{suffix i}; also the router path.",
            "AllowedPattern": "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,40}$",
            "ConstraintDescription": "letters, digits and inner hyphens, at most 41 characters",
        },
        "EndpointSuffixes": {
            "Type": "CommaDelimitedList",
            "Description": f"Endpoint name suffixes, 1 to {MAX_ENDPOINTS}, in preference order (at zero, requests "
            "queue on the first one that can wake), e.g. 1,2,3 for endpoint-1, endpoint-2, endpoint-3.",
        },
        "VariantName": {"Type": "String", "Default": "default", "Description": "Production variant name"},
        "CodeBucket": {"Type": "String", "Description": "S3 bucket holding the code package and seed file"},
        "CodeKey": {"Type": "String", "Default": "fleetscaler/code.zip", "Description": "S3 key of code.zip"},
        "SeedKey": {
            "Type": "String",
            "Default": "fleetscaler/ddb-data.jsonl",
            "Description": "S3 key of the table's seed items (DynamoDB JSON lines), imported when the table is "
            "created",
        },
        "MinCapacity": {"Type": "Number", "Default": 0, "MinValue": 0, "Description": "Fleet minimum capacity"},
        "MaxCapacity": {
            "Type": "Number",
            "Default": DEFAULT_MAX_CAPACITY,
            "MinValue": 1,
            "Description": "Fleet maximum capacity (capacity units; more than the endpoints can give is allowed: the "
            "fleet then runs at what they give and the CapacityBound alarm fires)",
        },
        "TargetBacklogPerInstance": {
            "Type": "Number",
            "Default": 5,
            "MinValue": 0,
            "Description": "Target (or step-scaling threshold) of the fleet's backlog per capacity unit serving or "
            "coming (BacklogPerCapacityUnit; an instance of capacity_units 1 is one unit)",
        },
        "StepScaleInBacklogPerInstance": {
            "Type": "Number",
            "Default": 1,
            "MinValue": 0,
            "Description": "StepScaling only: scale in while the fleet's backlog per capacity unit stays below this",
        },
        "SurplusScaleInMinutes": {
            "Type": "Number",
            "Default": 5,
            "MinValue": 1,
            "MaxValue": 60,
            "Description": "Minutes capacity must stay beyond what the queue and the arrivals need before the "
            "surplus step releases it (target tracking's own scale-in waits 15)",
        },
        "ScaleOutCooldown": {
            "Type": "Number",
            "Default": 300,
            "MinValue": 0,
            "Description": "Seconds after a scale-out before the next one (the scaling policies' cooldown)",
        },
        "ScaleInCooldown": {
            "Type": "Number",
            "Default": 300,
            "MinValue": 0,
            "Description": "Seconds after a scale-in before the next one (the scaling policies' cooldown)",
        },
        "ScalingPolicyType": {
            "Type": "String",
            "Default": "TargetTracking",
            "AllowedValues": ["TargetTracking", "StepScaling"],
            "Description": "Target tracking on the fleet's backlog per capacity unit, or step scaling on the same "
            "metric",
        },
        "ScalingTimeoutSeconds": {
            "Type": "Number",
            "Default": 1500,
            "MinValue": 1,
            "Description": "A scaling still unfinished after this many seconds is Failed (the scaling Lambdas' "
            "SCALING_TIMEOUT_SECONDS)",
        },
        "FailoverBackoffSeconds": {
            "Type": "Number",
            "Default": 600,
            "MinValue": 0,
            "Description": "Seconds a failed endpoint gets no new instances (the scaling Lambdas' "
            "FAILOVER_BACKOFF_SECONDS)",
        },
        "AllowedInputPrefixes": {
            "Type": "String",
            "Default": "",
            "Description": "Comma-separated s3://bucket[/prefix] list the router accepts as InputLocation "
            "(empty: any)",
        },
        "IdempotencyTtlSeconds": {
            "Type": "Number",
            "Default": DEFAULT_IDEMPOTENCY_TTL_SECONDS,
            "MinValue": IDEMPOTENCY_TTL_RANGE[0],
            "MaxValue": IDEMPOTENCY_TTL_RANGE[1],
            "Description": "Seconds a repeat of a router request with the same Idempotency-Key gets the first answer "
            "instead of being routed again",
        },
        "ThrottledAlarmThreshold": {
            "Type": "Number",
            "Default": 10,
            "MinValue": 1,
            "Description": "The router's 429 answers (DynamoDB or SageMaker throttling, after its one retry) per "
            "minute, 5 minutes in a row, that raise the RouterThrottled alarm",
        },
        "NotificationEmail": {
            "Type": "String",
            "Default": "",
            "Description": "E-mail subscribed to the alarm topic (empty: none)",
        },
        "LogRetentionDays": {
            "Type": "Number",
            "Default": 30,
            "AllowedValues": [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653],
            "Description": "Days the functions' and the API's log groups keep their logs",
        },
        "LogLevel": {
            "Type": "String",
            "Default": "INFO",
            "AllowedValues": ["DEBUG", "INFO", "WARNING", "ERROR"],
            "Description": "The functions' log level",
        },
        "MetricsNamespace": {
            "Type": "String",
            "Default": "fleetscaler",
            "Description": "CloudWatch namespace of the fleet's metrics (the scaling signal among them)",
        },
        "RouterThrottleRate": {
            "Type": "Number",
            "Default": 1000,
            "MinValue": 1,
            "Description": "Router stage steady requests/s (one fleet's table counter sustains about 1,000/s)",
        },
        "RouterThrottleBurst": {
            "Type": "Number",
            "Default": 2000,
            "MinValue": 1,
            "Description": "Router stage burst of requests",
        },
        "TableDeletionProtection": {
            "Type": "String",
            "Default": "false",
            "AllowedValues": ["true", "false"],
            "Description": "true: protect the metadata table from deletion (the stack's deletion then fails until "
            "it is turned off)",
        },
        "ConfigureApiGatewayLogRole": {
            "Type": "String",
            "Default": "false",
            "AllowedValues": ["true", "false"],
            "Description": "true: set this region's API Gateway CloudWatch role (account-wide setting, needed "
            "once per region for stage access logs)",
        },
    }


def conditions() -> Json:
    return {
        "UseTargetTracking": {"Fn::Equals": [ref("ScalingPolicyType"), "TargetTracking"]},
        "UseStepScaling": {"Fn::Equals": [ref("ScalingPolicyType"), "StepScaling"]},
        "HasEmail": {"Fn::Not": [{"Fn::Equals": [ref("NotificationEmail"), ""]}]},
        "ProtectTable": {"Fn::Equals": [ref("TableDeletionProtection"), "true"]},
        "CreateApiGatewayLogRole": {"Fn::Equals": [ref("ConfigureApiGatewayLogRole"), "true"]},
    }
