"""Fixtures for the local AWS stand-ins: known credentials, gateways started and stopped per test."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from fleetscaler.local.gateway import LocalGateway, Route
from fleetscaler.local.sigv4 import HttpAnswer, send_signed
from tests.integration.conftest import sagemaker_calls

__all__ = ["sagemaker_calls"]

ACCESS_KEY = "AKIDLOCALTEST"
SECRET_KEY = "local-test-secret"
CREDENTIALS = Credentials(ACCESS_KEY, SECRET_KEY)
KNOWN_KEYS = {ACCESS_KEY: SECRET_KEY}


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., LocalGateway]]:
    """`start_gateway(routes, **options)`: a LocalGateway on a free port that knows CREDENTIALS, stopped after."""
    started: list[LocalGateway] = []

    def start(routes: Iterable[Route], **options: Any) -> LocalGateway:
        gateway = LocalGateway(routes, options.pop("credentials", KNOWN_KEYS), **options).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


def call(
    method: str, url: str, *, credentials: Credentials | None = CREDENTIALS, body: bytes = b"", **kwargs: Any
) -> HttpAnswer:
    """One signed (by default) HTTP request to the gateway."""
    return send_signed(method, url, credentials, body=body, **kwargs)
