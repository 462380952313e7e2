"""botocore's errors for calls on the metadata table, as domain errors (for code that uses a DynamoDB client
directly rather than pynamodb: the router, the seed loader, the idempotency records)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from fleetscaler.errors import StoreUnavailable, Throttled

THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TableWriteKeyRangeThroughputExceeded",
    }
)
CONDITION_FAILED = "ConditionalCheckFailedException"


def client_error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def table_error(table_name: str, exc: Exception) -> Exception:
    """The domain error for a failed call on the table: Throttled, or StoreUnavailable saying why."""
    if isinstance(exc, ClientError):
        code = client_error_code(exc)
        if code in THROTTLE_CODES:
            return Throttled(f"metadata table {table_name} is throttling requests ({code})", source="DynamoDB")
        if code == "ResourceNotFoundException":
            return StoreUnavailable(f"metadata table {table_name} does not exist")
        return StoreUnavailable(f"metadata table {table_name} is unavailable ({code})")
    if isinstance(exc, BotoCoreError):
        # e.g. the endpoint it could not reach
        return StoreUnavailable(f"metadata table {table_name} is unreachable ({exc})")
    return StoreUnavailable(f"metadata table {table_name} is unavailable ({type(exc).__name__})")


@contextmanager
def translate_client_errors(table_name: str) -> Iterator[None]:
    """Turn botocore's ClientError / BotoCoreError into Throttled or StoreUnavailable."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise table_error(table_name, exc) from exc
