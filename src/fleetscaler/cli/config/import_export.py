"""`fleetscaler config export` and `import`: the whole table to and from a DynamoDB JSON lines file
(data/ddb-data.jsonl format)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from boto3.dynamodb.types import TypeDeserializer

from fleetscaler.cli.config.common import ENGINE_RACE_RETRIES, note, refuse_concurrent
from fleetscaler.cli.context import CliContext, CliError, pass_cli
from fleetscaler.cli.render import config_view, diff, plain
from fleetscaler.dal.models import DIMENSION_ID, SERVER_CONFIG_ID
from fleetscaler.dal.seed import (
    SeedFileError,
    dump_items,
    export_items,
    get_item,
    load_items,
    put_server_config_item,
    read_items,
)
from fleetscaler.dal.seed import (
    create_table as create_metadata_table,
)
from fleetscaler.dal.store import VersionedConfig
from fleetscaler.errors import ConcurrentModification, InvalidServerConfig
from fleetscaler.logic.server_config import validate_server_config


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@pass_cli
def export(cli: CliContext, file: str) -> None:
    """Write every item of the table to FILE (data/ddb-data.jsonl format; - for stdout)."""
    items = export_items(cli.table_name, cli.table_client())
    text = dump_items(items)
    if file == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(file).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{file}: cannot write the export ({exc.strerror or exc})") from None
    cli.emit({"file": file, "items": len(items)}, f"exported {len(items)} items from {cli.table_name} to {file}")


_deserializer = TypeDeserializer()


def _python(item: Mapping[str, Any]) -> dict[str, Any]:
    """A whole item as plain values, attributes sorted so a diff shows only real differences."""
    return {k: plain(_deserializer.deserialize(item[k])) for k in sorted(item)}


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--create-table", is_flag=True, help="Create the table first if it does not exist (on-demand).")
@click.option("--yes", "-y", is_flag=True, help="Write without asking.")
@pass_cli
def import_items(cli: CliContext, file: str, create_table: bool, yes: bool) -> None:
    """Load the items of FILE (data/ddb-data.jsonl format) into the table, after validation and a diff.

    Items are written whole, exactly as in the file. Items of the table that the file does not mention are
    left alone. server_config is written only if nobody changed it since it was read.
    """
    try:
        items = read_items(file)
    except SeedFileError as exc:
        raise CliError(str(exc)) from None
    if not items:
        raise CliError(f'{file}: no items (each line must be {{"Item": {{...}}}})')
    if create_table:
        cli.store  # binds the models to this table, region and endpoint  # noqa: B018
        create_metadata_table(cli.table_name)
    client = cli.table_client()
    by_id = {item["id"]["S"]: item for item in items}
    if len(by_id) != len(items):
        raise CliError(f"{file}: an id appears more than once")
    fleet = None
    dimension = by_id.get(DIMENSION_ID)
    if dimension is not None and "resourceName" in dimension:
        fleet = str(_python(dimension)["resourceName"])
    current = {item_id: get_item(cli.table_name, item_id, client) for item_id in by_id}
    new_config = by_id.get(SERVER_CONFIG_ID)
    if new_config is not None:
        try:
            validate_server_config(_python(new_config), fleet)
        except InvalidServerConfig as exc:
            raise CliError(f"{file}: {exc}") from None
    changed = [item_id for item_id in by_id if current[item_id] != by_id[item_id]]
    if not changed:
        cli.emit({"written": 0}, f"no change: the table already holds the {len(items)} items of {file}")
        return
    for item_id in changed:
        existing = current[item_id]
        before = _python(existing) if existing else {}
        shown = diff(before, _python(by_id[item_id]), f"{item_id} (table)", f"{item_id} ({file})")
        note(cli, shown)
    if not yes:
        click.confirm(f"Write {len(changed)} item(s) to {cli.table_name}?", abort=True, err=True)
    if SERVER_CONFIG_ID in changed and new_config is not None:
        _put_server_config(cli, new_config, current[SERVER_CONFIG_ID], client)
    others = [by_id[item_id] for item_id in changed if item_id != SERVER_CONFIG_ID]
    load_items(cli.table_name, others, client)
    cli.emit({"written": len(changed)}, f"imported {len(changed)} item(s) into {cli.table_name}")


def _put_server_config(cli: CliContext, new_config: dict[str, Any], old: dict[str, Any] | None, client: Any) -> None:
    """Write the file's server_config whole. Its lock still moves forward, so that any writer holding an older
    read is refused rather than overwriting the imported config; a race lost only to the scaling engine's queue
    snapshot (rewritten every minute, nothing the import was checked against) is retried on the fresh item."""
    for _ in range(ENGINE_RACE_RETRIES):
        old_version = int(old["config_version"]["N"]) if old and "config_version" in old else None
        item = dict(new_config)
        file_version = int(item["config_version"]["N"]) if "config_version" in item else None
        if old is not None and (file_version is None or file_version <= (old_version or 0)):
            item["config_version"] = {"N": str((old_version or 0) + 1)}
        try:
            put_server_config_item(cli.table_name, item, old_version, old is not None, client)
            return
        except ConcurrentModification:
            now = get_item(cli.table_name, SERVER_CONFIG_ID, client)
            if old is None or now is None or config_view(_python(now)) != config_view(_python(old)):
                refuse_concurrent(cli, VersionedConfig(_python(old) if old else {}, old_version))
            old = now
    refuse_concurrent(cli, VersionedConfig(_python(old) if old else {}, None))
