"""Deploy and destroy the fleet stack: upload code and seed, change set, progress, outputs, failure reasons.

Every AWS call goes through the boto3 clients handed in, so the same code runs against AWS or a moto server.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from fleetscaler import clock
from fleetscaler.dal.models import DIMENSION_ID, REQUEST_COUNTER_ID, SERVER_CONFIG_ID
from fleetscaler.dal.seed import dump_items, read_items
from fleetscaler.deploy.template import MAX_ENDPOINTS
from fleetscaler.deploy.template.parameters import DEFAULT_MAX_CAPACITY
from fleetscaler.errors import InvalidServerConfig
from fleetscaler.logic.scaling import bound_warning, capacity_ceiling
from fleetscaler.logic.server_config import validate_server_config

KEY_PREFIX = "fleetscaler"
CAPABILITIES = ["CAPABILITY_IAM"]
DEFAULT_VARIANT = "default"
# Parameters the deploy command sets itself from what it uploads.
MANAGED_PARAMETERS = ("CodeBucket", "CodeKey", "SeedKey")

Echo = Callable[[str], None]


class DeployError(Exception):
    """The deployment could not go on or failed; the message is one line saying why."""


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """`K=V` strings to a dict; a malformed one is named in the error."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DeployError(f"--params {pair!r}: must be KEY=VALUE, e.g. ResourceName=endpoint")
        if key.strip() in MANAGED_PARAMETERS:
            raise DeployError(f"--params {key.strip()}: set by the deploy command from --bucket and the uploads")
        params[key.strip()] = value
    return params


def split_suffixes(value: str) -> list[str]:
    suffixes = [s.strip() for s in value.split(",") if s.strip()]
    if not 1 <= len(suffixes) <= MAX_ENDPOINTS:
        raise DeployError(f"EndpointSuffixes: must list 1 to {MAX_ENDPOINTS} suffixes, got {len(suffixes)}")
    return suffixes


def instance_counts(sagemaker: Any, resource_name: str, suffixes: Sequence[str], variant: str) -> list[int]:
    """Each endpoint's current instance count of `variant`, read from SageMaker."""
    counts = []
    for suffix in suffixes:
        name = f"{resource_name}-{suffix}"
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            raise DeployError(
                f"endpoint {name}: {exc.response['Error'].get('Message', exc)} (create the fleet's endpoints "
                "first, e.g. with cfn/async-endpoints.yaml)"
            ) from exc
        variants = {v.get("VariantName"): v for v in endpoint.get("ProductionVariants", [])}
        if variant not in variants:
            known = ", ".join(map(str, variants))
            raise DeployError(f"endpoint {name}: has no variant {variant!r} (variants: {known})")
        counts.append(int(variants[variant].get("CurrentInstanceCount", 0)))
    return counts


def seed_items(
    base: Sequence[Mapping[str, Any]],
    resource_name: str,
    suffixes: Sequence[str],
    variant: str,
    counts: Sequence[int],
) -> list[dict[str, Any]]:
    """The table's items for this fleet: `base`'s per-server settings kept where the suffix is known.

    Weights follow capacity (count x units), so the router starts where capacity is; all-zero weights send
    requests to the first endpoint, whose HasBacklogWithoutCapacity wakes the fleet.
    """
    from boto3.dynamodb.types import TypeDeserializer

    plain = {item["id"]["S"]: {k: TypeDeserializer().deserialize(v) for k, v in item.items()} for item in base}
    old = plain.get(SERVER_CONFIG_ID, {})
    old_servers = [str(s) for s in old.get("servers", [])]

    def carried(name: str, suffix: str, default: Any) -> Any:
        values = old.get(name)
        if isinstance(values, list) and suffix in old_servers and len(values) == len(old_servers):
            return values[old_servers.index(suffix)]
        return default

    units = [int(carried("capacity_units", s, 1)) for s in suffixes]
    caps = [carried("max_instance_count", s, None) for s in suffixes]
    config: dict[str, Any] = {
        "id": SERVER_CONFIG_ID,
        "servers": list(suffixes),
        "weights": [n * u for n, u in zip(counts, units, strict=True)],
        "current_instance_count": list(counts),
        "capacity_units": units,
        "strategy": old.get("strategy") or "balanced",
        "request_count": 0,
        "config_version": 1,
    }
    if any(cap is not None for cap in caps):
        config["max_instance_count"] = [None if cap is None else int(cap) for cap in caps]
    try:
        validate_server_config(config, resource_name)
    except InvalidServerConfig as exc:
        raise DeployError(f"server_config for EndpointSuffixes: {exc}") from exc
    capacity = sum(n * u for n, u in zip(counts, units, strict=True))
    dimension = {
        "id": DIMENSION_ID,
        "actualCapacity": capacity,
        "desiredCapacity": capacity,
        "dimensionName": "DesiredInstanceCount",
        "failureReason": "",
        "lastModified": clock.now_ms(),
        "resourceName": resource_name,
        "variantName": variant,
        "scalableTargetDimensionId": DIMENSION_ID,
        "scalingStatus": "Successful",
        "version": "1",
    }
    items = [config, dimension]
    if REQUEST_COUNTER_ID in plain:
        items.append(plain[REQUEST_COUNTER_ID])
    serializer = TypeSerializer()
    return [{k: serializer.serialize(v) for k, v in item.items()} for item in sorted(items, key=lambda i: i["id"])]


def content_key(name: str, body: bytes) -> str:
    """A key that changes with the content, so CloudFormation sees new code as a change."""
    stem, dot, ext = name.rpartition(".")
    return f"{KEY_PREFIX}/{stem}-{hashlib.sha256(body).hexdigest()[:16]}{dot}{ext}"


TEMPLATE_BODY_LIMIT = 51_200  # CloudFormation's limit for an inline TemplateBody, in bytes


def _compact(body: str) -> str:
    """The template as compact JSON when it is plain YAML/JSON; as it is when it uses short tags (!Ref)."""
    import json

    import yaml

    if len(body.encode()) <= TEMPLATE_BODY_LIMIT:
        return body
    try:
        return json.dumps(yaml.safe_load(body), separators=(",", ":"), default=str)
    except yaml.YAMLError:
        return body


TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"}
TERMINAL_FAILED = {
    "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED", "IMPORT_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_FAILED",
}  # fmt: skip


@dataclass
class StackDeployer:
    cloudformation: Any
    s3: Any
    sagemaker: Any
    echo: Echo
    poll_seconds: float = 5.0
    timeout_seconds: float = 3600.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    # --- deploy ----------------------------------------------------------------------------------------------

    def deploy(
        self,
        stack: str,
        bucket: str,
        code: Path,
        template_body: str,
        params: Mapping[str, str],
        data: Path | None = None,
    ) -> dict[str, str]:
        existing = self._describe(stack)
        creating = existing is None or existing["StackStatus"] == "REVIEW_IN_PROGRESS"
        if existing is not None and existing["StackStatus"].endswith("_IN_PROGRESS") and not creating:
            raise DeployError(f"stack {stack} is {existing['StackStatus']}: wait for it to finish")
        if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
            raise DeployError(
                f"stack {stack} is ROLLBACK_COMPLETE (its creation failed): run `fleetscaler destroy --stack "
                f"{stack}` and deploy again"
            )
        if not code.is_file():
            raise DeployError(f"--code {code}: no such file (run `make package` first)")

        parameters = dict(params)
        # Everything that can be refused is checked before the first upload.
        seed = self._seed(parameters, data) if creating else None
        code_body = code.read_bytes()
        parameters["CodeBucket"] = bucket
        parameters["CodeKey"] = self._upload(bucket, content_key("code.zip", code_body), code_body)
        seed_key = f"{KEY_PREFIX}/{stack}/ddb-data.jsonl"
        if seed is not None:
            parameters["SeedKey"] = self._upload(bucket, seed_key, seed)
        else:
            self.echo(f"table exists: seed items are only imported when the stack is created ({seed_key} kept)")
        template_source = self._template_source(stack, bucket, template_body)

        previous = {p["ParameterKey"] for p in (existing or {}).get("Parameters", [])}
        api_parameters: list[dict[str, Any]] = [
            {"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())
        ]
        api_parameters += [{"ParameterKey": k, "UsePreviousValue": True} for k in sorted(previous - set(parameters))]

        change_set = f"fleetscaler-{clock.now_ms()}"
        self.echo(f"creating change set {change_set} ({'CREATE' if creating else 'UPDATE'}) for stack {stack}")
        created = self._call(
            "create change set",
            self.cloudformation.create_change_set,
            StackName=stack,
            ChangeSetName=change_set,
            ChangeSetType="CREATE" if creating else "UPDATE",
            **template_source,
            Parameters=api_parameters,
            Capabilities=CAPABILITIES,
        )
        if not self._wait_for_change_set(stack, created["Id"]):
            self.echo("no changes to deploy")
            return self.outputs(stack)
        since = self._latest_event_time(stack)
        self._call("execute change set", self.cloudformation.execute_change_set, ChangeSetName=created["Id"],
                   StackName=stack)  # fmt: skip
        self._wait_for_stack(stack, since)
        return self.outputs(stack)

    def _upload(self, bucket: str, key: str, body: bytes) -> str:
        self._call(f"upload s3://{bucket}/{key}", self.s3.put_object, Bucket=bucket, Key=key, Body=body)
        self.echo(f"uploaded s3://{bucket}/{key} ({len(body):,} bytes)")
        return key

    def _seed(self, params: Mapping[str, str], data: Path | None) -> bytes:
        for required in ("ResourceName", "EndpointSuffixes"):
            if not params.get(required):
                raise DeployError(f"--params {required}=...: required to create the stack")
        resource_name = params["ResourceName"]
        suffixes = split_suffixes(params["EndpointSuffixes"])
        variant = params.get("VariantName", DEFAULT_VARIANT)
        base = read_items(data) if data is not None else []
        counts = instance_counts(self.sagemaker, resource_name, suffixes, variant)
        items = seed_items(base, resource_name, suffixes, variant, counts)
        self.echo(f"seed: servers {', '.join(suffixes)} with instance counts {', '.join(map(str, counts))}")
        self._warn_if_bound(params, items, resource_name)
        return dump_items(items).encode()

    def _warn_if_bound(self, params: Mapping[str, str], items: Sequence[Mapping[str, Any]], resource_name: str) -> None:
        """MaxCapacity above what the seeded endpoints can give is allowed (the fleet runs at its maximum and
        the CapacityBound alarm fires), but rarely meant: say so before deploying."""
        from boto3.dynamodb.types import TypeDeserializer

        raw = next((item for item in items if item.get("id", {}).get("S") == SERVER_CONFIG_ID), None)
        if raw is None:
            return
        config = validate_server_config({k: TypeDeserializer().deserialize(v) for k, v in raw.items()}, resource_name)
        maximum = params.get("MaxCapacity", str(DEFAULT_MAX_CAPACITY))
        if maximum.isdigit():
            warning = bound_warning(int(maximum), capacity_ceiling(config), "MaxCapacity")
            if warning:
                self.echo(f"warning: {warning}")

    def _template_source(self, stack: str, bucket: str, body: str) -> dict[str, str]:
        """Inline when it fits (as compact JSON if need be), else a URL CloudFormation fetches from S3."""
        compact = _compact(body)
        if len(compact.encode()) <= TEMPLATE_BODY_LIMIT:
            return {"TemplateBody": compact}
        key = self._upload(bucket, content_key(f"{stack}/template.yaml", body.encode()), body.encode())
        endpoint = self.s3.meta.endpoint_url.rstrip("/")  # this client's S3 endpoint (or moto's), path style
        return {"TemplateURL": f"{endpoint}/{bucket}/{key}"}

    def _wait_for_change_set(self, stack: str, change_set_id: str) -> bool:
        """True when the change set is ready to execute, False when it holds no changes."""
        deadline = clock.now() + self.timeout_seconds
        while True:
            described = self._call("describe change set", self.cloudformation.describe_change_set,
                                   ChangeSetName=change_set_id, StackName=stack)  # fmt: skip
            status = described["Status"]
            if status == "CREATE_COMPLETE":
                for change in described.get("Changes", []):
                    rc = change.get("ResourceChange", {})
                    self.echo(f"  {rc.get('Action', '?'):<7} {rc.get('LogicalResourceId')} ({rc.get('ResourceType')})")
                return True
            if status == "FAILED":
                reason = described.get("StatusReason", "")
                if "didn't contain changes" in reason or "No updates" in reason:
                    return False
                raise DeployError(f"change set failed: {reason}")
            if clock.now() > deadline:
                raise DeployError(f"change set still {status} after {self.timeout_seconds:.0f} s")
            self.sleep(self.poll_seconds)

    def outputs(self, stack: str) -> dict[str, str]:
        described = self._describe(stack)
        if described is None:
            raise DeployError(f"stack {stack} does not exist")
        return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}

    # --- destroy ---------------------------------------------------------------------------------------------

    def destroy(self, stack: str) -> None:
        existing = self._describe(stack)
        if existing is None:
            raise DeployError(f"stack {stack} does not exist")
        stack_id = existing["StackId"]  # events of a deleted stack are only found by id
        since = self._latest_event_time(stack)
        self._call("delete stack", self.cloudformation.delete_stack, StackName=stack)
        self.echo(f"deleting stack {stack}")
        self._wait_for_stack(stack_id, since)

    # --- waiting and reporting -------------------------------------------------------------------------------

    def _wait_for_stack(self, stack: str, since: Any) -> None:
        """Print each new stack event until the stack settles; fail with the events' reasons."""
        seen: set[str] = set()
        deadline = clock.now() + self.timeout_seconds
        while True:
            described = self._describe(stack)
            status = described["StackStatus"] if described else "DELETE_COMPLETE"
            for event in self._new_events(stack, since, seen):
                reason = f": {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
                self.echo(f"  {event['ResourceStatus']:<20} {event['LogicalResourceId']} "
                          f"({event.get('ResourceType', '')}){reason}")  # fmt: skip
            if status in TERMINAL_OK:
                self.echo(f"stack {described['StackName'] if described else stack}: {status}")
                return
            if status in TERMINAL_FAILED:
                raise DeployError(f"stack {stack} {status}: {self._failure_reason(stack, since, described)}")
            if clock.now() > deadline:
                raise DeployError(f"stack {stack} still {status} after {self.timeout_seconds:.0f} s")
            self.sleep(self.poll_seconds)

    def _events(self, stack: str) -> list[dict[str, Any]]:
        try:
            pages = self.cloudformation.get_paginator("describe_stack_events").paginate(StackName=stack)
            return [event for page in pages for event in page["StackEvents"]]
        except ClientError:
            return []

    def _latest_event_time(self, stack: str) -> Any:
        events = self._events(stack) if self._describe(stack) else []
        return max((e["Timestamp"] for e in events), default=None)

    def _new_events(self, stack: str, since: Any, seen: set[str]) -> list[dict[str, Any]]:
        fresh = [
            e for e in self._events(stack)
            if e["EventId"] not in seen and (since is None or e["Timestamp"] > since)
        ]  # fmt: skip
        fresh.sort(key=lambda e: e["Timestamp"])
        seen.update(e["EventId"] for e in fresh)
        return fresh

    def _failure_reason(self, stack: str, since: Any, described: Mapping[str, Any] | None) -> str:
        failed = [
            e for e in self._events(stack)
            if e["ResourceStatus"].endswith("_FAILED") and e.get("ResourceStatusReason")
            and (since is None or e["Timestamp"] > since)
        ]  # fmt: skip
        # The earliest failure is the cause; later ones are usually "Resource creation cancelled".
        failed.sort(key=lambda e: e["Timestamp"])
        if failed:
            first = failed[0]
            return f"{first['LogicalResourceId']} ({first.get('ResourceType', '')}): {first['ResourceStatusReason']}"
        return (described or {}).get("StackStatusReason") or "no failure reason in the stack events"

    def _describe(self, stack: str) -> dict[str, Any] | None:
        try:
            stacks = self.cloudformation.describe_stacks(StackName=stack)["Stacks"]
        except ClientError as exc:
            if "does not exist" in exc.response["Error"].get("Message", ""):
                return None
            raise DeployError(f"describe stack {stack}: {exc.response['Error'].get('Message', exc)}") from exc
        return stacks[0] if stacks else None

    @staticmethod
    def _call(what: str, function: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return function(**kwargs)
        except ClientError as exc:
            error = exc.response["Error"]
            raise DeployError(f"{what}: {error.get('Code', '')}: {error.get('Message', exc)}") from exc
