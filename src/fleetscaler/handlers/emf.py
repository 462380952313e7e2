"""EMF metrics for the Lambdas: one log line per dimension value, honouring POWERTOOLS_METRICS_DISABLED.

(`single_metric` prints even when metrics are disabled, which would flood the local stack's terminal.)
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from fleetscaler.config import get_settings


def emit_counts(dimension: str, value: str, counts: Mapping[str, float]) -> None:
    """Publish `counts` (metric name -> value, unit Count) under one dimension, as one EMF line."""
    metrics = EphemeralMetrics(namespace=get_settings().metrics_namespace)
    metrics.add_dimension(name=dimension, value=value)
    for name, count in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    metrics.flush_metrics(raise_on_empty_metrics=bool(counts))
