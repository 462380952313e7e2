"""The router's idempotency records: powertools' idempotency utility over the metadata table.

A request carrying an Idempotency-Key is handled at most once per key within the window: the first one writes
an "in progress" record with a conditional PutItem, is routed, and its answer is written to the record; a
repeat finds the record (the failed PutItem returns it) and gets that answer without being routed again.

Each record is one item of the metadata table, id `idempotency#<sha256 of the key>` (no other item's id has a
`#`), with powertools' attributes: `expiration` (epoch seconds: the end of the window, also the table's TTL
attribute, so DynamoDB deletes expired records), `in_progress_expiration` (epoch milliseconds: when an "in
progress" record left by a request that died stops blocking its key), `status`, `data` (the answer, JSON) and
`validation` (sha256 of the request, to recognise a key reused for another request).

Imported only when a request carries the header: powertools' idempotency utility (and jmespath) stay out of
a cold container's import otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    BaseError,
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)

from fleetscaler.dal.errors import table_error

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
from fleetscaler.dal.keys import IDEMPOTENCY_EXPIRY_ATTRIBUTE, IDEMPOTENCY_KEY_PREFIX
from fleetscaler.errors import IdempotencyKeyReused, RequestInProgress, StoreUnavailable

IN_PROGRESS_EXPIRY_ATTRIBUTE = "in_progress_expiration"
# Without a Lambda context, an "in progress" record of a request that died would block its key for the whole
# window: count on API Gateway's integration timeout instead.
DEFAULT_REMAINING_MS = 29_000
RETRY_IN_PROGRESS_AFTER_SECONDS = 1


def dynamodb_records(table_name: str, client: Any) -> BasePersistenceLayer:
    """Powertools' DynamoDB persistence layer on the metadata table (partition key `id`), with `client`."""
    return DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr="id",
        expiry_attr=IDEMPOTENCY_EXPIRY_ATTRIBUTE,
        in_progress_expiry_attr=IN_PROGRESS_EXPIRY_ATTRIBUTE,
        boto3_client=client,
    )


@dataclass(frozen=True)
class OnceAnswer:
    """What a call made once answered. `first`: computed by this call (else the first call's answer, from its
    record). `unrecorded`: why the answer could not be written to the record (a repeat may then run again)."""

    answer: dict[str, Any]
    first: bool
    unrecorded: str | None = None


@dataclass(frozen=True)
class _Remaining:
    """The one thing powertools reads of a Lambda context here."""

    remaining_ms: Callable[[], int]

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms()


def _compute(*, call: Mapping[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The function powertools makes idempotent: `call` is what identifies it, `compute` what it does."""
    return compute()


class IdempotentCalls:
    """Calls made at most once per key within `window_seconds`, their answers kept in `records`."""

    def __init__(self, records: BasePersistenceLayer, window_seconds: int, table_name: str) -> None:
        self.window_seconds = window_seconds
        self.table_name = table_name
        self._config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=window_seconds,
            hash_function="sha256",
        )
        self._once = idempotent_function(
            _compute,
            data_keyword_argument="call",
            persistence_store=records,
            config=self._config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )

    def once(
        self,
        key: str,
        request: Mapping[str, Any],
        compute: Callable[[], dict[str, Any]],
        remaining_ms: Callable[[], int] | None = None,
        *,
        field: str = "key",
    ) -> OnceAnswer:
        """`compute()`'s answer, computed only if no call with `key` was made within the window; otherwise the
        first call's answer. `request` describes the call: the same key with another request is
        IdempotencyKeyReused; a first call still running is RequestInProgress (retry later). A `compute` that
        raises leaves no record, so the key can be used again. `field` names the key in messages.
        """
        context = _Remaining(remaining_ms or (lambda: DEFAULT_REMAINING_MS))
        self._config.register_lambda_context(cast("LambdaContext", context))
        computed: list[dict[str, Any]] = []

        def first_time() -> dict[str, Any]:
            computed.append(compute())
            return computed[0]

        try:
            answer = self._once(call={"key": key, "request": dict(request)}, compute=first_time)
        except (IdempotencyAlreadyInProgressError, IdempotencyInconsistentStateError) as exc:
            raise RequestInProgress(
                f"{field}: a request with this key is still in progress; send it again in "
                f"{RETRY_IN_PROGRESS_AFTER_SECONDS} second(s) for its answer",
                RETRY_IN_PROGRESS_AFTER_SECONDS,
            ) from exc
        except IdempotencyValidationError as exc:
            raise IdempotencyKeyReused(
                f"{field}: this key was sent with a different request within the last {self.window_seconds} "
                "seconds (another input, body or parameter); use a new key for a new request"
            ) from exc
        except IdempotencyPersistenceLayerError as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
            if computed:
                # The call was made (a request was queued): its answer stands, unrecorded.
                return OnceAnswer(computed[0], first=True, unrecorded=str(table_error(self.table_name, cause)))
            raise table_error(self.table_name, cause) from exc
        except BaseError as exc:
            raise StoreUnavailable(
                f"the idempotency record of this {field} in table {self.table_name} is unreadable "
                f"({type(exc).__name__})"
            ) from exc
        return OnceAnswer(answer, first=bool(computed))
