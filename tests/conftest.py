"""Shared fixtures: fake AWS credentials, moto-backed table, Lambda context, API Gateway events."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).resolve().parent / "events"
DATA_FILE = ROOT / "data" / "ddb-data.jsonl"
SEED_SAMPLE_FILE = Path(__file__).resolve().parent / "data" / "seed-sample-ddb-data.jsonl"
TABLE = "fleetscaler-test"
REGION = "us-east-1"


def reset_process_caches() -> None:
    """Lambda containers cache settings, the store and clients; each test starts a fresh 'container'."""
    from fleetscaler.aws import cloudwatch
    from fleetscaler.aws.sagemaker import reset_clients
    from fleetscaler.config import get_settings
    from fleetscaler.dal.router_table import get_router_table
    from fleetscaler.dal.store import get_store
    from fleetscaler.handlers import router

    get_settings.cache_clear()
    get_store.cache_clear()
    get_router_table.cache_clear()
    router.get_router.cache_clear()
    reset_clients()
    cloudwatch.reset_clients()
    from fleetscaler.services import scaling

    scaling.get_engine.cache_clear()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and the Lambda environment; never the real AWS."""
    for name in list(__import__("os").environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE", "ALLOWED_INPUT_PREFIXES"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("RESOURCE_NAME", "endpoint")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "fleetscaler-test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "fleetscaler-test")
    reset_process_caches()
    yield
    reset_process_caches()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def load_file(path: Path) -> None:
    from fleetscaler.dal.seed import create_table, load_items, read_items
    from fleetscaler.dal.store import get_store

    get_store()  # binds the models to TABLE_NAME
    create_table(TABLE)
    load_items(TABLE, read_items(path))


@pytest.fixture
def table(aws: None) -> str:
    """The metadata table, created from the models and loaded from data/ddb-data.jsonl."""
    load_file(DATA_FILE)
    return TABLE


@pytest.fixture
def seed_sample_table(aws: None) -> str:
    """The metadata table loaded from a file in the seed sample's exact layout."""
    load_file(SEED_SAMPLE_FILE)
    return TABLE


@dataclass
class FakeLambdaContext:
    function_name: str = "fleetscaler-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:fleetscaler-test"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_event(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


@pytest.fixture
def router_event() -> Any:
    """Factory for router events: `router_event(headers=..., body=..., fleet=...)`."""

    def build(
        *,
        fleet: str = "endpoint",
        headers: dict[str, str] | None = None,
        replace_headers: bool = False,
        body: str | None = None,
        base64: bool = False,
    ) -> dict[str, Any]:
        event = load_event("apigw_router_post.json")
        event["path"] = f"/endpoints/{fleet}"
        event["pathParameters"] = {"EndpointName": fleet}
        if replace_headers:
            event["headers"] = dict(headers or {})
        elif headers is not None:
            event["headers"].update(headers)
        event["body"] = body
        event["isBase64Encoded"] = base64
        return event

    return build


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real moto HTTP server on 127.0.0.1; every boto3/pynamodb client in the process points at it."""
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend
    from moto.server import ThreadedMotoServer

    # DynamoDB applies each UpdateItem atomically; moto's server threads do not, so concurrent ADDs can
    # be lost inside moto itself. Serialize its writes to keep the stand-in faithful to the service.
    lock = threading.Lock()
    for name in ("update_item", "put_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def atomic(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, functools.wraps(original)(atomic))

    # The response (ReturnValues=ALL_NEW) is serialized from the same item object after the backend call
    # returns, so a concurrent write could show through it: hold a lock over each whole request too.
    from moto.dynamodb.responses import DynamoHandler

    request_lock = threading.Lock()
    for name in ("update_item", "put_item", "delete_item"):
        handler_method = getattr(DynamoHandler, name)

        def whole_request(*args: Any, __original: Any = handler_method, **kwargs: Any) -> Any:
            with request_lock:
                return __original(*args, **kwargs)

        monkeypatch.setattr(DynamoHandler, name, functools.wraps(handler_method)(whole_request))

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    reset_process_caches()
    try:
        yield url
    finally:
        server.stop()
        reset_process_caches()


LOCAL_UP_STARTUP_SECONDS = 60


@contextmanager
def running_local_up(args: Sequence[str], workdir: Path, env: Mapping[str, str]) -> Iterator[str]:
    """`fleetscaler local up ARGS` as its own process in `workdir` until the block ends (Ctrl-C, as a user stops it);
    yields what it printed once it is ready (its URLs and environment)."""
    log = workdir / "local-up.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fleetscaler.cli.main", "local", "up", *args],
            stdout=out, stderr=subprocess.STDOUT, cwd=workdir, stdin=subprocess.DEVNULL,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + LOCAL_UP_STARTUP_SECONDS
        while "try:" not in log.read_text():
            if process.poll() is not None:
                pytest.fail(f"fleetscaler local up exited {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"fleetscaler local up did not start in {LOCAL_UP_STARTUP_SECONDS} s:\n{log.read_text()}")
            time.sleep(0.2)
        yield log.read_text()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def local_up_url(printed: str, label: str) -> str:
    """The URL `fleetscaler local up` printed after `label` (e.g. "AWS endpoint:", "router API:")."""
    line = next(line for line in printed.splitlines() if line.strip().startswith(label))
    return line.split(label, 1)[1].split()[0]
