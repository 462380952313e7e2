"""What the simulator's Lambdas and emulators talk to: in process (fast) or the whole local stack over HTTP.

Both backends run the same unmodified handlers and services with the same SageMaker emulator and Application
Auto Scaling emulator; only what they reach differs:

| port | fast (`FastBackend`) | full stack (`FullStackBackend`) |
|---|---|---|
| metadata table | `InMemoryMetadataStore` installed for `get_store()` | DynamoDB in moto's server |
| SageMaker (control, runtime) | boto3-shaped clients calling the emulator | boto3 over HTTP to the emulator |
| CloudWatch | `InMemoryCloudWatch` | moto's server |
| scaling API | events from `LocalGateway.call` (SigV4 checked, no socket) | signed HTTP through the gateway |
| results in S3 | kept in memory (the emulator's completions) | written to moto's S3 |

A port is installed by one entry of `FAST_PORTS` (a function that installs the backend's object where the
production code finds it and returns how to undo it): the scaling engine's CloudWatch client is one such line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.credentials import Credentials

from fleetscaler.local.doubles import (
    InMemoryCloudWatch,
    InMemoryMetadataStore,
    SageMakerControlClient,
    SageMakerRuntimeClient,
)
from fleetscaler.local.sagemaker_emulator import EventFaults, SageMakerEmulator
from fleetscaler.local.scenario import Scenario
from fleetscaler.local.sigv4 import Transport
from fleetscaler.local.stack import (
    DATA_FILE,
    DIMENSION_ID,
    FLEET_EPOCH,
    LOCAL_ACCESS_KEY,
    LOCAL_SECRET_KEY,
    REGION,
    LocalStack,
    ProcessOverrides,
    VirtualClock,
    endpoint_specs,
    fleet_items,
    reset_lambda_caches,
    scaling_environment,
)

# Nothing in a fast run may reach AWS: a stray boto3 client gets this address, where nothing listens.
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"


@dataclass(frozen=True)
class Port:
    """One thing production code finds by itself (a client, the store), swapped for the backend's object."""

    name: str
    install: Callable[[FastBackend], Callable[[], None]]


def _sagemaker_clients(backend: FastBackend) -> Callable[[], None]:
    from fleetscaler.aws.sagemaker import install_clients

    install_clients(control=backend.sagemaker_control, runtime=backend.sagemaker_runtime)
    return install_clients


def _metadata_store(backend: FastBackend) -> Callable[[], None]:
    from fleetscaler.dal.store import install_store

    install_store(backend.store)
    return lambda: install_store(None)


def _cloudwatch_client(backend: FastBackend) -> Callable[[], None]:
    from fleetscaler.aws.cloudwatch import install_client

    install_client(backend.cloudwatch)
    return lambda: install_client(None)


FAST_PORTS: tuple[Port, ...] = (
    Port("SageMaker control and runtime clients", _sagemaker_clients),
    Port("metadata table", _metadata_store),
    Port("CloudWatch client of the scaling engine (queues in, fleet signal out)", _cloudwatch_client),
)


class Backend:
    """The stand-ins one run uses. Start with `with backend:`; everything is restored when it ends."""

    mode: str
    clock: VirtualClock
    emulator: SageMakerEmulator
    cloudwatch: Any
    sagemaker_control: Any
    sagemaker_runtime: Any
    scaling_resource_id: str
    scaling_transport: Transport | None
    credentials: Credentials = Credentials(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def __enter__(self) -> Backend:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _event_faults(self) -> EventFaults:
        events = self.scenario.events
        return EventFaults(events.loss, events.duplicate, events.delay_seconds)


class FastBackend(Backend):
    """Everything in this process, no socket: the handlers find in-memory stand-ins through `FAST_PORTS`."""

    mode = "fast"

    def __init__(self, scenario: Scenario, start_time: float = FLEET_EPOCH) -> None:
        super().__init__(scenario)
        self.clock = VirtualClock(start_time)
        self.table_name = f"fleetscaler-{scenario.resource_name}"
        self.store = InMemoryMetadataStore(self.table_name)
        self.cloudwatch = InMemoryCloudWatch()
        self._undo: list[Callable[[], None]] = []
        self._overrides = ProcessOverrides()

    def start(self) -> None:
        from fleetscaler.dal.seed import read_items
        from fleetscaler.local.gateway import DEFAULT_ROUTES, LocalGateway

        scenario = self.scenario
        self._overrides.set_clock(self.clock)
        self._overrides.set_env(
            {
                "AWS_ENDPOINT_URL": UNREACHABLE_ENDPOINT,
                "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
                "AWS_SESSION_TOKEN": None,
                "AWS_PROFILE": None,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "TABLE_NAME": self.table_name,
                "RESOURCE_NAME": scenario.resource_name,
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "ERROR"),
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_SERVICE_NAME": "fleetscaler-local",
                **scaling_environment(scenario.policy.target_backlog_per_instance, scenario.capacity_range),
            }
        )
        self.emulator = SageMakerEmulator(
            seed=scenario.seed, event_faults=self._event_faults(), cloudwatch_client=self.cloudwatch
        )
        for spec in endpoint_specs(
            scenario.endpoints,
            scenario.resource_name,
            scenario.provisioning_seconds,
            scenario.scale_in_seconds,
            scenario.rollback_seconds,
        ):
            self.emulator.add_endpoint(spec)
        self.sagemaker_control = SageMakerControlClient(self.emulator)
        self.sagemaker_runtime = SageMakerRuntimeClient(self.emulator)
        self.store.load(read_items(DATA_FILE))
        config, dimension = fleet_items(scenario.endpoints, scenario.strategy, scenario.resource_name)
        self.store.items["server_config"].update(config)
        names = {"actualCapacity": "actual_capacity", "desiredCapacity": "desired_capacity",
                 "resourceName": "resource_name", "scalingStatus": "scaling_status", "lastModified": "last_modified"}
        self.store.items[DIMENSION_ID].update({names[k]: v for k, v in dimension.items()})
        gateway = LocalGateway(DEFAULT_ROUTES, {LOCAL_ACCESS_KEY: LOCAL_SECRET_KEY}, region=REGION)
        self.scaling_resource_id = gateway.resource_url(f"/scalableTargetDimensions/{DIMENSION_ID}")
        self.scaling_transport = gateway.call
        reset_lambda_caches()
        for port in FAST_PORTS:
            self._undo.append(port.install(self))

    def stop(self) -> None:
        while self._undo:
            self._undo.pop()()
        self._overrides.restore()


class FullStackBackend(Backend):
    """The local stack: moto's server, the emulator and the API gateway on 127.0.0.1, every call over HTTP."""

    mode = "full"

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.stack = LocalStack(
            resource_name=scenario.resource_name,
            table_name=f"fleetscaler-{scenario.resource_name}",
            endpoints=scenario.endpoints,
            strategy=scenario.strategy,
            provisioning_seconds=scenario.provisioning_seconds,
            scale_in_seconds=scenario.scale_in_seconds,
            rollback_seconds=scenario.rollback_seconds,
            seed=scenario.seed,
            event_faults=self._event_faults(),
            target_backlog_per_unit=scenario.policy.target_backlog_per_instance,
            capacity_range=scenario.capacity_range,
        )
        self.clock = self.stack.clock
        self.scaling_transport = None

    def start(self) -> None:
        self.stack.start()
        assert self.stack.emulator is not None
        self.emulator = self.stack.emulator
        self.cloudwatch = boto3.client("cloudwatch", endpoint_url=self.stack.moto_url)
        self.sagemaker_control = boto3.client("sagemaker", endpoint_url=self.stack.emulator_url)
        self.sagemaker_runtime = boto3.client("sagemaker-runtime", endpoint_url=self.stack.emulator_url)
        self.scaling_resource_id = self.stack.scaling_resource_id
        self.credentials = self.stack.credentials

    def stop(self) -> None:
        self.stack.stop()


def make_backend(scenario: Scenario, *, full_stack: bool = False) -> Backend:
    return FullStackBackend(scenario) if full_stack else FastBackend(scenario)
