"""Data access: the only package that talks to the metadata table.

`dal.router_table` is the router's (a plain DynamoDB client), `dal.store` everyone else's (pynamodb),
`dal.idempotency` the router's idempotency records, `dal.seed` the table's files. Importing this package
imports none of them: the router must not pay for pynamodb on a cold start.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MetadataStore", "get_store"]


def __getattr__(name: str) -> Any:
    # `from fleetscaler.dal import get_store` still works, loading pynamodb only then.
    if name in __all__:
        from fleetscaler.dal import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
