"""Fixtures of the local fleet: gateways with known credentials, a virtual clock, the SageMaker emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials

from fleetscaler import clock
from fleetscaler.local.gateway import LocalGateway, Route
from fleetscaler.local.sagemaker_emulator import EmulatorServer, EventFaults, SageMakerEmulator
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


@pytest.fixture
def virtual_clock() -> Iterator[clock.ManualClock]:
    manual = clock.ManualClock(start=1_800_000_000.0)
    previous = clock.set_clock(manual)
    try:
        yield manual
    finally:
        clock.set_clock(previous)


class EmulatorHarness:
    """An emulator served over HTTP with boto3 clients pointed at it, and the events it delivered."""

    def __init__(self, emulator: SageMakerEmulator, server: EmulatorServer, virtual_clock: clock.ManualClock) -> None:
        self.emulator = emulator
        self.server = server
        self.clock = virtual_clock
        self.events: list[dict[str, Any]] = []
        emulator.event_sink = self.events.append
        self.control = boto3.client("sagemaker", endpoint_url=server.url)
        self.runtime = boto3.client("sagemaker-runtime", endpoint_url=server.url)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.emulator.advance_to(self.clock.now())

    def describe(self, name: str) -> dict[str, Any]:
        return self.control.describe_endpoint(EndpointName=name)  # type: ignore[no-any-return]

    def scale(self, name: str, count: int) -> dict[str, Any]:
        return self.control.update_endpoint_weights_and_capacities(  # type: ignore[no-any-return]
            EndpointName=name,
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": count}],
        )


@pytest.fixture
def emulator_factory(virtual_clock: clock.ManualClock) -> Iterator[Any]:
    servers: list[EmulatorServer] = []

    def build(*, seed: int = 7, faults: EventFaults | None = None, s3: Any = None, cloudwatch: Any = None) -> Any:
        emulator = SageMakerEmulator(seed=seed, event_faults=faults, s3_client=s3, cloudwatch_client=cloudwatch)
        server = emulator.serve()
        servers.append(server)
        return EmulatorHarness(emulator, server, virtual_clock)

    yield build
    for server in servers:
        server.stop()
