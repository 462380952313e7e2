"""What every resource family of the templates shares: names, intrinsic helpers, slots, policies.

Families refer to each other's resources only by logical id (`ref("MetadataTable")`), never through each
other's modules, so each module of this package reads on its own.
"""

from __future__ import annotations

from typing import Any

from fleetscaler.dal.models import DIMENSION_ID

Json = dict[str, Any]

MAX_ENDPOINTS = 10
STAGE_NAME = "prod"
# Application Auto Scaling's ResourceId for a custom resource is the full URL of the dimension (at most 1600 chars).
SCALING_RESOURCE_ID = (
    f"https://${{ScalingApi}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{STAGE_NAME}/"
    f"scalableTargetDimensions/{DIMENSION_ID}"
)


# --- intrinsic helpers -------------------------------------------------------------------------------------


def ref(name: str) -> Json:
    return {"Ref": name}


def sub(text: str) -> Json:
    return {"Fn::Sub": text}


def att(resource: str, attribute: str) -> Json:
    return {"Fn::GetAtt": [resource, attribute]}


NO_VALUE = ref("AWS::NoValue")


# --- slots: one per possible endpoint ----------------------------------------------------------------------


def list_item(parameter: str, slot: int) -> Json:
    """The slot-th item of a comma-delimited list parameter, or "" when the list is shorter (the padding keeps
    Fn::Select in range)."""
    padded = {"Fn::Join": ["", [{"Fn::Join": [",", ref(parameter)]}, "," * MAX_ENDPOINTS]]}
    return {"Fn::Select": [slot, {"Fn::Split": [",", padded]}]}


def suffix(slot: int) -> Json:
    return list_item("EndpointSuffixes", slot)


def endpoint_name(slot: int) -> Json:
    return {"Fn::Join": ["-", [ref("ResourceName"), suffix(slot)]]}


def slot_condition(slot: int) -> str:
    return f"HasEndpoint{slot + 1}"


def in_slot(slot: int, value: Any) -> Any:
    """`value` when the slot holds an endpoint; the first slot always does (the list has at least one)."""
    return value if slot == 0 else {"Fn::If": [slot_condition(slot), value, NO_VALUE]}


def slot_conditions() -> Json:
    """`HasEndpointN` for every slot after the first: true when the suffix list reaches that slot."""
    return {
        slot_condition(slot): {"Fn::Not": [{"Fn::Equals": [suffix(slot), ""]}]} for slot in range(1, MAX_ENDPOINTS)
    }


# --- policies and resources several families use -----------------------------------------------------------


def skip_checkov(*reasons: tuple[str, str]) -> Json:
    return {"checkov": {"skip": [{"id": check, "comment": why} for check, why in reasons]}}


def policy_document(*statements: Json) -> Json:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: list[str], resources: Any, sid: str | None = None) -> Json:
    statement: Json = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if sid:
        statement["Sid"] = sid
    return statement


def allow_service(
    service: str, action: str, condition: Json | None = None, resource: Any = None, sid: str | None = None
) -> Json:
    """A statement of a resource or trust policy letting an AWS service (its principal, e.g.
    events.amazonaws.com) do `action`."""
    statement: Json = {"Sid": sid} if sid else {}
    statement.update({"Effect": "Allow", "Principal": {"Service": service}, "Action": action})
    if resource is not None:
        statement["Resource"] = resource
    if condition is not None:
        statement["Condition"] = condition
    return statement


def from_this_account() -> Json:
    return {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}}


def from_source(arn: Json) -> Json:
    return {"ArnEquals": {"aws:SourceArn": arn}}


def log_group(name: str) -> Json:
    """A log group named `name` (Fn::Sub text), kept for the LogRetentionDays parameter."""
    return {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "LogGroupName": sub(name),
            "RetentionInDays": ref("LogRetentionDays"),
        },
        "Metadata": skip_checkov(
            ("CKV_AWS_158", "Logs hold no payloads or request headers (the handlers never log them); the "
             "service's default encryption at rest applies. Add a KMS key if your policy requires one."),
        ),
    }


def lambda_permission(function: str, source_arn: Json, principal: str = "apigateway.amazonaws.com") -> Json:
    return {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": att(function, "Arn"),
            "Principal": principal,
            "SourceAccount": ref("AWS::AccountId"),
            "SourceArn": source_arn,
        },
    }
