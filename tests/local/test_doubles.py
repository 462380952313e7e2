"""The fast path's in-process stand-ins behave like what they replace where fleetscaler depends on it."""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fleetscaler.dal.idempotency import OnceAnswer
from fleetscaler.dal.keys import IDEMPOTENCY_ID_PREFIX
from fleetscaler.dal.router_table import RouterTable
from fleetscaler.dal.store import MetadataStore
from fleetscaler.errors import ConcurrentModification, ConfigurationUnusable, IdempotencyKeyReused, RequestInProgress
from fleetscaler.local.doubles import (
    InMemoryCloudWatch,
    InMemoryMetadataStore,
    SageMakerControlClient,
    SageMakerRuntimeClient,
)
from fleetscaler.local.sagemaker_emulator import EndpointSpec, SageMakerEmulator
from tests.conftest import DATA_FILE, TABLE


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
    # And the router's table: every call of RouterTable has its in-memory counterpart
    routed = {name for name, _ in inspect.getmembers(RouterTable, inspect.isfunction) if not name.startswith("_")}
    assert routed == {"next_route", "give_back_route", "fleet_name", "idempotent_calls"}
    assert all(callable(getattr(InMemoryMetadataStore, name, None)) for name in routed)


class Tables:
    """The router's table in DynamoDB (moto) and in memory, with a way to let time pass over a record."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "memory":
            self.memory = loaded_store()
            self.table: Any = self.memory
        else:
            from fleetscaler.dal.router_table import get_router_table

            self.table = get_router_table()

    def record_ids(self) -> list[str]:
        if self.kind == "memory":
            return [k for k in self.memory.items if k.startswith(IDEMPOTENCY_ID_PREFIX)]
        items = boto3.resource("dynamodb").Table(TABLE).scan(ConsistentRead=True)["Items"]
        return [str(i["id"]) for i in items if str(i["id"]).startswith(IDEMPOTENCY_ID_PREFIX)]

    def end_window(self, record_id: str) -> None:
        past = int(time.time()) - 1
        if self.kind == "memory":
            self.memory.items[record_id]["expiration"] = past
            return
        boto3.resource("dynamodb").Table(TABLE).update_item(
            Key={"id": record_id}, UpdateExpression="SET expiration = :p", ExpressionAttributeValues={":p": past}
        )


@pytest.fixture(params=["dynamodb", "memory"])
def tables(request: pytest.FixtureRequest) -> Tables:
    if request.param == "dynamodb":
        request.getfixturevalue("table")
    return Tables(request.param)


def test_idempotent_calls_behave_alike_in_dynamodb_and_in_memory(tables: Tables) -> None:
    calls = tables.table.idempotent_calls(3600)
    computed: list[str] = []

    def compute(answer: str) -> Any:
        return lambda: computed.append(answer) or {"answer": answer}

    # A first call computes and is recorded; a repeat gets its answer without computing
    assert calls.once("k", {"input": 1}, compute("first")) == OnceAnswer({"answer": "first"}, first=True)
    assert calls.once("k", {"input": 1}, compute("second")) == OnceAnswer({"answer": "first"}, first=False)
    assert computed == ["first"] and len(tables.record_ids()) == 1
    # The same key for another request is refused, naming the field
    with pytest.raises(IdempotencyKeyReused, match=r"^Idempotency-Key: this key was sent with a different request"):
        calls.once("k", {"input": 2}, compute("other"), field="Idempotency-Key")
    # A call still running blocks its repeats
    with pytest.raises(RequestInProgress):
        calls.once("running", {}, lambda: calls.once("running", {}, compute("inner")))
    # A call that fails leaves no record: the key can be used again
    with pytest.raises(ValueError, match="boom"):
        calls.once("fails", {}, lambda: (_ for _ in ()).throw(ValueError("boom")))
    assert calls.once("fails", {}, compute("retried")).first
    # After the window, the key computes again
    assert record_id("k") in tables.record_ids()
    tables.end_window(record_id("k"))
    assert calls.once("k", {"input": 1}, compute("renewed")) == OnceAnswer({"answer": "renewed"}, first=True)


def record_id(key: str) -> str:
    """The id of the record kept for `key`: the prefix and the SHA-256 of the key (as JSON, powertools' way)."""
    return f"{IDEMPOTENCY_ID_PREFIX}{hashlib.sha256(json.dumps(key).encode()).hexdigest()}"


def test_idempotency_records_do_not_disturb_the_other_items() -> None:
    # Given the in-memory table after a recorded call
    store = loaded_store()
    before = (store.get_server_config(), store.get_versioned_server_config(), store.get_dimension())
    store.idempotent_calls(60).once("k", {}, lambda: {"a": 1})
    assert list(store.items)[-1] == record_id("k")
    # Then the config, its version and the dimension read as before, and routing goes on from the same counter
    assert (store.get_server_config(), store.get_versioned_server_config()) == before[:2]
    dimension = store.get_dimension()
    assert dimension is not None and before[2] is not None
    assert dimension.attribute_values == before[2].attribute_values
    assert store.next_route().counter == 0
    assert store.fleet_name() == "endpoint"


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
