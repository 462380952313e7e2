"""The deploy command's own decisions: parameters, the seed it builds, how the template is handed over."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from fleetscaler.deploy.stack import (
    TEMPLATE_BODY_LIMIT,
    DeployError,
    StackDeployer,
    parse_params,
    seed_items,
    split_suffixes,
)
from fleetscaler.logic.server_config import validate_server_config
from tests.conftest import DATA_FILE


def plain(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["id"]["S"]: {k: TypeDeserializer().deserialize(v) for k, v in i.items()} for i in items}


def test_seed_fits_the_data_file_to_the_endpoints_given() -> None:
    # Given the data file (servers 1,2,3 with caps of 10) and a fleet of endpoints 2, 3 and a new 4
    from fleetscaler.dal.seed import read_items

    base = read_items(DATA_FILE)

    # When the seed is built with the instance counts SageMaker reports
    items = plain(seed_items(base, "endpoint", ["2", "3", "4"], "AllTraffic", [1, 0, 2]))

    # Then server_config lists exactly those endpoints, keeps known per-endpoint settings, and routes by capacity
    config = items["server_config"]
    fleet = validate_server_config(config, "endpoint")
    assert fleet.servers == ("2", "3", "4")
    assert fleet.current_instance_count == (1, 0, 2)
    assert fleet.weights == (1, 0, 2)
    assert fleet.max_instance_count == (10, 10, None)
    # And the dimension item names the fleet and variant with the capacity it has
    dimension = items["custom-resource:ResourceType:Property"]
    assert (dimension["resourceName"], dimension["variantName"]) == ("endpoint", "AllTraffic")
    assert dimension["actualCapacity"] == dimension["desiredCapacity"] == 3
    assert "request_counter" in items


def test_seed_refuses_suffixes_that_make_bad_endpoint_names() -> None:
    with pytest.raises(DeployError, match=r"servers\[1\]: 'bad_suffix' is not valid"):
        seed_items([], "endpoint", ["1", "bad_suffix"], "default", [1, 1])


def test_parameters_and_suffixes_are_checked_with_their_names() -> None:
    assert parse_params(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(DeployError, match="must be KEY=VALUE"):
        parse_params(["=1"])
    assert split_suffixes(" a, b ,c ") == ["a", "b", "c"]
    with pytest.raises(DeployError, match="1 to 10 suffixes, got 0"):
        split_suffixes(" , ")


@dataclass
class RecordingS3:
    uploads: list[str] = field(default_factory=list)

    class meta:  # mimics boto3 client.meta
        endpoint_url = "https://s3.eu-west-1.amazonaws.com"

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # boto3 parameter names
        self.uploads.append(f"{Bucket}/{Key}")


def deployer(s3: RecordingS3) -> StackDeployer:
    return StackDeployer(cloudformation=None, s3=s3, sagemaker=None, echo=lambda line: None)


def test_small_template_goes_inline_without_upload() -> None:
    s3 = RecordingS3()
    source = deployer(s3)._template_source("stack", "bucket", "Resources: {}\n")
    assert source == {"TemplateBody": "Resources: {}\n"}
    assert s3.uploads == []


def test_large_yaml_goes_inline_as_compact_json_when_that_fits() -> None:
    # Given a YAML template only its indentation makes larger than the limit
    body = "Resources:\n" + "".join(f"  R{i}:\n{' ' * 200}Type: AWS::SNS::Topic\n" for i in range(300))
    assert len(body) > TEMPLATE_BODY_LIMIT
    source = deployer(RecordingS3())._template_source("stack", "bucket", body)
    assert len(source["TemplateBody"]) <= TEMPLATE_BODY_LIMIT
    assert source["TemplateBody"].startswith('{"Resources":{"R0":{"Type":"AWS::SNS::Topic"}')


def test_template_over_the_limit_is_uploaded_and_passed_by_url() -> None:
    s3 = RecordingS3()
    body = "Description: " + "x" * TEMPLATE_BODY_LIMIT + "\nResources: {}\n"
    source = deployer(s3)._template_source("stack", "bucket", body)
    (upload,) = s3.uploads
    assert upload.startswith("bucket/fleetscaler/stack/template-") and upload.endswith(".yaml")
    assert source == {"TemplateURL": f"https://s3.eu-west-1.amazonaws.com/{upload}"}
