"""Domain errors. Handlers map them to HTTP in one place; nothing below the handlers knows HTTP."""

from __future__ import annotations

import re

# A message quotes what the caller sent; a value longer than this is cut (an answer or log line never
# repeats a 10,000-character id). URIs, ARNs and names of ordinary length stay whole.
LONGEST_QUOTED_VALUE = 200
SHORTENED_VALUE_KEEPS = 100
_LONG_VALUE_RE = re.compile(rf"[^\s'\"]{{{LONGEST_QUOTED_VALUE + 1},}}")


def shorten_long_values(message: str) -> str:
    """`message` with every run of more than 200 non-space characters cut to its first 100 and its length,
    e.g. `'xxxx... (10000 characters)'`."""
    return _LONG_VALUE_RE.sub(
        lambda match: f"{match.group()[:SHORTENED_VALUE_KEEPS]}... ({len(match.group())} characters)", message
    )


class FleetscalerError(Exception):
    """Base of every error the product raises on purpose. Its message is what answers and logs show."""

    def __init__(self, message: str) -> None:
        message = shorten_long_values(message)
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
    """What the request names does not exist: the fleet (resourceName), the scalable dimension, or any
    resource of the API at that path."""


class MethodNotAllowed(FleetscalerError):
    """The path exists but does not answer this HTTP method; `allowed` lists the methods it answers."""

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


class NoEndpointAvailable(FleetscalerError):
    """No endpoint of the fleet takes requests (all draining or capped at 0); the message says why."""


class ConfigurationUnusable(FleetscalerError):
    """The server_config item is missing or invalid; the message says what to fix."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class InvalidServerConfig(ConfigurationUnusable):
    """server_config breaks one or more validation rules."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid server_config: " + "; ".join(problems), problems)


class RetryLater(FleetscalerError):
    """The request cannot be answered now; the caller may send it again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttled(RetryLater):
    """DynamoDB or SageMaker (`source`) throttled us; the caller may retry after `retry_after` seconds.
    `retried`: the router already tried once more after a short pause."""

    def __init__(self, message: str, retry_after: int = 1, *, source: str = "", retried: bool = False) -> None:
        super().__init__(message, retry_after)
        self.source = source
        self.retried = retried


class RequestInProgress(RetryLater):
    """A request with the same Idempotency-Key is still being handled; its answer comes once it is done."""


class IdempotencyKeyReused(FleetscalerError):
    """An Idempotency-Key came back with a different request within its window."""


class UpstreamRejected(FleetscalerError):
    """SageMaker rejected a call; its message is passed on."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class InvocationRefused(UpstreamRejected):
    """SageMaker refused an invocation before queueing it (a validation error: the endpoint is missing or not
    InService, ...), so sending the same request to another endpoint cannot run it twice."""


class EndpointBusy(UpstreamRejected):
    """SageMaker refused an update because the endpoint is not InService; that part of the plan waits."""


class StoreUnavailable(FleetscalerError):
    """The metadata table could not be read or written for a reason other than throttling."""


class ConcurrentModification(FleetscalerError):
    """An optimistic-locking write lost the race more times than the retry budget allows."""
