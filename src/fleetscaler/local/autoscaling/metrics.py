"""The metrics the emulated alarms read: one CloudWatch statistic, or metric math over several."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetscaler.local.autoscaling.base import PERIOD_SECONDS, ScalingConfigurationError

_STATS = ("Average", "Sum", "Maximum", "Minimum", "SampleCount")
_COMBINERS: dict[str, Callable[[Sequence[float]], float]] = {
    "MAX": max,
    "MIN": min,
    "SUM": math.fsum,
    "AVG": lambda values: math.fsum(values) / len(values),
}


@dataclass(frozen=True)
class MetricStat:
    """One CloudWatch metric and the statistic taken over each 60 s period."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = "Average"

    def __post_init__(self) -> None:
        if self.stat not in _STATS:
            raise ScalingConfigurationError(f"Stat: must be one of {', '.join(_STATS)}, got {self.stat!r}")

    def query(self, query_id: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric_name,
                    "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
                },
                "Period": PERIOD_SECONDS,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }

    @classmethod
    def from_spec(cls, metric: Mapping[str, Any], stat: str) -> MetricStat:
        try:
            return cls(
                namespace=metric["Namespace"],
                metric_name=metric["MetricName"],
                dimensions=tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])),
                stat=stat,
            )
        except KeyError as missing:
            raise ScalingConfigurationError(f"Metric: {missing.args[0]} is required") from None


@dataclass(frozen=True)
class MetricMath:
    """Metrics combined per period by `FUNC(METRICS())` (FUNC one of MAX, MIN, SUM, AVG), or a single metric.

    Periods where no metric has data are missing; otherwise FUNC runs over the metrics that have data.
    """

    metrics: tuple[MetricStat, ...]
    expression: str | None = "MAX(METRICS())"

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ScalingConfigurationError("Metrics: at least one metric is required")
        if self.expression is None:
            if len(self.metrics) != 1:
                raise ScalingConfigurationError("Expression: required when there is more than one metric")
        elif _combiner_name(self.expression) is None:
            raise ScalingConfigurationError(
                f"Expression: only MAX, MIN, SUM or AVG of METRICS() is supported, got {self.expression!r}"
            )

    def combine(self, values: Sequence[float]) -> float:
        if self.expression is None:
            return values[0]
        name = _combiner_name(self.expression)
        assert name is not None
        return float(_COMBINERS[name](values))

    @classmethod
    def from_customized_metric_specification(cls, spec: Mapping[str, Any]) -> MetricMath:
        """Parse the `CustomizedMetricSpecification` of a target tracking policy (plain or metric math)."""
        if "Metrics" not in spec:
            return cls((MetricStat.from_spec(spec, spec.get("Statistic", "Average")),), None)
        stats: list[MetricStat] = []
        expressions: list[str] = []
        for index, query in enumerate(spec["Metrics"]):
            if "MetricStat" in query:
                stats.append(MetricStat.from_spec(query["MetricStat"]["Metric"], query["MetricStat"].get("Stat", "")))
            elif "Expression" in query:
                if query.get("ReturnData", True):
                    expressions.append(query["Expression"])
            else:
                raise ScalingConfigurationError(f"Metrics[{index}]: needs MetricStat or Expression")
        if len(expressions) > 1:
            raise ScalingConfigurationError("Metrics: exactly one expression may return data")
        return cls(tuple(stats), expressions[0] if expressions else None)


def _combiner_name(expression: str) -> str | None:
    match = re.fullmatch(r"\s*(MAX|MIN|SUM|AVG)\s*\(\s*METRICS\s*\(\s*\)\s*\)\s*", expression)
    return match.group(1) if match else None


def fleet_backlog_metric(resource_name: str, servers: Iterable[str], stat: str = "Average") -> MetricMath:
    """The template's scaling metric: MAX over every endpoint's `ApproximateBacklogSizePerInstance`."""
    return MetricMath(
        tuple(
            MetricStat(
                "AWS/SageMaker", "ApproximateBacklogSizePerInstance", (("EndpointName", f"{resource_name}-{s}"),), stat
            )
            for s in servers
        ),
        "MAX(METRICS())",
    )
