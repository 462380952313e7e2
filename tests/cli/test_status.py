"""`fleetscaler status`: the dimension, endpoints (SageMaker, table, CloudWatch) and scaling activities."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fleetscaler.cli.context import CliContext
from tests.cli.conftest import create_endpoints

RESOURCE_ID = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/scalableTargetDimensions/fleet"


def add_dimension_attribute(name: str, value: dict[str, str]) -> None:
    boto3.client("dynamodb").update_item(
        TableName="fleetscaler-test",
        Key={"id": {"S": "custom-resource:ResourceType:Property"}},
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": name},
        ExpressionAttributeValues={":v": value},
    )


def test_status_shows_dimension_endpoints_and_backlog(table: str, run: Any) -> None:
    # Given endpoints 1 and 2 in SageMaker, a backlog metric for endpoint-1, and an attribute the
    # scaling engine added to the dimension item
    create_endpoints("endpoint-1", "endpoint-2", instances=2)
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "ApproximateBacklogSizePerInstance",
                "Dimensions": [{"Name": "EndpointName", "Value": "endpoint-1"}],
                "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
                "Value": 7.5,
            }
        ],
    )
    add_dimension_attribute("pendingDesiredCapacity", {"N": "5"})
    add_dimension_attribute("scalingState", {"S": '{"endpoints": {}}'})
    # When the operator asks for the status
    result = run("status")
    # Then the dimension, each endpoint and a note about activities are shown
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[1].split() == ["DESIRED", "ACTUAL", "STATUS", "LAST", "CHANGE", "FAILURE", "REASON"]
    assert lines[2].split() == ["3", "3", "Successful", "2025-04-02", "05:10:51", "UTC", "-"]
    assert "other: pendingDesiredCapacity=5" in result.out
    assert "scalingState" not in result.out  # the engine's bookkeeping stays out of the table
    rows = {line.split()[0]: line.split() for line in lines if line.startswith("endpoint-")}
    assert rows["endpoint-1"] == ["endpoint-1", "InService", "2", "1", "1", "10", "7.5"]
    assert rows["endpoint-2"] == ["endpoint-2", "InService", "2", "1", "1", "10", "-"]
    assert rows["endpoint-3"][:2] == ["endpoint-3", "not"]
    assert "give --resource-id (or --stack)" in result.out


def test_status_marks_draining_endpoints(table: str, run: Any) -> None:
    create_endpoints("endpoint-1", "endpoint-2", "endpoint-3")
    boto3.resource("dynamodb").Table("fleetscaler-test").update_item(
        Key={"id": "server_config"}, UpdateExpression="SET draining = :d", ExpressionAttributeValues={":d": ["2"]}
    )
    result = run("status")
    assert result.code == 0, result.err
    rows = {line.split()[0]: line for line in result.out.splitlines() if line.startswith("endpoint-")}
    assert "InService, draining" in rows["endpoint-2"]
    assert "draining" not in rows["endpoint-1"] + rows["endpoint-3"]
    data = json.loads(run("--output", "json", "status").out)
    assert [e["draining"] for e in data["endpoints"]] == [False, True, False]


def test_status_reads_scaling_activities(table: str, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given Application Auto Scaling has two activities for the fleet's scalable target
    client = boto3.client("application-autoscaling")
    stubber = Stubber(client)
    started = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)
    stubber.add_response(
        "describe_scaling_activities",
        {
            "ScalingActivities": [
                {
                    "ActivityId": "a2",
                    "ServiceNamespace": "custom-resource",
                    "ResourceId": RESOURCE_ID,
                    "ScalableDimension": "custom-resource:ResourceType:Property",
                    "Description": "Setting desired capacity to 5.",
                    "Cause": "monitor alarm backlog in state ALARM",
                    "StartTime": started,
                    "StatusCode": "InProgress",
                },
                {
                    "ActivityId": "a1",
                    "ServiceNamespace": "custom-resource",
                    "ResourceId": RESOURCE_ID,
                    "ScalableDimension": "custom-resource:ResourceType:Property",
                    "Description": "Setting desired capacity to 3.",
                    "Cause": "registration",
                    "StartTime": started - dt.timedelta(hours=1),
                    "StatusCode": "Successful",
                },
            ]
        },
        {
            "ServiceNamespace": "custom-resource",
            "ResourceId": RESOURCE_ID,
            "ScalableDimension": "custom-resource:ResourceType:Property",
            "MaxResults": 5,
        },
    )
    stubber.activate()
    original = CliContext.client
    monkeypatch.setattr(
        CliContext,
        "client",
        lambda self, service: client if service == "application-autoscaling" else original(self, service),
    )
    # When asking for the status as JSON with the resource id
    result = run("--output", "json", "status", "--resource-id", RESOURCE_ID)
    # Then the activities are listed newest first, and the rest of the status is there too
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert [a["status"] for a in data["activities"]] == ["InProgress", "Successful"]
    assert data["activities"][0]["description"] == "Setting desired capacity to 5."
    assert data["dimension"]["desired"] == 3
    assert len(data["endpoints"]) == 3
    stubber.assert_no_pending_responses()


def test_watch_refreshes_a_bounded_number_of_times(table: str, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a watch that the test lets run for three refreshes
    pauses: list[float] = []
    monkeypatch.setattr("fleetscaler.cli.status.sleep", pauses.append)
    # When watching
    result = run("status", "--watch", "--interval", "2", "--times", "3")
    # Then it rendered three times with two pauses
    assert result.code == 0, result.err
    assert result.out.count("scalable dimension") == 3
    assert pauses == [2.0, 2.0]


def test_status_with_an_invalid_config_still_shows_the_rest(table: str, run: Any) -> None:
    # Given a hand edit that broke server_config
    boto3.client("dynamodb").update_item(
        TableName="fleetscaler-test",
        Key={"id": {"S": "server_config"}},
        UpdateExpression="SET weights = :w",
        ExpressionAttributeValues={":w": {"L": [{"N": "1"}]}},
    )
    # When asking for the status
    result = run("status")
    # Then the rule is shown where the endpoints would be, and the dimension is still there
    assert result.code == 0, result.err
    assert "weights: has 1 entries but servers has 3" in result.out
    assert "Successful" in result.out


def test_status_without_a_table_is_one_line(aws: None, run: Any) -> None:
    result = run("status", table=None)
    assert result.code == 2
    assert result.err == "error: --table is required (or --stack NAME whose outputs include TableName)\n"


def test_stack_outputs_supply_table_fleet_and_resource_id(table: str, run: Any) -> None:
    # Given a CloudFormation stack whose outputs name the table, the fleet and the scalable target
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "TableName": {"Value": "fleetscaler-test"},
            "FleetName": {"Value": "endpoint"},
            "ScalingResourceId": {"Value": RESOURCE_ID},
        },
    }
    boto3.client("cloudformation").create_stack(StackName="fleet", TemplateBody=json.dumps(template))
    # When the operator passes only --stack
    shown = run("--stack", "fleet", "--output", "json", "config", "show", table=None)
    missing = run("--stack", "no-such-stack", "config", "show", table=None)
    # Then the table and fleet come from the outputs, and an unknown stack is one line
    assert shown.code == 0, shown.err
    assert [e["endpoint"] for e in json.loads(shown.out)["endpoints"]] == ["endpoint-1", "endpoint-2", "endpoint-3"]
    assert missing.code == 2
    assert missing.err.startswith("error: --stack no-such-stack: Stack with id no-such-stack does not exist")


def test_status_shows_a_failed_scaling_action_and_its_reason(table: str, run: Any) -> None:
    # Given the scaling engine recorded a failed action
    add_dimension_attribute("scalingStatus", {"S": "Failed"})
    add_dimension_attribute("failureReason", {"S": "CapacityError: Unable to provision requested ML compute capacity"})
    add_dimension_attribute("desiredCapacity", {"N": "6"})
    # When asking for the status
    result = run("--output", "json", "status")
    # Then the failure is there for the operator to see
    assert result.code == 0, result.err
    dimension = json.loads(result.out)["dimension"]
    assert dimension["status"] == "Failed"
    assert dimension["desired"] == 6
    assert dimension["actual"] == 3
    assert dimension["failure_reason"] == "CapacityError: Unable to provision requested ML compute capacity"
    assert dimension["other"] == {}


def test_status_warns_when_the_fleet_asks_for_more_than_its_endpoints_give(table: str, run: Any) -> None:
    # Given caps of 10 x 3 endpoints (30 units) and a desired capacity of 40
    create_endpoints("endpoint-1", "endpoint-2", "endpoint-3")
    add_dimension_attribute("desiredCapacity", {"N": "40"})
    # When the operator asks for the status / Then it says the fleet is bound, and why
    result = run("status")
    assert result.code == 0, result.err
    assert "warning: the desired capacity (40) is more than the endpoints can give (30 capacity units" in result.out
    assert json.loads(run("--output", "json", "status").out)["warnings"]
    # And a desired capacity they can give raises no warning
    add_dimension_attribute("desiredCapacity", {"N": "30"})
    assert "warning:" not in run("status").out
