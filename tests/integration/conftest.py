from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.conftest import TABLE


def call_router(event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The router Lambda's answer: status, JSON body, headers (the last value of each)."""
    from fleetscaler.handlers.router import handler

    response = handler(event, context)
    headers = dict(response.get("headers") or {})
    headers.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    return response["statusCode"], json.loads(response["body"]), headers


def set_config(**attrs: Any) -> None:
    """Write attributes of server_config as a hand edit would (no validation, no version bump)."""
    table = boto3.resource("dynamodb").Table(TABLE)
    table.update_item(
        Key={"id": "server_config"},
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in attrs),
        ExpressionAttributeNames={f"#{k}": k for k in attrs},
        ExpressionAttributeValues={f":{k}": v for k, v in attrs.items()},
    )


def request_count() -> int:
    """The router's counter as the table holds it."""
    item = boto3.resource("dynamodb").Table(TABLE).get_item(Key={"id": "server_config"}, ConsistentRead=True)
    return int(item["Item"].get("request_count", 0))


@pytest.fixture
def sagemaker_calls(aws: None) -> Iterator[list[dict[str, Any]]]:
    """Every InvokeEndpointAsync call the router's real boto3 client makes, with its parameters."""
    from fleetscaler.aws.sagemaker import runtime_client

    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    events = runtime_client().meta.events
    events.register("provide-client-params.sagemaker-runtime.InvokeEndpointAsync", record)
    yield calls
    events.unregister("provide-client-params.sagemaker-runtime.InvokeEndpointAsync", record)


@pytest.fixture
def lambda_output(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Everything the API Lambdas print: powertools log lines (their handler streams) and EMF metrics (stdout)."""
    from fleetscaler.handlers import router, scaling_api

    buffer = io.StringIO()
    # One handler per service name: under one POWERTOOLS_SERVICE_NAME both Lambdas log through the same one.
    handlers = list({id(h): h for h in (module.logger.registered_handler for module in (router, scaling_api))}.values())
    assert all(isinstance(handler, logging.StreamHandler) for handler in handlers)
    # Swapped directly: setStream would flush the old stream, which may be an earlier test's closed capture.
    previous = [handler.stream for handler in handlers]  # type: ignore[attr-defined]
    for handler in handlers:
        handler.stream = buffer  # type: ignore[attr-defined]

    def read() -> str:
        return buffer.getvalue() + capsys.readouterr().out

    yield read
    for handler, stream in zip(handlers, previous, strict=True):
        handler.stream = stream  # type: ignore[attr-defined]


@pytest.fixture
def dynamodb_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The DynamoDB operations every client in the process makes (boto3's and pynamodb's), in order."""
    import botocore.client

    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls
