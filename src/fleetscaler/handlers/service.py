"""The Lambdas' Powertools service name: the deployment's choice first, the handler's own name otherwise."""

from __future__ import annotations

import os

SERVICE_NAME_ENV = "POWERTOOLS_SERVICE_NAME"


def service_name(default: str) -> str:
    """POWERTOOLS_SERVICE_NAME when set (the template sets it per function), else `default`.

    Powertools lets an explicit `service=` win over the variable, so the handlers pass this instead.
    """
    return os.environ.get(SERVICE_NAME_ENV) or default
