"""`fleetscaler config`: read and change server_config safely.

Every change goes the same way: build the new config, validate it with the Lambdas' own rules, show it as
a diff, ask (or --yes), then write it with the store's conditional write. If someone else changed the
item in between, nothing is overwritten: the command shows what changed and stops.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml
from boto3.dynamodb.types import TypeDeserializer

from fleetscaler import clock
from fleetscaler.cli.context import CliContext, CliError, pass_cli
from fleetscaler.cli.endpoints import describe_endpoints, latest_metric, start_instances
from fleetscaler.cli.render import config_view, diff, plain, table, to_yaml
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
from fleetscaler.dal.store import SERVER_CONFIG_FIELDS, VersionedConfig
from fleetscaler.errors import ConcurrentModification, InvalidServerConfig
from fleetscaler.logic.server_config import STRATEGIES, FleetConfig, as_suffix, validate_server_config

# Polling for `remove-endpoint --wait`; tests replace it so no real time passes.
sleep: Callable[[float], None] = time.sleep
# server_config attributes the scaling engine rewrites at every reconcile.
ENGINE_OWNED_FIELDS = ("weights", "current_instance_count")
ENGINE_RACE_RETRIES = 5
# remove-endpoint releases an endpoint once this SageMaker metric (queued + in progress) is 0.
QUEUE_METRIC = "ApproximateBacklogSize"
# SageMaker publishes it every minute while the endpoint exists; older datapoints say nothing about now.
QUEUE_WINDOW_SECONDS = 5 * 60

EDIT_HEADER = """\
# server_config of fleet {fleet} (table {table}, version {version}).
# Lists are index-aligned with servers: endpoint i is {fleet}-<servers[i]>.
# max_instance_count: null means no cap; 0 releases the endpoint's instances. draining: servers that take
# no new requests (weight 0) and get no new capacity; draining_since is remove-endpoint's record of when
# each began. Weights are set by the scaling engine from serving capacity. Save and quit to apply; an
# unchanged file changes nothing.
"""


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
        try:
            version = cli.store.update_server_config(changes, read.version)
        except ConcurrentModification:
            now = cli.store.get_versioned_server_config()
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


# -- commands --------------------------------------------------------------------------------------


@click.group("config")
def config_group() -> None:
    """Show and change the fleet's server_config (validated, diffed, confirmed, conditionally written)."""


@config_group.command("show")
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


@config_group.command("set")
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


@config_group.command("add-endpoint")
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


@config_group.command("remove-endpoint")
@click.argument("suffix")
@click.option("--wait", is_flag=True, help="Wait through each stage (queue empty, instances gone), then remove it.")
@click.option("--timeout", type=click.IntRange(min=1), default=1800, show_default=True, help="Seconds to wait.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=15, show_default=True, help="Poll seconds.")
@click.option(
    "--force",
    is_flag=True,
    help="Release its instances without checking that its queue is empty (may strand requests).",
)
@click.option("--yes", "-y", is_flag=True, help="Write without asking.")
@pass_cli
def remove_endpoint(
    cli: CliContext, suffix: str, wait: bool, timeout: int, interval: float, force: bool, yes: bool
) -> None:
    """Drain the endpoint FLEET-SUFFIX, then remove it from the fleet; no queued request is dropped.

    \b
    1. drain: it joins `draining` and gets weight 0, so no new request goes to it. It keeps its instances
       for the requests already in its queue (one is started, when asked, if it has none); the scaling
       engine places its share on the others.
    2. release: once CloudWatch shows its ApproximateBacklogSize at 0 in a minute that began after the
       drain, max_instance_count becomes 0 and the scaling engine takes its instances away (--force skips
       the queue check).
    3. remove: once it has 0 instances, it leaves every list.

    Without --wait each run does what it can now and says what it waits for; run it again later.
    """
    read = read_config(cli)
    fleet = cli.fleet_name()
    current = validate_server_config(read.config, fleet)
    if suffix not in current.servers:
        raise CliError(f"servers: {suffix!r} is not in the fleet (servers: {', '.join(current.servers)})")
    index = current.servers.index(suffix)
    if not any(current.takes_requests(i) for i in range(len(current.servers)) if i != index):
        raise CliError(
            f"servers: {suffix!r} is the only endpoint that can take requests (the others are draining or "
            "capped at 0); add or enable another one first"
        )
    name = current.endpoint_name(fleet, index)

    def write(build: Callable[[VersionedConfig, str], Mapping[str, Any]], read: VersionedConfig) -> int:
        """One stage's change, built from `read` and built again from a fresh read if the engine races it."""
        return apply_change(cli, read, build(read, suffix), fleet, yes, rebuild=lambda fresh: build(fresh, suffix))

    if not current.is_draining(index):
        warn_before_drain(cli, current, index, fleet)
        note(
            cli,
            f"draining {name}: weight 0 (no new requests); it keeps its instances until its queued requests are "
            "done, and the scaling engine places its share on the other endpoints",
        )
        write(drained, read)
    elif drain_started(read.config, suffix) is None:
        # Drained by hand (`config edit`): the queue check must only trust datapoints from now on.
        note(cli, f"{name} is draining without a recorded start: counting from now")
        write(drained, read)
    deadline = clock.now() + timeout

    def refresh() -> tuple[VersionedConfig, FleetConfig, int]:
        fresh = read_config(cli)
        config = validate_server_config(fresh.config, fleet)
        if suffix not in config.servers:
            raise CliError(f"servers: {suffix!r} was removed by someone else meanwhile")
        if not config.is_draining(config.servers.index(suffix)):
            raise CliError(f"draining: {suffix!r} was taken out of draining by someone else meanwhile")
        return fresh, config, config.servers.index(suffix)

    def wait_or_stop(detail: str) -> bool:
        """True: poll again. False: the command ends here (no --wait), telling the user what it waits for."""
        if not wait:
            note(cli, f"{name}: {detail}. Run this command again later, or add --wait to let it poll.")
            return False
        if clock.now() >= deadline:
            raise CliError(f"{name}: {detail} after {timeout}s; it stays drained, not removed")
        click.echo(f"waiting for {name}: {detail}", err=True)
        sleep(interval)
        return True

    read, current, index = refresh()
    # Stage 2: its queue must be empty before its instances go (they are what works through it).
    while current.max_instance_count[index] != 0:
        queued = None if force else queued_requests(cli, name, drain_started(read.config, suffix))
        if force or queued == 0:
            reason = "--force" if force else "its queue is empty"
            note(cli, f"{reason}: releasing {name}'s instances (max_instance_count 0)")
            write(released, read)
            read, current, index = refresh()
            break
        if queued is None:
            detail = (
                "no ApproximateBacklogSize datapoint from CloudWatch since the drain began, so its queue is not "
                "known to be empty"
            )
        elif remaining_instances(cli, name, current.current_instance_count[index]) == 0:
            detail = serve_stranded_queue(cli, name, queued, yes)
        else:
            detail = f"{queued:g} request(s) still queued"
        if not wait_or_stop(detail):
            json_result(cli, {"endpoint": name, "state": "draining", "queued": queued, "version": read.version})
            return
        read, current, index = refresh()
    # Stage 3: the scaling engine takes its instances away; it leaves the lists once nothing runs there.
    while (instances := remaining_instances(cli, name, current.current_instance_count[index])) != 0:
        detail = (
            f"{instances} instance(s) left, being released by the scaling engine"
            if instances is not None
            else "SageMaker's instance count cannot be read, so it is not known to be empty"
        )
        if not wait_or_stop(detail):
            json_result(cli, {"endpoint": name, "state": "releasing", "instances": instances, "version": read.version})
            return
        read, current, index = refresh()
    note(cli, f"{name} has 0 instances: removing it from server_config")
    version = write(removed, read)
    json_result(cli, {"endpoint": name, "state": "removed", "instances": 0, "version": version})


def _suffix(value: Any) -> str:
    return str(as_suffix(value))


def _draining_entries(config: Mapping[str, Any]) -> list[tuple[str, float | None]]:
    """`draining` with the start remove-endpoint recorded for each in `draining_since` ([suffix, epoch
    seconds] pairs; anything else there, e.g. after a hand edit, counts as unknown)."""
    since: dict[str, float] = {}
    recorded = config.get("draining_since")
    if isinstance(recorded, list):
        for pair in recorded:
            if isinstance(pair, list) and len(pair) == 2:
                name, when = pair
                if isinstance(when, int | float | Decimal) and not isinstance(when, bool) and when > 0:
                    since[_suffix(name)] = float(when)
    return [(name, since.get(name)) for name in (_suffix(v) for v in config.get("draining") or [])]


def _with_draining(config: Mapping[str, Any], entries: list[tuple[str, float | None]]) -> dict[str, Any]:
    proposed = dict(config)
    proposed.pop("draining", None)
    proposed.pop("draining_since", None)
    if entries:
        proposed["draining"] = [n for n, _ in entries]
        # Whole seconds, rounded up: the queue check trusts only CloudWatch minutes that begin after it.
        known = [[n, math.ceil(t)] for n, t in entries if t is not None]
        if known:
            proposed["draining_since"] = known
    return proposed


def drain_started(config: Mapping[str, Any], suffix: str) -> float | None:
    return next((t for n, t in _draining_entries(config) if n == suffix), None)


def drained(read: VersionedConfig, suffix: str) -> dict[str, Any]:
    """server_config with `suffix` draining since now (weight 0 at once; the engine keeps it there)."""
    servers = [_suffix(s) for s in read.config.get("servers") or []]
    entries = [(n, t) for n, t in _draining_entries(read.config) if n != suffix] + [(suffix, clock.now())]
    proposed = _with_draining(read.config, entries)
    weights = list(read.config.get("weights") or [])
    if suffix in servers and len(weights) == len(servers):
        weights[servers.index(suffix)] = 0
        proposed["weights"] = weights
    return proposed


def released(read: VersionedConfig, suffix: str) -> dict[str, Any]:
    servers = [_suffix(s) for s in read.config.get("servers") or []]
    caps = list(read.config.get("max_instance_count") or [None] * len(servers))
    caps[servers.index(suffix)] = 0
    return {**read.config, "max_instance_count": caps}


def removed(read: VersionedConfig, suffix: str) -> dict[str, Any]:
    servers = [_suffix(s) for s in read.config.get("servers") or []]
    index = servers.index(suffix)
    proposed = _with_draining(read.config, [(n, t) for n, t in _draining_entries(read.config) if n != suffix])
    for attribute in ("servers", "weights", "current_instance_count", "capacity_units", "max_instance_count"):
        values = read.config.get(attribute)
        if isinstance(values, list):
            proposed[attribute] = values[:index] + values[index + 1 :]
    return proposed


def remaining_instances(cli: CliContext, name: str, recorded: int) -> int | None:
    """Instances still on the endpoint: the engine's record, or SageMaker's own count when that is higher
    (an endpoint that is Failed or OutOfService serves nothing, so the engine records 0, but is billed; an
    update in flight counts at its target). None when SageMaker cannot be read."""
    state = describe_endpoints(cli, [name])[name]
    if state.status == "not found":
        return recorded
    if state.status.startswith("unknown"):
        return None
    counts = [recorded, state.current_instances or 0]
    if state.status == "Updating":
        counts.append(state.desired_instances or 0)
    return max(counts)


def serve_stranded_queue(cli: CliContext, name: str, queued: float, yes: bool) -> str:
    """A drained endpoint with requests queued and no instance (a scale-in took it to 0): the scaling engine
    leaves a draining endpoint where it is, so the operator starts one instance there, once, when asked."""
    question = f"{name} has {queued:g} queued request(s) and no instance to serve them. Start one instance on it?"
    if not yes and not click.confirm(question, default=True, err=True):
        raise CliError(
            f"{name} has {queued:g} queued request(s) and no instance; it stays drained. Run again and accept "
            "one instance, or use --force to abandon them"
        )
    start_instances(cli, name, 1)
    return f"{queued:g} request(s) queued; started one instance on it to serve them"


def warn_before_drain(cli: CliContext, config: FleetConfig, index: int, fleet: str) -> None:
    """Say what draining this endpoint costs the fleet, before the write is confirmed."""
    others = [i for i in range(len(config.servers)) if i != index and config.takes_requests(i)]
    caps = [config.max_instance_count[i] for i in others]
    dimension = get_item(cli.table_name, DIMENSION_ID, cli.table_client()) or {}
    try:
        desired: int | None = int(Decimal(str(dimension["desiredCapacity"]["N"])))
    except (KeyError, TypeError, ArithmeticError):
        desired = None  # no dimension item, or a hand-edited one: nothing to compare with
    if desired is not None and None not in caps:
        room = sum(int(c or 0) * config.capacity_units[i] for c, i in zip(caps, others, strict=True))
        if room < desired:
            click.echo(
                f"warning: the other endpoints can hold at most {room} capacity units (max_instance_count x "
                f"capacity_units) but the desired capacity is {desired}: the scaling reports Failed until their "
                "caps are raised (`fleetscaler config set --max ...`)",
                err=True,
            )
    if index == config.wake_up_index:
        wake = config.endpoint_name(fleet, next((i for i in others), index))
        click.echo(
            f"warning: {config.endpoint_name(fleet, index)} is where a fleet at zero queues requests and what the "
            f"template's wake-up alarm watches; from now on requests at zero wait on {wake}: redeploy with "
            f"EndpointSuffixes starting with {wake.removeprefix(fleet + '-')} so that its backlog wakes the fleet",
            err=True,
        )


def queued_requests(cli: CliContext, name: str, since: float | None) -> float | None:
    """Requests queued or in progress on the endpoint (CloudWatch's newest ApproximateBacklogSize)."""
    return latest_metric(cli, name, QUEUE_METRIC, "Maximum", window_seconds=QUEUE_WINDOW_SECONDS, since=since)


@config_group.command("edit")
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


@config_group.command("export")
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


@config_group.command("import")
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
        # The whole item comes from the file, but its lock must still move forward so that any writer
        # holding an older read is refused rather than overwriting the imported config.
        old = current[SERVER_CONFIG_ID]
        old_version = int(old["config_version"]["N"]) if old and "config_version" in old else None
        item = dict(new_config)
        file_version = int(item["config_version"]["N"]) if "config_version" in item else None
        if old is not None and (file_version is None or file_version <= (old_version or 0)):
            item["config_version"] = {"N": str((old_version or 0) + 1)}
        try:
            put_server_config_item(cli.table_name, item, old_version, old is not None, client)
        except ConcurrentModification:
            refuse_concurrent(cli, VersionedConfig(_python(old) if old else {}, old_version))
    others = [by_id[item_id] for item_id in changed if item_id != SERVER_CONFIG_ID]
    load_items(cli.table_name, others, client)
    cli.emit({"written": len(changed)}, f"imported {len(changed)} item(s) into {cli.table_name}")
