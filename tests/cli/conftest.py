"""Fixtures for the CLI: run `fleetscaler ...` in process, fake SageMaker endpoints, a signing-checking router."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import TABLE, FakeLambdaContext, load_event
from tests.integration.conftest import sagemaker_calls

__all__ = ["sagemaker_calls"]


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def restore_table_binding() -> Iterator[None]:
    """The CLI binds the pynamodb models to --endpoint-url/--region; put them back for the next test."""
    from fleetscaler.dal.models import ALL_MODELS, _TableItem

    names = ("table_name", "region", "host", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    models = (_TableItem, *ALL_MODELS)
    saved = [{n: m.Meta.__dict__[n] for n in names if n in m.Meta.__dict__} for m in models]
    yield
    for model, attrs in zip(models, saved, strict=True):
        for name in names:
            if name in attrs:
                setattr(model.Meta, name, attrs[name])
            elif name in model.Meta.__dict__:
                delattr(model.Meta, name)
        model._connection = None


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """`run("config", "show", stdin="y\\n")`: the real entry point, with --table first unless table=None."""
    from fleetscaler.cli.main import main

    def invoke(*args: str, stdin: str = "", table: str | None = TABLE) -> Run:
        capsys.readouterr()
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        argv = (["--table", table] if table else []) + list(args)
        code = main(argv)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return invoke


def create_endpoints(*names: str, instances: int = 1) -> None:
    """Real SageMaker endpoints in moto (model, endpoint config, endpoint)."""
    sagemaker = boto3.client("sagemaker")
    for name in names:
        sagemaker.create_model(
            ModelName=f"{name}-model",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
            PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:latest"},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {
                    "VariantName": "default",
                    "ModelName": f"{name}-model",
                    "InitialInstanceCount": instances,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def set_config(**attrs: Any) -> None:
    """Another writer (the scaling engine) changing server_config directly, bumping its version."""
    table = boto3.resource("dynamodb").Table(TABLE)
    names = {f"#{k}": k for k in attrs} | {"#v": "config_version"}
    values = {f":{k}": v for k, v in attrs.items()} | {":one": 1}
    table.update_item(
        Key={"id": "server_config"},
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in attrs) + " ADD #v :one",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def get_config() -> dict[str, Any]:
    item = boto3.resource("dynamodb").Table(TABLE).get_item(Key={"id": "server_config"}, ConsistentRead=True)["Item"]
    return json.loads(json.dumps(item, default=lambda d: int(d) if d == int(d) else float(d)))


@dataclass
class SigningRouter:
    """A stand-in for API Gateway with AWS_IAM auth in front of the real router Lambda handler."""

    url: str
    verified: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def signature_matches(method: str, url: str, headers: dict[str, str], body: bytes, credentials: Credentials) -> bool:
    """Recompute the SigV4 signature with botocore from what arrived, and compare with the one sent."""
    authorization = headers.get("Authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = dict(part.strip().split("=", 1) for part in authorization[len("AWS4-HMAC-SHA256 ") :].split(","))
    scope = fields["Credential"].split("/")
    if scope[0] != credentials.access_key or scope[3] != "execute-api":
        return False
    signed_names = fields["SignedHeaders"].split(";")
    by_lower = {k.lower(): v for k, v in headers.items()}
    request = AWSRequest(
        method=method, url=url, data=body, headers={n: by_lower[n] for n in signed_names if n != "host"}
    )
    request.headers["host"] = by_lower["host"]
    request.context["timestamp"] = by_lower["x-amz-date"]
    signer = SigV4Auth(credentials, "execute-api", scope[2])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return expected == fields["Signature"]


@pytest.fixture
def signing_router(table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SigningRouter]:
    """127.0.0.1 HTTP server: verifies each request's SigV4 signature, then runs the router handler on it."""
    import logging

    from fleetscaler.handlers.router import handler, logger

    # The Lambda's logs and EMF metrics would land in the CLI's stdout here; in AWS they go to CloudWatch.
    monkeypatch.setattr("fleetscaler.handlers.router._count", lambda *args: None)
    log_handler = logger.registered_handler
    assert isinstance(log_handler, logging.StreamHandler)
    previous_stream = log_handler.setStream(io.StringIO())

    # The caller's identity as the gateway knows it (moto replaces the env credentials while it mocks).
    credentials = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    state = SigningRouter(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            url = f"http://{headers['Host']}{self.path}"
            if not signature_matches("POST", url, headers, body, credentials):
                state.rejected.append(self.path)
                self._answer(403, json.dumps({"message": "The request signature we calculated does not match"}))
                return
            state.verified.append(self.path)
            fleet = self.path.rsplit("/", 1)[-1]
            event = load_event("apigw_router_post.json")
            event.update(
                path=f"/endpoints/{fleet}",
                pathParameters={"EndpointName": fleet},
                headers=headers,
                body=base64.b64encode(body).decode() if body else None,
                isBase64Encoded=bool(body),
            )
            response = handler(event, FakeLambdaContext())
            self._answer(response["statusCode"], response["body"])

        def _answer(self, status: int, body: str) -> None:
            answer_json(self, status, body.encode())

    try:
        with serving(Handler) as url:
            state.url = url
            yield state
    finally:
        log_handler.setStream(previous_stream)


def answer_json(
    handler: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str] | None = None
) -> None:
    """Send a JSON answer from a test HTTP server's request handler."""
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served on 127.0.0.1 (a free port) in a thread; yields the URL of a `prod` stage there."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/prod"
    finally:
        server.shutdown()
        server.server_close()


# ----- batches: `fleetscaler submit` and `fleetscaler results` -----

INPUT_BUCKET = "batch-inputs"
SUBMIT_SLEEP = "fleetscaler.cli.batch.submit.sleep"
RESULTS_SLEEP = "fleetscaler.cli.batch.results.sleep"
RESULT_BUCKET = "batch-results"
Answer = tuple[int, dict[str, Any], dict[str, str]]


def routed(n: int) -> Answer:
    """The router's 202 for the n-th request (0-based): output and failure objects in RESULT_BUCKET."""
    return (
        202,
        {
            "endpointName": f"endpoint-{n % 3 + 1}",
            "inferenceId": f"inference-{n}",
            "outputLocation": f"s3://{RESULT_BUCKET}/endpoint-{n % 3 + 1}/{n}.out",
            "failureLocation": f"s3://{RESULT_BUCKET}/endpoint-{n % 3 + 1}/failures/{n}-error.out",
        },
        {},
    )


@dataclass
class StubRouter:
    """A router stand-in on 127.0.0.1 that answers what `answer(headers, n)` says (default: 202).

    `requests` holds each request's headers (lower-case names), `sent_at` the fleetscaler clock at arrival.
    """

    url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    answer: Any = None

    def inputs_sent(self) -> list[str]:
        return [r["inputlocation"] for r in self.requests]


@pytest.fixture
def stub_router() -> Iterator[StubRouter]:
    from fleetscaler import clock

    state = StubRouter(answer=lambda headers, n: routed(n))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with lock:
                n = len(state.requests)
                state.requests.append(headers)
                state.sent_at.append(clock.now())
            status, body, extra = state.answer(headers, n)
            answer_json(self, status, json.dumps(body).encode(), extra)

    with serving(Handler) as url:
        state.url = url
        yield state


@pytest.fixture
def put_inputs(aws: None) -> Any:
    """`put_inputs(count, prefix="docs/")`: small JSON objects in INPUT_BUCKET (and an empty RESULT_BUCKET)."""
    s3 = boto3.client("s3")
    for bucket in (INPUT_BUCKET, RESULT_BUCKET):
        s3.create_bucket(Bucket=bucket)

    def put(count: int, prefix: str = "docs/") -> list[str]:
        keys = [f"{prefix}doc-{i:04d}.json" for i in range(count)]
        for i, key in enumerate(keys):
            s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=json.dumps({"document": i}).encode())
        return keys

    return put


def put_result(location: str, body: bytes) -> None:
    """What SageMaker does when a request finishes: the output (or failure) object appears."""
    bucket, _, key = location.removeprefix("s3://").partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


class VirtualTime:
    """fleetscaler's clock, moving only when a patched `sleep` is called (`patch_sleep`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from fleetscaler import clock

        self.clock = clock.ManualClock(start=time.time())
        self._monkeypatch = monkeypatch

    def patch_sleep(self, target: str, on_wait: Callable[[int], None] | None = None) -> list[float]:
        """Replace `target` (a module's `sleep`) by an advance of this clock; returns the waits it is asked for.
        `on_wait(n)` runs after the n-th wait (the world changing meanwhile)."""
        waits: list[float] = []

        def wait(seconds: float) -> None:
            waits.append(round(seconds, 6))
            self.clock.advance(seconds)
            if on_wait is not None:
                on_wait(len(waits))

        self._monkeypatch.setattr(target, wait)
        return waits


@pytest.fixture
def virtual_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualTime]:
    from fleetscaler import clock

    virtual = VirtualTime(monkeypatch)
    previous = clock.set_clock(virtual.clock)
    yield virtual
    clock.set_clock(previous)
