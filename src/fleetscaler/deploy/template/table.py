"""The metadata table the pynamodb models share (partition key `id`), seeded from S3 when it is created, with
the TTL that deletes the router's expired idempotency records."""

from __future__ import annotations

from fleetscaler.dal.keys import IDEMPOTENCY_EXPIRY_ATTRIBUTE
from fleetscaler.deploy.template.common import Json, ref, skip_checkov


def resources() -> Json:
    return {
        "MetadataTable": {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
                "SSESpecification": {"SSEEnabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                # The router's idempotency records carry the end of their window here; no other item has it.
                "TimeToLiveSpecification": {"AttributeName": IDEMPOTENCY_EXPIRY_ATTRIBUTE, "Enabled": True},
                "DeletionProtectionEnabled": {"Fn::If": ["ProtectTable", True, False]},
                # Applied once, when the table is created; later deploys leave the live items alone.
                "ImportSourceSpecification": {
                    "S3BucketSource": {"S3Bucket": ref("CodeBucket"), "S3KeyPrefix": ref("SeedKey")},
                    "InputFormat": "DYNAMODB_JSON",
                    "InputCompressionType": "NONE",
                },
            },
            "Metadata": skip_checkov(
                ("CKV_AWS_119", "Encrypted at rest with the AWS managed KMS key (SSEEnabled); the table holds "
                 "routing weights and instance counts, no customer data."),
            ),
        }
    }
