"""What every `fleetscaler config` subcommand shares: reading server_config, parsing list options, and
the one way a change is written (validate, diff, confirm, conditional write).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import click

from fleetscaler.cli.context import CliContext, CliError
from fleetscaler.cli.render import config_view, diff
from fleetscaler.dal.models import SERVER_CONFIG_ID
from fleetscaler.dal.store import SERVER_CONFIG_FIELDS, VersionedConfig
from fleetscaler.errors import ConcurrentModification
from fleetscaler.logic.server_config import validate_server_config

# server_config attributes the scaling engine rewrites at every reconcile.
ENGINE_OWNED_FIELDS = ("weights", "current_instance_count")  # rewritten at every reconcile
ENGINE_RACE_RETRIES = 5


# -- reading ---------------------------------------------------------------------------------------


def read_config(cli: CliContext) -> VersionedConfig:
    versioned = cli.store.get_versioned_server_config()
    if versioned is None:
        raise CliError(
            f"table {cli.table_name} has no '{SERVER_CONFIG_ID}' item "
            "(load one with `fleetscaler config import data/ddb-data.jsonl`)"
        )
    return versioned


def parse_int_list(option: str, text: str, *, allow_none: bool = False) -> list[int | None]:
    values: list[int | None] = []
    for part in (p.strip() for p in text.split(",")):
        if allow_none and part.lower() in ("none", "null"):
            values.append(None)
            continue
        try:
            values.append(int(part))
        except ValueError:
            hint = " or none" if allow_none else ""
            raise CliError(
                f"{option}: {part!r} is not a whole number{hint} (give one value per server, e.g. 5,3,2)"
            ) from None
    return values


# -- writing ---------------------------------------------------------------------------------------


def note(cli: CliContext, text: str) -> None:
    """Progress for people: stdout normally, stderr with --output json so stdout stays one JSON document."""
    click.echo(text, err=cli.output == "json")


def json_result(cli: CliContext, data: dict[str, Any]) -> None:
    """The command's result for scripts (--output json only; people already read the notes)."""
    if cli.output == "json":
        cli.emit(data, "")


def apply_change(
    cli: CliContext,
    read: VersionedConfig,
    proposed: Mapping[str, Any],
    fleet: str,
    yes: bool,
    rebuild: Callable[[VersionedConfig], Mapping[str, Any]] | None = None,
) -> int:
    """Validate, show the diff, confirm, write conditionally. Returns the version now in the table.

    With `rebuild`, the change is built again from the read once confirmed (so what it stamps with the
    clock is the moment of writing), and a write that lost the race only to the scaling engine's own
    bookkeeping (weights and instance counts, rewritten at every reconcile) is redone from a fresh read
    without asking again, a few times; any other concurrent change is refused as always.
    InvalidServerConfig is a FleetscalerError: main() prints it as one line naming every broken rule.
    """
    validate_server_config(proposed, fleet)
    before, after = config_view(read.config), config_view(proposed)
    shown = diff(before, after, f"server_config (version {read.version})", "server_config (proposed)")
    if not shown:
        note(cli, "no change: server_config already has these values")
        return read.version or 0
    note(cli, shown)
    if not yes:
        click.confirm("Write this change?", abort=True, err=True)
    for _ in range(ENGINE_RACE_RETRIES):
        if rebuild is not None:
            proposed = rebuild(read)
            validate_server_config(proposed, fleet)
        before, after = config_view(read.config), config_view(proposed)
        changes = {name: after.get(name) for name in SERVER_CONFIG_FIELDS if before.get(name) != after.get(name)}
        if "servers" in changes:
            changes["routing"] = None  # the engine's queue snapshot is per server: it writes a fresh one
        try:
            version = cli.store.update_server_config(changes, read.version)
        except ConcurrentModification:
            now = cli.store.get_versioned_server_config()
            if now is not None and config_view(now.config) == config_view(read.config):
                read = now  # only the engine's queue snapshot moved: nothing the change was made against
                continue
            if rebuild is None or now is None or not _engine_only_change(read.config, now.config):
                refuse_concurrent(cli, read)
            note(cli, "the scaling engine updated weights or instance counts meanwhile: applying to its values")
            read = now
            continue
        note(cli, f"server_config written (version {version})")
        return version
    raise CliError(
        "the scaling engine kept rewriting weights and instance counts while this command wrote; nothing was "
        "written. Run the command again"
    )


def _engine_only_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    old, new = config_view(before), config_view(after)
    changed = {name for name in set(old) | set(new) if old.get(name) != new.get(name)}
    return changed <= set(ENGINE_OWNED_FIELDS)


def refuse_concurrent(cli: CliContext, read: VersionedConfig) -> NoReturn:
    now = cli.store.get_versioned_server_config()
    current = config_view(now.config) if now else {}
    current_version = now.version if now else None
    click.echo(
        diff(
            config_view(read.config),
            current,
            f"server_config as you read it (version {read.version})",
            f"server_config now (version {current_version})",
        )
        or "(the editable attributes are the same; only the version moved)",
        err=True,
    )
    raise CliError(
        f"server_config was changed by someone else (version {read.version} -> {current_version}) "
        "while you were working; nothing was written. Re-run the command to start from the new values"
    )
