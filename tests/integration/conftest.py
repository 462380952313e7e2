from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest


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
    """Everything the Lambdas print: powertools log lines (their handler stream) and EMF metrics (stdout)."""
    from fleetscaler.handlers import router

    buffer = io.StringIO()
    handler = router.logger.registered_handler
    assert isinstance(handler, __import__("logging").StreamHandler)
    previous = handler.setStream(buffer)

    def read() -> str:
        return buffer.getvalue() + capsys.readouterr().out

    yield read
    handler.setStream(previous)
