"""The metadata table as the scaling engine and the CLI see it (pynamodb). SDK errors become domain errors here.

The router's own calls are in `dal.router_table`, which never imports pynamodb.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import AttributeDeserializationError, PynamoDBException, UpdateError

from fleetscaler.config import get_settings
from fleetscaler.dal import router_table
from fleetscaler.dal.errors import CONDITION_FAILED, THROTTLE_CODES
from fleetscaler.dal.models import (
    DIMENSION_ID,
    SERVER_CONFIG_ID,
    ScalableDimensionItem,
    ServerConfigItem,
    bind_table,
)
from fleetscaler.errors import ConcurrentModification, ConfigurationUnusable, StoreUnavailable, Throttled

SERVER_CONFIG_FIELDS = (
    "servers",
    "weights",
    "current_instance_count",
    "capacity_units",
    "max_instance_count",
    "strategy",
    "draining",
    "draining_since",
    "routing",
)


def refuse_unwritable(changes: dict[str, Any], allowed: Iterable[str], item_id: str) -> None:
    """ValueError naming the attributes of `changes` that writers of `item_id` may not set."""
    unknown = set(changes) - set(allowed)
    if unknown:
        raise ValueError(f"not attributes of {item_id!r} that may be written here: {sorted(unknown)}")


def _error_code(exc: PynamoDBException) -> str:
    return getattr(exc, "cause_response_code", None) or ""


@contextmanager
def translate_errors(table_name: str) -> Iterator[None]:
    """Turn pynamodb/botocore failures into Throttled or StoreUnavailable."""
    try:
        yield
    except AttributeDeserializationError as exc:
        raise ConfigurationUnusable(
            f"an attribute of an item in table {table_name} has the wrong DynamoDB type: {exc}"
        ) from exc
    except PynamoDBException as exc:
        code = _error_code(exc)
        if code in THROTTLE_CODES:
            raise Throttled(f"metadata table {table_name} is throttling requests ({code})", source="DynamoDB") from exc
        if code == "ResourceNotFoundException":
            raise StoreUnavailable(f"metadata table {table_name} does not exist") from exc
        if isinstance(exc.cause, BotoCoreError):
            # pynamodb wraps connection failures; name the real cause (e.g. the endpoint it could not reach).
            raise StoreUnavailable(f"metadata table {table_name} is unreachable ({exc.cause})") from exc
        raise StoreUnavailable(f"metadata table {table_name} is unavailable ({code or type(exc).__name__})") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"metadata table {table_name} is unreachable ({type(exc).__name__})") from exc


def server_config_to_dict(item: ServerConfigItem) -> dict[str, Any]:
    values = {name: getattr(item, name) for name in SERVER_CONFIG_FIELDS if getattr(item, name) is not None}
    if "routing" in values:
        values["routing"] = values["routing"].as_dict()  # a raw map attribute, as plain Python values
    return values


DIMENSION_FIELDS = (
    "desired_capacity",
    "actual_capacity",
    "scaling_status",
    "failure_reason",
    "last_modified",
    "scaling_state",
)


@dataclass(frozen=True)
class VersionedDimension:
    """The scalable-dimension item with the engine's lock value it was read at (None: never locked)."""

    item: ScalableDimensionItem
    lock: int | None


@dataclass(frozen=True)
class VersionedConfig:
    """server_config as stored, with the optimistic-lock version it was read at (None: never versioned)."""

    config: dict[str, Any]
    version: int | None
    # The router's counter when it was read (the engine's queue snapshot goes with it).
    request_count: int = 0


class MetadataStore:
    """Reads and writes of the metadata table for one fleet (the router's are `RouterTable`'s)."""

    def __init__(
        self,
        table_name: str,
        *,
        region: str | None = None,
        host: str | None = None,
        credentials: tuple[str, str, str | None] | None = None,
    ) -> None:
        self.table_name = table_name
        bind_table(table_name, region, host, credentials=credentials)

    def get_server_config(self) -> dict[str, Any] | None:
        with translate_errors(self.table_name):
            try:
                item = ServerConfigItem.get(SERVER_CONFIG_ID, consistent_read=True)
            except ServerConfigItem.DoesNotExist:
                return None
        return server_config_to_dict(item)

    def get_versioned_server_config(self) -> VersionedConfig | None:
        """The config and its `config_version`, read consistently, for a later conditional write."""
        with translate_errors(self.table_name):
            try:
                item = ServerConfigItem.get(SERVER_CONFIG_ID, consistent_read=True)
            except ServerConfigItem.DoesNotExist:
                return None
        version = None if item.config_version is None else int(item.config_version)
        return VersionedConfig(server_config_to_dict(item), version, int(item.request_count or 0))

    def update_server_config(self, changes: dict[str, Any], expected_version: int | None) -> int:
        """Set the attributes in `changes` only if nobody changed the config since `expected_version`.

        Attributes set to None are removed. Raises ConcurrentModification when another writer got there
        first (the caller re-reads and decides again); returns the new version. The router's counter is
        not part of the condition, so routing never blocks a config change.
        """
        return self._locked_update(
            ServerConfigItem(SERVER_CONFIG_ID),
            ServerConfigItem.config_version,
            changes,
            SERVER_CONFIG_FIELDS,
            expected_version,
            f"server_config changed since version {expected_version}",
        )

    def get_versioned_dimension(self) -> VersionedDimension | None:
        """The dimension item and its `lockVersion`, read consistently, for a later conditional write."""
        item = self.get_dimension()
        if item is None:
            return None
        return VersionedDimension(item, None if item.lock_version is None else int(item.lock_version))

    def update_dimension(self, changes: dict[str, Any], expected_lock: int | None) -> int:
        """Set dimension attributes only if no other engine run wrote since `expected_lock`.

        Attributes set to None are removed. Raises ConcurrentModification when another writer got there
        first (the caller re-reads and decides again); returns the new lock value.
        """
        return self._locked_update(
            ScalableDimensionItem(DIMENSION_ID),
            ScalableDimensionItem.lock_version,
            changes,
            DIMENSION_FIELDS,
            expected_lock,
            f"the scalable dimension changed since lock {expected_lock}",
        )

    def _locked_update(
        self,
        item: Any,
        lock: Any,
        changes: dict[str, Any],
        allowed: Iterable[str],
        expected: int | None,
        conflict: str,
    ) -> int:
        """One conditional UpdateItem: apply `changes` and bump `lock` only if it still equals `expected`."""
        refuse_unwritable(changes, allowed, item.id)
        model = type(item)
        new_lock = (expected or 0) + 1
        actions: list[Any] = [lock.set(new_lock)]
        for name, value in changes.items():
            attribute = getattr(model, name)
            actions.append(attribute.remove() if value is None else attribute.set(value))
        condition = model.id.exists() & lock.does_not_exist() if expected is None else lock == expected
        with translate_errors(self.table_name):
            try:
                item.update(actions=actions, condition=condition)
            except UpdateError as exc:
                if _error_code(exc) == CONDITION_FAILED:
                    raise ConcurrentModification(f"{conflict}; re-read it and try again") from exc
                raise
        return new_lock

    def get_dimension(self) -> ScalableDimensionItem | None:
        with translate_errors(self.table_name):
            try:
                return ScalableDimensionItem.get(DIMENSION_ID, consistent_read=True)
            except ScalableDimensionItem.DoesNotExist:
                return None


@functools.cache
def get_store() -> MetadataStore:
    """The process-wide store for the configured table, created on first use."""
    if router_table.installed:
        store: MetadataStore = router_table.installed[0]
        return store
    return MetadataStore(get_settings().table_name)


def install_store(store: MetadataStore | None) -> None:
    """Make `get_store()` and `get_router_table()` return `store`, an in-memory table that serves both (None:
    the table named by the settings again)."""
    router_table.installed[:] = [store] if store is not None else []
    get_store.cache_clear()
    router_table.get_router_table.cache_clear()
