"""The Lambdas' settings: parsed without pydantic, with pydantic's rules and messages.

`ReferenceSettings` is the pydantic model the settings used to be (plus IDEMPOTENCY_TTL_SECONDS, declared the
same way): the parser must accept what it accepts, with the same values, and refuse what it refuses, in the same
words. One exception: pydantic's reading of a sign after leading zeros (`0-5` as -5), which is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from fleetscaler.config import IDEMPOTENCY_TTL_RANGE, Settings, SettingsError

VARIABLES = {
    "table_name": "TABLE_NAME",
    "allowed_input_prefixes": "ALLOWED_INPUT_PREFIXES",
    "scaling_timeout_seconds": "SCALING_TIMEOUT_SECONDS",
    "failover_backoff_seconds": "FAILOVER_BACKOFF_SECONDS",
    "min_capacity": "MIN_CAPACITY",
    "max_capacity": "MAX_CAPACITY",
    "target_backlog_per_unit": "TARGET_BACKLOG_PER_UNIT",
    "idempotency_ttl_seconds": "IDEMPOTENCY_TTL_SECONDS",
}


class ReferenceSettings(BaseModel, frozen=True):
    table_name: str = Field(min_length=3, max_length=255)
    resource_name: str | None = None
    allowed_input_prefixes: tuple[str, ...] = ()
    scaling_timeout_seconds: int = Field(default=25 * 60, gt=0)
    failover_backoff_seconds: int = Field(default=10 * 60, ge=0)
    metrics_namespace: str = "fleetscaler"
    min_capacity: int = Field(default=0, ge=0)
    max_capacity: int | None = Field(default=None, ge=0)
    target_backlog_per_unit: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    idempotency_ttl_seconds: int = Field(default=86400, ge=IDEMPOTENCY_TTL_RANGE[0], le=IDEMPOTENCY_TTL_RANGE[1])

    @model_validator(mode="after")
    def _bounds_in_order(self) -> ReferenceSettings:
        if self.max_capacity is not None and self.max_capacity < self.min_capacity:
            raise ValueError(f"MAX_CAPACITY ({self.max_capacity}) is below MIN_CAPACITY ({self.min_capacity})")
        return self

    @field_validator("allowed_input_prefixes")
    @classmethod
    def _prefixes_are_s3(cls, prefixes: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in prefixes:
            if not prefix.startswith("s3://") or len(prefix) <= len("s3://"):
                raise ValueError(f"{prefix!r} is not an s3://bucket[/prefix] URI")
        return prefixes

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReferenceSettings:
        """The pydantic model's own from_env, as it was."""
        raw: dict[str, object] = {
            "table_name": env.get("TABLE_NAME", ""),
            "resource_name": env.get("RESOURCE_NAME") or None,
            "allowed_input_prefixes": tuple(
                p.strip() for p in env.get("ALLOWED_INPUT_PREFIXES", "").split(",") if p.strip()
            ),
            "metrics_namespace": env.get("POWERTOOLS_METRICS_NAMESPACE", "fleetscaler"),
        }
        for name in ("SCALING_TIMEOUT_SECONDS", "FAILOVER_BACKOFF_SECONDS"):
            if name in env:
                raw[name.lower()] = env[name]
        for name in ("MIN_CAPACITY", "MAX_CAPACITY", "TARGET_BACKLOG_PER_UNIT", "IDEMPOTENCY_TTL_SECONDS"):
            if env.get(name, "").strip():
                raw[name.lower()] = env[name]
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = [
                f"{VARIABLES.get(str(err['loc'][0]), str(err['loc'][0]))}: {err['msg']}" if err["loc"] else err["msg"]
                for err in exc.errors()
            ]
            raise SettingsError("; ".join(problems)) from exc


def outcome(parse: Any, env: Mapping[str, str]) -> dict[str, Any] | str:
    """The parsed values, or the message of the refusal."""
    try:
        parsed = parse(env)
    except SettingsError as exc:
        return str(exc)
    return {name: getattr(parsed, name) for name in (*VARIABLES, "resource_name", "metrics_namespace")}


NUMBERISH = st.text(alphabet="0123456789+-._eEinfatyx \t\u00a0\u3000\x1c", max_size=12)
NUMBERS = st.one_of(
    NUMBERISH,
    st.integers(-10, 10**7).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["1" * 4300, "1" * 4301, "0" * 5000 + "7", "9" * 20, "1e400", "1e-400", "\u0665", "\uff11"]),
)
TEXTS = st.one_of(st.text(max_size=8), st.sampled_from(["x" * 255, "x" * 256, " s3://a/in/ , s3://b ", "s3://"]))


@settings(max_examples=3000, deadline=None)
@given(
    env=st.dictionaries(
        st.sampled_from([*VARIABLES.values(), "RESOURCE_NAME", "POWERTOOLS_METRICS_NAMESPACE"]),
        st.one_of(NUMBERS, TEXTS),
        max_size=6,
    )
)
@example(env={"TABLE_NAME": "meta", "MIN_CAPACITY": "4", "MAX_CAPACITY": "3"})
@example(env={"TABLE_NAME": "meta", "MAX_CAPACITY": "2.5", "SCALING_TIMEOUT_SECONDS": "", "MIN_CAPACITY": " "})
@example(env={"TABLE_NAME": "meta", "TARGET_BACKLOG_PER_UNIT": "1._5", "FAILOVER_BACKOFF_SECONDS": "1_0.0"})
@example(env={"TABLE_NAME": "meta", "IDEMPOTENCY_TTL_SECONDS": "59"})
def test_the_parser_accepts_and_refuses_exactly_what_the_pydantic_model_did(env: dict[str, str]) -> None:
    # Given any environment but pydantic's one slip (below) / When both parse it / Then the same values, or the
    # same message
    assume(not any(SIGN_AFTER_ZEROS_RE.match(value) for value in env.values()))
    assert outcome(Settings.from_env, env) == outcome(ReferenceSettings.from_env, env)


# pydantic-core drops leading zeros (and underscores) before it looks for the sign, so it read "0-5" as -5.
SIGN_AFTER_ZEROS_RE = re.compile(r"\s*[+-]?[0_]+[+-]")


@pytest.mark.parametrize("value", ["0-0", "00-0", "+0-0", "0_-0"])
def test_a_sign_after_leading_zeros_is_not_a_number(value: str) -> None:
    # Given a sign in the middle of the digits (pydantic read "0-0" as 0)
    assert ReferenceSettings.from_env({"TABLE_NAME": "meta", "MAX_CAPACITY": value}).max_capacity == 0
    # When parsed / Then it is refused, in pydantic's words for a value that is not a whole number
    with pytest.raises(SettingsError, match="MAX_CAPACITY: Input should be a valid integer, unable to parse string"):
        Settings.from_env({"TABLE_NAME": "meta", "MAX_CAPACITY": value})


def test_settings_parse_lists_and_numbers() -> None:
    settings = Settings.from_env(
        {"TABLE_NAME": "meta", "ALLOWED_INPUT_PREFIXES": " s3://a/in/ , s3://b ", "SCALING_TIMEOUT_SECONDS": "60"}
    )
    assert settings.allowed_input_prefixes == ("s3://a/in/", "s3://b")
    assert settings.scaling_timeout_seconds == 60
    assert settings.failover_backoff_seconds == 600
    assert settings.idempotency_ttl_seconds == 24 * 60 * 60


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TABLE_NAME: String should have at least 3 characters"),
        (
            {"TABLE_NAME": "meta", "ALLOWED_INPUT_PREFIXES": "https://x"},
            "ALLOWED_INPUT_PREFIXES: Value error, 'https://x' is not an s3://bucket[/prefix] URI",
        ),
        (
            {"TABLE_NAME": "meta", "SCALING_TIMEOUT_SECONDS": "-1"},
            "SCALING_TIMEOUT_SECONDS: Input should be greater than 0",
        ),
        (
            {"TABLE_NAME": "meta", "MIN_CAPACITY": "-1"},
            "MIN_CAPACITY: Input should be greater than or equal to 0",
        ),
        (
            {"TABLE_NAME": "meta", "MAX_CAPACITY": "2.5"},
            "MAX_CAPACITY: Input should be a valid integer, unable to parse string as an integer",
        ),
        ({"TABLE_NAME": "meta", "MIN_CAPACITY": "4", "MAX_CAPACITY": "3"}, "Value error, MAX_CAPACITY (3) is below"),
        ({"TABLE_NAME": "meta", "TARGET_BACKLOG_PER_UNIT": "inf"}, "TARGET_BACKLOG_PER_UNIT: Input should be a finite"),
        (
            {"TABLE_NAME": "meta", "IDEMPOTENCY_TTL_SECONDS": "30"},
            "IDEMPOTENCY_TTL_SECONDS: Input should be greater than or equal to 60",
        ),
        (
            {"TABLE_NAME": "meta", "IDEMPOTENCY_TTL_SECONDS": "2592001"},
            "IDEMPOTENCY_TTL_SECONDS: Input should be less than or equal to 2592000",
        ),
    ],
)
def test_bad_environment_names_the_variable_and_the_rule(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert str(raised.value).startswith(message)


def test_every_problem_is_reported_at_once_in_the_order_of_the_fields() -> None:
    # Given three bad variables / When parsed / Then all three, table first, each with its rule
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"MAX_CAPACITY": "x", "TABLE_NAME": "ab", "SCALING_TIMEOUT_SECONDS": "0"})
    assert str(raised.value) == (
        "TABLE_NAME: String should have at least 3 characters; "
        "SCALING_TIMEOUT_SECONDS: Input should be greater than 0; "
        "MAX_CAPACITY: Input should be a valid integer, unable to parse string as an integer"
    )


def test_capacity_bounds_default_to_zero_and_the_caps() -> None:
    # Given no bounds in the environment / Then the minimum is 0 and the maximum comes from the caps
    settings = Settings.from_env({"TABLE_NAME": "meta"})
    assert (settings.min_capacity, settings.max_capacity) == (0, None)
    bounded = Settings.from_env({"TABLE_NAME": "meta", "MIN_CAPACITY": "1", "MAX_CAPACITY": "12"})
    assert (bounded.min_capacity, bounded.max_capacity) == (1, 12)
