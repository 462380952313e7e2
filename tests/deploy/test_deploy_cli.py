"""`fleetscaler deploy` / `destroy` end to end against a moto server over HTTP.

moto cannot create every resource type of cfn/fleet-autoscaler.yaml: it skips (with a warning) the types in
`MOTO_SKIPS` and does not run DynamoDB's ImportSourceSpecification. For those the tests check what the CLI
hands CloudFormation (the uploaded seed items, the change set) and tests/unit/test_cfn_templates.py checks the
template itself; everything else is created by moto and checked here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from fleetscaler.cli.main import main
from fleetscaler.dal.seed import read_items
from fleetscaler.deploy.template import fleet_template, render
from fleetscaler.logic.server_config import validate_server_config
from tests.deploy.conftest import BUCKET, FLEET

STACK = "fleet-stack"
OUTPUT_KEYS = ("TableName", "RouterUrl", "ScalingResourceId", "DashboardUrl", "FleetName")

# Resource types moto 5.x's CloudFormation does not create (it records them without a type).
MOTO_SKIPS = {
    "ScalableTarget": "AWS::ApplicationAutoScaling::ScalableTarget",
    "TargetTrackingPolicy": "AWS::ApplicationAutoScaling::ScalingPolicy",
    "ShortfallScaleOutPolicy": "AWS::ApplicationAutoScaling::ScalingPolicy",
    "ShortfallScaleOutAlarm": "AWS::CloudWatch::Alarm",
    "SurplusScaleInPolicy": "AWS::ApplicationAutoScaling::ScalingPolicy",
    "SurplusScaleInAlarm": "AWS::CloudWatch::Alarm",
    "CapacityBoundAlarm": "AWS::CloudWatch::Alarm",
    "RouterServerErrorAlarm": "AWS::CloudWatch::Alarm",
    "RouterStage": "AWS::ApiGateway::Stage",
    "ScalingStage": "AWS::ApiGateway::Stage",
    "EndpointStateDeadLetterQueuePolicy": "AWS::SQS::QueuePolicy",
    "AlarmTopicPolicy": "AWS::SNS::TopicPolicy",
    "ScalingApiErrorFilter": "AWS::Logs::MetricFilter",
}
CREATED = {
    "MetadataTable": "AWS::DynamoDB::Table",
    "RouterFunction": "AWS::Lambda::Function",
    "ScalingApiFunction": "AWS::Lambda::Function",
    "EndpointStateFunction": "AWS::Lambda::Function",
    "RouterRole": "AWS::IAM::Role",
    "RouterLogGroup": "AWS::Logs::LogGroup",
    "RouterApi": "AWS::ApiGateway::RestApi",
    "RouterInvokeMethod": "AWS::ApiGateway::Method",
    "ScalingApi": "AWS::ApiGateway::RestApi",
    "ScalingApiPatchMethod": "AWS::ApiGateway::Method",
    "ScalingApiGetPermission": "AWS::Lambda::Permission",
    "EndpointStateRule": "AWS::Events::Rule",
    "EndpointStateDeadLetterQueue": "AWS::SQS::Queue",
    "AlarmTopic": "AWS::SNS::Topic",
    "Dashboard": "AWS::CloudWatch::Dashboard",
}


def deploy(env: dict[str, Any], *extra: str, stack: str = STACK, template: Path | None = None) -> int:
    args = ["deploy", "--stack", stack, "--bucket", BUCKET, "--code", str(env["code"]), "--poll-seconds", "0.01"]
    if template is not None:
        args += ["--template", str(template)]
    return main([*args, *extra])


def outputs_of(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines() if line.split(":")[0] in OUTPUT_KEYS)


def test_deploy_creates_the_stack_through_a_change_set_and_prints_its_outputs(
    deploy_env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a moto server reached through --endpoint-url, a bucket, a code package and endpoints fleet-a/b/c,
    # and a template larger than CloudFormation takes inline
    monkeypatch.setattr("fleetscaler.deploy.stack.TEMPLATE_BODY_LIMIT", 10_000)
    # When the fleet is deployed
    status = main(
        ["--endpoint-url", deploy_env["url"], "--stack", STACK, "deploy", "--bucket", BUCKET,
         "--code", str(deploy_env["code"]), "--poll-seconds", "0.01",
         "--params", f"ResourceName={FLEET}", "--params", "EndpointSuffixes=a,b,c"]
    )  # fmt: skip

    # Then it succeeds, shows the change set and the stack's progress, and prints every output
    out = capsys.readouterr().out
    assert status == 0, out
    assert "creating change set" in out and "(CREATE)" in out
    assert "Add     RouterFunction (AWS::Lambda::Function)" in out
    assert f"stack {STACK}: CREATE_COMPLETE" in out
    outputs = outputs_of(out)
    assert set(outputs) == set(OUTPUT_KEYS)
    assert outputs["FleetName"] == FLEET
    assert re.fullmatch(
        r"https://\w+\.execute-api\.us-east-1\.amazonaws\.com/prod/scalableTargetDimensions/"
        r"custom-resource:ResourceType:Property",
        outputs["ScalingResourceId"],
    )
    assert re.fullmatch(r"https://\w+\.execute-api\.us-east-1\.amazonaws\.com/prod", outputs["RouterUrl"])

    # And the template, larger than CloudFormation takes inline, went through the bucket
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert [k for k in keys if re.fullmatch(rf"fleetscaler/{STACK}/template-[0-9a-f]{{16}}\.yaml", k)]

    # And the resources moto can create exist with the template's settings
    resources = {
        r["LogicalResourceId"]: r["ResourceType"]
        for r in boto3.client("cloudformation").list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }
    for logical_id, resource_type in CREATED.items():
        assert resources.get(logical_id) == resource_type, logical_id
    # (moto records the types it cannot create without a type: these are checked on the template instead)
    assert {logical_id for logical_id in MOTO_SKIPS if resources.get(logical_id)} == set()

    table = boto3.client("dynamodb").describe_table(TableName=outputs["TableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    router = boto3.client("lambda").get_function_configuration(FunctionName=f"{STACK}-router")
    assert router["Handler"] == "fleetscaler.handlers.router.handler"
    assert router["Runtime"] == "python3.12"
    assert router["Environment"]["Variables"]["TABLE_NAME"] == outputs["TableName"]
    assert router["Environment"]["Variables"]["RESOURCE_NAME"] == FLEET
    rules = boto3.client("events").list_rules()["Rules"]
    patterns = [json.loads(r["EventPattern"]) for r in rules if "EventPattern" in r]
    assert {"prefix": f"{FLEET}-"} in patterns[0]["detail"]["EndpointName"]
    assert [r["ScheduleExpression"] for r in rules if "ScheduleExpression" in r] == ["rate(1 minute)"]

    # And the seed the table imports on creation (moto does not run the import) is a valid server_config
    # for the endpoints given, with the instance counts read from SageMaker
    seed = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"fleetscaler/{STACK}/ddb-data.jsonl")["Body"].read()
    seed_file = Path(str(deploy_env["code"])).with_name("seed.jsonl")
    seed_file.write_bytes(seed)
    items = {item["id"]["S"]: item for item in read_items(seed_file)}
    from boto3.dynamodb.types import TypeDeserializer

    config = {k: TypeDeserializer().deserialize(v) for k, v in items["server_config"].items()}
    fleet = validate_server_config(config, FLEET)
    assert fleet.servers == ("a", "b", "c")
    assert fleet.current_instance_count == (2, 2, 2)
    dimension = items["custom-resource:ResourceType:Property"]
    assert dimension["resourceName"] == {"S": FLEET}
    assert dimension["actualCapacity"] == {"N": "6"}


def test_redeploy_updates_through_a_change_set_keeping_previous_parameters(
    deploy_env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployed fleet
    assert deploy(deploy_env, "--params", f"ResourceName={FLEET}", "--params", "EndpointSuffixes=a,b") == 0
    capsys.readouterr()

    # When it is deployed again with one parameter changed and the others not given
    status = deploy(deploy_env, "--params", "LogLevel=DEBUG")

    # Then an UPDATE change set runs, the seed is left alone (the table holds live data), parameters not
    # given keep their previous values
    out = capsys.readouterr().out
    assert status == 0, out
    assert "(UPDATE)" in out
    assert "seed items are only imported when the stack is created" in out
    assert f"stack {STACK}: UPDATE_COMPLETE" in out
    assert outputs_of(out)["FleetName"] == FLEET
    parameters = {
        p["ParameterKey"]: p["ParameterValue"]
        for p in boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Parameters"]
    }
    assert parameters["LogLevel"] == "DEBUG"
    assert re.sub(r"[\[\]' ]", "", parameters["EndpointSuffixes"]) == "a,b"  # moto shows lists as Python repr


def test_failed_stack_prints_the_failing_resource_and_reason_in_one_line(
    deploy_env: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a template whose dead-letter queue has a name SQS refuses
    template = fleet_template()
    template["Resources"]["EndpointStateDeadLetterQueue"]["Properties"]["QueueName"] = "not a queue name!"
    variant = tmp_path / "broken.yaml"
    variant.write_text(render(template))

    # When it is deployed
    status = deploy(deploy_env, "--params", f"ResourceName={FLEET}", "--params", "EndpointSuffixes=a",
                    template=variant)  # fmt: skip

    # Then the command fails with exit 2 and one line naming the resource and the stack events' reason
    captured = capsys.readouterr()
    assert status == 2
    assert "CREATE_FAILED        EndpointStateDeadLetterQueue" in captured.out  # the progress shows the event too
    # (the in-process moto server writes its own warnings to stderr too: only the CLI's lines count)
    error_lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert error_lines[0] == (
        f"error: stack {STACK} ROLLBACK_COMPLETE: EndpointStateDeadLetterQueue (AWS::SQS::Queue): "
        "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
    )
    assert "Traceback" not in captured.err

    # And deploying over the rolled-back stack says what to do
    assert deploy(deploy_env, "--params", f"ResourceName={FLEET}", "--params", "EndpointSuffixes=a") == 2
    assert f"run `fleetscaler destroy --stack {STACK}`" in capsys.readouterr().err


def test_destroy_deletes_the_stack_and_reports_a_missing_one(
    deploy_env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployed fleet
    assert deploy(deploy_env, "--params", f"ResourceName={FLEET}", "--params", "EndpointSuffixes=a") == 0
    table = outputs_of(capsys.readouterr().out)["TableName"]

    # When it is destroyed (--stack given after the command this time)
    status = main(["destroy", "--stack", STACK, "--poll-seconds", "0.01"])

    # Then the stack and its table are gone
    out = capsys.readouterr().out
    assert status == 0, out
    assert "DELETE_COMPLETE" in out and f"stack {STACK} deleted" in out
    assert table not in boto3.client("dynamodb").list_tables()["TableNames"]

    # And destroying it again is a one-line error
    assert main(["--stack", STACK, "destroy"]) == 2
    assert capsys.readouterr().err.strip() == f"error: stack {STACK} does not exist"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stack", STACK, "deploy"], "error: --bucket is required (the S3 bucket for code.zip and the seed items)"),
        (["deploy", "--bucket", BUCKET], "error: --stack NAME is required"),
        (["--stack", STACK, "deploy", "--bucket", BUCKET, "--params", "ResourceName"],
         "error: --params 'ResourceName': must be KEY=VALUE, e.g. ResourceName=endpoint"),
        (["--stack", STACK, "deploy", "--bucket", BUCKET, "--params", "CodeKey=x"],
         "error: --params CodeKey: set by the deploy command from --bucket and the uploads"),
        (["--stack", STACK, "deploy", "--bucket", BUCKET, "--params", "ResourceName=fleet"],
         "error: --params EndpointSuffixes=...: required to create the stack"),
        (["--stack", STACK, "deploy", "--bucket", BUCKET, "--params", "ResourceName=fleet",
          "--params", "EndpointSuffixes=" + ",".join(map(str, range(11)))],
         "error: EndpointSuffixes: must list 1 to 10 suffixes, got 11"),
        (["--stack", STACK, "deploy", "--bucket", BUCKET, "--params", "ResourceName=fleet",
          "--params", "EndpointSuffixes=a,zz"],
         "error: endpoint fleet-zz: "),
    ],
)  # fmt: skip
def test_deploy_refuses_bad_input_in_one_line_before_uploading(
    deploy_env: dict[str, Any], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    # Given the moto server with the bucket and endpoints fleet-a/b/c
    # When deploy is called with a missing or bad option
    status = main([*args, "--code", str(deploy_env["code"])])

    # Then it exits 2 with one line naming the problem, and nothing was uploaded
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(message)
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET)


def test_the_template_deploy_uses_is_the_committed_one() -> None:
    # Given the template file users deploy by hand
    committed = yaml.safe_load((Path(__file__).resolve().parents[2] / "cfn" / "fleet-autoscaler.yaml").read_text())
    # Then `fleetscaler deploy` (which builds it in memory) deploys the same template
    assert committed == fleet_template()


def test_deploy_warns_when_max_capacity_is_more_than_the_endpoints_give(
    deploy_env: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given seed items capping endpoints a and b at 10 instances of 1 unit: 20 units at most
    data = tmp_path / "ddb-data.jsonl"
    data.write_text(json.dumps({"Item": {
        "id": {"S": "server_config"}, "servers": {"L": [{"S": "a"}, {"S": "b"}]},
        "weights": {"L": [{"N": "1"}, {"N": "1"}]},
        "max_instance_count": {"L": [{"N": "10"}, {"N": "10"}]},
    }}) + "\n")  # fmt: skip
    # When the fleet is deployed with MaxCapacity 50
    status = deploy(deploy_env, "--params", f"ResourceName={FLEET}", "--params", "EndpointSuffixes=a,b",
                    "--params", "MaxCapacity=50", "--data", str(data))  # fmt: skip
    # Then it deploys, saying the fleet can run at most 20 units
    out = capsys.readouterr().out
    assert status == 0, out
    assert "warning: MaxCapacity (50) is more than the endpoints can give (20 capacity units" in out
