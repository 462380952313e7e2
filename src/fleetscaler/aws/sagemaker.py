"""SageMaker adapters: the runtime call the router makes and the control-plane calls of the scaling engine.

Clients honour the standard AWS configuration, including AWS_ENDPOINT_URL_SAGEMAKER and
AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, which is how the local fleet and moto stand in for the service.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fleetscaler.errors import Throttled, UpstreamRejected
from fleetscaler.logic.invocation import InvocationRequest

THROTTLE_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20)


@functools.cache
def runtime_client() -> Any:
    return boto3.client("sagemaker-runtime", config=_CLIENT_CONFIG)


@functools.cache
def control_client() -> Any:
    return boto3.client("sagemaker", config=_CLIENT_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests and the local fleet switch endpoints between runs)."""
    runtime_client.cache_clear()
    control_client.cache_clear()


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
        return Throttled(f"SageMaker throttled {action} ({code})")
    return UpstreamRejected(f"SageMaker rejected {action}: {code}: {message}", code=code)


def invoke_async(endpoint_name: str, request: InvocationRequest) -> AsyncInvocation:
    try:
        response = runtime_client().invoke_endpoint_async(**request.to_api_kwargs(endpoint_name))
    except ClientError as exc:
        raise translate_client_error(exc, f"InvokeEndpointAsync on {endpoint_name}") from exc
    except BotoCoreError as exc:
        raise UpstreamRejected(f"SageMaker could not be reached for {endpoint_name}: {exc}") from exc
    return AsyncInvocation(
        endpoint_name=endpoint_name,
        inference_id=response["InferenceId"],
        output_location=response.get("OutputLocation", ""),
        failure_location=response.get("FailureLocation"),
    )
