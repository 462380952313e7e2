"""The local API Gateway: SigV4 auth like AWS_IAM, REST proxy events in, proxy responses out."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from botocore.credentials import Credentials

from fleetscaler import clock
from fleetscaler.local.gateway import DEFAULT_ROUTES, Route
from fleetscaler.local.sigv4 import sign_request
from fleetscaler.logic.invocation import ALLOWED_HEADERS
from tests.local.conftest import ACCESS_KEY, CREDENTIALS, call


class Recorder:
    """A Lambda handler that records the events it gets and answers a fixed proxy response."""

    def __init__(self, response: dict[str, Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.response = response or {"statusCode": 200, "body": json.dumps({"ok": True})}

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return self.response


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers with the request body, as received, and the content type."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": event["headers"].get("Content-Type", "text/plain")},
        "body": event["body"],
        "isBase64Encoded": event["isBase64Encoded"],
    }


def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("secret internal detail")


def test_signed_request_reaches_router_and_answers_202(
    table: str, start_gateway: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    # Given the template's routes in front of the real router Lambda, under moto
    gateway = start_gateway(DEFAULT_ROUTES)
    # When a signed POST arrives at the stage URL
    answer = call(
        "POST",
        f"{gateway.url}/endpoints/endpoint",
        headers={"InputLocation": "s3://fleet-inputs/payload.csv", "ContentType": "text/csv"},
    )
    # Then the router accepted it and SageMaker got the call
    assert answer.status == 202, answer.body
    body = answer.json()
    assert body["endpointName"].startswith("endpoint-")
    assert sagemaker_calls[-1]["EndpointName"] == body["endpointName"]
    assert sagemaker_calls[-1]["InputLocation"] == "s3://fleet-inputs/payload.csv"
    assert answer.headers["content-type"] == "application/json"


def test_headers_outside_the_allowed_list_never_reach_sagemaker(
    table: str, start_gateway: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    # Given the router behind the gateway
    gateway = start_gateway(DEFAULT_ROUTES)
    # When a signed request carries credentials, cookies and custom headers beside the allowed ones
    answer = call(
        "POST",
        f"{gateway.url}/endpoints/endpoint",
        credentials=Credentials(ACCESS_KEY, "local-test-secret", "session-token-secret"),
        headers={
            "InputLocation": "s3://fleet-inputs/payload.csv",
            "requestttlseconds": "600",
            "Cookie": "session=cookie-secret",
            "X-Api-Key": "api-key-secret",
        },
    )
    # Then SageMaker saw only allowed parameters and none of the secrets
    assert answer.status == 202, answer.body
    params = sagemaker_calls[-1]
    assert set(params) - {"EndpointName"} <= set(ALLOWED_HEADERS)
    assert params["RequestTTLSeconds"] == 600
    flat = json.dumps(params, default=str)
    for secret in ("cookie-secret", "api-key-secret", "session-token-secret", "AWS4-HMAC-SHA256"):
        assert secret not in flat


def signed_then(change: str, url: str) -> tuple[dict[str, str], bytes]:
    body = b'{"desiredCapacity": 2.0}'
    if change == "expired":
        return sign_request("PATCH", url, CREDENTIALS, body=body, when=time.time() - 600), body
    if change == "unknown key":
        return sign_request("PATCH", url, Credentials("AKIDSTRANGER", "whatever"), body=body), body
    if change == "wrong secret":
        return sign_request("PATCH", url, Credentials(ACCESS_KEY, "not-the-secret"), body=body), body
    if change == "body changed after signing":
        return sign_request("PATCH", url, CREDENTIALS, body=body), b'{"desiredCapacity": 20.0}'
    if change == "other region":
        return sign_request("PATCH", url, CREDENTIALS, body=body, region="eu-west-1"), body
    if change == "unsigned":
        return {}, body
    raise AssertionError(change)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("unsigned", "Missing Authentication Token"),
        ("expired", "Signature expired"),
        ("unknown key", "The security token included in the request is invalid."),
        ("wrong secret", "The request signature we calculated does not match"),
        ("body changed after signing", "The request signature we calculated does not match"),
        ("other region", "Credential should be scoped to a valid region"),
    ],
)
def test_requests_failing_iam_auth_get_403_and_never_reach_the_handler(
    start_gateway: Any, change: str, message: str
) -> None:
    # Given a gateway in front of a recording handler
    handler = Recorder()
    gateway = start_gateway([Route("PATCH", "/scalableTargetDimensions/{id}", handler)])
    url = f"{gateway.url}/scalableTargetDimensions/abc"
    headers, body = signed_then(change, url)
    # When the request is sent as prepared
    answer = call("PATCH", url, credentials=None, headers=headers, body=body)
    # Then it is refused with API Gateway's message, and the handler never ran
    assert answer.status == 403
    assert answer.json()["message"].startswith(message)
    assert handler.events == []


def test_signatures_are_timed_against_the_fleet_clock_or_the_wall_clock(start_gateway: Any) -> None:
    # Given a virtual clock two days ahead of the wall clock
    handler = Recorder()
    gateway = start_gateway([Route("GET", "/dims/{id}", handler)])
    url = f"{gateway.url}/dims/a"
    previous = clock.set_clock(clock.ManualClock(time.time() + 2 * 86400))
    try:
        # When one caller signs at the virtual time, one at the wall time, one an hour before the virtual time
        at_virtual = call("GET", url, when=clock.now())
        at_wall = call("GET", url)
        stale = call("GET", url, when=clock.now() - 3600)
    finally:
        clock.set_clock(previous)
    # Then the first two pass and the stale one is refused as expired
    assert (at_virtual.status, at_wall.status) == (200, 200)
    assert stale.status == 403
    assert "expired" in stale.json()["message"]
    assert len(handler.events) == 2


def test_binary_body_round_trips_through_base64(start_gateway: Any) -> None:
    # Given an echo handler
    gateway = start_gateway([Route("POST", "/echo", echo)])
    payload = bytes(range(256)) * 4
    # When a binary body is posted, and a text one
    binary = call("POST", f"{gateway.url}/echo", headers={"Content-Type": "application/octet-stream"}, body=payload)
    text = call("POST", f"{gateway.url}/echo", headers={"Content-Type": "application/json"}, body=b'{"a": "\xc3\xa9"}')
    # Then both come back byte for byte with their content types
    assert binary.status == 200
    assert binary.body == payload
    assert binary.headers["content-type"] == "application/octet-stream"
    assert text.body == b'{"a": "\xc3\xa9"}'


def test_event_has_the_rest_proxy_shape(start_gateway: Any) -> None:
    # Given a recording handler on a route with a path parameter
    handler = Recorder({"statusCode": 201, "multiValueHeaders": {"X-Seen": ["a", "b"]}, "body": "{}"})
    gateway = start_gateway([Route("POST", "/endpoints/{EndpointName}", handler)], stage="prod")
    # When a signed request with a query string and a binary-typed body arrives
    answer = call(
        "POST",
        f"{gateway.url}/endpoints/my-fleet?x=1&x=2&y=3",
        headers={"ContentType": "text/csv", "Content-Type": "image/png"},
        body=b"\x89PNG",
    )
    # Then the handler's status and multi-value headers are sent back
    assert answer.status == 201
    assert answer.headers["x-seen"] == "a, b"
    # And the event is what API Gateway sends a Lambda proxy integration
    (event,) = handler.events
    assert event["resource"] == "/endpoints/{EndpointName}"
    assert event["path"] == "/endpoints/my-fleet"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"EndpointName": "my-fleet"}
    assert event["queryStringParameters"] == {"x": "2", "y": "3"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["3"]}
    assert event["headers"]["ContentType"] == "text/csv"
    assert event["multiValueHeaders"]["ContentType"] == ["text/csv"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG"
    context = event["requestContext"]
    assert context["stage"] == "prod"
    assert context["path"] == "/prod/endpoints/my-fleet"
    assert context["resourcePath"] == "/endpoints/{EndpointName}"
    assert context["identity"]["accessKey"] == ACCESS_KEY
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == answer.headers["x-amzn-requestid"]


def test_unknown_path_is_404_and_wrong_method_is_405(start_gateway: Any) -> None:
    # Given the template's routes (handlers imported only when called)
    gateway = start_gateway(DEFAULT_ROUTES)
    base = f"http://127.0.0.1:{gateway.port}"
    # When paths or methods the API does not have are called
    unknown = call("GET", f"{gateway.url}/nothing/here")
    other_stage = call("POST", f"{base}/prod/endpoints/endpoint")
    wrong_method = call("DELETE", f"{gateway.url}/scalableTargetDimensions/abc")
    get_router = call("GET", f"{gateway.url}/endpoints/endpoint")
    # Then 404 and 405 with a message
    assert (unknown.status, other_stage.status) == (404, 404)
    assert unknown.json() == {"message": "Not Found"}
    assert (wrong_method.status, get_router.status) == (405, 405)
    assert "GET, PATCH" in wrong_method.json()["message"]


def test_handler_crash_becomes_502_without_details(start_gateway: Any) -> None:
    # Given a handler that raises, one that answers garbage, and one whose module does not exist
    gateway = start_gateway(
        [
            Route("GET", "/crash", crash),
            Route("GET", "/garbage", lambda event, context: {"body": "no status"}),
            Route("GET", "/missing", "tests.local.no_such_module.handler"),
        ]
    )
    # When each is called
    answers = [call("GET", f"{gateway.url}/{name}") for name in ("crash", "garbage", "missing")]
    # Then each is 502 with API Gateway's message and nothing of the error
    for answer in answers:
        assert answer.status == 502
        assert answer.json() == {"message": "Internal server error"}
        assert b"secret internal detail" not in answer.body


def test_handlers_given_by_dotted_path_are_imported_on_first_use(start_gateway: Any) -> None:
    # Given a route naming this module's echo function by its dotted path
    gateway = start_gateway([Route("POST", "/echo", "tests.local.test_gateway.echo")])
    # When it is called
    answer = call("POST", f"{gateway.url}/echo", headers={"Content-Type": "text/plain"}, body=b"hello")
    # Then the function ran
    assert (answer.status, answer.body) == (200, b"hello")


def hello(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": "hello from " + context.function_name}


def test_each_handler_is_its_own_function_even_from_one_module(start_gateway: Any) -> None:
    # Given two handlers of the same module on two routes
    gateway = start_gateway([Route("POST", "/echo", echo), Route("GET", "/hello", hello)])
    # When both are called
    echoed = call("POST", f"{gateway.url}/echo", headers={"Content-Type": "text/plain"}, body=b"ping")
    greeted = call("GET", f"{gateway.url}/hello")
    # Then each route ran its own handler, under its own function name
    assert echoed.body == b"ping"
    assert greeted.body == b"hello from tests-local-test_gateway-hello"


def test_in_process_transport_applies_the_same_checks(start_gateway: Any) -> None:
    # Given a gateway used in process, without its socket
    handler = Recorder()
    gateway = start_gateway([Route("GET", "/dims/{id}", handler)])
    url = f"{gateway.url}/dims/a"
    # When a signed and an unsigned request are served through gateway.call
    signed = call("GET", url, transport=gateway.call)
    unsigned = call("GET", url, credentials=None, transport=gateway.call)
    # Then the signed one reached the handler with its path parameter, the unsigned one was refused
    assert signed.status == 200
    assert signed.json() == {"ok": True}
    assert unsigned.status == 403
    assert [event["pathParameters"] for event in handler.events] == [{"id": "a"}]
