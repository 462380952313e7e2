"""Configuration of the Lambda functions, parsed once from environment variables."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from fleetscaler.logic.signal import DEFAULT_TARGET_BACKLOG_PER_UNIT

DEFAULT_SCALING_TIMEOUT_SECONDS = 25 * 60
DEFAULT_FAILOVER_BACKOFF_SECONDS = 10 * 60


class SettingsError(ValueError):
    """An environment variable is missing or malformed; the message names it."""


class Settings(BaseModel, frozen=True):
    table_name: str = Field(min_length=3, max_length=255)
    # The fleet's resourceName (endpoints are `{resource_name}-{server}`). When unset, the router reads it
    # from the scalable-dimension item once per container.
    resource_name: str | None = None
    allowed_input_prefixes: tuple[str, ...] = ()
    scaling_timeout_seconds: int = Field(default=DEFAULT_SCALING_TIMEOUT_SECONDS, gt=0)
    failover_backoff_seconds: int = Field(default=DEFAULT_FAILOVER_BACKOFF_SECONDS, ge=0)
    metrics_namespace: str = "fleetscaler"
    # Bounds of the desired capacity the scaling API accepts, in capacity units. max_capacity None: the sum
    # over endpoints of max_instance_count x capacity_units, unbounded when an endpoint has no cap.
    min_capacity: int = Field(default=0, ge=0)
    max_capacity: int | None = Field(default=None, ge=0)
    # The backlog per capacity unit the fleet is scaled to (the scaling policy's target): the engine sizes
    # queue floors, wake-up quotas and the capacity shortfall with it.
    target_backlog_per_unit: float = Field(default=DEFAULT_TARGET_BACKLOG_PER_UNIT, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Settings:
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
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw: dict[str, object] = {
            "table_name": env.get("TABLE_NAME", ""),
            "resource_name": env.get("RESOURCE_NAME") or None,
            "allowed_input_prefixes": tuple(
                p.strip() for p in env.get("ALLOWED_INPUT_PREFIXES", "").split(",") if p.strip()
            ),
            "metrics_namespace": env.get("POWERTOOLS_METRICS_NAMESPACE", "fleetscaler"),
        }
        if "SCALING_TIMEOUT_SECONDS" in env:
            raw["scaling_timeout_seconds"] = env["SCALING_TIMEOUT_SECONDS"]
        if "FAILOVER_BACKOFF_SECONDS" in env:
            raw["failover_backoff_seconds"] = env["FAILOVER_BACKOFF_SECONDS"]
        if env.get("MIN_CAPACITY", "").strip():
            raw["min_capacity"] = env["MIN_CAPACITY"]
        if env.get("MAX_CAPACITY", "").strip():
            raw["max_capacity"] = env["MAX_CAPACITY"]
        if env.get("TARGET_BACKLOG_PER_UNIT", "").strip():
            raw["target_backlog_per_unit"] = env["TARGET_BACKLOG_PER_UNIT"]
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            names = {
                "table_name": "TABLE_NAME",
                "allowed_input_prefixes": "ALLOWED_INPUT_PREFIXES",
                "scaling_timeout_seconds": "SCALING_TIMEOUT_SECONDS",
                "failover_backoff_seconds": "FAILOVER_BACKOFF_SECONDS",
                "min_capacity": "MIN_CAPACITY",
                "max_capacity": "MAX_CAPACITY",
                "target_backlog_per_unit": "TARGET_BACKLOG_PER_UNIT",
            }
            problems = [
                f"{names.get(str(err['loc'][0]), str(err['loc'][0]))}: {err['msg']}" if err["loc"] else err["msg"]
                for err in exc.errors()
            ]
            raise SettingsError("; ".join(problems)) from exc


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()
