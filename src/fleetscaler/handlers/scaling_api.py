"""Scaling API Lambda: Application Auto Scaling's custom resource, GET/PATCH /scalableTargetDimensions/{id}.

Every call reconciles the fleet (see `fleetscaler.services.scaling`), so Application Auto Scaling's polling
GETs are what carry a scaling through even when no endpoint event arrives.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from fleetscaler.errors import ConcurrentModification, FleetscalerError, InvalidRequest
from fleetscaler.handlers.fleet_metrics import publish_fleet_state
from fleetscaler.handlers.http import INTERNAL_ERROR_MESSAGE, ApiResource, status_for
from fleetscaler.handlers.rest import answer_unmatched_requests, error_response, json_response
from fleetscaler.handlers.service import service_name
from fleetscaler.services.scaling import DimensionView, get_engine

logger = Logger(service=service_name("fleetscaler-scaling-api"))
app = APIGatewayRestResolver()
DIMENSION = ApiResource(
    "/scalableTargetDimensions/<dimension_id>", ("GET", "PATCH"), parameter="scalableTargetDimensionId"
)


def _json_body() -> Any:
    event = app.current_event
    raw = event.body
    if not raw:
        raise InvalidRequest("body", 'is required: a JSON object such as {"desiredCapacity": 2}')
    if event.is_base64_encoded:
        try:
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest("body", "isBase64Encoded is set but the body is not valid base64 UTF-8") from exc
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequest("body", f"must be valid JSON ({exc.msg} at character {exc.pos})") from exc
    except ValueError as exc:
        # Python refuses to convert integers of more than 4300 digits; no capacity is that large.
        raise InvalidRequest("body", "must not contain a number with thousands of digits") from exc
    except RecursionError as exc:
        raise InvalidRequest("body", "must be a flat JSON object, not nested thousands of levels deep") from exc


def _log_warnings(view: DimensionView) -> None:
    for warning in view.warnings:
        logger.warning(warning)


@app.get(DIMENSION.rule)
def get_dimension(dimension_id: str) -> Response:
    view = get_engine().get(dimension_id)
    _log_warnings(view)
    logger.info(
        "reconciled", scaling_status=view.status, desired=view.desired, actual=view.actual, bound=view.bound_reason
    )
    publish_fleet_state(view, logger)
    return json_response(200, view.to_response())


@app.patch(DIMENSION.rule)
def patch_dimension(dimension_id: str) -> Response:
    view = get_engine().set_desired(dimension_id, _json_body())
    _log_warnings(view)
    logger.info(
        "desired capacity recorded",
        scaling_status=view.status,
        desired=view.desired,
        actual=view.actual,
        bound=view.bound_reason,
    )
    publish_fleet_state(view, logger)
    return json_response(200, view.to_response())


# Application Auto Scaling's custom-resource contract names 400, 403, 404, 429 and 500 only; what it does
# with other codes is undocumented, so a lost write race is "retry later" and the rest is a server error.
CONTRACT_STATUS = {409: 429, 502: 500, 503: 500}
RACE_RETRY_AFTER_SECONDS = 1


@app.exception_handler(FleetscalerError)
def handle_domain_error(error: FleetscalerError) -> Response:
    status = status_for(error)
    status = CONTRACT_STATUS.get(status, status)
    log = logger.error if status >= 500 else logger.warning
    log("request failed", status=status, error=type(error).__name__, reason=error.message)
    response = error_response(error)
    response.status_code = status
    if isinstance(error, ConcurrentModification):
        response.headers["Retry-After"] = str(RACE_RETRY_AFTER_SECONDS)
    return response


answer_unmatched_requests(app, (DIMENSION,), handle_domain_error)


@app.exception_handler(Exception)
def handle_unexpected(error: Exception) -> Response:
    # A bug, not a caller's mistake: log it with its trace, answer without one.
    logger.exception("unexpected error")
    return json_response(500, {"message": INTERNAL_ERROR_MESSAGE})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
