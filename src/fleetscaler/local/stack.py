"""The local stack: moto (DynamoDB, S3, CloudWatch) and the SageMaker emulator on 127.0.0.1, the table loaded.

The Lambdas run unmodified in this process: they find AWS through the standard `AWS_ENDPOINT_URL*` variables,
which `LocalStack.start` sets (and `stop` restores), and they take time from the virtual clock it installs.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import Credentials

from fleetscaler import clock
from fleetscaler.local.sagemaker_emulator import EmulatorServer, EndpointSpec, EventFaults, SageMakerEmulator
from fleetscaler.local.scenario import EndpointScenario
from fleetscaler.logic.signal import DEFAULT_TARGET_BACKLOG_PER_UNIT

ROOT = Path(__file__).resolve().parents[3]
DATA_FILE = ROOT / "data" / "ddb-data.jsonl"
REGION = "us-east-1"
LOCAL_ACCESS_KEY = "local"
LOCAL_SECRET_KEY = "local-secret"
FLEET_EPOCH = 1_800_000_000.0  # fixed start of fleet time: runs are reproducible
DIMENSION_ID = "custom-resource:ResourceType:Property"


class ProcessOverrides:
    """Environment variables and the clock a local run sets for the Lambdas in this process, undone at the end."""

    def __init__(self) -> None:
        self._saved_env: dict[str, str | None] = {}
        self._previous_clock: clock.Clock | None = None

    def set_env(self, values: dict[str, str | None]) -> None:
        """Set (or, for None, unset) variables; the first value seen of each is what `restore` puts back."""
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def set_clock(self, new: clock.Clock) -> None:
        previous = clock.set_clock(new)
        if self._previous_clock is None:
            self._previous_clock = previous

    def restore(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        if self._previous_clock is not None:
            clock.set_clock(self._previous_clock)
            self._previous_clock = None
        reset_lambda_caches()


# The namespace the scaling engine publishes the fleet's signal in, locally (the template's default).
LOCAL_METRICS_NAMESPACE = "fleetscaler"


def scaling_environment(
    target_backlog_per_unit: float, capacity_range: tuple[int, int] | None = None
) -> dict[str, str]:
    """What the template gives the scaling Lambdas that the local fleet must give them too (MIN_CAPACITY and
    MAX_CAPACITY are the range Application Auto Scaling registers, when the run has one)."""
    bounds = {} if capacity_range is None else {
        "MIN_CAPACITY": str(capacity_range[0]), "MAX_CAPACITY": str(capacity_range[1])
    }
    return {
        "TARGET_BACKLOG_PER_UNIT": f"{target_backlog_per_unit:g}",
        "POWERTOOLS_METRICS_NAMESPACE": LOCAL_METRICS_NAMESPACE,
        **bounds,
    }


class VirtualClock(clock.ManualClock):
    """Fleet time. Moves only when the simulator steps it; never backwards."""

    def set(self, when: float) -> None:
        if when < self.now():
            raise ValueError("fleet time does not go backwards")
        super().set(when)


def _serialize_moto_dynamodb_writes() -> None:
    """Make moto's DynamoDB writes atomic, as DynamoDB's are (moto's server threads otherwise race on ADD)."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_fleetscaler_atomic", False):
        return
    lock = threading.Lock()
    for name in ("update_item", "put_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def atomic(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(atomic))
    DynamoDBBackend._fleetscaler_atomic = True  # type: ignore[attr-defined]


def _speed_up_werkzeug() -> None:
    """moto's server writes headers and body in separate segments; without TCP_NODELAY each response waits
    for a delayed ACK (tens of ms), which would dominate a simulation's wall time."""
    from werkzeug.serving import WSGIRequestHandler

    WSGIRequestHandler.disable_nagle_algorithm = True


def reset_lambda_caches() -> None:
    """Forget what Lambda containers cache (settings, store, clients, services), so they use this stack.

    Every `functools.cache` of a loaded fleetscaler module is cleared: a run after another one in the same
    process (the benchmark) must not reach the previous run's table or endpoints.
    """
    import sys

    from fleetscaler.aws.sagemaker import reset_clients

    reset_clients()
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "fleetscaler" or module_name.startswith("fleetscaler.")):
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", "") == module_name:
                value.cache_clear()


# The stack's fleet is described like a scenario's (same fields, same defaults).
FleetEndpoint = EndpointScenario


class LocalStack:
    """Start with `start()`, stop with `stop()` (or use it as a context manager)."""

    def __init__(
        self,
        *,
        resource_name: str = "endpoint",
        table_name: str = "fleetscaler-local",
        endpoints: tuple[FleetEndpoint, ...] | None = None,
        strategy: str = "balanced",
        provisioning_seconds: float = 240.0,
        scale_in_seconds: float = 60.0,
        rollback_seconds: float = 90.0,
        seed: int = 0,
        event_faults: EventFaults | None = None,
        moto_port: int = 0,
        emulator_port: int = 0,
        gateway_port: int = 0,
        start_time: float = FLEET_EPOCH,
        target_backlog_per_unit: float = DEFAULT_TARGET_BACKLOG_PER_UNIT,
        capacity_range: tuple[int, int] | None = None,
    ) -> None:
        self.resource_name = resource_name
        self.target_backlog_per_unit = target_backlog_per_unit
        self.capacity_range = capacity_range
        self.table_name = table_name
        self.endpoints = endpoints
        self.strategy = strategy
        self.provisioning_seconds = provisioning_seconds
        self.scale_in_seconds = scale_in_seconds
        self.rollback_seconds = rollback_seconds
        self.seed = seed
        self.event_faults = event_faults
        self.moto_port = moto_port
        self.emulator_port = emulator_port
        self.gateway_port = gateway_port
        self.clock = VirtualClock(start_time)
        self.moto_url = ""
        self.emulator: SageMakerEmulator | None = None
        self._emulator_server: EmulatorServer | None = None
        self._moto: Any = None
        self.gateway: Any = None
        self.fleet: tuple[FleetEndpoint, ...] = ()
        self._overrides = ProcessOverrides()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def environment(self) -> dict[str, str]:
        """What a process needs to use this stack: the Lambdas' variables and the AWS endpoints."""
        assert self._emulator_server is not None
        return {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ENDPOINT_URL_SAGEMAKER": self._emulator_server.url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self._emulator_server.url,
            "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "TABLE_NAME": self.table_name,
            "RESOURCE_NAME": self.resource_name,
            **scaling_environment(self.target_backlog_per_unit, self.capacity_range),
        }

    @property
    def credentials(self) -> Credentials:
        """The access key the local gateway accepts (and the one moto and the emulator are given)."""
        return Credentials(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)

    @property
    def router_url(self) -> str:
        """The router API's stage URL, as the template's RouterUrl output."""
        return str(self.gateway.url)

    @property
    def scaling_resource_id(self) -> str:
        """The scalable dimension's URL: the custom resource's ResourceId for Application Auto Scaling."""
        return str(self.gateway.resource_url(f"/scalableTargetDimensions/{DIMENSION_ID}"))

    # Application Auto Scaling reaches the scaling API over HTTP through the gateway (see `backend.FastBackend`).
    scaling_transport = None

    @property
    def cloudwatch(self) -> Any:
        """A CloudWatch client on moto (what the emulator publishes to)."""
        return boto3.client("cloudwatch", endpoint_url=self.moto_url)

    @property
    def emulator_url(self) -> str:
        assert self._emulator_server is not None
        return self._emulator_server.url

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _speed_up_werkzeug()
        _serialize_moto_dynamodb_writes()
        self._overrides.set_clock(self.clock)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        # moto keeps its services' state per process: start every run from an empty account.
        urllib.request.urlopen(urllib.request.Request(f"{self.moto_url}/moto-api/reset", method="POST"), timeout=30)
        self.emulator = SageMakerEmulator(seed=self.seed, event_faults=self.event_faults)
        self._emulator_server = self.emulator.serve(port=self.emulator_port, upstream=self.moto_url)
        self._overrides.set_env(
            {
                **self.environment,
                "AWS_SESSION_TOKEN": None,
                "AWS_PROFILE": None,
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "ERROR"),
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_SERVICE_NAME": "fleetscaler-local",
            }
        )
        reset_lambda_caches()
        self.emulator._s3 = boto3.client("s3", endpoint_url=self.moto_url)
        self.emulator._cloudwatch = boto3.client("cloudwatch", endpoint_url=self.moto_url)
        self._create_table()
        self._create_endpoints()
        from fleetscaler.local.gateway import DEFAULT_ROUTES, LocalGateway

        self.gateway = LocalGateway(
            DEFAULT_ROUTES, {LOCAL_ACCESS_KEY: LOCAL_SECRET_KEY}, port=self.gateway_port, region=REGION
        ).start()

    def serve_operation(self, target: str, operation: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Answer another AWS JSON 1.1 operation (by X-Amz-Target) on the stack's single AWS URL."""
        assert self._emulator_server is not None, "start() the stack first"
        self._emulator_server.add_operation(target, operation)

    def fleet_scenario_endpoints(self) -> tuple[EndpointScenario, ...]:
        return self.fleet

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self._emulator_server is not None:
            self._emulator_server.stop()
            self._emulator_server = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self._overrides.restore()

    # ----- the fleet -----

    def _create_table(self) -> None:
        from fleetscaler.dal.seed import create_table, load_items, read_items
        from fleetscaler.dal.store import get_store

        get_store()  # binds the models to TABLE_NAME and the moto endpoint
        create_table(self.table_name)
        load_items(self.table_name, read_items(DATA_FILE))
        if self.endpoints is None:
            return
        # The fleet of the scenario replaces the sample fleet of data/ddb-data.jsonl.
        config, dimension = fleet_items(self.endpoints, self.strategy, self.resource_name)
        table = boto3.resource("dynamodb").Table(self.table_name)
        for key, attributes in (("server_config", config), (DIMENSION_ID, dimension)):
            names = {f"#a{i}": name for i, name in enumerate(attributes)}
            table.update_item(
                Key={"id": key},
                UpdateExpression="SET " + ", ".join(f"{n} = :v{i}" for i, n in enumerate(names)),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    f":v{i}": Decimal(v) if isinstance(v, int) else v for i, v in enumerate(attributes.values())
                },
            )

    def _create_endpoints(self) -> None:
        assert self.emulator is not None
        if self.endpoints is None:
            from fleetscaler.dal.store import get_store
            from fleetscaler.logic.server_config import validate_server_config

            raw = get_store().get_server_config() or {}
            config = validate_server_config(raw, self.resource_name)
            endpoints = tuple(
                FleetEndpoint(server=s, capacity_units=u, initial_instances=n, max_instances=m)
                for s, u, n, m in zip(
                    config.servers,
                    config.capacity_units,
                    config.current_instance_count,
                    config.max_instance_count,
                    strict=True,
                )
            )
        else:
            endpoints = self.endpoints
        self.fleet = endpoints
        for spec in endpoint_specs(
            endpoints, self.resource_name, self.provisioning_seconds, self.scale_in_seconds, self.rollback_seconds
        ):
            self.emulator.add_endpoint(spec)


def fleet_items(
    endpoints: tuple[FleetEndpoint, ...], strategy: str, resource_name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server_config attributes and the scalable-dimension attributes (table names) for a fleet that starts
    with each endpoint's initial instances and weights by serving capacity."""
    counts = [e.initial_instances for e in endpoints]
    units = [e.capacity_units for e in endpoints]
    capacity = sum(n * u for n, u in zip(counts, units, strict=True))
    config = {
        "servers": [e.server for e in endpoints],
        "weights": _reduced_weights([n * u for n, u in zip(counts, units, strict=True)]),
        "current_instance_count": counts,
        "capacity_units": units,
        "max_instance_count": [e.max_instances for e in endpoints],
        "strategy": strategy,
    }
    dimension = {
        "actualCapacity": capacity,
        "desiredCapacity": capacity,
        "resourceName": resource_name,
        "scalingStatus": "Successful",
        "lastModified": clock.now_ms(),
    }
    return config, dimension


def endpoint_specs(
    endpoints: tuple[FleetEndpoint, ...],
    resource_name: str,
    provisioning_seconds: float,
    scale_in_seconds: float,
    rollback_seconds: float,
) -> list[EndpointSpec]:
    return [
        EndpointSpec(
            name=f"{resource_name}-{endpoint.server}",
            instance_type=endpoint.instance_type,
            capacity_units=endpoint.capacity_units,
            requests_per_second_per_instance=endpoint.requests_per_second_per_instance,
            initial_instances=endpoint.initial_instances,
            provisioning_seconds=provisioning_seconds,
            scale_in_seconds=scale_in_seconds,
            rollback_seconds=rollback_seconds,
            max_concurrent_invocations_per_instance=endpoint.max_concurrent_invocations_per_instance,
        )
        for endpoint in endpoints
    ]


def _reduced_weights(weights: list[int]) -> list[int]:
    from fleetscaler.logic.wrr import reduce_weights

    return list(reduce_weights(weights)) if any(weights) else [0] * len(weights)
