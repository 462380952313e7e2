"""SageMaker adapters: the runtime call the router makes and the control-plane calls of the scaling engine.

Clients honour the standard AWS configuration, including AWS_ENDPOINT_URL_SAGEMAKER and
AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, which is how the local fleet and moto stand in for the service.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fleetscaler.errors import EndpointBusy, InvocationRefused, Throttled, UpstreamRejected
from fleetscaler.logic.invocation import InvocationRequest

if TYPE_CHECKING:
    # The scaling engine's types: imported when its calls are made, never on the router's cold start.
    from fleetscaler.logic.scaling import EndpointObservation

THROTTLE_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
# InvokeEndpointAsync's validation error (HTTP 400; the runtime says ValidationError, e.g. "Endpoint x of
# account n not found.") comes before anything is queued: the endpoint is missing or not InService, or the
# request itself is refused. Either way nothing runs, so another endpoint may be tried.
REFUSED_BEFORE_QUEUEING = frozenset({"ValidationError", "ValidationException"})
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20)


# Clients handed in by the local fleet's fast path (boto3-shaped objects that call its SageMaker emulator in
# process); empty in a deployment.
_installed: dict[str, Any] = {}


@functools.cache
def runtime_client() -> Any:
    return _installed.get("runtime") or boto3.client("sagemaker-runtime", config=_CLIENT_CONFIG)


@functools.cache
def control_client() -> Any:
    return _installed.get("control") or boto3.client("sagemaker", config=_CLIENT_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests and the local fleet switch endpoints between runs)."""
    runtime_client.cache_clear()
    control_client.cache_clear()


def install_clients(*, control: Any | None = None, runtime: Any | None = None) -> None:
    """Use these client objects instead of boto3's (None: boto3's again). They must answer the same calls and
    raise botocore's ClientError as the service does."""
    _installed.clear()
    _installed.update({k: v for k, v in (("control", control), ("runtime", runtime)) if v is not None})
    reset_clients()


@dataclass(frozen=True)
class AsyncInvocation:
    endpoint_name: str
    inference_id: str
    output_location: str
    failure_location: str | None


def translate_client_error(exc: ClientError, action: str) -> Exception:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or code
    if code in THROTTLE_CODES:
        return Throttled(f"SageMaker throttled {action} ({code})", source="SageMaker")
    if code == "ValidationException" and "in-progress" in message:
        return EndpointBusy(f"SageMaker rejected {action}: {code}: {message}", code=code)
    return UpstreamRejected(f"SageMaker rejected {action}: {code}: {message}", code=code)


def invoke_async(endpoint_name: str, request: InvocationRequest) -> AsyncInvocation:
    """Queue the request on the endpoint. Raises InvocationRefused (nothing was queued), Throttled, or
    UpstreamRejected (anything else, including a connection lost after sending: it may have been queued)."""
    try:
        response = runtime_client().invoke_endpoint_async(**request.to_api_kwargs(endpoint_name))
    except ClientError as exc:
        error = translate_client_error(exc, f"InvokeEndpointAsync on {endpoint_name}")
        if isinstance(error, UpstreamRejected) and error.code in REFUSED_BEFORE_QUEUEING:
            error = InvocationRefused(error.message, code=error.code)
        raise error from exc
    except BotoCoreError as exc:
        raise UpstreamRejected(f"SageMaker could not be reached for {endpoint_name}: {exc}") from exc
    return AsyncInvocation(
        endpoint_name=endpoint_name,
        inference_id=response["InferenceId"],
        output_location=response.get("OutputLocation", ""),
        failure_location=response.get("FailureLocation"),
    )


def _epoch_ms(value: Any) -> int | None:
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1000)
    return int(value)


def describe_endpoint(endpoint_name: str) -> EndpointObservation:
    """The endpoint's status and its (first) production variant's instance counts.

    An endpoint that does not exist is reported as status `Missing` (it serves nothing), not as an error.
    """
    from fleetscaler.logic.scaling import MISSING, EndpointObservation

    try:
        response = control_client().describe_endpoint(EndpointName=endpoint_name)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationException" and "Could not find endpoint" in str(error.get("Message")):
            return EndpointObservation(MISSING, failure_reason=f"endpoint {endpoint_name} does not exist")
        raise translate_client_error(exc, f"DescribeEndpoint on {endpoint_name}") from exc
    except BotoCoreError as exc:
        raise UpstreamRejected(f"SageMaker could not be reached for {endpoint_name}: {exc}") from exc
    variants = response.get("ProductionVariants") or [{}]
    variant = variants[0]
    current = int(variant.get("CurrentInstanceCount") or 0)
    return EndpointObservation(
        status=str(response.get("EndpointStatus", "")),
        current=current,
        desired=int(variant.get("DesiredInstanceCount", current) or 0),
        last_modified_ms=_epoch_ms(response.get("LastModifiedTime")),
        failure_reason=response.get("FailureReason"),
        variant_name=variant.get("VariantName"),
    )


def update_instance_count(endpoint_name: str, variant_name: str, instance_count: int) -> None:
    """Ask SageMaker for `instance_count` instances on the endpoint's variant (an absolute count: repeating
    the call can never add instances twice). Raises EndpointBusy when the endpoint is not InService,
    Throttled, or UpstreamRejected (e.g. ResourceLimitExceeded) for the failover to act on."""
    try:
        control_client().update_endpoint_weights_and_capacities(
            EndpointName=endpoint_name,
            DesiredWeightsAndCapacities=[{"VariantName": variant_name, "DesiredInstanceCount": instance_count}],
        )
    except ClientError as exc:
        raise translate_client_error(exc, f"UpdateEndpointWeightsAndCapacities on {endpoint_name}") from exc
    except BotoCoreError as exc:
        raise UpstreamRejected(f"SageMaker could not be reached for {endpoint_name}: {exc}") from exc
