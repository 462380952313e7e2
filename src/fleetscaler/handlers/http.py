"""Domain errors to HTTP, in one place, for every API Gateway handler.

Responses carry `{"message": ...}` only: never a stack trace, never the event. Nothing here imports
powertools' event handler (`handlers.rest` wires it for the scaling API): the router answers API Gateway's
proxy events itself, so that a cold container does not import it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetscaler.errors import (
    ConcurrentModification,
    ConfigurationUnusable,
    FleetNotFound,
    FleetscalerError,
    IdempotencyKeyReused,
    InputNotAllowed,
    InvalidRequest,
    MethodNotAllowed,
    NoEndpointAvailable,
    PayloadTooLarge,
    RequestInProgress,
    RetryLater,
    StoreUnavailable,
    Throttled,
    UpstreamRejected,
)

STATUS_BY_ERROR: tuple[tuple[type[FleetscalerError], int], ...] = (
    (InvalidRequest, 400),
    (InputNotAllowed, 403),
    (FleetNotFound, 404),
    (MethodNotAllowed, 405),
    (ConcurrentModification, 409),
    (RequestInProgress, 409),
    (PayloadTooLarge, 413),
    (IdempotencyKeyReused, 422),
    (Throttled, 429),
    (UpstreamRejected, 502),
    (ConfigurationUnusable, 503),
    (NoEndpointAvailable, 503),
    (StoreUnavailable, 503),
)


def status_for(error: FleetscalerError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def error_headers(error: FleetscalerError) -> dict[str, str]:
    """The headers an error's answer carries: when to retry, which methods a path answers."""
    headers: dict[str, str] = {}
    if isinstance(error, RetryLater):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allowed)
    return headers


def proxy_response(status: int, body: Mapping[str, object], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway REST proxy answer with a JSON body, shaped as powertools' resolver shapes it."""
    multi = {name: [value] for name, value in (headers or {}).items()}
    multi["Content-Type"] = ["application/json"]
    return {"statusCode": status, "body": json.dumps(body), "isBase64Encoded": False, "multiValueHeaders": multi}


@dataclass(frozen=True)
class ApiResource:
    """A path of an API, as a powertools route rule with one parameter (`/endpoints/<fleet>`), the methods it
    answers, and what its parameter names (for messages)."""

    rule: str
    methods: tuple[str, ...]
    parameter: str

    @functools.cached_property
    def _path_re(self) -> re.Pattern[str]:
        # API Gateway's `{param}` takes any non-empty segment; powertools' own rule accepts fewer characters.
        segments = [r"(?P<value>[^/]+)" if s.startswith("<") else re.escape(s) for s in self.rule.split("/")]
        return re.compile("/".join(segments))

    def value_in(self, path: str) -> str | None:
        """The path parameter when `path` is this resource's path, else None."""
        match = self._path_re.fullmatch(path)
        return match.group("value") if match else None


def unmatched_request_error(method: str, path: str, resources: Sequence[ApiResource]) -> FleetscalerError:
    """Why a request matched no route: MethodNotAllowed (405) on a known path, else FleetNotFound (404),
    naming the parameter when the path is a known one whose value powertools' rule does not accept."""
    for resource in resources:
        value = resource.value_in(path)
        if value is None:
            continue
        if method not in resource.methods:
            allowed = ", ".join(resource.methods)
            return MethodNotAllowed(f"method {method} is not allowed on {path!r}; use {allowed}", resource.methods)
        return FleetNotFound(f"{resource.parameter} {value!r} is not known here")
    served = ", ".join(f"{' or '.join(r.methods)} {r.rule.replace('<', '{').replace('>', '}')}" for r in resources)
    return FleetNotFound(f"no resource at {path!r} (this API serves {served})")


INTERNAL_ERROR_MESSAGE = "internal error; the request id is in the logs"
