"""Exactly-once submits: the router's Idempotency-Key, through the handler with API Gateway events under moto.

A repeat within the window gets the first answer and invokes nothing; a key reused for another request is 422;
a repeat while the first is still being routed is 409; after the window (or after a failed first request) the
key routes again. Requests without the header are untouched: one DynamoDB call.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from fleetscaler.dal.keys import IDEMPOTENCY_ID_PREFIX
from tests.conftest import TABLE, reset_process_caches
from tests.integration.conftest import call_router, request_count

KEY = "sha256-of-bucket-key-etag"


def with_key(router_event: Any, key: str = KEY, **headers: str) -> dict[str, Any]:
    return router_event(headers={"Idempotency-Key": key, **headers})  # type: ignore[no-any-return]


def records() -> list[dict[str, Any]]:
    """The router's idempotency records as the table holds them."""
    items = boto3.resource("dynamodb").Table(TABLE).scan(ConsistentRead=True)["Items"]
    return [item for item in items if str(item["id"]).startswith(IDEMPOTENCY_ID_PREFIX)]


def log_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_a_repeat_gets_the_first_answer_and_invokes_nothing(
    table: str,
    router_event: Any,
    lambda_context: Any,
    sagemaker_calls: list[dict[str, Any]],
    dynamodb_calls: list[str],
    lambda_output: Any,
) -> None:
    # Given a request with an Idempotency-Key that was routed
    status, first, headers = call_router(with_key(router_event), lambda_context)
    assert status == 202 and "Idempotent-Replayed" not in headers
    assert dynamodb_calls == ["PutItem", "UpdateItem", "UpdateItem"]  # record, counter, answer
    dynamodb_calls.clear()
    # When the same request comes again (the client crashed before it kept the answer)
    status, again, headers = call_router(with_key(router_event), lambda_context)
    # Then it gets the same 202 body, marked as replayed, from one DynamoDB call and no invocation
    assert (status, again, headers["Idempotent-Replayed"]) == (202, first, "true")
    assert set(first) == {"endpointName", "inferenceId", "outputLocation", "failureLocation"}
    assert dynamodb_calls == ["PutItem"]
    assert len(sagemaker_calls) == 1
    # And it took no counter value: the next new request is the second one routed
    assert request_count() == 1
    # And the repeat is logged with its key and counted, not counted as routed
    lines = log_lines(lambda_output())
    repeat = next(line for line in lines if str(line.get("message", "")).startswith("repeat of an Idempotency-Key"))
    assert (repeat["idempotency_key"], repeat["inference_id"]) == (KEY, first["inferenceId"])
    assert sum(1 for line in lines if "RoutedRequests" in line) == 1
    assert [line["Fleet"] for line in lines if "IdempotentRepeats" in line] == ["endpoint"]


def test_requests_without_the_header_keep_one_dynamodb_call(
    table: str, router_event: Any, lambda_context: Any, dynamodb_calls: list[str]
) -> None:
    for _ in range(3):
        assert call_router(router_event(), lambda_context)[0] == 202
    assert dynamodb_calls == ["UpdateItem"] * 3
    assert records() == []


def test_different_keys_are_different_requests(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    answers = [call_router(with_key(router_event, key), lambda_context)[1] for key in ("a", "b", "a", "X")]
    assert answers[0] == answers[2]
    assert len({answer["inferenceId"] for answer in answers}) == 3
    assert len(sagemaker_calls) == 3


def test_the_x_spelling_is_the_same_key(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    _, first, _ = call_router(with_key(router_event), lambda_context)
    _, again, headers = call_router(router_event(headers={"X-Idempotency-Key": KEY}), lambda_context)
    assert (again, headers["Idempotent-Replayed"], len(sagemaker_calls)) == (first, "true", 1)


def test_the_record_keeps_the_answer_for_the_window_and_expires_with_the_table_ttl(
    table: str, router_event: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a window of two minutes (a new container reads it)
    monkeypatch.setenv("IDEMPOTENCY_TTL_SECONDS", "120")
    reset_process_caches()
    # When a keyed request is routed
    before = time.time()
    _, answer, _ = call_router(with_key(router_event), lambda_context)
    # Then one record holds it under an id no other item can have, expiring (the TTL attribute) after 120 s
    (record,) = records()
    assert record["id"].startswith("idempotency#") and KEY not in record["id"]
    assert before + 120 - 1 <= int(record["expiration"]) <= time.time() + 120
    assert (record["status"], json.loads(record["data"])) == ("COMPLETED", answer)


def test_after_the_window_the_key_routes_again(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    # Given a keyed request routed, and its window over (the record's expiry is in the past; DynamoDB's TTL
    # deletes such records within days, so the router must not rely on it having done so)
    _, first, _ = call_router(with_key(router_event), lambda_context)
    (record,) = records()
    boto3.resource("dynamodb").Table(TABLE).update_item(
        Key={"id": record["id"]},
        UpdateExpression="SET expiration = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )
    # When the key comes again / Then it is a new request: routed, a new answer, recorded for a new window
    status, again, headers = call_router(with_key(router_event), lambda_context)
    assert status == 202 and "Idempotent-Replayed" not in headers
    assert again["inferenceId"] != first["inferenceId"]
    assert len(sagemaker_calls) == 2 and request_count() == 2
    (renewed,) = records()
    assert int(renewed["expiration"]) > time.time()


@pytest.mark.parametrize(
    "other",
    [
        {"InputLocation": "s3://fleet-inputs/other.csv"},
        {"ContentType": "application/json"},
        {"RequestTTLSeconds": "600"},
    ],
)
def test_a_key_reused_for_another_request_is_422_naming_the_header(
    table: str,
    router_event: Any,
    lambda_context: Any,
    sagemaker_calls: list[dict[str, Any]],
    other: dict[str, str],
) -> None:
    # Given a keyed request routed
    call_router(with_key(router_event), lambda_context)
    # When the key comes with another input or parameter
    status, body, _ = call_router(with_key(router_event, **other), lambda_context)
    # Then it is refused, naming the header, and nothing is routed or counted
    assert status == 422
    assert body["message"] == (
        "Idempotency-Key: this key was sent with a different request within the last 86400 seconds "
        "(another input, body or parameter); use a new key for a new request"
    )
    assert len(sagemaker_calls) == 1 and request_count() == 1


def test_a_key_reused_with_another_inline_body_is_422(table: str, router_event: Any, lambda_context: Any) -> None:
    def inline(body: str) -> dict[str, Any]:
        return router_event(  # type: ignore[no-any-return]
            headers={"Idempotency-Key": KEY, "InputLocation": None}, body=body
        )

    assert call_router(inline("a,b\n1,2\n"), lambda_context)[0] == 202
    assert call_router(inline("a,b\n1,2\n"), lambda_context)[2]["Idempotent-Replayed"] == "true"
    assert call_router(inline("a,b\n1,3\n"), lambda_context)[0] == 422


def test_a_repeat_while_the_first_is_in_progress_is_409_with_retry_after(
    table: str, router_event: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleetscaler.aws.sagemaker import runtime_client

    # Given a first request held inside InvokeEndpointAsync
    client = runtime_client()
    invoke, entered, release = client.invoke_endpoint_async, threading.Event(), threading.Event()

    def slow_invoke(**params: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return invoke(**params)

    monkeypatch.setattr(client, "invoke_endpoint_async", slow_invoke)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(call_router, with_key(router_event), lambda_context)
        assert entered.wait(10)
        # When its repeat arrives meanwhile
        status, body, headers = call_router(with_key(router_event), lambda_context)
        release.set()
        first_status, first_body, _ = first.result()
    # Then the repeat is told to come back in a second, and the first completes
    assert (status, headers["Retry-After"]) == (409, "1")
    assert body["message"] == (
        "Idempotency-Key: a request with this key is still in progress; send it again in 1 second(s) for its answer"
    )
    assert first_status == 202
    # And coming back, it gets the first answer
    assert call_router(with_key(router_event), lambda_context)[1] == first_body
    assert request_count() == 1


def test_a_record_left_in_progress_by_a_request_that_died_stops_blocking_after_its_time(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    # Given an "in progress" record whose Lambda ran out of time (its in-progress expiry, in ms, has passed)
    call_router(with_key(router_event), lambda_context)
    (record,) = records()
    boto3.resource("dynamodb").Table(TABLE).update_item(
        Key={"id": record["id"]},
        UpdateExpression="SET #status = :in_progress, in_progress_expiration = :gone REMOVE #data",
        ExpressionAttributeNames={"#status": "status", "#data": "data"},
        ExpressionAttributeValues={":in_progress": "INPROGRESS", ":gone": int(time.time() * 1000) - 1},
    )
    # When the key comes again / Then it is routed (not blocked for the whole window)
    status, _, headers = call_router(with_key(router_event), lambda_context)
    assert status == 202 and "Idempotent-Replayed" not in headers
    assert len(sagemaker_calls) == 2


def test_a_failed_first_request_leaves_no_record_so_its_retry_is_routed(
    table: str, router_event: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from fleetscaler.aws.sagemaker import runtime_client

    # Given SageMaker failing the first attempt (after it may have queued: never retried elsewhere)
    client = runtime_client()
    invoke = client.invoke_endpoint_async
    failures = [ClientError({"Error": {"Code": "InternalFailure", "Message": "boom"}}, "InvokeEndpointAsync")]

    def flaky(**params: Any) -> Any:
        if failures:
            raise failures.pop()
        return invoke(**params)

    monkeypatch.setattr(client, "invoke_endpoint_async", flaky)
    assert call_router(with_key(router_event), lambda_context)[0] == 502
    # Then the key has no record and the counter value was given back
    assert records() == [] and request_count() == 0
    # When the client retries with the same key / Then it is routed as a new request
    status, _, headers = call_router(with_key(router_event), lambda_context)
    assert status == 202 and "Idempotent-Replayed" not in headers


def test_an_answer_that_cannot_be_recorded_is_still_given_and_logged(
    table: str, router_event: Any, lambda_context: Any, lambda_output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from botocore.exceptions import ClientError

    # Given a table that refuses the write of the answer (after the request was queued)
    def refuse(self: Any, data_record: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "UpdateItem")

    monkeypatch.setattr(DynamoDBPersistenceLayer, "_update_record", refuse)
    # When a keyed request is routed / Then the caller still gets its answer: the request is queued
    status, body, _ = call_router(with_key(router_event), lambda_context)
    assert status == 202 and body["endpointName"] == "endpoint-1"
    # And an ERROR says that a repeat may be routed again, with the key and why
    error = next(line for line in log_lines(lambda_output()) if line["level"] == "ERROR")
    assert error["message"].startswith("routed, but the answer could not be recorded")
    assert error["idempotency_key"] == KEY and "is throttling requests" in error["reason"]
    # And until the first request's time is up, a repeat is told to wait rather than routed
    assert call_router(with_key(router_event), lambda_context)[0] == 409


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("k" * 256, "Idempotency-Key: must be 1 to 255 characters long, got 256"),
        ("caf\u00e9", "Idempotency-Key: must contain only printable ASCII characters"),
    ],
)
def test_a_bad_key_is_400_naming_the_header_and_costs_nothing(
    table: str, router_event: Any, lambda_context: Any, dynamodb_calls: list[str], key: str, message: str
) -> None:
    status, body, _ = call_router(with_key(router_event, key), lambda_context)
    assert (status, body) == (400, {"message": message})
    assert dynamodb_calls == []
