"""In-process stand-ins for what the Lambdas reach, for the simulator's fast path.

- `InMemoryMetadataStore`: the metadata table behind the `MetadataStore` and `RouteTable` interfaces, with
  DynamoDB's semantics where fleetscaler depends on them (the router's atomic counter with the whole new item
  returned, conditional writes under optimistic locks, missing items, attributes removed when set to None, the
  router's idempotency records written only when absent or expired).
- `InMemoryCloudWatch`: the `put_metric_data` / `get_metric_data` subset of a boto3 CloudWatch client
  (MetricStat queries; Average, Sum, Maximum, Minimum, SampleCount per period aligned to StartTime, as moto's).
- `SageMakerControlClient` / `SageMakerRuntimeClient`: boto3-shaped clients whose calls go straight to the
  SageMaker emulator, raising botocore's `ClientError` with the emulator's error codes and messages.

Each double answers only what the project calls; anything else is an AttributeError, not a silent success.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord
from botocore.exceptions import ClientError, ParamValidationError

from fleetscaler import clock
from fleetscaler.dal.idempotency import IdempotentCalls
from fleetscaler.dal.keys import IDEMPOTENCY_ID_PREFIX
from fleetscaler.dal.models import DIMENSION_ID, SERVER_CONFIG_ID, ScalableDimensionItem
from fleetscaler.dal.router_table import RouteTicket
from fleetscaler.dal.store import (
    DIMENSION_FIELDS,
    SERVER_CONFIG_FIELDS,
    MetadataStore,
    VersionedConfig,
    refuse_unwritable,
)
from fleetscaler.errors import ConcurrentModification, ConfigurationUnusable
from fleetscaler.local.sagemaker_emulator import EmulatorError, SageMakerEmulator

# --- the metadata table ----------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """DynamoDB numbers as pynamodb returns them: int when whole, else float (lists and maps alike)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@functools.cache
def _python_names() -> dict[str, str]:
    """Table attribute name -> model attribute name (the dimension item stores camelCase names)."""
    names = {"request_count": "request_count", "config_version": "config_version"}
    for name, attribute in ScalableDimensionItem.get_attributes().items():
        names[attribute.attr_name] = name
    return names


class InMemoryMetadataStore(MetadataStore):
    """The metadata table of one fleet, in memory. Items are keyed by id and hold model attribute names."""

    def __init__(self, table_name: str = "fleetscaler-local") -> None:
        # No pynamodb binding: nothing here reaches DynamoDB.
        self.table_name = table_name
        self.items: dict[str, dict[str, Any]] = {}

    def load(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Put items given in DynamoDB JSON (as `data/ddb-data.jsonl` holds them)."""
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        names = _python_names()
        for raw in items:
            item = {names.get(k, k): _plain(deserializer.deserialize(v)) for k, v in raw.items()}
            self.items[str(item.pop("id"))] = item

    # -- the router ------------------------------------------------------------------------------------------

    def next_route(self) -> RouteTicket:
        item = self.items.get(SERVER_CONFIG_ID)
        if item is None:
            raise ConfigurationUnusable(
                f"table {self.table_name} has no '{SERVER_CONFIG_ID}' item; load data/ddb-data.jsonl "
                "or run `fleetscaler config import`"
            )
        item["request_count"] = int(item.get("request_count") or 0) + 1
        return RouteTicket(counter=item["request_count"] - 1, config=self._fields(item, SERVER_CONFIG_FIELDS))

    def give_back_route(self, ticket: RouteTicket) -> bool:
        item = self.items.get(SERVER_CONFIG_ID)
        if item is None or int(item.get("request_count") or 0) != ticket.counter + 1:
            return False
        item["request_count"] = ticket.counter
        return True

    def fleet_name(self) -> str | None:
        name = self.items.get(DIMENSION_ID, {}).get("resource_name")
        return str(name) if name else None

    def idempotent_calls(self, window_seconds: int) -> IdempotentCalls:
        return IdempotentCalls(InMemoryIdempotencyRecords(self.items), window_seconds, self.table_name)

    # -- server_config ---------------------------------------------------------------------------------------

    def get_server_config(self) -> dict[str, Any] | None:
        item = self.items.get(SERVER_CONFIG_ID)
        return None if item is None else self._fields(item, SERVER_CONFIG_FIELDS)

    def get_versioned_server_config(self) -> VersionedConfig | None:
        item = self.items.get(SERVER_CONFIG_ID)
        if item is None:
            return None
        version = item.get("config_version")
        return VersionedConfig(
            self._fields(item, SERVER_CONFIG_FIELDS),
            None if version is None else int(version),
            int(item.get("request_count") or 0),
        )

    def update_server_config(self, changes: dict[str, Any], expected_version: int | None) -> int:
        return self._update(
            SERVER_CONFIG_ID,
            "config_version",
            changes,
            SERVER_CONFIG_FIELDS,
            expected_version,
            f"server_config changed since version {expected_version}",
        )

    # -- the scalable dimension ------------------------------------------------------------------------------

    def get_dimension(self) -> ScalableDimensionItem | None:
        item = self.items.get(DIMENSION_ID)
        if item is None:
            return None
        return ScalableDimensionItem(DIMENSION_ID, **copy.deepcopy(item))

    # get_versioned_dimension is inherited: it only composes get_dimension.

    def update_dimension(self, changes: dict[str, Any], expected_lock: int | None) -> int:
        return self._update(
            DIMENSION_ID,
            "lock_version",
            changes,
            DIMENSION_FIELDS,
            expected_lock,
            f"the scalable dimension changed since lock {expected_lock}",
        )

    # -- DynamoDB's conditional UpdateItem -------------------------------------------------------------------

    def _update(
        self,
        item_id: str,
        lock: str,
        changes: dict[str, Any],
        allowed: Iterable[str],
        expected: int | None,
        conflict: str,
    ) -> int:
        refuse_unwritable(changes, allowed, item_id)
        item = self.items.get(item_id)
        held = None if item is None else item.get(lock)
        # The same condition as the table's: exists and never locked, or the lock still at `expected`.
        if item is None or (held is not None if expected is None else held != expected):
            raise ConcurrentModification(f"{conflict}; re-read it and try again")
        new_lock = (expected or 0) + 1
        item[lock] = new_lock
        for name, value in changes.items():
            if value is None:
                item.pop(name, None)
            else:
                item[name] = copy.deepcopy(value)
        return new_lock

    @staticmethod
    def _fields(item: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
        return {name: copy.deepcopy(item[name]) for name in names if item.get(name) is not None}


class InMemoryIdempotencyRecords(BasePersistenceLayer):
    """Powertools' DynamoDB persistence layer, on the in-memory table's items: the same ids and attributes, the
    same conditional put (a record is written only when none exists, it expired, or it was left in progress
    past its own expiry), and the existing record handed back when the put is refused."""

    def __init__(self, items: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.items = items

    def _get_record(self, idempotency_key: str) -> DataRecord:
        item = self.items.get(idempotency_key)
        if item is None:
            raise IdempotencyItemNotFoundError
        return self._record(idempotency_key, item)

    def _put_record(self, data_record: DataRecord) -> None:
        key = data_record.idempotency_key
        assert key.startswith(IDEMPOTENCY_ID_PREFIX), key
        held = self.items.get(key)
        now = dt.datetime.now().timestamp()
        if held is not None:
            in_progress_expired = (
                held["status"] == STATUS_CONSTANTS["INPROGRESS"]
                and held.get("in_progress_expiration") is not None
                and held["in_progress_expiration"] < int(now * 1000)
            )
            if not (held["expiration"] < int(now) or in_progress_expired):
                old = self._record(key, held)
                self._validate_payload(data_payload=data_record, stored_data_record=old)
                raise IdempotencyItemAlreadyExistsError(old_data_record=old)
        item: dict[str, Any] = {"expiration": data_record.expiry_timestamp, "status": data_record.status}
        if data_record.in_progress_expiry_timestamp is not None:
            item["in_progress_expiration"] = data_record.in_progress_expiry_timestamp
        if self.payload_validation_enabled and data_record.payload_hash:
            item["validation"] = data_record.payload_hash
        self.items[key] = item

    def _update_record(self, data_record: DataRecord) -> None:
        item = self.items.setdefault(data_record.idempotency_key, {})
        item.update(data=data_record.response_data, expiration=data_record.expiry_timestamp, status=data_record.status)
        if self.payload_validation_enabled:
            item["validation"] = data_record.payload_hash

    def _delete_record(self, data_record: DataRecord) -> None:
        self.items.pop(data_record.idempotency_key, None)

    @staticmethod
    def _record(key: str, item: Mapping[str, Any]) -> DataRecord:
        return DataRecord(
            idempotency_key=key,
            status=item["status"],
            expiry_timestamp=item["expiration"],
            in_progress_expiry_timestamp=item.get("in_progress_expiration"),
            response_data=item.get("data", ""),
            payload_hash=item.get("validation", ""),
        )


# --- CloudWatch ------------------------------------------------------------------------------------------------

_STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Average": lambda values: math.fsum(values) / len(values),
    "Sum": math.fsum,
    "Maximum": max,
    "Minimum": min,
    "SampleCount": lambda values: float(len(values)),
}


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=dt.UTC).timestamp()
    return float(value)


def _client_error(code: str, message: str, operation: str, status: int = 400) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]


class InMemoryCloudWatch:
    """A boto3 CloudWatch client's metric calls, in memory: what is put is what get_metric_data reads."""

    def __init__(self) -> None:
        self._points: dict[MetricKey, list[tuple[float, float]]] = defaultdict(list)

    @staticmethod
    def _key(namespace: str, metric_name: str, dimensions: Iterable[Mapping[str, str]]) -> MetricKey:
        return namespace, metric_name, tuple(sorted((d["Name"], d["Value"]) for d in dimensions))

    def put_metric_data(self, *, Namespace: str, MetricData: list[dict[str, Any]]) -> dict[str, Any]:
        for datum in MetricData:
            key = self._key(Namespace, datum["MetricName"], datum.get("Dimensions", []))
            when = _epoch(datum["Timestamp"]) if "Timestamp" in datum else clock.now()
            if "Value" in datum:
                values = [(float(datum["Value"]), 1)]
            else:
                counts = datum.get("Counts") or [1] * len(datum.get("Values", []))
                values = list(zip((float(v) for v in datum.get("Values", [])), counts, strict=True))
            for value, count in values:
                self._points[key].extend([(when, value)] * int(count))
        return {}

    def get_metric_data(
        self,
        *,
        MetricDataQueries: list[dict[str, Any]],
        StartTime: Any,
        EndTime: Any,
        ScanBy: str = "TimestampDescending",
        NextToken: str | None = None,
    ) -> dict[str, Any]:
        start, end = _epoch(StartTime), _epoch(EndTime)
        results = []
        for query in MetricDataQueries:
            if "MetricStat" not in query:
                raise _client_error(
                    "ValidationError", "the in-memory CloudWatch answers MetricStat queries only", "GetMetricData"
                )
            stat = query["MetricStat"]
            metric = stat["Metric"]
            statistic = _STATISTICS.get(stat["Stat"])
            if statistic is None:
                raise _client_error("ValidationError", f"Stat {stat['Stat']!r} is not supported", "GetMetricData")
            period = float(stat["Period"])
            buckets: dict[int, list[float]] = defaultdict(list)
            for when, value in self._points.get(self._key(metric["Namespace"], metric["MetricName"],
                                                          metric.get("Dimensions", [])), []):
                if start <= when < end:
                    buckets[int((when - start) // period)].append(value)
            order = sorted(buckets, reverse=ScanBy == "TimestampDescending")
            results.append(
                {
                    "Id": query["Id"],
                    "Label": metric["MetricName"],
                    "Timestamps": [dt.datetime.fromtimestamp(start + i * period, dt.UTC) for i in order],
                    "Values": [statistic(buckets[i]) for i in order],
                    "StatusCode": "Complete",
                }
            )
        return {"MetricDataResults": results, "Messages": []}


# --- SageMaker -------------------------------------------------------------------------------------------------


def _as_client_error(operation: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except EmulatorError as exc:
        raise _client_error(exc.code, exc.message, operation, exc.status) from None


class SageMakerControlClient:
    """`boto3.client("sagemaker")`'s DescribeEndpoint and UpdateEndpointWeightsAndCapacities, on the emulator."""

    def __init__(self, emulator: SageMakerEmulator) -> None:
        self.emulator = emulator

    def describe_endpoint(self, *, EndpointName: str) -> dict[str, Any]:
        answer = _as_client_error(
            "DescribeEndpoint", lambda: self.emulator.describe_endpoint({"EndpointName": EndpointName})
        )
        # boto3 parses the service's epoch timestamps into aware datetimes.
        for name in ("CreationTime", "LastModifiedTime"):
            answer[name] = dt.datetime.fromtimestamp(answer[name], dt.UTC)
        return dict(answer)

    def update_endpoint_weights_and_capacities(
        self, *, EndpointName: str, DesiredWeightsAndCapacities: list[dict[str, Any]]
    ) -> dict[str, Any]:
        params = {"EndpointName": EndpointName, "DesiredWeightsAndCapacities": DesiredWeightsAndCapacities}
        return dict(
            _as_client_error(
                "UpdateEndpointWeightsAndCapacities",
                lambda: self.emulator.update_endpoint_weights_and_capacities(copy.deepcopy(params)),
            )
        )


@functools.cache
def _async_invoke_headers() -> dict[str, str]:
    """InvokeEndpointAsync's parameters sent as HTTP headers, by parameter name (from botocore's model)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    shape = model.operation_model("InvokeEndpointAsync").input_shape
    assert shape is not None
    members = shape.members
    return {name: shape.serialization["name"] for name, shape in members.items()
            if shape.serialization.get("location") == "header"}


class SageMakerRuntimeClient:
    """`boto3.client("sagemaker-runtime")`'s InvokeEndpointAsync, on the emulator: the parameters become the
    same headers boto3 would send."""

    def __init__(self, emulator: SageMakerEmulator) -> None:
        self.emulator = emulator

    def invoke_endpoint_async(self, *, EndpointName: str, Body: bytes | None = None, **params: Any) -> dict[str, Any]:
        names = _async_invoke_headers()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ParamValidationError(report=f"Unknown parameter in input: {unknown[0]!r}")
        headers = {names[k].lower(): str(v) for k, v in params.items() if v is not None}
        answer = _as_client_error(
            "InvokeEndpointAsync", lambda: self.emulator.invoke_endpoint_async(EndpointName, headers, Body)
        )
        return {**answer, "ResponseMetadata": {"HTTPStatusCode": 202}}
