"""The metadata table as the router sees it: one UpdateItem per request, through a plain DynamoDB client.

The router's calls are few and fixed (take a counter value, give it back, read the fleet's name), so they are
made with botocore's DynamoDB client rather than pynamodb: a cold container does not import pynamodb at all
(about a quarter of the router's cold import). The scaling engine and the CLI keep `dal.store`.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from fleetscaler.config import get_settings
from fleetscaler.dal.errors import CONDITION_FAILED, client_error_code, translate_client_errors
from fleetscaler.dal.keys import DIMENSION_ID, SERVER_CONFIG_ID
from fleetscaler.errors import ConfigurationUnusable

if TYPE_CHECKING:
    from fleetscaler.dal.idempotency import IdempotentCalls

# The attributes of server_config the router hands on, with the DynamoDB type each must have (as the pynamodb
# model declares them): lists are untyped on purpose, their elements are checked by logic.server_config.
ROUTED_ATTRIBUTES = {
    "servers": "L",
    "weights": "L",
    "current_instance_count": "L",
    "capacity_units": "L",
    "max_instance_count": "L",
    "strategy": "S",
    "draining": "L",
    "draining_since": "L",
    "routing": "M",
}
# pynamodb's own defaults for the attempts (4 in standard mode); shorter timeouts than its 15 s / 30 s, so that
# a stalled call leaves the request time to answer within API Gateway's 29 s.
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=5,
    read_timeout=10,
    parameter_validation=False,
)


@dataclass(frozen=True)
class RouteTicket:
    """One routed request's share of the table: its counter value and the config it saw."""

    counter: int
    config: dict[str, Any]


class RouteTable(Protocol):
    """What the router needs of the table (the local fleet's in-memory table answers the same)."""

    table_name: str

    def next_route(self) -> RouteTicket: ...

    def give_back_route(self, ticket: RouteTicket) -> bool: ...

    def fleet_name(self) -> str | None: ...

    def idempotent_calls(self, window_seconds: int) -> IdempotentCalls: ...


def attribute_value(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value as pynamodb's untyped attributes give it: numbers are int or float."""
    (kind, raw), *_ = value.items()
    if kind == "N":
        return json.loads(raw)
    if kind == "L":
        return [attribute_value(v) for v in raw]
    if kind == "M":
        return {k: attribute_value(v) for k, v in raw.items()}
    if kind == "NULL":
        return None
    if kind == "NS":
        return {json.loads(v) for v in raw}
    if kind in ("SS", "BS"):
        return set(raw)
    return raw  # S, B, BOOL


def routed_config(item: Mapping[str, Any], table_name: str) -> dict[str, Any]:
    """The attributes of a server_config item the router reads, as plain values (absent or null ones left out).
    An attribute of the wrong DynamoDB type is ConfigurationUnusable naming it."""
    config: dict[str, Any] = {}
    for name, kind in ROUTED_ATTRIBUTES.items():
        value = item.get(name)
        if value is None or "NULL" in value:
            continue
        if kind not in value:
            stored = next(iter(value), "?")
            raise ConfigurationUnusable(
                f"an attribute of an item in table {table_name} has the wrong DynamoDB type: "
                f"{SERVER_CONFIG_ID}.{name} is stored as {stored}, expected {kind}"
            )
        config[name] = attribute_value(value)
    return config


class RouterTable:
    """The router's reads and writes of the metadata table, one botocore client per container."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        # Created once, on first use; a client is thread-safe, creating one from boto3's default session is not.
        with self._client_lock:
            if self._client is None:
                self._client = boto3.client("dynamodb", config=_CLIENT_CONFIG)
            return self._client

    def next_route(self) -> RouteTicket:
        """Take the next request number and read the routing config, in one atomic UpdateItem.

        The counter is incremented on the `server_config` item itself and the whole new item is returned
        (ReturnValues=ALL_NEW), so weights are exactly as fresh as the table and each request costs one
        DynamoDB call.
        """
        with translate_client_errors(self.table_name):
            try:
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": SERVER_CONFIG_ID}},
                    UpdateExpression="ADD #count :one",
                    ConditionExpression="attribute_exists(#id)",
                    ExpressionAttributeNames={"#count": "request_count", "#id": "id"},
                    ExpressionAttributeValues={":one": {"N": "1"}},
                    ReturnValues="ALL_NEW",
                )
            except ClientError as exc:
                if client_error_code(exc) == CONDITION_FAILED:
                    raise ConfigurationUnusable(
                        f"table {self.table_name} has no '{SERVER_CONFIG_ID}' item; load data/ddb-data.jsonl "
                        "or run `fleetscaler config import`"
                    ) from exc
                raise
        item = response["Attributes"]
        counter = int(attribute_value(item["request_count"])) - 1
        return RouteTicket(counter=counter, config=routed_config(item, self.table_name))

    def give_back_route(self, ticket: RouteTicket) -> bool:
        """Return a failed request's counter value, if no request has taken a later one since.

        One conditional UpdateItem: the counter goes back only while it still stands right after the ticket, so
        the sequence then reads as if the request never came, and a value is never handed out twice. Returns
        False when another request was faster (the value stays spent: a gap of one in the sequence).
        """
        with translate_client_errors(self.table_name):
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": SERVER_CONFIG_ID}},
                    UpdateExpression="ADD #count :minus_one",
                    ConditionExpression="#count = :next",
                    ExpressionAttributeNames={"#count": "request_count"},
                    ExpressionAttributeValues={":minus_one": {"N": "-1"}, ":next": {"N": str(ticket.counter + 1)}},
                )
            except ClientError as exc:
                if client_error_code(exc) == CONDITION_FAILED:
                    return False
                raise
        return True

    def fleet_name(self) -> str | None:
        """`resourceName` of the scalable-dimension item (None when the item or the attribute is missing)."""
        with translate_client_errors(self.table_name):
            response = self.client.get_item(
                TableName=self.table_name,
                Key={"id": {"S": DIMENSION_ID}},
                ConsistentRead=True,
                ProjectionExpression="resourceName",
            )
        name = (response.get("Item") or {}).get("resourceName", {}).get("S")
        return str(name) if name else None

    def idempotent_calls(self, window_seconds: int) -> IdempotentCalls:
        """Powertools' idempotency records on this table, through the same client (imported on first use: only
        requests that carry an Idempotency-Key need it)."""
        from fleetscaler.dal.idempotency import IdempotentCalls, dynamodb_records

        return IdempotentCalls(dynamodb_records(self.table_name, self.client), window_seconds, self.table_name)


# A table handed in by the local fleet's fast path (an in-memory table that serves the router, the scaling
# engine and the CLI alike); empty in a deployment. `dal.store.install_store` fills it.
installed: list[Any] = []


@functools.cache
def get_router_table() -> RouteTable:
    """The process-wide router table for the configured table, created on first use."""
    if installed:
        table: RouteTable = installed[0]
        return table
    return RouterTable(get_settings().table_name)
