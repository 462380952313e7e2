"""`fleetscaler config edit`: server_config in $EDITOR as YAML, validated and diffed when saved."""

from __future__ import annotations

import click
import yaml

from fleetscaler.cli.config.common import apply_change, json_result, note, read_config
from fleetscaler.cli.context import CliContext, CliError, pass_cli
from fleetscaler.cli.render import config_view, to_yaml
from fleetscaler.dal.store import SERVER_CONFIG_FIELDS

EDIT_HEADER = """\
# server_config of fleet {fleet} (table {table}, version {version}).
# Lists are index-aligned with servers: endpoint i is {fleet}-<servers[i]>.
# max_instance_count: null means no cap; 0 releases the endpoint's instances. draining: servers that take
# no new requests (weight 0) and get no new capacity; draining_since is remove-endpoint's record of when
# each began. Weights are set by the scaling engine from serving capacity. Save and quit to apply; an
# unchanged file changes nothing.
"""


@click.command("edit")
@click.option("--yes", "-y", is_flag=True, help="Write without asking after the editor closes.")
@pass_cli
def edit(cli: CliContext, yes: bool) -> None:
    """Open $EDITOR on a YAML view of server_config; the saved result is validated and diffed."""
    read = read_config(cli)
    fleet = cli.fleet_name()
    before = config_view(read.config)
    header = EDIT_HEADER.format(fleet=fleet, table=cli.table_name, version=read.version)
    edited = click.edit(header + to_yaml(before), extension=".yaml")
    if edited is None:
        note(cli, "no change: the editor was closed without saving")
        json_result(cli, {"version": read.version, "server_config": before})
        return
    try:
        loaded = yaml.safe_load(edited)
    except yaml.YAMLError as exc:
        raise CliError(f"the edited YAML does not parse: {' '.join(str(exc).split())}") from None
    if not isinstance(loaded, dict):
        raise CliError("the edited YAML must be a mapping of attribute: value")
    unknown = sorted(set(loaded) - set(SERVER_CONFIG_FIELDS))
    if unknown:
        raise CliError(f"{unknown[0]}: not an editable attribute (editable: {', '.join(SERVER_CONFIG_FIELDS)})")
    # An attribute deleted in the editor is removed from the item (validation says if that is allowed).
    proposed = {k: v for k, v in read.config.items() if k not in SERVER_CONFIG_FIELDS}
    proposed.update({k: v for k, v in loaded.items() if v is not None})
    version = apply_change(cli, read, proposed, fleet, yes)
    json_result(cli, {"version": version, "server_config": config_view(proposed)})
