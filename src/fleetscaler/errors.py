"""Domain errors. Handlers map them to HTTP in one place; nothing below the handlers knows HTTP."""

from __future__ import annotations


class FleetscalerError(Exception):
    """Base of every error the product raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(FleetscalerError):
    """The caller sent something that breaks a rule; the message names the field and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class PayloadTooLarge(FleetscalerError):
    """An inline body is larger than SageMaker accepts."""


class InputNotAllowed(FleetscalerError):
    """InputLocation points outside the allowed S3 prefixes."""


class FleetNotFound(FleetscalerError):
    """The fleet (resourceName) or scalable dimension asked for does not exist."""


class ConfigurationUnusable(FleetscalerError):
    """The server_config item is missing or invalid; the message says what to fix."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class InvalidServerConfig(ConfigurationUnusable):
    """server_config breaks one or more validation rules."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid server_config: " + "; ".join(problems), problems)


class Throttled(FleetscalerError):
    """DynamoDB or SageMaker throttled us; the caller may retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamRejected(FleetscalerError):
    """SageMaker rejected a call; its message is passed on."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class EndpointBusy(UpstreamRejected):
    """SageMaker refused an update because the endpoint is not InService; that part of the plan waits."""


class StoreUnavailable(FleetscalerError):
    """The metadata table could not be read or written for a reason other than throttling."""


class ConcurrentModification(FleetscalerError):
    """An optimistic-locking write lost the race more times than the retry budget allows."""
