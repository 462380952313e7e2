"""What SageMaker says about the fleet's endpoints (DescribeEndpoint), for `config show` and `status`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleetscaler import clock
from fleetscaler.cli.context import CliContext, CliError

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
METRIC_PERIOD_SECONDS = 60


@dataclass(frozen=True)
class EndpointState:
    status: str
    current_instances: int | None = None
    desired_instances: int | None = None
    failure_reason: str | None = None


def describe_endpoints(cli: CliContext, names: Iterable[str]) -> dict[str, EndpointState]:
    """Status and instance counts per endpoint; `not found` / `unknown (...)` instead of failing the command."""
    client = cli.client("sagemaker")
    states: dict[str, EndpointState] = {}
    for name in names:
        try:
            described: dict[str, Any] = client.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if "could not find" in message.lower() or "not found" in message.lower():
                states[name] = EndpointState("not found")
            else:
                states[name] = EndpointState(f"unknown ({exc.response.get('Error', {}).get('Code', 'error')})")
            continue
        except BotoCoreError as exc:
            states[name] = EndpointState(f"unknown ({type(exc).__name__})")
            continue
        variants = described.get("ProductionVariants") or []
        current = [v.get("CurrentInstanceCount") for v in variants if v.get("CurrentInstanceCount") is not None]
        desired = [v.get("DesiredInstanceCount") for v in variants if v.get("DesiredInstanceCount") is not None]
        states[name] = EndpointState(
            status=str(described.get("EndpointStatus", "unknown")),
            current_instances=sum(current) if current else None,
            desired_instances=sum(desired) if desired else None,
            failure_reason=described.get("FailureReason") or None,
        )
    return states


def latest_metric(
    cli: CliContext,
    endpoint: str,
    metric: str,
    statistic: str,
    *,
    window_seconds: float,
    since: float | None = None,
) -> float | None:
    """The newest one-minute `statistic` of an endpoint's SageMaker metric in the last `window_seconds`.

    With `since`, only minutes that begin at or after it count: a minute that straddles it was partly
    sampled before, so it says nothing certain about what happened since. None when CloudWatch has no such
    datapoint or cannot be read.
    """
    end = dt.datetime.fromtimestamp(clock.now(), tz=dt.UTC)
    try:
        points = cli.client("cloudwatch").get_metric_statistics(
            Namespace=SAGEMAKER_NAMESPACE,
            MetricName=metric,
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
            StartTime=end - dt.timedelta(seconds=window_seconds),
            EndTime=end,
            Period=METRIC_PERIOD_SECONDS,
            Statistics=[statistic],
        )["Datapoints"]
    except (ClientError, BotoCoreError):
        return None
    if since is not None:
        points = [p for p in points if p["Timestamp"].timestamp() >= since]
    if not points:
        return None
    return float(max(points, key=lambda point: point["Timestamp"])[statistic])


def start_instances(cli: CliContext, name: str, count: int) -> None:
    """Set the endpoint's (first variant's) instance count, as the scaling engine would."""
    client = cli.client("sagemaker")
    try:
        variants = client.describe_endpoint(EndpointName=name).get("ProductionVariants") or []
        variant = str(variants[0]["VariantName"]) if variants else "AllTraffic"
        client.update_endpoint_weights_and_capacities(
            EndpointName=name, DesiredWeightsAndCapacities=[{"VariantName": variant, "DesiredInstanceCount": count}]
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CliError(
            f"{name}: SageMaker refused to set {count} instance(s): {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise CliError(f"{name}: SageMaker is unreachable ({type(exc).__name__})") from None
