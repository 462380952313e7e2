"""Domain errors to HTTP, in one place, for every API Gateway handler.

Responses carry `{"message": ...}` only: never a stack trace, never the event.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response, content_types

from fleetscaler.errors import (
    ConcurrentModification,
    ConfigurationUnusable,
    FleetNotFound,
    FleetscalerError,
    InputNotAllowed,
    InvalidRequest,
    PayloadTooLarge,
    StoreUnavailable,
    Throttled,
    UpstreamRejected,
)

STATUS_BY_ERROR: tuple[tuple[type[FleetscalerError], int], ...] = (
    (InvalidRequest, 400),
    (InputNotAllowed, 403),
    (FleetNotFound, 404),
    (ConcurrentModification, 409),
    (PayloadTooLarge, 413),
    (Throttled, 429),
    (UpstreamRejected, 502),
    (ConfigurationUnusable, 503),
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
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, Throttled) else None
    return json_response(status, {"message": error.message}, headers)


INTERNAL_ERROR_MESSAGE = "internal error; the request id is in the logs"
