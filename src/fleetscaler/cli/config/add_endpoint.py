"""`fleetscaler config add-endpoint`: append an endpoint to every list of server_config."""

from __future__ import annotations

import click

from fleetscaler.cli.config.common import apply_change, json_result, parse_int_list, read_config
from fleetscaler.cli.context import CliContext, pass_cli
from fleetscaler.cli.endpoints import describe_endpoints
from fleetscaler.cli.render import config_view
from fleetscaler.logic.server_config import validate_server_config


@click.command("add-endpoint")
@click.argument("suffix")
@click.option(
    "--weight",
    type=click.IntRange(min=0),
    help="Routing weight until the scaling engine sets it from serving capacity "
    "[default: instances x capacity units, so 0 for an endpoint without instances].",
)
@click.option("--capacity-units", type=int, default=1, show_default=True)
@click.option("--max", "max_count", default="none", show_default=True, help="Instance cap (none: no cap).")
@click.option("--instances", type=int, default=0, show_default=True, help="Instances it has now.")
@click.option("--yes", "-y", is_flag=True, help="Write without asking.")
@pass_cli
def add_endpoint(
    cli: CliContext, suffix: str, weight: int | None, capacity_units: int, max_count: str, instances: int, yes: bool
) -> None:
    """Add the endpoint FLEET-SUFFIX to the fleet (it must exist in SageMaker to receive requests)."""
    if weight is None:
        # As the scaling engine would set it: requests go only where instances serve.
        weight = instances * capacity_units
    read = read_config(cli)
    fleet = cli.fleet_name()
    current = validate_server_config(read.config, fleet)
    cap = parse_int_list("--max", max_count, allow_none=True)[0]
    proposed = {
        **read.config,
        "servers": [*current.servers, suffix],
        "weights": [*current.weights, weight],
        "current_instance_count": [*current.current_instance_count, instances],
        "capacity_units": [*current.capacity_units, capacity_units],
        "max_instance_count": [*current.max_instance_count, cap],
    }
    validate_server_config(proposed, fleet)
    name = f"{fleet}-{suffix}"
    state = describe_endpoints(cli, [name])[name]
    if state.status == "not found":
        click.echo(
            f"warning: SageMaker has no endpoint {name}; create it, or the scaling engine's updates and any "
            "request routed to it will fail",
            err=True,
        )
    version = apply_change(cli, read, proposed, fleet, yes)
    json_result(cli, {"version": version, "server_config": config_view(proposed)})
