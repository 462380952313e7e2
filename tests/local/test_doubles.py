"""The fast path's in-process stand-ins behave like what they replace where fleetscaler depends on it."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fleetscaler.dal.store import MetadataStore
from fleetscaler.errors import ConcurrentModification, ConfigurationUnusable
from fleetscaler.local.doubles import (
    InMemoryCloudWatch,
    InMemoryMetadataStore,
    SageMakerControlClient,
    SageMakerRuntimeClient,
)
from fleetscaler.local.sagemaker_emulator import EndpointSpec, SageMakerEmulator
from tests.conftest import DATA_FILE


def loaded_store() -> InMemoryMetadataStore:
    from fleetscaler.dal.seed import read_items

    store = InMemoryMetadataStore("t")
    store.load(read_items(DATA_FILE))
    return store


def test_every_store_operation_has_an_in_memory_counterpart() -> None:
    # A method added to MetadataStore must be given to the in-memory table too, or the fast path would reach
    # DynamoDB through the inherited pynamodb code. Inherited on purpose: methods built only on others.
    composed = {"get_versioned_dimension"}
    public = {name for name, _ in inspect.getmembers(MetadataStore, inspect.isfunction) if not name.startswith("_")}
    missing = {name for name in public if getattr(InMemoryMetadataStore, name) is getattr(MetadataStore, name)}
    assert missing == composed


def test_router_counter_and_config_read_in_one_step() -> None:
    store = loaded_store()
    tickets = [store.next_route() for _ in range(3)]
    assert [t.counter for t in tickets] == [0, 1, 2]
    assert tickets[0].config["servers"] == ["1", "2", "3"] and tickets[0].config["weights"] == [1, 1, 1]
    # the ticket is a copy: editing it leaves the table alone
    tickets[0].config["weights"][0] = 99
    assert store.get_server_config()["weights"] == [1, 1, 1]  # type: ignore[index]


def test_optimistic_locks_refuse_a_stale_writer() -> None:
    store = loaded_store()
    read = store.get_versioned_server_config()
    assert read is not None and read.version == 1
    assert store.update_server_config({"weights": [2, 1, 1]}, 1) == 2
    with pytest.raises(ConcurrentModification):
        store.update_server_config({"weights": [3, 1, 1]}, 1)
    # The dimension was never locked: the first writer expects None, the next must name the lock it read
    assert store.update_dimension({"desired_capacity": 5}, None) == 1
    with pytest.raises(ConcurrentModification):
        store.update_dimension({"desired_capacity": 6}, None)
    store.update_dimension({"failure_reason": None}, 1)
    dimension = store.get_dimension()
    assert dimension is not None and dimension.desired_capacity == 5 and dimension.failure_reason is None
    with pytest.raises(ValueError, match="may be written here"):
        store.update_dimension({"request_count": 1}, 2)


def test_missing_items() -> None:
    store = InMemoryMetadataStore("empty")
    assert store.get_server_config() is None and store.get_dimension() is None
    with pytest.raises(ConfigurationUnusable, match="no 'server_config' item"):
        store.next_route()
    with pytest.raises(ConcurrentModification):
        store.update_server_config({"weights": [1]}, None)


def test_cloudwatch_aggregates_per_period_from_the_start_time() -> None:
    cloudwatch = InMemoryCloudWatch()
    start = dt.datetime(2027, 1, 15, 8, 0, tzinfo=dt.UTC)
    dims = [{"Name": "EndpointName", "Value": "e-1"}]
    for minute, value in ((0, 2.0), (0, 4.0), (1, 10.0), (3, 1.0)):
        cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[{"MetricName": "Backlog", "Dimensions": dims, "Value": value,
                         "Timestamp": start + dt.timedelta(minutes=minute, seconds=5)}],
        )
    query: dict[str, Any] = {"Id": "m0", "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker",
                             "MetricName": "Backlog", "Dimensions": dims}, "Period": 60, "Stat": "Average"}}
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[query], StartTime=start, EndTime=start + dt.timedelta(minutes=3),
        ScanBy="TimestampAscending",
    )
    result = answer["MetricDataResults"][0]
    assert result["Values"] == [3.0, 10.0]  # minute 3 is outside [start, end)
    assert result["Timestamps"] == [start, start + dt.timedelta(minutes=1)]
    other = {**query, "MetricStat": {**query["MetricStat"], "Stat": "Maximum",
                                      "Metric": {**query["MetricStat"]["Metric"], "Dimensions": []}}}
    empty = cloudwatch.get_metric_data(MetricDataQueries=[other], StartTime=start, EndTime=start)
    assert empty["MetricDataResults"][0]["Values"] == []


def test_sagemaker_clients_answer_like_boto3(virtual_clock: Any) -> None:
    emulator = SageMakerEmulator(seed=1)
    emulator.add_endpoint(EndpointSpec("fleet-a", initial_instances=1, provisioning_seconds=60))
    control, runtime = SageMakerControlClient(emulator), SageMakerRuntimeClient(emulator)
    described = control.describe_endpoint(EndpointName="fleet-a")
    assert described["EndpointStatus"] == "InService"
    assert isinstance(described["LastModifiedTime"], dt.datetime)
    control.update_endpoint_weights_and_capacities(
        EndpointName="fleet-a", DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}]
    )
    with pytest.raises(ClientError) as busy:
        control.update_endpoint_weights_and_capacities(
            EndpointName="fleet-a",
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 3}],
        )
    assert busy.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot update in-progress endpoint" in busy.value.response["Error"]["Message"]
    answer = runtime.invoke_endpoint_async(EndpointName="fleet-a", InputLocation="s3://b/x", InferenceId="req-1")
    assert answer["InferenceId"] == "req-1" and answer["OutputLocation"].endswith("req-1.out")
    with pytest.raises(ClientError, match="not found"):
        runtime.invoke_endpoint_async(EndpointName="nope", InputLocation="s3://b/x")
