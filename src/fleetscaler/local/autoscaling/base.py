"""The emulator's constants, value types and errors, shared by its parts."""

from __future__ import annotations

from typing import Literal

SERVICE_NAMESPACE = "custom-resource"
SCALABLE_DIMENSION = "custom-resource:ResourceType:Property"
PERIOD_SECONDS = 60
DEFAULT_COOLDOWN_SECONDS = 300
# Shape of the alarms Application Auto Scaling creates for a target tracking policy (observed, not an API).
TARGET_TRACKING_OUT_DATAPOINTS = 3
TARGET_TRACKING_IN_DATAPOINTS = 15
TARGET_TRACKING_IN_RATIO = 0.9

ActivityStatus = Literal["Pending", "InProgress", "Successful", "Failed"]
Direction = Literal["out", "in"]


class ScalingConfigurationError(ValueError):
    """A policy, metric or target is not valid; the message names the field and the rule."""


class RegistrationError(RuntimeError):
    """RegisterScalableTarget failed: the custom resource did not answer GET (or PATCH) with 200."""
