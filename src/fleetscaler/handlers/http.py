"""Domain errors to HTTP, in one place, for every API Gateway handler.

Responses carry `{"message": ...}` only: never a stack trace, never the event.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from fleetscaler.errors import (
    ConcurrentModification,
    ConfigurationUnusable,
    FleetNotFound,
    FleetscalerError,
    InputNotAllowed,
    InvalidRequest,
    MethodNotAllowed,
    NoEndpointAvailable,
    PayloadTooLarge,
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
    (PayloadTooLarge, 413),
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


def json_response(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers=headers,
    )


def error_response(error: FleetscalerError) -> Response:
    status = status_for(error)
    headers: dict[str, str] = {}
    if isinstance(error, Throttled):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allowed)
    return json_response(status, {"message": error.message}, headers or None)


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


def answer_unmatched_requests(
    app: APIGatewayRestResolver,
    resources: Sequence[ApiResource],
    handle_error: Callable[[FleetscalerError], Response],
) -> None:
    """Answer the requests no route of `app` matches as 404 / 405 through `handle_error` (the handler's own
    logging and metrics). powertools calls its not-found hook for them; without one, a catch-all
    `Exception` handler would get its NotFoundError and answer 500. Its rules refuse some characters that
    API Gateway passes on (a quote, a newline), so such paths land here too."""

    @app.not_found
    def handle_no_route(_: NotFoundError) -> Response:
        event = app.current_event
        return handle_error(unmatched_request_error(event.http_method, event.path, resources))


INTERNAL_ERROR_MESSAGE = "internal error; the request id is in the logs"
