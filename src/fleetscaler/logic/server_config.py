"""The fleet's `server_config` item as validated domain objects.

Operators edit this item by hand, so every rule lives here, once, and every message says what to fix.
Two views, one set of rules:

- `validate_routing_config`: what the router reads (servers, weights, draining) checked strictly; a broken
  attribute only the scaling engine uses never stops routing.
- `validate_server_config`: every rule, the routing ones with the same words, plus the engine's attributes
  and unknown (misspelt) attributes. The scaling engine and the CLI validate through it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from fleetscaler.errors import InvalidServerConfig, NoEndpointAvailable
from fleetscaler.logic.routing import RoutingHints, choose_endpoint, parse_routing_hints
from fleetscaler.logic.wrr import pick_with_fallback

Strategy = Literal["balanced", "prioritized", "race"]
STRATEGIES: tuple[str, ...] = ("balanced", "prioritized", "race")
DEFAULT_STRATEGY: Strategy = "balanced"

# SageMaker: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
ENDPOINT_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
SERVER_SUFFIX_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_ENDPOINT_NAME = 63

OPTIONAL_LISTS = ("capacity_units", "max_instance_count")


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute of the server_config item: who reads it, its type, its rule and what it means.

    `group` says whose the attribute is: "router" (the router checks it strictly), "engine" (only the scaling engine
    and the CLI check it) or "bookkeeping" (written by the product itself). The validator's attribute lists come from
    SERVER_CONFIG_ATTRIBUTES, and docs/reference/server-config.md is generated from it.
    """

    name: str
    group: Literal["router", "engine", "bookkeeping"]
    type: str
    rule: str
    default: str
    example: str
    description: str


# Every attribute of the item, in the order of the messages that list them. Anything else on the item is a mistake
# (a misspelt name). The rules here are the ones the functions below check, in the same words.
SERVER_CONFIG_ATTRIBUTES: tuple[AttributeSpec, ...] = (
    AttributeSpec(
        "servers", "router", "list of strings",
        "non-empty; each suffix letters, digits and hyphens, starting and ending with a letter or digit, once "
        "each; the endpoint name `{resourceName}-{suffix}` at most 63 characters (a number such as 3 means \"3\")",
        "required", '["1", "2", "3"]',
        "The endpoint name suffixes: endpoint *i* is named `{resourceName}-{servers[i]}`. Every other list is "
        "index-aligned with it, and its order is the fleet's priority order.",
    ),
    AttributeSpec(
        "weights", "router", "list of numbers",
        "one whole number >= 0 per server", "required", "[1, 1, 1]",
        "The routing weight of each endpoint. The scaling engine sets them from serving capacity at every "
        "reconcile; a hand edit lasts until then. A draining endpoint gets no request whatever its weight.",
    ),
    AttributeSpec(
        "draining", "router", "list of strings",
        "each names one of servers, once", "none", '["3"]',
        "Servers on their way out (`fleetscaler config remove-endpoint`): weight 0, no new capacity, their "
        "instances kept until their queued requests are done.",
    ),
    AttributeSpec(
        "current_instance_count", "engine", "list of numbers",
        "one whole number >= 0 per server", "0 each", "[1, 1, 1]",
        "Instances per endpoint as last recorded by the scaling engine.",
    ),
    AttributeSpec(
        "capacity_units", "engine", "list of numbers",
        "one whole number >= 1 per server", "1 each", "[1, 2, 4]",
        "The relative throughput of one instance of each endpoint; capacity is counted in these units.",
    ),
    AttributeSpec(
        "max_instance_count", "engine", "list of numbers or null",
        "one whole number >= 0, or null (no cap), per server", "no cap", "[10, 10, null]",
        "The per-endpoint instance cap. The router reads the valid entries only to skip endpoints capped at 0 "
        "when the fleet is at zero; 0 with `draining` releases an endpoint's instances.",
    ),
    AttributeSpec(
        "strategy", "engine", "string",
        "one of " + ", ".join(STRATEGIES), DEFAULT_STRATEGY, '"prioritized"',
        "The placement strategy: how the scaling engine spreads the desired capacity over the endpoints.",
    ),
    AttributeSpec(
        "id", "bookkeeping", "string",
        "always server_config", "required", '"server_config"',
        "The table's partition key.",
    ),
    AttributeSpec(
        "request_count", "bookkeeping", "number",
        "whole number >= 0 (written by the router)", "none (the first request starts it)", "1234",
        "The router's global request counter, incremented by the one UpdateItem each request makes.",
    ),
    AttributeSpec(
        "config_version", "bookkeeping", "number",
        "whole number (written by every config writer)", "none (the first conditional write sets it)", "7",
        "The optimistic lock of the config writers (scaling engine, CLI): each write is conditional on it and "
        "moves it on.",
    ),
    AttributeSpec(
        "draining_since", "bookkeeping", "list of [suffix, epoch seconds] pairs",
        "written by `config remove-endpoint`; ignored by the Lambdas", "none", '[["3", 1764640800]]',
        "When `config remove-endpoint` began draining each server.",
    ),
    AttributeSpec(
        "routing", "bookkeeping", "map",
        "written by the scaling engine; an unreadable one is ignored and replaced, never fatal", "none",
        '{"backlog": [0, 4, 0], "counter": 1200, "at": 1764640800, "wake_up": [0, 0, 0], "ahead": [0, 0, 0]}',
        "The engine's snapshot of the queues for the router: `backlog` (requests queued per endpoint), `counter` "
        "(`request_count` when it was taken), `at` (epoch seconds), `wake_up` (requests each endpoint may hold "
        "while nothing serves anywhere), `ahead` (requests counted ahead of capacity still starting). Never shown "
        "or edited by the CLI.",
    ),
)
# The item's attributes, by who reads them.
ROUTING_ATTRIBUTES = tuple(a.name for a in SERVER_CONFIG_ATTRIBUTES if a.group == "router")
ENGINE_ATTRIBUTES = tuple(a.name for a in SERVER_CONFIG_ATTRIBUTES if a.group == "engine")
# Written by the product itself: the key, the router's counter, the writers' lock, remove-endpoint's notes, the
# engine's snapshot of the queues (read by the router; an unreadable one is ignored and replaced, never fatal).
BOOKKEEPING_ATTRIBUTES = tuple(a.name for a in SERVER_CONFIG_ATTRIBUTES if a.group == "bookkeeping")
KNOWN_ATTRIBUTES = (*ROUTING_ATTRIBUTES, *ENGINE_ATTRIBUTES, *BOOKKEEPING_ATTRIBUTES)
# What the scaling engine keeps for itself on the item (never an operator's to edit; hidden from their views).
ENGINE_MEMORY = ("routing",)


@dataclass(frozen=True)
class RouteChoice:
    """Where one request goes: `primary`, and `fallback` if SageMaker refuses it there (None: nowhere else)."""

    primary: int
    fallback: int | None


@dataclass(frozen=True, kw_only=True)
class RoutingConfig:
    """What the router needs of server_config. Lists are index-aligned with `servers`."""

    servers: tuple[str, ...]
    weights: tuple[int, ...]
    # Caps: the router reads them only to skip endpoints capped at 0 when the fleet is at zero, and takes the
    # entries that are valid (the engine reports the others).
    max_instance_count: tuple[int | None, ...]
    # Servers being drained (`fleetscaler config remove-endpoint`): no new requests, no new capacity.
    draining: frozenset[str] = frozenset()
    # The engine's snapshot of the queues (see logic.routing); None before the first one or when unreadable,
    # which `routing_problems` then says.
    routing: RoutingHints | None = None
    routing_problems: tuple[str, ...] = ()

    def endpoint_name(self, resource_name: str, index: int) -> str:
        return endpoint_name(resource_name, self.servers[index])

    def endpoint_names(self, resource_name: str) -> list[str]:
        return [endpoint_name(resource_name, s) for s in self.servers]

    def is_draining(self, index: int) -> bool:
        return self.servers[index] in self.draining

    def takes_requests(self, index: int) -> bool:
        """False for an endpoint on its way out: draining, or capped at 0 instances."""
        return not self.is_draining(index) and self.max_instance_count[index] != 0

    @property
    def wake_up_index(self) -> int:
        """Where requests wait while no endpoint has a routing weight (a fleet at zero): the first endpoint
        in servers order that takes requests, so nothing queues on an endpoint that is leaving."""
        return next((i for i in range(len(self.servers)) if self.takes_requests(i)), 0)

    @property
    def routing_weights(self) -> tuple[int, ...]:
        """The weights the router follows: a draining endpoint gets nothing, whatever weight a hand edit left."""
        return tuple(0 if self.is_draining(i) else w for i, w in enumerate(self.weights))

    def choose(self, counter: int, resource_name: str, now: float | None = None) -> RouteChoice:
        """The endpoint for request number `counter` and the one to retry on.

        Where the request finishes first, given the weights and the engine's snapshot of the queues
        (`logic.routing.choose_endpoint`); the retry goes to the next other endpoint of the round-robin. A fleet
        at zero queues where it wakes, with no retry elsewhere (the engine's wake-up quotas decide where). Raises
        NoEndpointAvailable when no endpoint takes requests at all.
        """
        weights = self.routing_weights
        if any(weights):
            primary = choose_endpoint(counter, weights, self.routing, now)
            assert primary is not None
            return RouteChoice(primary, _other(weights, counter, primary))
        if not any(self.takes_requests(i) for i in range(len(self.servers))):
            raise NoEndpointAvailable(f"no endpoint of the fleet takes requests: {self._why_none(resource_name)}")
        chosen = choose_endpoint(counter, weights, self.routing, now)
        if chosen is None or not self.takes_requests(chosen):
            chosen = self.wake_up_index
        return RouteChoice(chosen, None)

    def _why_none(self, resource_name: str) -> str:
        reasons = [
            f"{self.endpoint_name(resource_name, i)} is "
            + ("draining" if self.is_draining(i) else "capped at 0 instances (max_instance_count)")
            for i in range(len(self.servers))
        ]
        return "; ".join(reasons)


@dataclass(frozen=True, kw_only=True)
class FleetConfig(RoutingConfig):
    """A valid server_config, every attribute checked. Lists are index-aligned with `servers`."""

    current_instance_count: tuple[int, ...]
    capacity_units: tuple[int, ...]
    max_instance_count: tuple[int | None, ...]
    strategy: Strategy = DEFAULT_STRATEGY
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def index_of_endpoint(self, resource_name: str, name: str) -> int | None:
        prefix = f"{resource_name}-"
        if not name.startswith(prefix):
            return None
        suffix = name[len(prefix) :]
        return self.servers.index(suffix) if suffix in self.servers else None

    @property
    def placement_caps(self) -> tuple[int | None, ...]:
        """Caps as the placement sees them: a draining endpoint gets no share of the plan."""
        return tuple(0 if self.is_draining(i) else cap for i, cap in enumerate(self.max_instance_count))

    @property
    def capacity(self) -> int:
        """Serving capacity in units according to the recorded instance counts."""
        return sum(n * u for n, u in zip(self.current_instance_count, self.capacity_units, strict=True))


def endpoint_name(resource_name: str, server: str) -> str:
    return f"{resource_name}-{server}"


def _other(weights: Sequence[int], counter: int, chosen: int) -> int | None:
    """Where a request refused by `chosen` goes: the round-robin's next other endpoint with weight."""
    primary, fallback = pick_with_fallback(weights, counter)
    if primary != chosen:
        return primary
    if fallback is not None:
        return fallback
    return next((i for i, w in enumerate(weights) if w and i != chosen), None)


def _as_int(value: object) -> int | None:
    """An integer from a DynamoDB number (int, integral float or Decimal), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        if int(value) == value:
            return int(value)
        return None
    if isinstance(value, str):
        try:
            return _as_int(Decimal(value.strip()))
        except ArithmeticError:
            return None
    return None


def as_suffix(value: object) -> object:
    """A server suffix as written by hand: the number 3 means "3"; anything else is left as it is for the
    caller's rules to judge."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        number = _as_int(value)
        if number is not None:
            return str(number)
    return value


def _int_list(
    raw: Mapping[str, Any], name: str, count: int, minimum: int, problems: list[str], *, allow_null: bool = False
) -> list[int | None] | None:
    values = raw.get(name)
    if values is None:
        return None
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        problems.append(f"{name}: must be a list of numbers")
        return None
    if len(values) != count:
        problems.append(f"{name}: has {len(values)} entries but servers has {count} (one per server, same order)")
        return None
    result: list[int | None] = []
    for i, value in enumerate(values):
        if allow_null and value is None:
            result.append(None)
            continue
        number = _as_int(value)
        if number is None or number < minimum:
            problems.append(f"{name}[{i}]: must be a whole number >= {minimum}, got {value!r}")
            result.append(None)
        else:
            result.append(number)
    return result


def _draining(raw: Mapping[str, Any], servers: Sequence[str], problems: list[str]) -> list[str]:
    """`draining`: optional list of server suffixes (not index-aligned: it names the servers)."""
    values = raw.get("draining")
    if values is None:
        return []
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        problems.append('draining: must be a list of server suffixes, e.g. ["3"]')
        return []
    result: list[str] = []
    for i, value in enumerate(values):
        value = as_suffix(value)
        if not isinstance(value, str) or value not in servers:
            problems.append(f"draining[{i}]: {value!r} is not one of servers ({', '.join(servers)})")
        elif value in result:
            problems.append(f"draining[{i}]: {value!r} appears more than once")
        else:
            result.append(value)
    return result


@dataclass(frozen=True)
class _RoutingAttributes:
    servers: list[str]
    count: int
    weights: list[int | None] | None
    draining: list[str]


def _routing_attributes(raw: Mapping[str, Any], resource_name: str | None, problems: list[str]) -> _RoutingAttributes:
    """Check servers, weights and draining, adding one message per broken rule to `problems`."""
    servers_raw = raw.get("servers")
    servers: list[str] = []
    if not isinstance(servers_raw, Sequence) or isinstance(servers_raw, str | bytes) or not servers_raw:
        problems.append('servers: must be a non-empty list of endpoint name suffixes, e.g. ["1", "2"]')
    else:
        seen: set[str] = set()
        for i, server in enumerate(servers_raw):
            # Hand-edited items sometimes store suffixes as numbers; "1" and 1 mean the same endpoint.
            server = as_suffix(server)
            if not isinstance(server, str) or not SERVER_SUFFIX_RE.match(server):
                problems.append(
                    f"servers[{i}]: {server!r} is not valid in a SageMaker endpoint name "
                    "(letters, digits and hyphens; must start and end with a letter or digit)"
                )
                continue
            if server in seen:
                problems.append(f"servers[{i}]: {server!r} appears more than once")
            seen.add(server)
            if resource_name is not None and len(endpoint_name(resource_name, server)) > MAX_ENDPOINT_NAME:
                problems.append(
                    f"servers[{i}]: endpoint name {endpoint_name(resource_name, server)!r} is longer than "
                    f"{MAX_ENDPOINT_NAME} characters"
                )
            servers.append(server)
    count = len(servers_raw) if isinstance(servers_raw, Sequence) and not isinstance(servers_raw, str) else 0

    weights = _int_list(raw, "weights", count, 0, problems)
    if raw.get("weights") is None:
        problems.append("weights: is required (one whole number >= 0 per server)")
    draining = _draining(raw, servers, problems)
    return _RoutingAttributes(servers, count, weights, draining)


def validate_routing_config(raw: Mapping[str, Any], resource_name: str | None = None) -> RoutingConfig:
    """The router's view: servers, weights and draining must be valid (InvalidServerConfig lists what is not,
    in the words of `validate_server_config`); the attributes only the engine uses are not checked here."""
    problems: list[str] = []
    routing = _routing_attributes(raw, resource_name, problems)
    if problems:
        raise InvalidServerConfig(problems)
    # Valid cap entries only: a broken cap is the engine's to report, not a reason to stop routing.
    caps = _int_list(raw, "max_instance_count", routing.count, 0, [], allow_null=True)
    hints, hint_problems = parse_routing_hints(raw.get("routing"), routing.count)
    return RoutingConfig(
        servers=tuple(routing.servers),
        weights=tuple(int(w or 0) for w in routing.weights or ()),
        max_instance_count=tuple(caps) if caps else (None,) * routing.count,
        draining=frozenset(routing.draining),
        routing=hints,
        routing_problems=tuple(hint_problems),
    )


def unknown_attribute_problems(raw: Mapping[str, Any]) -> list[str]:
    """One message per attribute that is not one of server_config's, with the likely intended name."""
    import difflib  # only the engine and the CLI get here: kept off the router's cold start

    problems = []
    for name in sorted(str(key) for key in raw if key not in KNOWN_ATTRIBUTES):
        close = difflib.get_close_matches(name, KNOWN_ATTRIBUTES, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(KNOWN_ATTRIBUTES)}"
        problems.append(f"{name}: is not an attribute of server_config ({hint})")
    return problems


def validate_server_config(raw: Mapping[str, Any], resource_name: str | None = None) -> FleetConfig:
    """Check every rule at once and raise InvalidServerConfig listing all problems found."""
    problems: list[str] = []
    routing = _routing_attributes(raw, resource_name, problems)
    count = routing.count
    counts = _int_list(raw, "current_instance_count", count, 0, problems)
    units = _int_list(raw, "capacity_units", count, 1, problems)
    caps = _int_list(raw, "max_instance_count", count, 0, problems, allow_null=True)

    strategy = raw.get("strategy") or DEFAULT_STRATEGY
    if strategy not in STRATEGIES:
        problems.append(f"strategy: must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    problems.extend(unknown_attribute_problems(raw))
    if problems:
        raise InvalidServerConfig(problems)

    assert routing.weights is not None
    validated = {*ROUTING_ATTRIBUTES, *ENGINE_ATTRIBUTES, "routing"}
    hints, hint_problems = parse_routing_hints(raw.get("routing"), count)
    return FleetConfig(
        servers=tuple(routing.servers),
        weights=tuple(int(w or 0) for w in routing.weights),
        current_instance_count=tuple(int(n or 0) for n in counts) if counts else (0,) * count,
        capacity_units=tuple(int(u or 1) for u in units) if units else (1,) * count,
        max_instance_count=tuple(caps) if caps else (None,) * count,
        strategy=strategy,
        draining=frozenset(routing.draining),
        routing=hints,
        routing_problems=tuple(hint_problems),
        extra={k: v for k, v in raw.items() if k not in validated},
    )
