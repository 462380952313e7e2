"""The local stack as a user reaches it: one AWS URL for every service, the router behind signed HTTP."""

from __future__ import annotations

import itertools
import json

import boto3

from fleetscaler.local.sigv4 import send_signed
from fleetscaler.local.stack import LocalStack


def test_one_url_serves_sagemaker_dynamodb_and_s3_and_the_router_answers_signed_requests() -> None:
    # Given the local stack with the fleet of data/ddb-data.jsonl
    with LocalStack(table_name="fleetscaler-stack-test") as stack:
        url = stack.emulator_url
        # When a client uses the single AWS endpoint URL for SageMaker and DynamoDB
        described = boto3.client("sagemaker", endpoint_url=url).describe_endpoint(EndpointName="endpoint-1")
        item = boto3.client("dynamodb", endpoint_url=url).get_item(
            TableName="fleetscaler-stack-test", Key={"id": {"S": "server_config"}}
        )["Item"]
        # Then the emulator answers SageMaker and moto answers the table, loaded from the data file
        assert described["EndpointStatus"] == "InService"
        assert [s["S"] for s in item["servers"]["L"]] == ["1", "2", "3"]
        # And a signed POST to the router API routes a request whose result lands in S3 once fleet time passes
        answer = send_signed(
            "POST",
            f"{stack.router_url}/endpoints/endpoint",
            stack.credentials,
            headers={"InputLocation": "s3://inputs/x.json", "InferenceId": "local-1"},
        )
        assert answer.status == 202, answer.body
        routed = json.loads(answer.body)
        stack.clock.advance(60)
        assert stack.emulator is not None
        stack.emulator.advance_to(stack.clock.now())
        bucket, key = routed["outputLocation"].removeprefix("s3://").split("/", 1)
        boto3.client("s3", endpoint_url=url).head_object(Bucket=bucket, Key=key)
        # And an unsigned request is refused as AWS_IAM auth does
        assert send_signed("POST", f"{stack.router_url}/endpoints/endpoint", None).status == 403


def test_fleet_time_follows_the_wall_clock_in_local_up() -> None:
    import time

    from fleetscaler.local.live import FleetTicker

    # Given the local stack with its fleet time running 600x faster than the wall clock
    with LocalStack(table_name="fleetscaler-ticker-test", provisioning_seconds=120) as stack:
        scheduled: list[float] = []
        ticker = FleetTicker(stack, autoscaler=None, speed=600, step=0.05,
                             schedule=lambda event: scheduled.append(stack.clock.now()))
        started = stack.clock.now()
        ticker.start()
        try:
            # When a client scales an endpoint out (120 s of provisioning) and half a wall second passes
            control = boto3.client("sagemaker", endpoint_url=stack.emulator_url)
            control.update_endpoint_weights_and_capacities(
                EndpointName="endpoint-2",
                DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 3}],
            )
            deadline = time.monotonic() + 10
            while control.describe_endpoint(EndpointName="endpoint-2")["EndpointStatus"] != "InService":
                assert time.monotonic() < deadline, "the update never finished"
                time.sleep(0.05)
        finally:
            ticker.stop()
        # Then fleet time moved past the provisioning delay and the endpoint serves 3 instances
        assert stack.clock.now() - started >= 120
        described = control.describe_endpoint(EndpointName="endpoint-2")
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 3
        assert ticker.errors == []
        # And the endpoint-state Lambda's one-minute schedule fired once per minute of fleet time
        assert len(scheduled) >= 2
        assert all(later - earlier >= 60 for earlier, later in itertools.pairwise(scheduled))


def test_the_single_url_answers_expect_100_continue_before_the_body() -> None:
    import socket
    from urllib.parse import urlsplit

    # Given the stack's single AWS URL (S3 goes through it to moto)
    with LocalStack(table_name="fleetscaler-expect-test") as stack:
        parts = urlsplit(stack.emulator_url)
        # When a client announces a body and waits for the interim answer, as botocore does for S3 uploads
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(
                b"PUT /bucket/key HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
            )
            # Then "100 Continue" arrives before any body is sent (not held back with the final answer)
            assert sock.recv(64).startswith(b"HTTP/1.1 100")


def test_an_idempotency_key_repeated_over_http_is_invoked_once() -> None:
    # Given the local stack, and a client that sends one input twice with the same Idempotency-Key (it crashed
    # after sending, and resumed)
    with LocalStack(table_name="fleetscaler-idempotency-test") as stack:
        url = f"{stack.router_url}/endpoints/endpoint"
        headers = {"InputLocation": "s3://inputs/batch/0001.json", "Idempotency-Key": "sha256:bucket/key/etag"}
        first = send_signed("POST", url, stack.credentials, headers=headers)
        again = send_signed("POST", url, stack.credentials, headers=headers)
        # Then both get the same answer through the gateway, the second marked as replayed
        assert (first.status, again.status) == (202, 202)
        assert json.loads(again.body) == json.loads(first.body)
        assert again.headers["idempotent-replayed"] == "true"
        # And the emulated endpoints queued the input once
        assert stack.emulator is not None
        assert sum(stack.emulator.endpoint(name).accepted for name in stack.emulator.endpoint_names()) == 1
        # And the same key with another input is refused, naming the header
        other = send_signed("POST", url, stack.credentials, headers={**headers, "InputLocation": "s3://inputs/x"})
        assert other.status == 422
        assert json.loads(other.body)["message"].startswith("Idempotency-Key: this key was sent with a different")
