"""Fixtures for deploying the fleet stack against a moto server.

moto (5.x) stands in for CloudFormation with two gaps that matter to `fleetscaler deploy`; the fixture
closes them the way CloudFormation behaves, so the CLI is exercised over real HTTP end to end:

- executing a change set never re-evaluates the stack's Outputs (they stay those of the empty template of
  the REVIEW_IN_PROGRESS stack): they are rebuilt after the change set applies, as CloudFormation does;
- a resource that fails to create makes ExecuteChangeSet itself fail (no `CREATE_FAILED` event, no
  rollback): the failure is recorded as a `*_FAILED` event of that resource with its reason, and the stack
  ends `ROLLBACK_COMPLETE` (`UPDATE_ROLLBACK_COMPLETE` for an update), as CloudFormation reports it;
- moto reads a `TemplateURL` from its own S3 only when the URL's host is `localhost` (or `s3*.amazonaws.com`):
  the tests reach the server as `localhost`, so the fleet template (over CloudFormation's 51,200-byte inline
  limit) goes the way it goes on AWS, uploaded and fetched by URL;
- `UsePreviousValue` on a CommaDelimitedList parameter hands moto back its parsed list, which it then fails
  to split again (HTTP 500): the previous value is given back as the comma-joined string CloudFormation keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

BUCKET = "fleetscaler-deploy-test"
FLEET = "fleet"
VARIANT = "default"


class ResourceCreationFailed(Exception):
    def __init__(self, logical_id: str, resource_type: str, reason: str) -> None:
        super().__init__(reason)
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.reason = reason


def reset_moto(url: str) -> None:
    """moto's backends live in this process and outlive one server: start and end every test empty."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()


@pytest.fixture
def cloudformation_like_moto(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.cloudformation import models, parsing

    original_create = parsing.parse_and_create_resource

    def create_resource(logical_id: str, resource_json: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return original_create(logical_id, resource_json, *args, **kwargs)
        except Exception as exc:
            reason = getattr(exc, "message", None) or str(exc)
            raise ResourceCreationFailed(logical_id, resource_json.get("Type", ""), reason) from exc

    original_apply = models.ChangeSet.apply

    def apply(self: Any) -> None:
        original_apply(self)
        self.stack.output_map = parsing.OutputMap(self.stack.resource_map, self.template_dict, self.stack.stack_id)

    original_execute = models.CloudFormationBackend.execute_change_set

    def execute(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.change_sets.get(change_set_name) or next(
            cs for cs in self.change_sets.values() if cs.change_set_name == change_set_name
        )
        stack = self.stacks[change_set.stack_id]
        try:
            original_execute(self, change_set_name, stack_name)
        except ResourceCreationFailed as failure:
            action = change_set.change_set_type  # CREATE or UPDATE
            stack.events.append(
                models.Event(
                    stack_id=stack.stack_id,
                    stack_name=stack.name,
                    logical_resource_id=failure.logical_id,
                    physical_resource_id="",
                    resource_type=failure.resource_type,
                    resource_status=f"{action}_FAILED",
                    resource_status_reason=failure.reason,
                    resource_properties=None,
                )
            )
            status = "ROLLBACK_COMPLETE" if action == "CREATE" else "UPDATE_ROLLBACK_COMPLETE"
            stack._add_stack_event(status)
            stack.status = status

    def previous_values(self: Any) -> dict[str, Any]:
        resolved = self.resource_map.resolved_parameters
        return {k: ",".join(v) if isinstance(v, list) else v for k, v in resolved.items()}

    monkeypatch.setattr(models.Stack, "stack_parameters", property(previous_values))
    monkeypatch.setattr(parsing, "parse_and_create_resource", create_resource)
    monkeypatch.setattr(models.ChangeSet, "apply", apply)
    monkeypatch.setattr(models.CloudFormationBackend, "execute_change_set", execute)
    url = moto_server.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    reset_moto(url)
    yield url
    reset_moto(url)


def create_endpoints(names: list[str], instance_count: int = 2) -> None:
    """Async endpoints as the fleet template expects them (moto creates them InService at once)."""
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(
        ModelName="model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/model",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="config",
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": "model",
                "InitialInstanceCount": instance_count,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    for name in names:
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName="config")


@pytest.fixture
def deploy_env(cloudformation_like_moto: str, tmp_path: Path) -> dict[str, Any]:
    """A moto server with the code bucket, a code package and three endpoints fleet-a, fleet-b, fleet-c."""
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    create_endpoints([f"{FLEET}-{s}" for s in ("a", "b", "c")])
    code = tmp_path / "code.zip"
    from fleetscaler.deploy.package import build

    build(code, with_dependencies=False)
    return {"url": cloudformation_like_moto, "code": code}
