"""Endpoint-state Lambda: EventBridge "SageMaker Endpoint State Change" events continue the scaling plan, and
a "Scheduled Event" once a minute publishes the fleet's scaling signal (see `fleetscaler.logic.signal`).

Events of endpoints outside the fleet are ignored. Each event is applied once and in order (its
LastModifiedTime is compared, under the dimension's optimistic lock, with the newest one seen for that
endpoint), so duplicates and late arrivals change nothing. A lost event costs nothing either: the next
GET from Application Auto Scaling reconciles the same way.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from fleetscaler.errors import FleetNotFound, InvalidRequest
from fleetscaler.handlers.fleet_metrics import publish_fleet_state
from fleetscaler.handlers.service import service_name
from fleetscaler.services.scaling import get_engine

logger = Logger(service=service_name("fleetscaler-endpoint-state"))

DETAIL_TYPE = "SageMaker Endpoint State Change"
SCHEDULE_DETAIL_TYPE = "Scheduled Event"


def _on_schedule() -> dict[str, Any]:
    view = get_engine().publish_signal()
    for warning in view.warnings:
        logger.warning(warning)
    publish_fleet_state(view, logger)
    result: dict[str, Any] = {
        "handled": view.signal is not None,
        "reason": "fleet signal published" if view.signal is not None else f"not published: {view.failure_reason}",
        "scalingStatus": view.status,
        "actualCapacity": view.actual,
        "desiredCapacity": view.desired,
    }
    if view.signal is not None:
        result["signal"] = dict(view.signal.metrics())
    if view.bound_reason:
        result["boundReason"] = view.bound_reason
    logger.info("schedule", **result)
    return result


@logger.inject_lambda_context(correlation_id_path="id", log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") if isinstance(event, dict) else None
    if event.get("detail-type") == SCHEDULE_DETAIL_TYPE and event.get("source") == "aws.events":
        return _on_schedule()
    if event.get("detail-type") != DETAIL_TYPE or not isinstance(detail, dict):
        logger.warning("not an endpoint state change; ignored", detail_type=str(event.get("detail-type")))
        return {"handled": False, "reason": f"not a {DETAIL_TYPE!r} event"}
    endpoint_name = str(detail.get("EndpointName") or "")
    try:
        outcome = get_engine().on_endpoint_event(event)
    except (InvalidRequest, FleetNotFound) as error:
        # Retrying cannot fix a malformed event or a fleet without a dimension: say so and drop it.
        logger.warning("event not applied", endpoint_name=endpoint_name, reason=error.message)
        return {"handled": False, "reason": error.message}
    # Other errors (throttling, table or SageMaker unavailable) propagate: Lambda retries the event.
    result: dict[str, Any] = {"handled": outcome.handled, "reason": outcome.reason}
    if outcome.view is not None:
        for warning in outcome.view.warnings:
            logger.warning(warning)
        result["scalingStatus"] = outcome.view.status
        result["actualCapacity"] = outcome.view.actual
        result["desiredCapacity"] = outcome.view.desired
        publish_fleet_state(outcome.view, logger)
    logger.info("endpoint state change", endpoint_name=endpoint_name, **result)
    return result
