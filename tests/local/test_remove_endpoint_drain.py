"""`fleetscaler config remove-endpoint` on the local fleet with the real scaling engine running alongside.

The CLI, the router, the scaling API and the endpoint-state handler all act on the same table while the
emulated endpoints work through their queues: the endpoint must leave the fleet without a request lost.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from fleetscaler.cli.main import main
from fleetscaler.local.sigv4 import send_signed
from fleetscaler.local.simulator import endpoint_state_sink
from fleetscaler.local.stack import LocalStack
from tests.cli.conftest import restore_table_binding

__all__ = ["restore_table_binding"]


def server_config(stack: LocalStack) -> dict[str, Any]:
    item = boto3.resource("dynamodb", endpoint_url=stack.moto_url).Table(stack.table_name).get_item(
        Key={"id": "server_config"}, ConsistentRead=True
    )["Item"]
    return json.loads(json.dumps(item, default=int))


def test_removed_endpoint_finishes_its_queue_and_leaves_without_losing_a_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalStack(table_name="fleetscaler-drain-test", provisioning_seconds=60, scale_in_seconds=30) as stack:
        assert stack.emulator is not None
        emulator = stack.emulator
        emulator.event_sink = endpoint_state_sink()
        routed: list[dict[str, str]] = []

        def route() -> dict[str, str]:
            answer = send_signed(
                "POST",
                f"{stack.router_url}/endpoints/endpoint",
                stack.credentials,
                headers={"InputLocation": "s3://inputs/x.json"},
            )
            assert answer.status == 202, answer.body
            routed.append(json.loads(answer.body))
            return routed[-1]

        def scaling_api_get() -> dict[str, Any]:
            answer = send_signed("GET", stack.scaling_resource_id, stack.credentials)
            assert answer.status == 200, answer.body
            return dict(json.loads(answer.body))

        # Given a fleet of three endpoints (one instance each) with requests queued on every one
        for _ in range(30):
            route()
        assert sum(r["endpointName"] == "endpoint-3" for r in routed) == 10  # 200 s of work for one instance
        drained_from = len(routed)

        def fleet_time_passes(seconds: float) -> None:
            # What happens while the CLI waits: traffic keeps coming, SageMaker works, AAS polls the resource.
            nonlocal drained_from
            if drained_from == 30:
                drained_from = len(routed)  # the drain was written before the first wait
            route()
            stack.clock.advance(seconds)
            emulator.advance_to(stack.clock.now())
            scaling_api_get()

        monkeypatch.setattr("fleetscaler.cli.config.remove_endpoint.sleep", fleet_time_passes)
        # When the operator removes endpoint-3 and waits
        code = main(
            ["--table", stack.table_name, "config", "remove-endpoint", "3", "--wait", "--interval", "30", "--yes"]
        )
        out, err = capsys.readouterr()
        # Then the command went through drain, release and removal, and endpoint-3 is out of the fleet
        assert code == 0, err
        assert "its queue is empty: releasing endpoint-3's instances" in out
        config = server_config(stack)
        assert config["servers"] == ["1", "2"]
        assert "draining" not in config
        # And no request routed after the drain went to endpoint-3
        assert drained_from < len(routed)
        assert {r["endpointName"] for r in routed[drained_from:]} <= {"endpoint-1", "endpoint-2"}
        # And once the queues are worked through, every request has its result: nothing was stranded
        stack.clock.advance(600)
        emulator.advance_to(stack.clock.now())
        s3 = boto3.client("s3", endpoint_url=stack.moto_url)
        for request in routed:
            bucket, key = request["outputLocation"].removeprefix("s3://").split("/", 1)
            s3.head_object(Bucket=bucket, Key=key)
        # And endpoint-3's instance is gone while the others carry the fleet's desired capacity
        assert emulator.endpoint("endpoint-3").current_count == 0
        dimension = scaling_api_get()
        assert (dimension["desiredCapacity"], dimension["actualCapacity"]) == (3, 3)
        assert dimension["scalingStatus"] == "Successful"
