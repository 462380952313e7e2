"""`fleetscaler config remove-endpoint`: drain an endpoint, release its instances once its queue is empty,
then take it out of the fleet, without dropping a queued request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import click

from fleetscaler import clock
from fleetscaler.cli.config.common import apply_change, json_result, note, read_config
from fleetscaler.cli.context import CliContext, CliError, pass_cli
from fleetscaler.cli.endpoints import describe_endpoints, latest_metric, start_instances
from fleetscaler.dal.models import DIMENSION_ID
from fleetscaler.dal.seed import get_item
from fleetscaler.dal.store import VersionedConfig
from fleetscaler.logic.server_config import FleetConfig, as_suffix, validate_server_config

# Polling for `remove-endpoint --wait`; tests replace it so no real time passes.
sleep: Callable[[float], None] = time.sleep
# remove-endpoint releases an endpoint once this SageMaker metric (queued + in progress) is 0.
QUEUE_METRIC = "ApproximateBacklogSize"
# SageMaker publishes it every minute while the endpoint exists; older datapoints say nothing about now.
QUEUE_WINDOW_SECONDS = 5 * 60


@click.command("remove-endpoint")
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
                f"capacity_units) but the desired capacity is {desired}: the fleet will run at {room} (bound by its "
                "endpoints: the CapacityBound alarm fires) until their caps are raised (`fleetscaler config set "
                "--max ...`)",
                err=True,
            )
    if index == config.wake_up_index:
        wake = config.endpoint_name(fleet, next((i for i in others), index))
        click.echo(
            f"note: {config.endpoint_name(fleet, index)} is the first endpoint a fleet at zero queues requests on; "
            f"from now on that is {wake}",
            err=True,
        )


def queued_requests(cli: CliContext, name: str, since: float | None) -> float | None:
    """Requests queued or in progress on the endpoint (CloudWatch's newest ApproximateBacklogSize)."""
    return latest_metric(cli, name, QUEUE_METRIC, "Maximum", window_seconds=QUEUE_WINDOW_SECONDS, since=since)
