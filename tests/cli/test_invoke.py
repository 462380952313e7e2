"""`fleetscaler invoke`: signed requests to a local gateway that verifies SigV4 and runs the router Lambda."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import boto3
import pytest

from fleetscaler.cli.invoke import percentile, send_offsets
from tests.cli.conftest import SigningRouter, VirtualTime, set_config


def test_single_request_is_signed_and_routed(signing_router: SigningRouter, run: Any) -> None:
    # When the operator invokes the fleet with an S3 input and an extra header
    result = run(
        "--router-url",
        signing_router.url,
        "invoke",
        "endpoint",
        "--input",
        "s3://fleet-inputs/payload.csv",
        "--content-type",
        "text/csv",
        "--header",
        "InferenceId=cli-1",
    )
    # Then the gateway verified the signature, and the CLI prints the endpoint, id and output location
    assert result.code == 0, result.err
    assert signing_router.verified == ["/prod/endpoints/endpoint"]
    assert signing_router.rejected == []
    lines = dict(line.split(None, 1) if " " in line else (line, "") for line in result.out.splitlines())
    assert result.out.splitlines()[0] == "endpoint      endpoint-1"
    assert "inference id  cli-1" in result.out
    assert lines["output"].strip().startswith("s3://")


def test_inline_body_json_output(signing_router: SigningRouter, run: Any, tmp_path: Path) -> None:
    # Given a small inline payload (the signature covers its exact bytes)
    payload = tmp_path / "payload.csv"
    payload.write_bytes(b"5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n")
    # When sent with --body-file and JSON output
    result = run(
        "--router-url", signing_router.url, "--output", "json", "invoke", "endpoint", "--body-file", str(payload)
    )
    # Then it was verified and answered with the routed endpoint
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["endpointName"] == "endpoint-1"
    assert answer["outputLocation"].startswith("s3://")
    assert len(signing_router.verified) == 1


def test_wrong_secret_is_rejected_by_the_gateway(
    signing_router: SigningRouter, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given credentials whose secret the gateway does not know
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    # When invoking
    result = run("--router-url", signing_router.url, "invoke", "endpoint", "--input", "s3://b/k")
    # Then the gateway's recomputation disagrees: 403 shown on one line
    assert result.code == 2
    assert signing_router.rejected == ["/prod/endpoints/endpoint"]
    assert result.err.strip() == "error: router answered 403: The request signature we calculated does not match"


def test_unknown_fleet_is_one_line(signing_router: SigningRouter, run: Any) -> None:
    result = run("--router-url", signing_router.url, "invoke", "other-fleet", "--input", "s3://b/k")
    assert result.code == 2
    assert result.err.strip() == (
        "error: router answered 404: fleet 'other-fleet' is not served here (this router serves 'endpoint')"
    )


def test_wait_polls_s3_and_prints_the_result(
    signing_router: SigningRouter, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the model writes its output after the CLI's first poll
    polls: list[float] = []

    def model_finishes(seconds: float) -> None:
        polls.append(seconds)
        reply = next(iter(_outputs))
        bucket, _, key = reply.removeprefix("s3://").partition("/")
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b'{"prediction": 0.93}')

    _outputs: list[str] = []
    original_send = __import__("fleetscaler.cli.invoke", fromlist=["SignedSender"]).SignedSender.send

    def send(self: Any, *args: Any) -> Any:
        # moto writes a canned output at once; a real endpoint takes a while, so start with none
        reply = original_send(self, *args)
        _outputs.append(reply.body["outputLocation"])
        bucket, _, key = reply.body["outputLocation"].removeprefix("s3://").partition("/")
        boto3.client("s3").delete_object(Bucket=bucket, Key=key)
        return reply

    monkeypatch.setattr("fleetscaler.cli.invoke.SignedSender.send", send)
    monkeypatch.setattr("fleetscaler.cli.invoke.sleep", model_finishes)
    # When invoking with --wait
    result = run(
        "--router-url",
        signing_router.url,
        "invoke",
        "endpoint",
        "--input",
        "s3://b/k",
        "--wait",
        "--poll-interval",
        "2",
    )
    # Then the CLI polled once, found the output and printed it
    assert result.code == 0, result.err
    assert polls == [2.0]
    assert result.out.rstrip().endswith('result:\n{"prediction": 0.93}')


def test_wait_reports_a_failure_object(
    signing_router: SigningRouter, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SageMaker wrote the failure object
    original_send = __import__("fleetscaler.cli.invoke", fromlist=["SignedSender"]).SignedSender.send

    def send(self: Any, *args: Any) -> Any:
        reply = original_send(self, *args)
        s3 = boto3.client("s3")
        bucket, _, key = reply.body["outputLocation"].removeprefix("s3://").partition("/")
        s3.delete_object(Bucket=bucket, Key=key)
        bucket, _, key = reply.body["failureLocation"].removeprefix("s3://").partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=b"ModelError: input has 4 columns, expected 3\n")
        return reply

    monkeypatch.setattr("fleetscaler.cli.invoke.SignedSender.send", send)
    # When waiting
    result = run("--router-url", signing_router.url, "invoke", "endpoint", "--input", "s3://b/k", "--wait")
    # Then the failure is one error line
    assert result.code == 2
    assert "inference failed" in result.err
    assert result.err.strip().endswith("ModelError: input has 4 columns, expected 3")


def test_load_counts_add_up(signing_router: SigningRouter, run: Any) -> None:
    # Given weights 5,3,2
    set_config(weights=[5, 3, 2])
    # When 20 requests are sent at a high rate
    result = run(
        "--router-url",
        signing_router.url,
        "--output",
        "json",
        "invoke",
        "endpoint",
        "--input",
        "s3://b/k",
        "--count",
        "20",
        "--rate",
        "500",
        "--concurrency",
        "4",
    )
    # Then every request is accounted for: all verified, all 202, split 10/6/4
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["requests"] == 20
    assert summary["by_status"] == {"202": 20}
    assert summary["by_endpoint"] == {"endpoint-1": 10, "endpoint-2": 6, "endpoint-3": 4}
    assert len(signing_router.verified) == 20
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "max"}


def test_load_text_summary_lists_endpoints_statuses_and_errors(signing_router: SigningRouter, run: Any) -> None:
    # When 6 requests go to the fleet and 3 to a fleet this router does not serve
    good = run(
        "--router-url", signing_router.url, "invoke", "endpoint", "--input", "s3://b/k", "--count", "6", "--rate", "500"
    )
    bad = run(
        "--router-url", signing_router.url, "invoke", "nope", "--input", "s3://b/k", "--count", "3", "--rate", "500"
    )
    # Then the text summary lists requests per endpoint, statuses, latency, and the errors' messages
    assert good.code == 0, good.err
    assert "6 requests in" in good.out
    assert [line.split() for line in good.out.splitlines() if line.startswith("endpoint-")] == [
        ["endpoint-1", "2"],
        ["endpoint-2", "2"],
        ["endpoint-3", "2"],
    ]
    assert "202     6" in good.out
    assert "LATENCY (ms)" in good.out
    assert bad.code == 0, bad.err
    assert "404     3" in bad.out
    assert "3 x fleet 'nope' is not served here" in bad.out


def test_ramp_offsets_follow_the_steps() -> None:
    # Given 1 request/s, +1 request/s every 2 seconds
    offsets = send_offsets(7, 1.0, ramp_step=1.0, step_seconds=2.0)
    # Then: two at 1/s (0, 1), then 2/s (2, 2.5, 3, 3.5), then 3/s from 4
    assert offsets == pytest.approx([0.0, 1.0, 2.0, 2.5, 3.0, 3.5, 4.0])
    assert send_offsets(3, 4.0) == pytest.approx([0.0, 0.25, 0.5])


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.9) == 7.0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_url_is_one_line(aws: None, run: Any) -> None:
    port = _closed_port()
    result = run("--router-url", f"http://127.0.0.1:{port}/prod", "invoke", "endpoint", "--input", "s3://b/k")
    assert result.code == 2
    assert result.err.startswith(f"error: cannot reach http://127.0.0.1:{port}/prod:")
    assert len(result.err.strip().splitlines()) == 1


def test_unreachable_url_in_load_mode(aws: None, run: Any) -> None:
    port = _closed_port()
    result = run(
        "--router-url",
        f"http://127.0.0.1:{port}/prod",
        "invoke",
        "endpoint",
        "--input",
        "s3://b/k",
        "--count",
        "3",
        "--rate",
        "1000",
    )
    assert result.code == 2
    assert f"error: cannot reach http://127.0.0.1:{port}/prod:" in result.err
    assert "Traceback" not in result.err


def test_missing_credentials_is_one_line(
    signing_router: SigningRouter, run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no credentials anywhere in the standard chain
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # When invoking
    result = run("--router-url", signing_router.url, "invoke", "endpoint", "--input", "s3://b/k")
    # Then one line says so, nothing was sent
    assert result.code == 2
    assert result.err.startswith("error: no AWS credentials found")
    assert signing_router.verified == signing_router.rejected == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "bucket/key"], "error: InputLocation: must be an s3://bucket/key URI"),
        ([], "error: give --input s3://bucket/key or --body-file FILE"),
        (["--input", "s3://b/k", "--header", "novalue"], "error: --header: 'novalue' must be NAME=VALUE"),
        (["--input", "s3://b/k", "--header", "RequestTTLSeconds=5"], "RequestTTLSeconds: must be from 60 to 21600"),
        (["--input", "s3://b/k", "--header", "RequestTTLSeconds=--60"], "RequestTTLSeconds: must be a whole number"),
        (["--input", "s3://b/k", "--count", "0"], "Invalid value for '--count'"),
    ],
)
def test_bad_arguments_are_one_line(signing_router: SigningRouter, run: Any, args: list[str], message: str) -> None:
    result = run("--router-url", signing_router.url, "invoke", "endpoint", *args)
    assert result.code == 2
    assert message in result.err
    assert signing_router.verified == []


def test_load_counts_unexpected_failures_instead_of_losing_them(
    signing_router: SigningRouter, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given every third send fails inside the client with an unexpected error
    from fleetscaler.cli.invoke import SignedSender

    original_send = SignedSender.send
    calls: list[int] = []

    def flaky(self: Any, *args: Any) -> Any:
        calls.append(1)
        if len(calls) % 3 == 0:
            raise RuntimeError("connection dropped mid-response")
        return original_send(self, *args)

    monkeypatch.setattr(SignedSender, "send", flaky)
    # When 9 requests are sent
    result = run(
        "--router-url",
        signing_router.url,
        "--output",
        "json",
        "invoke",
        "endpoint",
        "--input",
        "s3://b/k",
        "--count",
        "9",
        "--rate",
        "500",
        "--concurrency",
        "1",
    )
    # Then all 9 are in the summary: 6 accepted, 3 client errors
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["requests"] == 9
    assert summary["by_status"] == {"202": 6, "client error": 3}
    assert sum(summary["by_endpoint"].values()) == 6


def test_ramp_paces_requests_by_the_clock(signing_router: SigningRouter, run: Any, virtual_time: VirtualTime) -> None:
    # Given a virtual clock that moves only when the CLI waits
    waits = virtual_time.patch_sleep("fleetscaler.cli.invoke.sleep")
    # When 14 requests ramp from 10/s, +10/s every second
    result = run(
        "--router-url",
        signing_router.url,
        "--output",
        "json",
        "invoke",
        "endpoint",
        "--input",
        "s3://b/k",
        "--count",
        "14",
        "--rate",
        "10",
        "--ramp-step",
        "10",
        "--step-seconds",
        "1",
    )
    # Then the first second sends one every 0.1 s, the next at 20/s; all 14 arrive
    assert result.code == 0, result.err
    assert waits == pytest.approx([0.1] * 10 + [0.05] * 3)
    assert json.loads(result.out)["by_status"] == {"202": 14}
