"""CloudWatch adapters of the scaling engine: the queue of each endpoint in, the fleet's scaling signal out.

The client honours the standard AWS configuration (AWS_ENDPOINT_URL_MONITORING / AWS_ENDPOINT_URL), which is
how moto and the local fleet stand in for the service.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fleetscaler.errors import Throttled, UpstreamRejected

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
BACKLOG_METRIC = "ApproximateBacklogSize"
# SageMaker publishes the queue once a minute; the newest datapoint within this window counts.
BACKLOG_LOOKBACK_SECONDS = 5 * 60
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20)
_THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException"})


# A client handed in by the local fleet's fast path (a boto3-shaped in-memory CloudWatch); empty in a deployment.
_installed: dict[str, Any] = {}


@functools.cache
def cloudwatch_client() -> Any:
    return _installed.get("cloudwatch") or boto3.client("cloudwatch", config=_CLIENT_CONFIG)


def reset_clients() -> None:
    """Forget the cached client (tests and the local fleet switch endpoints between runs)."""
    cloudwatch_client.cache_clear()


def install_client(client: Any | None) -> None:
    """Use this client object instead of boto3's (None: boto3's again). It must answer get_metric_data and
    put_metric_data as the service does."""
    _installed.clear()
    if client is not None:
        _installed["cloudwatch"] = client
    reset_clients()


def _translate(exc: ClientError, action: str) -> Exception:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code in _THROTTLE_CODES:
        return Throttled(f"CloudWatch throttled {action} ({code})", source="CloudWatch")
    return UpstreamRejected(f"CloudWatch rejected {action}: {code}: {error.get('Message', '')}", code=code)


def read_backlog(endpoint_names: Sequence[str], now: float) -> dict[str, float]:
    """The newest `ApproximateBacklogSize` (requests queued or in flight) of each endpoint within the last five
    minutes; an endpoint without a datapoint in that window is left out."""
    if not endpoint_names:
        return {}
    queries = [
        {
            "Id": f"b{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": SAGEMAKER_NAMESPACE,
                    "MetricName": BACKLOG_METRIC,
                    "Dimensions": [{"Name": "EndpointName", "Value": name}],
                },
                "Period": 60,
                "Stat": "Average",
            },
            "ReturnData": True,
        }
        for index, name in enumerate(endpoint_names)
    ]
    start = datetime.fromtimestamp(now - BACKLOG_LOOKBACK_SECONDS, tz=UTC)
    end = datetime.fromtimestamp(now + 60, tz=UTC)
    found: dict[str, float] = {}
    try:
        pages = [cloudwatch_client().get_metric_data(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampDescending"
        )]
        while pages[-1].get("NextToken"):
            pages.append(cloudwatch_client().get_metric_data(
                MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampDescending",
                NextToken=pages[-1]["NextToken"],
            ))
    except ClientError as exc:
        raise _translate(exc, "GetMetricData") from exc
    except BotoCoreError as exc:
        raise UpstreamRejected(f"CloudWatch could not be reached: {exc}") from exc
    newest: dict[str, tuple[datetime, float]] = {}
    for page in pages:
        for result in page.get("MetricDataResults", []):
            name = endpoint_names[int(str(result["Id"])[1:])]
            for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                if name not in newest or stamp > newest[name][0]:
                    newest[name] = (stamp, float(value))
    for name, (_, value) in newest.items():
        found[name] = value
    return found


def publish_metrics(namespace: str, dimensions: Mapping[str, str], values: Mapping[str, float], now: float) -> None:
    """One PutMetricData call with `values` (name -> value) under `dimensions`, stamped `now`."""
    stamp = datetime.fromtimestamp(now, tz=UTC)
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": key, "Value": value} for key, value in dimensions.items()],
            "Timestamp": stamp,
            "Value": float(value),
            "Unit": "None",
        }
        for name, value in values.items()
    ]
    try:
        cloudwatch_client().put_metric_data(Namespace=namespace, MetricData=data)
    except ClientError as exc:
        raise _translate(exc, "PutMetricData") from exc
    except BotoCoreError as exc:
        raise UpstreamRejected(f"CloudWatch could not be reached: {exc}") from exc
