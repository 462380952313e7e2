"""cfn/fleet-autoscaler.yaml read as CloudFormation reads it: what a deployed fleet gets, for any size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetscaler.cli import context
from fleetscaler.dal.models import ALL_MODELS, DIMENSION_ID
from fleetscaler.deploy import package
from fleetscaler.deploy.template import MAX_ENDPOINTS, TEMPLATES, render
from tests.unit.cfn_eval import TemplateView

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


@pytest.mark.parametrize("count", [1, 3, MAX_ENDPOINTS])
def test_scaling_metric_is_the_max_over_every_listed_endpoint(fleet: dict[str, Any], count: int) -> None:
    # Given a fleet of `count` endpoints
    suffixes = [f"s{i}" for i in range(count)]
    template = view(fleet, ",".join(suffixes))

    # When the target tracking policy and the step alarms are read for it
    policy = template.resource("TargetTrackingPolicy")
    assert policy is not None
    queries = policy["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]["Metrics"]

    # Then there is one ApproximateBacklogSizePerInstance query per endpoint, and MAX over them is returned
    per_endpoint = [q for q in queries if "MetricStat" in q]
    assert [q["MetricStat"]["Metric"]["Dimensions"] for q in per_endpoint] == [
        [{"Name": "EndpointName", "Value": f"fleet-{s}"}] for s in suffixes
    ]
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in per_endpoint} == {"ApproximateBacklogSizePerInstance"}
    assert not any(q["ReturnData"] for q in per_endpoint)
    assert [q for q in queries if "Expression" in q] == [
        {"Id": "fleetbacklog", "Expression": 'MAX(METRICS("backlog"))', "ReturnData": True}
    ]
    assert all(q["Id"].startswith("backlog") for q in per_endpoint)
    # And the step-scaling alarms, when chosen, watch the same fleet-wide metric
    stepping = view(fleet, ",".join(suffixes), ScalingPolicyType="StepScaling")
    assert stepping.resource("TargetTrackingPolicy") is None
    for alarm in ("StepScaleOutAlarm", "StepScaleInAlarm"):
        metrics = stepping.resource(alarm)["Metrics"]  # type: ignore[index]
        assert len([m for m in metrics if "MetricStat" in m]) == count


def test_wake_up_policy_exists_only_when_the_fleet_can_be_at_zero(fleet: dict[str, Any]) -> None:
    # Given a fleet allowed to scale to zero
    at_zero = view(fleet, "x,y", MinCapacity=0)
    # Then HasBacklogWithoutCapacity on the first endpoint (2 of 2 one-minute averages >= 1) adds capacity
    alarm = at_zero.resource("ScaleFromZeroAlarm")
    assert alarm is not None
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": "fleet-x"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (
        "Average", 60, 2, 2
    )
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    policy = at_zero.resource("ScaleFromZeroPolicy")
    assert policy["StepScalingPolicyConfiguration"]["StepAdjustments"] == [  # type: ignore[index]
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}
    ]
    # And a fleet that never goes below one unit has no such policy
    assert view(fleet, "x,y", MinCapacity=1).resource("ScaleFromZeroPolicy") is None


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
            # Then no wildcard action or resource, and never a table Scan
            assert not any("*" in action for action in actions), name
            assert statement["Resource"] != "*", name
            assert "dynamodb:Scan" not in actions, name
            services = {action.split(":")[0] for action in actions}
            assert len(services) == 1, f"{name}: one service per statement"
            # DynamoDB on this table only; SageMaker on this fleet's endpoints only; logs on its own group
            if services == {"dynamodb"}:
                assert statement["Resource"] == {"Fn::GetAtt": ["MetadataTable", "Arn"]}, name
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
    assert rule["EventPattern"]["detail"]["EndpointName"] == [{"prefix": {"Fn::Sub": "${ResourceName}-"}}]
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
