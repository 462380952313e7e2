"""cfn/fleet-autoscaler.yaml read as CloudFormation reads it: what a deployed fleet gets, for any size."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetscaler.cli import context
from fleetscaler.dal.models import ALL_MODELS, DIMENSION_ID
from fleetscaler.deploy import package
from fleetscaler.deploy.template import TEMPLATES, render
from fleetscaler.deploy.template.evaluate import TemplateView

ROOT = Path(__file__).resolve().parents[2]
FLEET_FILE = ROOT / "cfn" / "fleet-autoscaler.yaml"


@pytest.fixture(scope="module")
def fleet() -> dict[str, Any]:
    return yaml.safe_load(FLEET_FILE.read_text())


def view(template: dict[str, Any], suffixes: str = "a,b,c", **params: Any) -> TemplateView:
    return TemplateView(template, {"ResourceName": "fleet", "EndpointSuffixes": suffixes, **params})


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_committed_templates_are_the_generated_ones(name: str) -> None:
    # Given the generator module and the committed file
    # Then they agree, so nobody edits one and forgets the other
    assert (ROOT / "cfn" / name).read_text() == render(TEMPLATES[name]()), (
        f"cfn/{name} is stale: run `python -m fleetscaler.deploy.template`"
    )


def test_table_key_schema_is_the_pynamodb_models_key(fleet: dict[str, Any]) -> None:
    # Given the table resource and every pynamodb model of the metadata table
    table = fleet["Resources"]["MetadataTable"]["Properties"]
    attribute_types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}

    # Then the template's only key is each model's hash key, with the same type, and there is no range key
    for model in ALL_MODELS:
        hash_key = model._hash_keyname
        assert table["KeySchema"] == [{"AttributeName": hash_key, "KeyType": "HASH"}], model.__name__
        assert attribute_types == {hash_key: model.get_attributes()[hash_key].attr_type}, model.__name__
        assert model._range_keyname is None
    # And it is on-demand, encrypted, with point-in-time recovery, seeded from the uploaded file
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["ImportSourceSpecification"]["InputFormat"] == "DYNAMODB_JSON"


FLEET_DIMENSIONS = [{"Name": "Fleet", "Value": "fleet"}]


@pytest.mark.parametrize("policy_type", ["TargetTracking", "StepScaling"])
def test_both_policy_types_follow_the_fleet_backlog_per_capacity_unit(fleet: dict[str, Any], policy_type: str) -> None:
    # Given a fleet with either policy type
    template = view(fleet, "a,b,c", ScalingPolicyType=policy_type, MetricsNamespace="fleetscaler")
    if policy_type == "TargetTracking":
        # Then target tracking follows the fleet's own metric, with the target parameter
        policy = template.resource("TargetTrackingPolicy")
        assert policy is not None and template.resource("StepScaleOutAlarm") is None
        configuration = policy["TargetTrackingScalingPolicyConfiguration"]
        assert configuration["CustomizedMetricSpecification"] == {
            "Namespace": "fleetscaler", "MetricName": "BacklogPerCapacityUnit", "Dimensions": FLEET_DIMENSIONS,
            "Statistic": "Average",
        }  # fmt: skip
    else:
        # Then both step alarms watch the same metric, and target tracking is absent
        assert template.resource("TargetTrackingPolicy") is None
        for alarm in ("StepScaleOutAlarm", "StepScaleInAlarm"):
            watched = template.resource(alarm)
            assert watched is not None
            assert (watched["Namespace"], watched["MetricName"], watched["Dimensions"]) == (
                "fleetscaler", "BacklogPerCapacityUnit", FLEET_DIMENSIONS
            )


@pytest.mark.parametrize("policy_type", ["TargetTracking", "StepScaling"])
def test_the_shortfall_step_wakes_the_fleet_sized_to_its_queue(fleet: dict[str, Any], policy_type: str) -> None:
    from fleetscaler.logic.signal import SHORTFALL_STEPS

    # Given any fleet (whatever its minimum: the policy also answers bursts)
    template = view(fleet, "x,y", MinCapacity=1, ScalingPolicyType=policy_type, MetricsNamespace="fleetscaler")
    # Then CapacityShortfallUnits >= 1 in one one-minute datapoint triggers the shortfall policy
    alarm = template.resource("ShortfallScaleOutAlarm")
    assert alarm is not None
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
        "fleetscaler", "CapacityShortfallUnits", FLEET_DIMENSIONS
    )
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["Threshold"]) == (
        60, 1, 1, 1
    )
    # And its steps cover every shortfall without gap, each adding between 2/3 of the shortfall and all of it
    steps = template.resource("ShortfallScaleOutPolicy")["StepScalingPolicyConfiguration"]  # type: ignore[index]
    adjustments = steps["StepAdjustments"]
    assert steps["AdjustmentType"] == "ChangeInCapacity" and len(adjustments) <= 20
    assert adjustments[0]["MetricIntervalLowerBound"] == 0 and "MetricIntervalUpperBound" not in adjustments[-1]
    for before, after in itertools.pairwise(adjustments):
        assert before["MetricIntervalUpperBound"] == after["MetricIntervalLowerBound"]
    for low, high, add in SHORTFALL_STEPS:
        assert add <= low and (high is None or add >= (high - 1) * 2 / 3)
    # And the old per-endpoint wake-up (first suffix only) is gone
    assert "ScaleFromZeroAlarm" not in fleet["Resources"]


def test_the_surplus_step_releases_capacity_the_queue_and_arrivals_no_longer_need(fleet: dict[str, Any]) -> None:
    from fleetscaler.logic.signal import SHORTFALL_STEPS

    template = view(fleet, "x,y", MetricsNamespace="fleetscaler")
    # Given CapacitySurplusUnits >= 1 in each of five one-minute datapoints (their minimum)
    alarm = template.resource("SurplusScaleInAlarm")
    assert alarm is not None
    assert (alarm["MetricName"], alarm["Statistic"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (
        "CapacitySurplusUnits", "Minimum", 5, 5
    )
    # Then the surplus policy removes, per range, what the shortfall policy would add, with the scale-in cooldown
    policy = template.resource("SurplusScaleInPolicy")["StepScalingPolicyConfiguration"]  # type: ignore[index]
    assert [step["ScalingAdjustment"] for step in policy["StepAdjustments"]] == [-add for _, _, add in SHORTFALL_STEPS]
    assert policy["Cooldown"] == 300


def test_the_endpoint_state_function_publishes_the_signal_every_minute(fleet: dict[str, Any]) -> None:
    template = view(fleet)
    rule = template.resource("FleetSignalSchedule")
    assert rule is not None and rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["EndpointStateFunction", "Arn"]}
    assert template.resource("FleetSignalPermission") is not None
    variables = fleet["Resources"]["EndpointStateFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["TARGET_BACKLOG_PER_UNIT"] == {"Ref": "TargetBacklogPerInstance"}
    # And a fleet bound by its endpoints raises an alarm, not failed activities
    bound = template.resource("CapacityBoundAlarm")
    assert bound is not None and bound["MetricName"] == "CapacityBound"


def test_scalable_target_is_the_custom_resource_url_of_the_dimension(fleet: dict[str, Any]) -> None:
    target = view(fleet).resource("ScalableTarget")
    assert target is not None
    assert target["ServiceNamespace"] == "custom-resource"
    assert target["ScalableDimension"] == DIMENSION_ID
    expected = (
        "https://${ScalingApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/prod/scalableTargetDimensions/"
        f"{DIMENSION_ID}"
    )
    assert target["ResourceId"] == {"Fn::Sub": expected}
    assert fleet["Outputs"]["ScalingResourceId"]["Value"] == {"Fn::Sub": expected}
    # Registration calls the API: the stage and both invoke permissions come first
    assert {"ScalingStage", "ScalingApiGetPermission", "ScalingApiPatchPermission"} <= set(
        fleet["Resources"]["ScalableTarget"]["DependsOn"]
    )


def test_outputs_are_the_ones_the_cli_reads(fleet: dict[str, Any]) -> None:
    keys = {
        context.STACK_OUTPUT_TABLE, context.STACK_OUTPUT_ROUTER_URL, context.STACK_OUTPUT_SCALING_RESOURCE_ID,
        context.STACK_OUTPUT_DASHBOARD_URL, context.STACK_OUTPUT_FLEET_NAME,
    }  # fmt: skip
    assert keys <= set(fleet["Outputs"])


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_lambda_roles_are_least_privilege(fleet: dict[str, Any]) -> None:
    # Given the three function roles
    roles = {name: fleet["Resources"][f"{name}Role"] for name in ("Router", "ScalingApi", "EndpointState")}
    for name, role in roles.items():
        for statement in _statements(role):
            actions = statement["Action"]
            # Then no wildcard action, no wildcard resource (except CloudWatch's metric calls, which have no
            # resource-level permissions: publishing is limited to the fleet's namespace), never a table Scan
            assert not any("*" in action for action in actions), name
            if actions == ["cloudwatch:PutMetricData"]:
                namespace = {"StringEquals": {"cloudwatch:namespace": {"Fn::Sub": "${MetricsNamespace}"}}}
                assert statement["Condition"] == namespace
            elif actions != ["cloudwatch:GetMetricData"]:
                assert statement["Resource"] != "*", name
            assert "dynamodb:Scan" not in actions, name
            services = {action.split(":")[0] for action in actions}
            assert len(services) == 1, f"{name}: one service per statement"
            # DynamoDB on this table only; SageMaker on this fleet's endpoints only; logs on its own group
            if services == {"dynamodb"}:
                assert statement["Resource"] == {"Fn::GetAtt": ["MetadataTable", "Arn"]}, name
            elif services == {"cloudwatch"}:
                assert name == "EndpointState" and statement["Resource"] == "*"
            elif services == {"sagemaker"}:
                assert statement["Resource"] == {
                    "Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:"
                    "endpoint/${ResourceName}-*"
                }, name
            else:
                assert services == {"logs"}
                assert statement["Resource"] == {"Fn::GetAtt": [f"{name}LogGroup", "Arn"]}, name
    router_actions = {a for s in _statements(roles["Router"]) for a in s["Action"]}
    assert "sagemaker:UpdateEndpointWeightsAndCapacities" not in router_actions


def test_router_api_passes_binary_payloads_as_the_local_gateway_does(fleet: dict[str, Any]) -> None:
    from fleetscaler.local.gateway import DEFAULT_BINARY_MEDIA_TYPES

    apis = resources_of_type(fleet, "AWS::ApiGateway::RestApi")
    assert apis["RouterApi"]["Properties"]["BinaryMediaTypes"] == list(DEFAULT_BINARY_MEDIA_TYPES)
    assert "application/octet-stream" in DEFAULT_BINARY_MEDIA_TYPES
    # The scaling API only ever carries JSON
    assert "BinaryMediaTypes" not in apis["ScalingApi"]["Properties"]


def test_apis_require_iam_and_each_permission_names_its_method(fleet: dict[str, Any]) -> None:
    methods = resources_of_type(fleet, "AWS::ApiGateway::Method")
    assert {m["Properties"]["HttpMethod"] for m in methods.values()} == {"POST", "GET", "PATCH"}
    assert {m["Properties"]["AuthorizationType"] for m in methods.values()} == {"AWS_IAM"}
    source_arns = sorted(
        p["Properties"]["SourceArn"]["Fn::Sub"].rsplit(":", 1)[-1]
        for p in resources_of_type(fleet, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    )
    assert source_arns == [
        "${RouterApi}/prod/POST/endpoints/*",
        "${ScalingApi}/prod/GET/scalableTargetDimensions/*",
        "${ScalingApi}/prod/PATCH/scalableTargetDimensions/*",
    ]
    for stage in resources_of_type(fleet, "AWS::ApiGateway::Stage").values():
        properties = stage["Properties"]
        assert "DestinationArn" in properties["AccessLogSetting"]
        settings = properties["MethodSettings"][0]
        assert settings["ThrottlingRateLimit"] and settings["ThrottlingBurstLimit"]


def test_state_change_rule_matches_the_fleet_prefix_with_dlq_and_retries(fleet: dict[str, Any]) -> None:
    rule = view(fleet).resource("EndpointStateRule")
    assert rule is not None
    assert rule["EventPattern"]["detail-type"] == ["SageMaker Endpoint State Change"]
    assert rule["EventPattern"]["detail"]["EndpointName"] == [{"prefix": "fleet-"}]
    (target,) = rule["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EndpointStateDeadLetterQueue", "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_functions_run_the_packaged_platform_with_log_retention(fleet: dict[str, Any]) -> None:
    functions = resources_of_type(fleet, "AWS::Lambda::Function")
    assert len(functions) == 3
    for name, function in functions.items():
        properties = function["Properties"]
        assert properties["Runtime"] == f"python{package.LAMBDA_PYTHON}", name
        assert properties["Architectures"] == [package.LAMBDA_ARCHITECTURE], name
        log_group = fleet["Resources"][properties["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_test_fleet_template_names_endpoints_like_the_fleet() -> None:
    endpoints = yaml.safe_load((ROOT / "cfn" / "async-endpoints.yaml").read_text())
    template = view(endpoints, "1,2", InstanceTypes="ml.m5.large,ml.c5.xlarge", MaxConcurrentInvocations="4,2")
    assert template.resource("Endpoint1")["EndpointName"] == "fleet-1"  # type: ignore[index]
    assert template.resource("Endpoint3") is None
    config = template.resource("EndpointConfig2")
    assert config is not None
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"
    assert config["AsyncInferenceConfig"]["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": "2"}


# --- what the template names must exist in the code -----------------------------------------------------------

SOURCE = ROOT / "src" / "fleetscaler"
FLEET_TEMPLATE = yaml.safe_load(FLEET_FILE.read_text())
FUNCTIONS = {
    name: resource["Properties"]
    for name, resource in FLEET_TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Lambda::Function"
}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_handler_the_template_names_exists(function: str) -> None:
    # Given the handler path the function runs
    path = FUNCTIONS[function]["Handler"]
    module_name, _, attribute = path.rpartition(".")
    # When Lambda would import it
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        pytest.fail(f"{function}: handler {path}: module {exc.name} does not exist")
    # Then the module has that callable
    assert callable(getattr(module, attribute, None)), f"{function}: handler {path}: {module_name} has no {attribute}"


def _read_by_code(variable: str) -> bool:
    """The variable's name appears in product code (not the deploy tooling) or in powertools, which reads it."""
    product = [p for p in SOURCE.rglob("*.py") if not p.is_relative_to(SOURCE / "deploy")]
    if any(f'"{variable}"' in p.read_text() for p in product):
        return True
    import aws_lambda_powertools.shared.constants as powertools

    return f'"{variable}"' in Path(powertools.__file__).read_text()


@pytest.mark.parametrize(
    ("function", "variable"),
    sorted((name, var) for name, props in FUNCTIONS.items() for var in props["Environment"]["Variables"]),
)
def test_every_env_var_the_template_sets_is_read_by_the_code(function: str, variable: str) -> None:
    # Given an environment variable the template gives a function
    # Then some product code (or powertools) reads a variable of that name
    assert _read_by_code(variable), f"{function}: env var {variable} is set by the template but read by no code"


def test_every_dashboard_widget_of_our_namespace_plots_a_metric_the_lambdas_publish(fleet: dict[str, Any]) -> None:
    # Given the metric names the dashboard searches for in the fleet's own namespace
    import re

    body = fleet["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    plotted = set(re.findall(r'Namespace=\\\\?"\$\{MetricsNamespace\}\\\\?" MetricName=\\\\?"(\w+)', body))
    assert {"InstanceCount", "DesiredCapacity", "ActualCapacity", "RoutedRequests"} <= plotted
    # Then each is a metric name some handler emits
    handlers = "".join(p.read_text() for p in (SOURCE / "handlers").glob("*.py"))
    missing = sorted(name for name in plotted if f'"{name}"' not in handlers)
    assert not missing, f"the dashboard plots metrics no Lambda publishes: {missing}"


# --- the router at its ceiling: idempotency records, the throttled alarm ---------------------------------------


def test_the_table_expires_the_routers_idempotency_records(fleet: dict[str, Any]) -> None:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from fleetscaler.dal.idempotency import dynamodb_records

    # Given the persistence layer the router writes its records with
    records = dynamodb_records("t", client=object())
    records.configure(IdempotencyConfig())
    # Then the table's TTL attribute is the one holding the end of each record's window
    ttl = fleet["Resources"]["MetadataTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": records.expiry_attr, "Enabled": True}  # type: ignore[attr-defined]


def test_the_router_creates_and_deletes_only_its_idempotency_records(fleet: dict[str, Any]) -> None:
    statements = _statements(fleet["Resources"]["RouterRole"])
    writes = [s for s in statements if {"dynamodb:PutItem", "dynamodb:DeleteItem"} & set(s["Action"])]
    assert [(s["Action"], s["Condition"]) for s in writes] == [
        (
            ["dynamodb:PutItem", "dynamodb:DeleteItem"],
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["idempotency#*"]}},
        )
    ]


def test_the_idempotency_window_is_a_parameter_with_the_settings_bounds(fleet: dict[str, Any]) -> None:
    from fleetscaler.config import DEFAULT_IDEMPOTENCY_TTL_SECONDS, IDEMPOTENCY_TTL_RANGE

    parameter = fleet["Parameters"]["IdempotencyTtlSeconds"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (
        DEFAULT_IDEMPOTENCY_TTL_SECONDS,
        *IDEMPOTENCY_TTL_RANGE,
    )
    variables = fleet["Resources"]["RouterFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["IDEMPOTENCY_TTL_SECONDS"] == {"Ref": "IdempotencyTtlSeconds"}


def test_the_throttled_alarm_watches_the_metric_the_router_emits_for_its_fleet(fleet: dict[str, Any]) -> None:
    # Given the alarm on throttled answers
    alarm = view(fleet, ThrottledAlarmThreshold=30).resource("RouterThrottledAlarm")
    assert alarm is not None
    # Then it counts the router's 429 answers of this fleet, a minute at a time, five minutes in a row
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
        "fleetscaler",
        "ThrottledRequests",
        [{"Name": "Fleet", "Value": "fleet"}],
    )
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (
        "Sum",
        60,
        5,
        5,
    )
    assert alarm["Threshold"] == 30 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
    # And the router emits that metric under that dimension (tests/integration/test_router_throttling.py
    # checks the EMF line itself)
    router = (SOURCE / "handlers" / "router.py").read_text()
    assert '"ThrottledRequests"' in router and 'emit_counts("Fleet"' in router


def test_the_dashboard_shows_the_routers_ceiling(fleet: dict[str, Any]) -> None:
    import json

    # (the target line's value is a parameter spliced in unquoted)
    body = fleet["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    widgets = json.loads(body.replace("${TargetBacklogPerInstance}", "5"))["widgets"]
    widget = next(w for w in widgets if "ceiling" in w["properties"]["title"])
    plotted = [(m[1], m[2], m[3]) for m in widget["properties"]["metrics"]]
    assert plotted == [
        ("ThrottledRequests", "Fleet", "${ResourceName}"),
        ("ThrottleRetries", "Fleet", "${ResourceName}"),
        ("IdempotentRepeats", "Fleet", "${ResourceName}"),
    ]
    router = (SOURCE / "handlers" / "router.py").read_text()
    assert all(f'"{name}"' in router for name, _, _ in plotted)
