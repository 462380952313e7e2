"""`fleetscaler config set`: change list attributes or the strategy."""

from __future__ import annotations

from typing import Any

import click

from fleetscaler.cli.config.common import apply_change, json_result, note, parse_int_list, read_config
from fleetscaler.cli.context import CliContext, CliError, pass_cli
from fleetscaler.cli.render import config_view
from fleetscaler.logic.server_config import STRATEGIES


@click.command("set")
@click.option("--weights", help="Routing weights, one per server: 5,3,2.")
@click.option("--servers", help="Endpoint name suffixes: 1,2,3 (endpoint i is FLEET-SUFFIX).")
@click.option("--capacity-units", help="Capacity units per instance of each endpoint: 1,2,4.")
@click.option("--max", "max_counts", help="Instance cap per endpoint (none: no cap; 0 drains it): 10,10,none.")
@click.option("--strategy", type=click.Choice(STRATEGIES), help="How the scaling engine places capacity.")
@click.option("--yes", "-y", is_flag=True, help="Write without asking.")
@pass_cli
def set_config(
    cli: CliContext,
    weights: str | None,
    servers: str | None,
    capacity_units: str | None,
    max_counts: str | None,
    strategy: str | None,
    yes: bool,
) -> None:
    """Change list attributes or the strategy; the lists must stay one entry per server."""
    proposed: dict[str, Any] = {}
    if servers is not None:
        proposed["servers"] = [s.strip() for s in servers.split(",")]
    if weights is not None:
        proposed["weights"] = parse_int_list("--weights", weights)
    if capacity_units is not None:
        proposed["capacity_units"] = parse_int_list("--capacity-units", capacity_units)
    if max_counts is not None:
        proposed["max_instance_count"] = parse_int_list("--max", max_counts, allow_none=True)
    if strategy is not None:
        proposed["strategy"] = strategy
    if not proposed:
        raise CliError("nothing to set: give at least one of --weights, --servers, --capacity-units, --max, --strategy")
    read = read_config(cli)
    fleet = cli.fleet_name()
    if weights is not None:
        note(
            cli,
            "note: weights take effect at once, until the scaling engine's next reconcile (a GET/PATCH from "
            "Application Auto Scaling or an endpoint event) sets them from serving capacity again; to keep "
            "requests away from an endpoint, drain it (`fleetscaler config remove-endpoint`)",
        )
    version = apply_change(cli, read, {**read.config, **proposed}, fleet, yes)
    json_result(cli, {"version": version, "server_config": config_view({**read.config, **proposed})})
