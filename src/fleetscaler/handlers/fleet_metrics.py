"""Metrics of the scaling Lambdas: what the stack's dashboard plots and its "scaling failed" alarm watches."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from fleetscaler.handlers.emf import emit_counts
from fleetscaler.logic.scaling import FAILED
from fleetscaler.services.scaling import DimensionView


def publish_fleet_state(view: DimensionView, logger: Logger) -> None:
    """Desired and actual capacity of the fleet, instances and weight per endpoint; an ERROR log line
    (the template's metric filter turns it into the ScalingErrors alarm) when this step made it Failed."""
    fleet = view.fleet_name or view.dimension_id
    emit_counts(
        "Fleet",
        fleet,
        {"DesiredCapacity": view.desired, "ActualCapacity": view.actual, "ScalingFailed": int(view.status == FAILED)},
    )
    for endpoint in view.endpoints:
        counts = {"InstanceCount": endpoint.instances, "RoutingWeight": endpoint.weight}
        emit_counts("EndpointName", endpoint.endpoint_name, counts)
    if view.became_failed:
        logger.error(
            "scaling failed",
            fleet=fleet,
            desired=view.desired,
            actual=view.actual,
            failure_reason=view.failure_reason,
        )
