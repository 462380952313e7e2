"""pynamodb models for the three kinds of item in the metadata table.

All items share one table with partition key `id` (string), so the table is the seed sample's layout:

- `server_config`: the fleet (servers, weights, instance counts, ...) plus the router's request counter.
- `custom-resource:ResourceType:Property`: the scalable dimension Application Auto Scaling sees.
- `request_counter`: the seed sample's counter item; kept readable, no longer written (see docs/metadata-table.md).

List attributes are untyped on purpose: operators edit the item by hand, and a wrong element type must
become a validation message (`fleetscaler.logic.server_config`), not a deserialization crash.
"""

from __future__ import annotations

from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from fleetscaler.dal.keys import DEFAULT_TABLE_NAME, DIMENSION_ID, REQUEST_COUNTER_ID, SERVER_CONFIG_ID

__all__ = [
    "ALL_MODELS",
    "DEFAULT_TABLE_NAME",
    "DIMENSION_ID",
    "REQUEST_COUNTER_ID",
    "SERVER_CONFIG_ID",
    "RequestCounterItem",
    "ScalableDimensionItem",
    "ServerConfigItem",
    "bind_table",
]


class _TableItem(Model):
    class Meta:
        table_name = DEFAULT_TABLE_NAME

    id = UnicodeAttribute(hash_key=True)


class ServerConfigItem(_TableItem):
    class Meta:
        table_name = DEFAULT_TABLE_NAME

    servers = ListAttribute(null=True)  # type: ignore[var-annotated]
    weights = ListAttribute(null=True)  # type: ignore[var-annotated]
    current_instance_count = ListAttribute(null=True)  # type: ignore[var-annotated]
    capacity_units = ListAttribute(null=True)  # type: ignore[var-annotated]
    max_instance_count = ListAttribute(null=True)  # type: ignore[var-annotated]
    strategy = UnicodeAttribute(null=True)
    draining = ListAttribute(null=True)  # type: ignore[var-annotated]
    # [suffix, epoch seconds] pairs: when remove-endpoint began draining each of them (its bookkeeping only).
    draining_since = ListAttribute(null=True)  # type: ignore[var-annotated]
    # The router's global counter lives here so one UpdateItem returns the counter and the weights.
    request_count = NumberAttribute(null=True)
    # The engine's snapshot of the queues for the router (fleetscaler.logic.routing.RoutingHints).
    routing = MapAttribute(null=True)  # type: ignore[var-annotated]
    # Optimistic lock for writers of the config (scaling engine, CLI). The router's ADD on request_count
    # never touches it, so routing never conflicts with a config change.
    config_version = NumberAttribute(null=True)


class RequestCounterItem(_TableItem):
    class Meta:
        table_name = DEFAULT_TABLE_NAME

    request_count = NumberAttribute(null=True)
    type = UnicodeAttribute(null=True)


class ScalableDimensionItem(_TableItem):
    class Meta:
        table_name = DEFAULT_TABLE_NAME

    actual_capacity = NumberAttribute(attr_name="actualCapacity", null=True)
    desired_capacity = NumberAttribute(attr_name="desiredCapacity", null=True)
    dimension_name = UnicodeAttribute(attr_name="dimensionName", null=True)
    resource_name = UnicodeAttribute(attr_name="resourceName", null=True)
    variant_name = UnicodeAttribute(attr_name="variantName", null=True)
    scalable_target_dimension_id = UnicodeAttribute(attr_name="scalableTargetDimensionId", null=True)
    scaling_status = UnicodeAttribute(attr_name="scalingStatus", null=True)
    version = UnicodeAttribute(null=True)
    failure_reason = UnicodeAttribute(attr_name="failureReason", null=True)
    last_modified = NumberAttribute(attr_name="lastModified", null=True)
    # Optimistic lock of the scaling engine's writers (scaling API, endpoint-state handler). `version` above
    # is the string Application Auto Scaling sees and stays untouched.
    lock_version = NumberAttribute(attr_name="lockVersion", null=True)
    # The engine's memory between runs (JSON): when the scaling started, per-endpoint plan targets, issued
    # updates, back-off, last event time. Kept here, off the router's hot server_config item.
    scaling_state = UnicodeAttribute(attr_name="scalingState", null=True)


ALL_MODELS: tuple[type[Model], ...] = (ServerConfigItem, RequestCounterItem, ScalableDimensionItem)


def bind_table(
    table_name: str,
    region: str | None = None,
    host: str | None = None,
    *,
    credentials: tuple[str, str, str | None] | None = None,
) -> None:
    """Point every model at `table_name` (and optionally a region / endpoint URL / explicit credentials).

    pynamodb reads these from each model's Meta and caches a connection per class; resetting the cached
    connection makes the new binding take effect. `credentials` is (access key, secret key, session token),
    for callers such as the CLI whose `--profile` pynamodb's own botocore session would not see.
    """
    models: tuple[type[Model], ...] = (_TableItem, *ALL_MODELS)
    for model in models:
        model.Meta.table_name = table_name
        if region is not None:
            model.Meta.region = region
        if host is not None:
            model.Meta.host = host
        if credentials is not None:
            model.Meta.aws_access_key_id, model.Meta.aws_secret_access_key, model.Meta.aws_session_token = credentials
        model._connection = None
