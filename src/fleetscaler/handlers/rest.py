"""powertools' REST resolver wired to the domain errors of `handlers.http` (the scaling API's)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from fleetscaler.errors import FleetscalerError
from fleetscaler.handlers.http import ApiResource, error_headers, status_for, unmatched_request_error


def json_response(status: int, body: Mapping[str, object], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers=headers,
    )


def error_response(error: FleetscalerError) -> Response:
    return json_response(status_for(error), {"message": error.message}, error_headers(error) or None)


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
