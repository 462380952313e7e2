"""Configuration of the Lambda functions, parsed once from environment variables.

A plain parser rather than a pydantic model: every Lambda pays for its imports on the request that wakes a
container, and pydantic alone costs the router about a fifth of its cold import. The rules and the messages
are pydantic's own (a model with the same fields is the reference in tests/unit/test_config.py): a number
may carry surrounding whitespace, a sign, `_` between digits and, for a whole number, a fraction of zeros
(`5.0`); a problem reads `VARIABLE: Input should be greater than 0`, and every problem is reported at once.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from fleetscaler.logic.signal import DEFAULT_TARGET_BACKLOG_PER_UNIT

DEFAULT_SCALING_TIMEOUT_SECONDS = 25 * 60
DEFAULT_FAILOVER_BACKOFF_SECONDS = 10 * 60
# How long the router remembers an Idempotency-Key's answer (see docs/router-api.md, "Idempotency").
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
IDEMPOTENCY_TTL_RANGE = (60, 30 * 24 * 60 * 60)


class SettingsError(ValueError):
    """An environment variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    # The fleet's resourceName (endpoints are `{resource_name}-{server}`). When unset, the router reads it
    # from the scalable-dimension item once per container.
    resource_name: str | None = None
    allowed_input_prefixes: tuple[str, ...] = ()
    scaling_timeout_seconds: int = DEFAULT_SCALING_TIMEOUT_SECONDS
    failover_backoff_seconds: int = DEFAULT_FAILOVER_BACKOFF_SECONDS
    metrics_namespace: str = "fleetscaler"
    # Bounds of the desired capacity the scaling API accepts, in capacity units. max_capacity None: the sum
    # over endpoints of max_instance_count x capacity_units, unbounded when an endpoint has no cap.
    min_capacity: int = 0
    max_capacity: int | None = None
    # The backlog per capacity unit the fleet is scaled to (the scaling policy's target): the engine sizes
    # queue floors, wake-up quotas and the capacity shortfall with it.
    target_backlog_per_unit: float = DEFAULT_TARGET_BACKLOG_PER_UNIT
    # How long a repeat of a request with the same Idempotency-Key gets the first answer.
    idempotency_ttl_seconds: int = DEFAULT_IDEMPOTENCY_TTL_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        parser = _Parser(env)
        table_name = parser.field("TABLE_NAME", _text_of_length(3, 255), "", when="always")
        prefixes = parser.field("ALLOWED_INPUT_PREFIXES", _s3_prefixes, _NO_PREFIXES, when="always")
        scaling_timeout = parser.field(
            "SCALING_TIMEOUT_SECONDS", _whole(above=0), DEFAULT_SCALING_TIMEOUT_SECONDS, when="set"
        )
        failover_backoff = parser.field(
            "FAILOVER_BACKOFF_SECONDS", _whole(at_least=0), DEFAULT_FAILOVER_BACKOFF_SECONDS, when="set"
        )
        min_capacity = parser.field("MIN_CAPACITY", _whole(at_least=0), 0)
        max_capacity: int | None = parser.field("MAX_CAPACITY", _whole(at_least=0), None)
        target = parser.field("TARGET_BACKLOG_PER_UNIT", _finite_number_above_zero, DEFAULT_TARGET_BACKLOG_PER_UNIT)
        low, high = IDEMPOTENCY_TTL_RANGE
        ttl = parser.field(
            "IDEMPOTENCY_TTL_SECONDS", _whole(at_least=low, at_most=high), DEFAULT_IDEMPOTENCY_TTL_SECONDS
        )
        if not parser.problems and max_capacity is not None and max_capacity < min_capacity:
            parser.problems.append(f"Value error, MAX_CAPACITY ({max_capacity}) is below MIN_CAPACITY ({min_capacity})")
        if parser.problems:
            raise SettingsError("; ".join(parser.problems))
        return cls(
            table_name=table_name,
            resource_name=env.get("RESOURCE_NAME") or None,
            allowed_input_prefixes=prefixes,
            scaling_timeout_seconds=scaling_timeout,
            failover_backoff_seconds=failover_backoff,
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "fleetscaler"),
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            target_backlog_per_unit=target,
            idempotency_ttl_seconds=ttl,
        )


T = TypeVar("T")
Given = Literal["always", "set", "non-blank"]


class _Invalid(ValueError):
    """A value breaks its rule; the message is the rule, as pydantic words it."""


class _Parser:
    """Reads variables one by one, keeping every problem (`NAME: rule`) in the order the fields are declared."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def field(self, name: str, parse: Callable[[str], T], default: T, *, when: Given = "non-blank") -> T:
        """`parse` the variable when it counts as given: `always` (a missing one reads as ""), when `set` at all
        (even empty), or when it is `non-blank`; otherwise, and when it breaks its rule, `default`."""
        value = self.env.get(name)
        if when == "always":
            value = value or ""
        elif value is None or (when == "non-blank" and not value.strip()):
            return default
        try:
            return parse(value)
        except _Invalid as exc:
            self.problems.append(f"{name}: {exc}")
            return default


def _text_of_length(shortest: int, longest: int) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if len(value) < shortest:
            raise _Invalid(f"String should have at least {shortest} characters")
        if len(value) > longest:
            raise _Invalid(f"String should have at most {longest} characters")
        return value

    return parse


_NO_PREFIXES: tuple[str, ...] = ()


def _s3_prefixes(value: str) -> tuple[str, ...]:
    prefixes = tuple(p.strip() for p in value.split(",") if p.strip())
    for prefix in prefixes:
        if not prefix.startswith("s3://") or len(prefix) <= len("s3://"):
            raise _Invalid(f"Value error, {prefix!r} is not an s3://bucket[/prefix] URI")
    return prefixes


# What pydantic strips around a number: Unicode's White_Space characters (not all of Python's str.isspace()).
_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"
# ASCII digits, single underscores between them, and for a whole number an optional fraction of zeros.
_WHOLE_RE = re.compile(r"(?P<sign>[+-]?)(?P<digits>[0-9](?:_?[0-9])*)(?:\.0+)?")
# Python refuses to convert longer digit strings (and so does pydantic).
_MAX_DIGITS = 4300
_NOT_WHOLE = "Input should be a valid integer, unable to parse string as an integer"


def _whole(
    *, above: int | None = None, at_least: int | None = None, at_most: int | None = None
) -> Callable[[str], int]:
    def parse(value: str) -> int:
        match = _WHOLE_RE.fullmatch(value.strip(_WHITESPACE))
        if match is None:
            raise _Invalid(_NOT_WHOLE)
        digits = match["digits"].replace("_", "").lstrip("0") or "0"
        if len(digits) > _MAX_DIGITS:
            raise _Invalid("Unable to parse input string as an integer, exceeded maximum size")
        number = -int(digits) if match["sign"] == "-" else int(digits)
        _in_bounds(number, above, at_least, at_most)
        return number

    return parse


# `_` between two characters of the number, the next one a digit (pydantic reads `1._5` as 1.5, not `_1`, `1_`
# or `1__0`).
_MISPLACED_UNDERSCORE_RE = re.compile(r"^_|_$|__|_(?![0-9])")


def _finite_number_above_zero(value: str) -> float:
    text = value.strip(_WHITESPACE)
    if not text.isascii() or _MISPLACED_UNDERSCORE_RE.search(text):
        raise _Invalid("Input should be a valid number, unable to parse string as a number")
    try:
        number = float(text.replace("_", ""))
    except ValueError:
        raise _Invalid("Input should be a valid number, unable to parse string as a number") from None
    if not math.isfinite(number):
        raise _Invalid("Input should be a finite number")
    _in_bounds(number, 0, None, None)
    return number


def _in_bounds(number: float, above: float | None, at_least: float | None, at_most: float | None) -> None:
    if above is not None and not number > above:
        raise _Invalid(f"Input should be greater than {above}")
    if at_least is not None and not number >= at_least:
        raise _Invalid(f"Input should be greater than or equal to {at_least}")
    if at_most is not None and not number <= at_most:
        raise _Invalid(f"Input should be less than or equal to {at_most}")


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()
