"""`fleetscaler config`: read and change server_config safely.

Every change goes the same way: build the new config, validate it with the Lambdas' own rules, show it as
a diff, ask (or --yes), then write it with the store's conditional write. If someone else changed the
item in between, nothing is overwritten: the command shows what changed and stops.

One module per subcommand; `common` holds the reading and the one write path they all use.
"""

from __future__ import annotations

import click

# Commands are bound under *_command names so that the package's attributes stay its modules (tests replace
# `fleetscaler.cli.config.remove_endpoint.sleep`).
from fleetscaler.cli.config.add_endpoint import add_endpoint as add_endpoint_command
from fleetscaler.cli.config.edit import edit as edit_command
from fleetscaler.cli.config.import_export import export as export_command
from fleetscaler.cli.config.import_export import import_items as import_command
from fleetscaler.cli.config.remove_endpoint import remove_endpoint as remove_endpoint_command
from fleetscaler.cli.config.set import set_config as set_command
from fleetscaler.cli.config.show import show as show_command


@click.group("config")
def config_group() -> None:
    """Show and change the fleet's server_config (validated, diffed, confirmed, conditionally written)."""


for command in (
    show_command,
    set_command,
    add_endpoint_command,
    remove_endpoint_command,
    edit_command,
    export_command,
    import_command,
):
    config_group.add_command(command)
