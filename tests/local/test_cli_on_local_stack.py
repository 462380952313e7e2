"""The operator CLI against the local stack exactly as against AWS: signed HTTP through the local API
gateway (which checks SigV4 as AWS_IAM auth does), the emulated SageMaker fleet, CloudWatch and the table."""

from __future__ import annotations

import json

import pytest

from fleetscaler.cli.main import main
from fleetscaler.local.stack import LocalStack
from tests.cli.conftest import restore_table_binding

__all__ = ["restore_table_binding"]


def test_invoke_wait_config_and_status_work_against_the_local_stack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalStack(table_name="fleetscaler-cli-local-test") as stack:
        assert stack.emulator is not None
        emulator = stack.emulator

        def fleet_time_passes(seconds: float) -> None:
            stack.clock.advance(seconds)
            emulator.advance_to(stack.clock.now())

        monkeypatch.setattr("fleetscaler.cli.invoke.sleep", fleet_time_passes)
        base = ["--table", stack.table_name, "--router-url", stack.router_url]
        # When one request is sent through the gateway and the CLI waits for its result
        code = main([*base, "--output", "json", "invoke", "endpoint", "--input", "s3://inputs/x.json", "--wait"])
        captured = capsys.readouterr()
        # Then the gateway accepted the CLI's signature, the router picked an endpoint, and the result arrived
        assert code == 0, captured.err
        answer = json.loads(captured.out)
        assert answer["endpointName"] in {"endpoint-1", "endpoint-2", "endpoint-3"}
        assert json.loads(answer["result"])["inferenceId"] == answer["inferenceId"]

        # When load is sent / Then every request is accepted (202) and spread over the three endpoints 1:1:1
        code = main([*base, "--output", "json", "invoke", "endpoint", "--input", "s3://inputs/x.json", "--count", "6"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        load = json.loads(captured.out)
        assert load["by_status"] == {"202": 6}
        assert sorted(load["by_endpoint"].values()) == [2, 2, 2]

        # When the table and the fleet are read / Then config show and status see the emulated endpoints
        assert main([*base, "--output", "json", "config", "show"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert [e["status"] for e in shown["endpoints"]] == ["InService"] * 3
        assert main([*base, "--output", "json", "status"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert [e["instances"] for e in status["endpoints"]] == [1, 1, 1]

        # And a request signed with a wrong secret is refused by the gateway, as AWS_IAM auth would
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-local-secret")
        code = main([*base, "invoke", "endpoint", "--input", "s3://inputs/x.json"])
        captured = capsys.readouterr()
        assert code != 0
        assert "403" in captured.err
