"""What a cold router container imports: only what every request needs (see docs/router-api.md, "Cold start")."""

from __future__ import annotations

import json
import subprocess
import sys

# Imported by the scaling engine, the CLI or only some requests: never on the router's cold start.
NEVER_ON_A_COLD_START = (
    "pynamodb",  # the router's table calls go through botocore's client (dal.router_table)
    "pydantic",  # the settings are parsed without it (fleetscaler.config)
    "aws_lambda_powertools.event_handler",  # the router answers API Gateway's proxy events itself
    "aws_lambda_powertools.utilities.idempotency",  # only requests with an Idempotency-Key need it
    "fleetscaler.dal.idempotency",
    "fleetscaler.dal.store",
    "fleetscaler.logic.scaling",
    "fleetscaler.logic.placement",
    "fleetscaler.services.scaling",
)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_importing_the_router_handler_leaves_out_what_only_others_need() -> None:
    # Given a fresh interpreter, as a cold Lambda container
    code = "import sys, json, fleetscaler.handlers.router; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    # When the handler module is imported / Then none of these is
    loaded = json.loads(run.stdout)
    assert [name for name in loaded if any(_within(name, package) for package in NEVER_ON_A_COLD_START)] == []
