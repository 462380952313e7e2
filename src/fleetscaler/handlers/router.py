"""Router Lambda: `POST /endpoints/{EndpointName}` -> InvokeEndpointAsync on one endpoint of the fleet."""

from __future__ import annotations

import base64
import functools
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from fleetscaler.config import get_settings
from fleetscaler.dal import get_store
from fleetscaler.errors import ConfigurationUnusable, FleetscalerError, InvalidRequest
from fleetscaler.handlers.emf import emit_counts
from fleetscaler.handlers.http import (
    INTERNAL_ERROR_MESSAGE,
    ApiResource,
    answer_unmatched_requests,
    error_response,
    json_response,
    status_for,
)
from fleetscaler.handlers.service import service_name
from fleetscaler.services.routing import FleetRouter

logger = Logger(service=service_name("fleetscaler-router"))
app = APIGatewayRestResolver()
FLEET = ApiResource("/endpoints/<fleet>", ("POST",), parameter="fleet")


@functools.cache
def get_router() -> FleetRouter:
    return FleetRouter(get_settings(), get_store())


def _count(name: str, dimension: str, value: str) -> None:
    emit_counts(dimension, value, {name: 1})


def _request_body() -> bytes | None:
    event = app.current_event
    raw = event.body
    if not raw:
        return None
    if event.is_base64_encoded:
        try:
            return base64.b64decode(raw, validate=True)
        except ValueError as exc:
            raise InvalidRequest("body", "isBase64Encoded is set but the body is not valid base64") from exc
    return raw.encode("utf-8")


def _request_headers() -> list[tuple[str, str]]:
    """Every header as sent, from the event itself: powertools' views fold names that differ only in case and
    keep one value, which would hide a header sent twice with different values."""
    event = app.current_event
    pairs = list((event.get("headers") or {}).items())
    for name, values in (event.get("multiValueHeaders") or {}).items():
        pairs.extend((name, value) for value in values or ())
    return pairs


@app.post(FLEET.rule)
def invoke(fleet: str) -> Response:
    routed = get_router().route(fleet, _request_headers(), _request_body())
    invocation = routed.invocation
    if routed.refusal is not None:
        logger.warning(
            "endpoint refused the request; sent to the next one",
            refused_by=routed.refusal.endpoint_name,
            reason=routed.refusal.reason,
            endpoint_name=invocation.endpoint_name,
        )
        _count("RefusedRequests", "EndpointName", routed.refusal.endpoint_name)
    _count("RoutedRequests", "EndpointName", invocation.endpoint_name)
    logger.info(
        "routed request",
        endpoint_name=invocation.endpoint_name,
        inference_id=invocation.inference_id,
        counter=routed.counter,
    )
    return json_response(
        202,
        {
            "endpointName": invocation.endpoint_name,
            "inferenceId": invocation.inference_id,
            "outputLocation": invocation.output_location,
            "failureLocation": invocation.failure_location,
        },
    )


@app.exception_handler(FleetscalerError)
def handle_domain_error(error: FleetscalerError) -> Response:
    status = status_for(error)
    log = logger.error if status >= 500 else logger.warning
    log("request failed", status=status, error=type(error).__name__, reason=error.message)
    _count("RouterErrors", "StatusCode", str(status))
    if isinstance(error, ConfigurationUnusable):
        _count("UnusableServerConfig", "Service", "router")
    return error_response(error)


answer_unmatched_requests(app, (FLEET,), handle_domain_error)


@app.exception_handler(Exception)
def handle_unexpected(error: Exception) -> Response:
    # A bug, not a caller's mistake: log it with its trace, answer without one.
    logger.exception("unexpected error")
    _count("RouterErrors", "StatusCode", "500")
    return json_response(500, {"message": INTERNAL_ERROR_MESSAGE})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
