"""What SageMaker says about the fleet's endpoints (DescribeEndpoint), for `config show` and `status`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleetscaler.cli.context import CliContext


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
