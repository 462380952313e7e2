"""`fleetscaler config show`: server_config as a table, one row per endpoint with its SageMaker status."""

from __future__ import annotations

import click

from fleetscaler.cli.config.common import read_config
from fleetscaler.cli.context import CliContext, CliError, pass_cli
from fleetscaler.cli.endpoints import describe_endpoints
from fleetscaler.cli.render import table
from fleetscaler.dal.models import SERVER_CONFIG_ID
from fleetscaler.dal.seed import dump_items, get_item
from fleetscaler.logic.server_config import validate_server_config


@click.command("show")
@click.option("--raw", is_flag=True, help="Print the item exactly as stored (DynamoDB JSON).")
@pass_cli
def show(cli: CliContext, raw: bool) -> None:
    """Show server_config as a table: one row per endpoint of the fleet."""
    if raw:
        item = get_item(cli.table_name, SERVER_CONFIG_ID, cli.table_client())
        if item is None:
            raise CliError(f"table {cli.table_name} has no '{SERVER_CONFIG_ID}' item")
        cli.emit(item, dump_items([item]).rstrip("\n"))
        return
    read = read_config(cli)
    fleet = cli.fleet_name()
    config = validate_server_config(read.config, fleet)
    names = config.endpoint_names(fleet)
    states = describe_endpoints(cli, names)
    rows = []
    for i, name in enumerate(names):
        cap = config.max_instance_count[i]
        status = states[name].status
        if config.is_draining(i):
            status += ", draining" if cap != 0 else ", draining, releasing instances"
        elif cap == 0:
            status += ", capped at 0"
        rows.append(
            {
                "server": config.servers[i],
                "endpoint": name,
                "weight": config.weights[i],
                "instances": config.current_instance_count[i],
                "capacity_units": config.capacity_units[i],
                "max_instance_count": cap,
                "status": status,
            }
        )
    text = table(
        ["SERVER", "ENDPOINT", "WEIGHT", "INSTANCES", "UNITS", "CAP", "STATUS"],
        [
            [
                r["server"],
                r["endpoint"],
                r["weight"],
                r["instances"],
                r["capacity_units"],
                "none" if r["max_instance_count"] is None else r["max_instance_count"],
                r["status"],
            ]
            for r in rows
        ],
    )
    summary = f"fleet {fleet}  strategy {config.strategy}  version {read.version}  capacity {config.capacity} units"
    cli.emit(
        {"fleet": fleet, "strategy": config.strategy, "version": read.version, "endpoints": rows},
        f"{summary}\n{text}",
    )
