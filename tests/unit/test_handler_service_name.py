"""The Lambdas log under the service name the deployment gives them (POWERTOOLS_SERVICE_NAME)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PRINT_SERVICES = (
    "from fleetscaler.handlers import endpoint_state, router, scaling_api; "
    "print(router.logger.service, scaling_api.logger.service, endpoint_state.logger.service)"
)


@pytest.mark.parametrize(
    ("env_value", "expected"),
    [
        ("fleet-a-router", ["fleet-a-router"] * 3),
        (None, ["fleetscaler-router", "fleetscaler-scaling-api", "fleetscaler-endpoint-state"]),
    ],
)
def test_service_name_comes_from_the_environment_when_set(env_value: str | None, expected: list[str]) -> None:
    # Given a fresh process (loggers are created at import) with or without POWERTOOLS_SERVICE_NAME
    env = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_SERVICE_NAME"}
    env.update(TABLE_NAME="t", AWS_DEFAULT_REGION="us-east-1")
    if env_value is not None:
        env["POWERTOOLS_SERVICE_NAME"] = env_value
    # When the handlers are imported
    result = subprocess.run([sys.executable, "-c", PRINT_SERVICES], env=env, capture_output=True, text=True, check=True)
    # Then each logger carries the deployment's name, or the handler's own one without it
    assert result.stdout.split() == expected
