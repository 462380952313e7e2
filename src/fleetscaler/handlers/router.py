"""Router Lambda: `POST /endpoints/{EndpointName}` -> InvokeEndpointAsync on one endpoint of the fleet.

It answers API Gateway's REST proxy events itself rather than through powertools' resolver: with one route,
the resolver would add about a fifth to the import every cold container pays on the request that woke it
(see docs/router-api.md, "Cold start"). Everything else is powertools (logger, EMF metrics).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from fleetscaler.config import get_settings
from fleetscaler.dal.router_table import get_router_table
from fleetscaler.errors import ConfigurationUnusable, FleetscalerError, InvalidRequest, Throttled
from fleetscaler.handlers.emf import emit_counts
from fleetscaler.handlers.http import (
    INTERNAL_ERROR_MESSAGE,
    ApiResource,
    error_headers,
    proxy_response,
    status_for,
    unmatched_request_error,
)
from fleetscaler.handlers.service import service_name
from fleetscaler.services.routing import FleetRouter, RoutedRequest, answer_of

logger = Logger(service=service_name("fleetscaler-router"))
FLEET = ApiResource("/endpoints/<fleet>", ("POST",), parameter="fleet")
ProxyResponse = dict[str, Any]


@functools.cache
def get_router() -> FleetRouter:
    return FleetRouter(get_settings(), get_router_table())


def _count(name: str, dimension: str, value: str) -> None:
    emit_counts(dimension, value, {name: 1})


def _request_body(event: Mapping[str, Any]) -> bytes | None:
    raw = event.get("body")
    if not raw:
        return None
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(raw, validate=True)
        except ValueError as exc:
            raise InvalidRequest("body", "isBase64Encoded is set but the body is not valid base64") from exc
    return str(raw).encode("utf-8")


def _request_headers(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every header as sent, from `headers` and `multiValueHeaders` both: a view that folds names differing only
    in case would hide a header sent twice with different values."""
    pairs = list((event.get("headers") or {}).items())
    for name, values in (event.get("multiValueHeaders") or {}).items():
        pairs.extend((name, value) for value in values or ())
    return pairs


def invoke(event: Mapping[str, Any], context: LambdaContext, fleet: str) -> ProxyResponse:
    router = get_router()
    routed = router.route(fleet, _request_headers(event), _request_body(event), context.get_remaining_time_in_millis)
    _report(router, routed)
    if routed.repeated:
        # The first request's answer; the header tells the client that nothing new was queued.
        return proxy_response(202, answer_of(routed.invocation), {"Idempotent-Replayed": "true"})
    return proxy_response(202, answer_of(routed.invocation))


def _report(router: FleetRouter, routed: RoutedRequest) -> None:
    """Log and count what happened to a request that was answered 202."""
    invocation = routed.invocation
    # The key is an allowed header: logged so that a request and its repeats can be found together.
    key = {} if routed.idempotency_key is None else {"idempotency_key": routed.idempotency_key.value}
    if routed.throttled is not None:
        logger.warning(
            "throttled; routed when tried once more", source=routed.throttled.source, reason=routed.throttled.message
        )
        _count("ThrottleRetries", "Fleet", router.resource_name)
    if routed.repeated:
        logger.info(
            "repeat of an Idempotency-Key: answered with the first request's answer, not routed again",
            endpoint_name=invocation.endpoint_name,
            inference_id=invocation.inference_id,
            extra=key,
        )
        _count("IdempotentRepeats", "Fleet", router.resource_name)
        return
    if routed.unrecorded is not None:
        logger.error(
            "routed, but the answer could not be recorded for its Idempotency-Key: a repeat may be routed again",
            reason=routed.unrecorded,
            extra=key,
        )
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
        extra=key,
    )


def handle_domain_error(error: FleetscalerError) -> ProxyResponse:
    status = status_for(error)
    log = logger.error if status >= 500 else logger.warning
    log("request failed", status=status, error=type(error).__name__, reason=error.message)
    _count("RouterErrors", "StatusCode", str(status))
    if isinstance(error, ConfigurationUnusable):
        _count("UnusableServerConfig", "Service", "router")
    if isinstance(error, Throttled):
        throttled = {"ThrottledRequests": 1, **({"ThrottleRetries": 1} if error.retried else {})}
        emit_counts("Fleet", get_router().known_fleet_name or "unknown", throttled)
    return proxy_response(status, {"message": error.message}, error_headers(error))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> ProxyResponse:
    try:
        method, path = str(event.get("httpMethod", "")), str(event.get("path", ""))
        fleet = FLEET.value_in(path)
        if fleet is None or method not in FLEET.methods:
            # Another path, or another method (which reaches the Lambda only through an `ANY` method): 404 / 405.
            raise unmatched_request_error(method, path, (FLEET,))
        return invoke(event, context, fleet)
    except FleetscalerError as error:
        return handle_domain_error(error)
    except Exception:
        # A bug, not a caller's mistake: log it with its trace, answer without one.
        logger.exception("unexpected error")
        _count("RouterErrors", "StatusCode", "500")
        return proxy_response(500, {"message": INTERNAL_ERROR_MESSAGE})
