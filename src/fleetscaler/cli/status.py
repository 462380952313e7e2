"""`fleetscaler status`: the scalable dimension, each endpoint, and the last scaling activities."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import click
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from fleetscaler.cli.context import STACK_OUTPUT_SCALING_RESOURCE_ID, CliContext, pass_cli
from fleetscaler.cli.endpoints import describe_endpoints, latest_metric
from fleetscaler.cli.render import format_epoch_ms, plain, table
from fleetscaler.dal.models import DIMENSION_ID
from fleetscaler.dal.seed import get_item
from fleetscaler.errors import FleetscalerError
from fleetscaler.logic.scaling import bound_warning, capacity_ceiling
from fleetscaler.logic.server_config import FleetConfig, validate_server_config

# Pause between --watch refreshes; tests replace it.
sleep: Callable[[float], None] = time.sleep

SCALABLE_DIMENSION = "custom-resource:ResourceType:Property"
BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"
BACKLOG_WINDOW_SECONDS = 15 * 60
# The dimension attributes every writer agrees on (aws-contracts.md); anything else is shown as "other".
STANDARD_DIMENSION_FIELDS = (
    "id",
    "desiredCapacity",
    "actualCapacity",
    "scalingStatus",
    "failureReason",
    "lastModified",
    "resourceName",
    "dimensionName",
    "variantName",
    "scalableTargetDimensionId",
    "version",
)
# The scaling engine's own bookkeeping (optimistic lock, plan memory): in --output json, not in the table.
ENGINE_DIMENSION_FIELDS = ("lockVersion", "scalingState")


def dimension_section(cli: CliContext) -> dict[str, Any] | None:
    raw = get_item(cli.table_name, DIMENSION_ID, cli.table_client())
    if raw is None:
        return None
    item = {k: plain(TypeDeserializer().deserialize(v)) for k, v in raw.items()}
    return {
        "desired": item.get("desiredCapacity"),
        "actual": item.get("actualCapacity"),
        "status": item.get("scalingStatus"),
        "failure_reason": item.get("failureReason") or None,
        "last_change": format_epoch_ms(item.get("lastModified")),
        "resource_name": item.get("resourceName"),
        "version": item.get("version"),
        "other": {k: v for k, v in sorted(item.items()) if k not in STANDARD_DIMENSION_FIELDS},
    }


def backlog_per_instance(cli: CliContext, endpoint: str) -> float | None:
    """The latest one-minute average of ApproximateBacklogSizePerInstance; None when CloudWatch has none."""
    value = latest_metric(cli, endpoint, BACKLOG_METRIC, "Average", window_seconds=BACKLOG_WINDOW_SECONDS)
    return None if value is None else round(value, 2)


def _fleet_config(cli: CliContext) -> tuple[FleetConfig | None, str | None]:
    versioned = cli.store.get_versioned_server_config()
    if versioned is None:
        return None, "no server_config item"
    try:
        return validate_server_config(versioned.config, cli.fleet_name()), None
    except FleetscalerError as exc:
        return None, exc.message


def warnings_section(cli: CliContext, dimension: dict[str, Any] | None, config: FleetConfig | None) -> list[str]:
    """What an operator should know: the fleet asked (or allowed to ask) for more than its endpoints give."""
    if config is None:
        return []
    ceiling = capacity_ceiling(config)
    found = []
    desired = None if dimension is None or dimension["desired"] is None else int(dimension["desired"])
    warning = bound_warning(desired, ceiling)
    if warning:
        found.append(warning)
    maximum = cli.stack_parameters.get("MaxCapacity")
    if maximum and maximum.isdigit():
        warning = bound_warning(int(maximum), ceiling, "the stack's MaxCapacity")
        if warning:
            found.append(warning)
    return found


def endpoints_section(cli: CliContext, config: FleetConfig | None, note: str | None) -> tuple[list[dict[str, Any]],
                                                                                            str | None]:
    if config is None:
        return [], note
    fleet = cli.fleet_name()
    names = config.endpoint_names(fleet)
    states = describe_endpoints(cli, names)
    rows = []
    for i, name in enumerate(names):
        state = states[name]
        rows.append(
            {
                "endpoint": name,
                "status": state.status,
                "instances": state.current_instances,
                "desired_instances": state.desired_instances,
                "recorded_instances": config.current_instance_count[i],
                "weight": config.weights[i],
                "max_instance_count": config.max_instance_count[i],
                "backlog_per_instance": backlog_per_instance(cli, name),
                "failure_reason": state.failure_reason,
                "draining": config.is_draining(i),
            }
        )
    return rows, None


def activities_section(cli: CliContext, resource_id: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    resource_id = resource_id or cli.stack_outputs.get(STACK_OUTPUT_SCALING_RESOURCE_ID)
    if not resource_id:
        return [], "give --resource-id (or --stack) to see Application Auto Scaling activities"
    try:
        activities = cli.client("application-autoscaling").describe_scaling_activities(
            ServiceNamespace="custom-resource",
            ResourceId=resource_id,
            ScalableDimension=SCALABLE_DIMENSION,
            MaxResults=limit,
        )["ScalingActivities"]
    except ClientError as exc:
        return [], f"cannot read scaling activities: {exc.response.get('Error', {}).get('Message', exc)}"
    rows = [
        {
            "start": a.get("StartTime"),
            "status": a.get("StatusCode"),
            "description": a.get("Description"),
            "message": a.get("StatusMessage"),
        }
        for a in activities[:limit]
    ]
    return rows, None


def collect(cli: CliContext, resource_id: str | None, limit: int) -> dict[str, Any]:
    config, note = _fleet_config(cli)
    endpoints, endpoints_note = endpoints_section(cli, config, note)
    activities, activities_note = activities_section(cli, resource_id, limit)
    dimension = dimension_section(cli)
    return {
        "table": cli.table_name,
        "dimension": dimension,
        "warnings": warnings_section(cli, dimension, config),
        "endpoints": endpoints,
        "endpoints_note": endpoints_note,
        "activities": activities,
        "activities_note": activities_note,
    }


def _time(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "-" if value is None else str(value)


def render(data: dict[str, Any]) -> str:
    lines = [f"scalable dimension ({data['table']})"]
    dimension = data["dimension"]
    if dimension is None:
        lines.append("  no custom-resource:ResourceType:Property item")
    else:
        lines.append(
            table(
                ["DESIRED", "ACTUAL", "STATUS", "LAST CHANGE", "FAILURE REASON"],
                [
                    [
                        dimension["desired"],
                        dimension["actual"],
                        dimension["status"],
                        dimension["last_change"],
                        dimension["failure_reason"],
                    ]
                ],
            )
        )
        other = {k: v for k, v in dimension["other"].items() if k not in ENGINE_DIMENSION_FIELDS}
        if other:
            lines.append("other: " + ", ".join(f"{k}={v}" for k, v in other.items()))
    lines += [f"warning: {warning}" for warning in data.get("warnings", [])]
    lines += ["", "endpoints"]
    if data["endpoints_note"]:
        lines.append(f"  {data['endpoints_note']}")
    else:
        lines.append(
            table(
                ["ENDPOINT", "STATUS", "INSTANCES", "RECORDED", "WEIGHT", "CAP", "BACKLOG/INSTANCE"],
                [
                    [
                        e["endpoint"],
                        e["status"] + (", draining" if e.get("draining") else ""),
                        e["instances"],
                        e["recorded_instances"],
                        e["weight"],
                        "none" if e["max_instance_count"] is None else e["max_instance_count"],
                        e["backlog_per_instance"],
                    ]
                    for e in data["endpoints"]
                ],
            )
        )
        for e in data["endpoints"]:
            if e["failure_reason"]:
                lines.append(f"{e['endpoint']}: {e['failure_reason']}")
    lines += ["", "scaling activities"]
    if data["activities_note"]:
        lines.append(f"  {data['activities_note']}")
    elif not data["activities"]:
        lines.append("  none yet")
    else:
        lines.append(
            table(
                ["START", "STATUS", "DESCRIPTION"],
                [[_time(a["start"]), a["status"], a["description"]] for a in data["activities"]],
            )
        )
    return "\n".join(lines)


@click.command("status")
@click.option("--resource-id", help="Scalable target ResourceId (default: the stack's ScalingResourceId output).")
@click.option("--activities", "limit", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=1), default=10, show_default=True, help="Refresh seconds.")
@click.option("--times", type=click.IntRange(min=0), default=0, help="With --watch: stop after N refreshes (0: never).")
@pass_cli
def status(cli: CliContext, resource_id: str | None, limit: int, watch: bool, interval: float, times: int) -> None:
    """Show the scalable dimension, each endpoint and the last scaling activities."""
    refreshes = 0
    try:
        while True:
            data = collect(cli, resource_id, limit)
            if watch and cli.output != "json":
                click.clear()
                click.echo(f"every {interval:g}s, Ctrl-C to stop\n")
            cli.emit(data, render(data))
            refreshes += 1
            if not watch or (times and refreshes >= times):
                return
            sleep(interval)
    except KeyboardInterrupt:
        return
