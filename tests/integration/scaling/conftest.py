"""A fleet of three SageMaker endpoints under moto, with updates that take time like the real service.

moto's SageMaker (5.x) creates endpoints and answers DescribeEndpoint and UpdateEndpointWeightsAndCapacities,
but it applies an update instantly: the endpoint never shows `Updating`, LastModifiedTime never moves,
updates of a busy endpoint are accepted, capacity errors never happen and no EventBridge event is emitted.
`ProvisioningSageMaker` patches moto's backend so an update leaves the endpoint `Updating` at its old count
until the test finishes it with `complete()` (at the target, below it, or Failed), moves LastModifiedTime,
rejects updates of a non-InService endpoint like SageMaker does, and can refuse an endpoint's next update
with ResourceLimitExceeded. `complete()` returns the EventBridge event SageMaker would send.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.conftest import EVENTS, TABLE, load_event

VARIANT = "default"
# SageMaker times of the fake's updates: after moto's creation times (wall clock), strictly increasing.
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


class ProvisioningSageMaker:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.core.exceptions import JsonRESTError
        from moto.sagemaker.exceptions import ValidationError
        from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends

        self._backend = lambda: sagemaker_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        self.calls: list[tuple[str, int]] = []
        self.refuse_next: dict[str, str] = {}
        self._tick = 0
        self._lock = threading.Lock()
        fake = self

        def update(backend: Any, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]) -> str:
            endpoint = backend.endpoints.get(endpoint_name)
            if endpoint is None:
                raise ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
            if endpoint_name in fake.refuse_next:
                code = fake.refuse_next.pop(endpoint_name)
                raise JsonRESTError(code, f"The account-level service limit for {endpoint_name} is exceeded")
            if endpoint.endpoint_status != "InService":
                raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
            count = int(desired_weights_and_capacities[0]["DesiredInstanceCount"])
            fake.calls.append((endpoint_name, count))
            endpoint.production_variants[0]["DesiredInstanceCount"] = count
            endpoint.endpoint_status = "Updating"
            endpoint.last_modified_time = fake.next_time()
            return str(endpoint.arn)

        monkeypatch.setattr(SageMakerModelBackend, "update_endpoint_weights_and_capacities", update)

    def next_time(self) -> datetime:
        with self._lock:
            self._tick += 1
            return START + timedelta(seconds=self._tick)

    def endpoint(self, name: str) -> Any:
        return self._backend().endpoints[name]

    def status(self, name: str) -> tuple[str, int, int]:
        endpoint = self.endpoint(name)
        variant = endpoint.production_variants[0]
        return endpoint.endpoint_status, variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]

    def counts(self) -> dict[str, int]:
        return {name: self.status(name)[1] for name in sorted(self._backend().endpoints)}

    def updating(self) -> list[str]:
        return sorted(n for n, e in self._backend().endpoints.items() if e.endpoint_status == "Updating")

    def complete(self, name: str, reached: int | None = None, failure: str | None = None) -> dict[str, Any]:
        """Finish the endpoint's update: at its target, at `reached` instances (rolled back, InService), or
        Failed when `failure` is given without `reached`. Returns the matching EventBridge event."""
        endpoint = self.endpoint(name)
        variant = endpoint.production_variants[0]
        if failure is not None and reached is None:
            endpoint.endpoint_status = "Failed"
            endpoint.failure_reason = failure
            variant["CurrentInstanceCount"] = 0
        else:
            count = variant["DesiredInstanceCount"] if reached is None else reached
            variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = count
            endpoint.endpoint_status = "InService"
            endpoint.failure_reason = failure
        endpoint.last_modified_time = self.next_time()
        return self.event(name)

    def complete_all(self) -> list[dict[str, Any]]:
        return [self.complete(name) for name in self.updating()]

    def event(self, name: str, status: str | None = None) -> dict[str, Any]:
        """The EventBridge event for the endpoint's current state (or a given EndpointStatus)."""
        endpoint = self.endpoint(name)
        variant = endpoint.production_variants[0]
        event = load_event("sagemaker_endpoint_state_change.json")
        names = {"InService": "IN_SERVICE", "Updating": "UPDATING", "Failed": "FAILED", "RollingBack": "ROLLING_BACK"}
        detail = event["detail"]
        detail.update(
            EndpointName=name,
            EndpointArn=endpoint.arn,
            EndpointStatus=status or names[endpoint.endpoint_status],
            LastModifiedTime=int(endpoint.last_modified_time.timestamp() * 1000),
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "CurrentInstanceCount": variant["CurrentInstanceCount"],
                    "DesiredInstanceCount": variant["DesiredInstanceCount"],
                    "DesiredWeight": 1.0,
                }
            ],
        )
        if endpoint.failure_reason:
            detail["FailureReason"] = endpoint.failure_reason
        event["resources"] = [endpoint.arn]
        return copy.deepcopy(event)


def create_endpoints(names: list[str], count: int = 1) -> None:
    client = boto3.client("sagemaker")
    client.create_model(
        ModelName="model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:latest"},
    )
    for name in names:
        client.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": "model",
                    "InitialInstanceCount": count,
                    "InstanceType": "ml.g4dn.xlarge",
                }
            ],
            AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://fleet-outputs/"}},
        )
        client.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> ProvisioningSageMaker:
    return ProvisioningSageMaker(monkeypatch)


@pytest.fixture
def fleet(table: str, sagemaker: ProvisioningSageMaker) -> Iterator[ProvisioningSageMaker]:
    """data/ddb-data.jsonl (3 endpoints x 1 instance, caps 10, balanced) with endpoint-1..3 in moto."""
    create_endpoints(["endpoint-1", "endpoint-2", "endpoint-3"])
    yield sagemaker


@pytest.fixture
def manual_clock() -> Iterator[Any]:
    """fleetscaler's clock, moved by the test (timeouts and back-off without waiting)."""
    from fleetscaler.clock import ManualClock, set_clock

    clock = ManualClock(START.timestamp())
    previous = set_clock(clock)
    yield clock
    set_clock(previous)


def table_item(item_id: str) -> dict[str, Any]:
    return boto3.resource("dynamodb").Table(TABLE).get_item(Key={"id": item_id}, ConsistentRead=True)["Item"]


def set_config(**attrs: Any) -> None:
    boto3.resource("dynamodb").Table(TABLE).update_item(
        Key={"id": "server_config"},
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in attrs),
        ExpressionAttributeNames={f"#{k}": k for k in attrs},
        ExpressionAttributeValues={f":{k}": v for k, v in attrs.items()},
    )


def scaling_event(method: str, body: Any = None, dimension_id: str = "custom-resource:ResourceType:Property") -> dict:
    event = load_event("apigw_scaling_patch.json" if method == "PATCH" else "apigw_scaling_get.json")
    event["path"] = f"/scalableTargetDimensions/{dimension_id}"
    event["pathParameters"] = {"scalableTargetDimensionId": dimension_id}
    if method == "PATCH":
        event["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    return event


__all__ = ["EVENTS", "ProvisioningSageMaker", "create_endpoints", "scaling_event", "set_config", "table_item"]
