"""`cfn/async-endpoints.yaml`, the optional test fleet: N SageMaker asynchronous endpoints from one model
image, each slot with its own instance type, count and concurrency."""

from __future__ import annotations

from fleetscaler.deploy.template.common import (
    MAX_ENDPOINTS,
    NO_VALUE,
    Json,
    allow,
    allow_service,
    att,
    endpoint_name,
    from_this_account,
    list_item,
    policy_document,
    ref,
    slot_condition,
    slot_conditions,
    sub,
    suffix,
)


def _endpoint_slot(slot: int) -> Json:
    def pick(parameter: str) -> Json:
        return list_item(parameter, slot)

    number = slot + 1
    condition = {"Condition": slot_condition(slot)} if slot else {}
    return {
        f"EndpointConfig{number}": {
            "Type": "AWS::SageMaker::EndpointConfig",
            **condition,
            "Properties": {
                "KmsKeyId": {"Fn::If": ["HasKmsKey", ref("KmsKeyArn"), NO_VALUE]},
                "ProductionVariants": [
                    {
                        "VariantName": ref("VariantName"),
                        "ModelName": att("Model", "ModelName"),
                        "InitialInstanceCount": pick("InitialInstanceCounts"),
                        "InstanceType": pick("InstanceTypes"),
                        "InitialVariantWeight": 1,
                    }
                ],
                "AsyncInferenceConfig": {
                    "ClientConfig": {"MaxConcurrentInvocationsPerInstance": pick("MaxConcurrentInvocations")},
                    "OutputConfig": {
                        "S3OutputPath": {
                            "Fn::Sub": [
                                "s3://${OutputBucket}/${ResourceName}-${Suffix}/output",
                                {"Suffix": suffix(slot)},
                            ]
                        },
                        "S3FailurePath": {
                            "Fn::Sub": [
                                "s3://${OutputBucket}/${ResourceName}-${Suffix}/failure",
                                {"Suffix": suffix(slot)},
                            ]
                        },
                    },
                },
            },
        },
        f"Endpoint{number}": {
            "Type": "AWS::SageMaker::Endpoint",
            **condition,
            "Properties": {
                "EndpointName": endpoint_name(slot),
                "EndpointConfigName": att(f"EndpointConfig{number}", "EndpointConfigName"),
            },
        },
    }


def endpoints_template() -> Json:
    resources: Json = {
        "ModelRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": policy_document(
                    allow_service("sagemaker.amazonaws.com", "sts:AssumeRole", from_this_account())
                ),
                "Policies": [
                    {
                        "PolicyName": "model-runtime",
                        "PolicyDocument": policy_document(
                            allow(
                                ["s3:GetObject", "s3:PutObject"],
                                sub("arn:${AWS::Partition}:s3:::${OutputBucket}/*"),
                                "InputsAndResults",
                            ),
                            allow(
                                ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                                sub("arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"),
                                "PullImage",
                            ),
                            # GetAuthorizationToken is account-wide: it has no resource to name.
                            allow(["ecr:GetAuthorizationToken"], "*", "EcrLogin"),
                            allow(
                                ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                                sub(
                                    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                                    "log-group:/aws/sagemaker/Endpoints/${ResourceName}-*"
                                ),
                                "EndpointLogs",
                            ),
                            # PutMetricData takes no resource; the condition narrows it to SageMaker's namespace.
                            {
                                "Sid": "EndpointMetrics",
                                "Effect": "Allow",
                                "Action": ["cloudwatch:PutMetricData"],
                                "Resource": "*",
                                "Condition": {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
                            },
                        ),
                    }
                ],
            },
        },
        "Model": {
            "Type": "AWS::SageMaker::Model",
            "Properties": {
                "ExecutionRoleArn": att("ModelRole", "Arn"),
                "PrimaryContainer": {"Image": ref("ImageUri")},
                "EnableNetworkIsolation": True,
            },
        },
    }
    for slot in range(MAX_ENDPOINTS):
        resources.update(_endpoint_slot(slot))
    conditions: Json = {
        "HasKmsKey": {"Fn::Not": [{"Fn::Equals": [ref("KmsKeyArn"), ""]}]},
        **slot_conditions(),
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "fleetscaler test fleet: N SageMaker asynchronous endpoints {ResourceName}-{suffix} from one "
        "model image, each with its own instance type",
        "Parameters": {
            "ResourceName": {
                "Type": "String",
                "Default": "endpoint",
                "AllowedPattern": "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,40}$",
            },
            "EndpointSuffixes": {"Type": "CommaDelimitedList", "Default": "1,2,3",
                                 "Description": f"1 to {MAX_ENDPOINTS} suffixes"},
            "InstanceTypes": {
                "Type": "CommaDelimitedList",
                "Default": "ml.m5.large,ml.m5.xlarge,ml.c5.xlarge",
                "Description": "One instance type per suffix, same order",
            },
            "InitialInstanceCounts": {"Type": "CommaDelimitedList", "Default": "1,1,1",
                                      "Description": "One initial instance count per suffix"},
            "MaxConcurrentInvocations": {"Type": "CommaDelimitedList", "Default": "4,4,4",
                                         "Description": "MaxConcurrentInvocationsPerInstance per suffix"},
            "VariantName": {"Type": "String", "Default": "default"},
            "ImageUri": {"Type": "String", "Description": "ECR image URI of the model container"},
            "OutputBucket": {"Type": "String", "Description": "Bucket for async outputs and failures"},
            "KmsKeyArn": {"Type": "String", "Default": "",
                          "Description": "KMS key for the endpoints' storage volumes (empty: AWS managed)"},
        },
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": {
            "EndpointSuffixes": {"Value": {"Fn::Join": [",", ref("EndpointSuffixes")]}},
            "FleetName": {"Value": ref("ResourceName")},
        },
    }
