"""The two REST APIs (router, scaling API): resources, methods, deployments, stages and their access logs,
the Lambda permissions that let API Gateway call the functions, and the optional account-wide log role."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fleetscaler.deploy.template.common import (
    STAGE_NAME,
    Json,
    allow_service,
    att,
    lambda_permission,
    log_group,
    policy_document,
    ref,
    skip_checkov,
    sub,
)

# Content types the router API treats as binary (the local gateway uses the same list).
ROUTER_BINARY_MEDIA_TYPES: tuple[str, ...] = (
    "application/octet-stream",
    "application/x-npy",
    "application/x-protobuf",
    "image/*",
    "audio/*",
    "video/*",
)
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "caller": "$context.identity.caller",
        "sourceIp": "$context.identity.sourceIp",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "error": "$context.error.message",
    },
    separators=(",", ":"),
)

STAGE_SKIPS = (
    ("CKV_AWS_120", "Every request starts a new asynchronous inference or scaling action: responses must never "
     "be served from a cache."),
)


def resources() -> Json:
    return {**_api_gateway_account(), **_router_api(), **_scaling_api()}


def _rest_api(name: str, description: str, binary_media_types: tuple[str, ...] = ()) -> Json:
    properties: Json = {
        "Name": sub(f"${{AWS::StackName}}-{name}"),
        "Description": description,
        "EndpointConfiguration": {"Types": ["REGIONAL"]},
        "DisableExecuteApiEndpoint": False,
    }
    if binary_media_types:
        properties["BinaryMediaTypes"] = list(binary_media_types)
    return {"Type": "AWS::ApiGateway::RestApi", "Properties": properties}


def _api_resource(api: str, parent: Any, path_part: str) -> Json:
    return {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {"RestApiId": ref(api), "ParentId": parent, "PathPart": path_part},
    }


def _method(api: str, resource: str, verb: str, function: str, path_param: str) -> Json:
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "RestApiId": ref(api),
            "ResourceId": ref(resource),
            "HttpMethod": verb,
            "AuthorizationType": "AWS_IAM",
            "RequestParameters": {f"method.request.path.{path_param}": True},
            "Integration": {
                "Type": "AWS_PROXY",
                "IntegrationHttpMethod": "POST",
                "Uri": sub(
                    "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
                    f"${{{function}.Arn}}/invocations"
                ),
            },
        },
    }


def _deployment_id(api: str, methods: Json) -> str:
    """A new logical id whenever the API's methods change, so CloudFormation deploys the new API."""
    digest = hashlib.sha256(json.dumps(methods, sort_keys=True).encode()).hexdigest()[:8]
    return f"{api}Deployment{digest}"


def _stage(api: str, deployment: str, rate: Any, burst: Any) -> Json:
    return {
        "Type": "AWS::ApiGateway::Stage",
        "DependsOn": ["ApiGatewayAccountReady"],
        "Properties": {
            "RestApiId": ref(api),
            "DeploymentId": ref(deployment),
            "StageName": STAGE_NAME,
            "TracingEnabled": True,
            "AccessLogSetting": {
                # The log group's Arn attribute ends in ":*", which API Gateway refuses: name the group itself.
                "DestinationArn": sub(
                    f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:${{{api}AccessLogGroup}}"
                ),
                "Format": ACCESS_LOG_FORMAT,
            },
            "MethodSettings": [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": rate,
                    "ThrottlingBurstLimit": burst,
                    "MetricsEnabled": True,
                }
            ],
        },
        "Metadata": skip_checkov(*STAGE_SKIPS),
    }


def _access_log_group(api: str) -> Json:
    return log_group(f"/aws/apigateway/${{AWS::StackName}}-{api}")


def _api_gateway_account() -> Json:
    """The region's API Gateway CloudWatch role, optional: access logs need it set once per account/region."""
    return {
        "ApiGatewayLogRole": {
            "Type": "AWS::IAM::Role",
            "Condition": "CreateApiGatewayLogRole",
            "Properties": {
                "AssumeRolePolicyDocument": policy_document(
                    allow_service("apigateway.amazonaws.com", "sts:AssumeRole")
                ),
                "ManagedPolicyArns": [
                    sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
                ],
            },
        },
        "ApiGatewayAccount": {
            "Type": "AWS::ApiGateway::Account",
            "Condition": "CreateApiGatewayLogRole",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {"CloudWatchRoleArn": att("ApiGatewayLogRole", "Arn")},
        },
        # Stages wait on this handle, so they are created after the optional account setting.
        "ApiGatewayAccountReady": {
            "Type": "AWS::CloudFormation::WaitConditionHandle",
            "Metadata": {
                "Ready": {"Fn::If": ["CreateApiGatewayLogRole", ref("ApiGatewayAccount"), "already configured"]}
            },
        },
    }


def _router_api() -> Json:
    methods = {"RouterInvokeMethod": _method("RouterApi", "RouterFleetResource", "POST", "RouterFunction",
                                             "EndpointName")}
    deployment = _deployment_id("RouterApi", methods)
    return {
        # Inline payloads of these types reach the router base64-encoded and byte-exact; without them API
        # Gateway would pass binary bodies as (mangled) UTF-8 text.
        "RouterApi": _rest_api(
            "router", "fleetscaler router: POST /endpoints/{EndpointName}", ROUTER_BINARY_MEDIA_TYPES
        ),
        "RouterEndpointsResource": _api_resource("RouterApi", att("RouterApi", "RootResourceId"), "endpoints"),
        "RouterFleetResource": _api_resource("RouterApi", ref("RouterEndpointsResource"), "{EndpointName}"),
        **methods,
        deployment: {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": list(methods),
            "Properties": {"RestApiId": ref("RouterApi"), "Description": "router methods"},
        },
        "RouterApiAccessLogGroup": _access_log_group("router-api"),
        "RouterStage": _stage("RouterApi", deployment, ref("RouterThrottleRate"), ref("RouterThrottleBurst")),
        "RouterInvokePermission": lambda_permission(
            "RouterFunction",
            sub(
                "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${RouterApi}/"
                f"{STAGE_NAME}/POST/endpoints/*"
            ),
        ),
    }


def _scaling_api() -> Json:
    methods = {
        f"ScalingApi{verb.title()}Method": _method(
            "ScalingApi", "ScalingDimensionResource", verb, "ScalingApiFunction", "scalableTargetDimensionId"
        )
        for verb in ("GET", "PATCH")
    }
    deployment = _deployment_id("ScalingApi", methods)
    resources: Json = {
        "ScalingApi": _rest_api(
            "scaling", "fleetscaler scaling API for Application Auto Scaling (custom-resource namespace)"
        ),
        "ScalingDimensionsResource": _api_resource(
            "ScalingApi", att("ScalingApi", "RootResourceId"), "scalableTargetDimensions"
        ),
        "ScalingDimensionResource": _api_resource(
            "ScalingApi", ref("ScalingDimensionsResource"), "{scalableTargetDimensionId}"
        ),
        **methods,
        deployment: {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": list(methods),
            "Properties": {"RestApiId": ref("ScalingApi"), "Description": "scaling API methods"},
        },
        "ScalingApiAccessLogGroup": _access_log_group("scaling-api"),
        "ScalingStage": _stage("ScalingApi", deployment, 10, 20),
    }
    for verb in ("GET", "PATCH"):
        resources[f"ScalingApi{verb.title()}Permission"] = lambda_permission(
            "ScalingApiFunction",
            sub(
                "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${ScalingApi}/"
                f"{STAGE_NAME}/{verb}/scalableTargetDimensions/*"
            ),
        )
    return resources
