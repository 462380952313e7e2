"""The ids of the metadata table's items (partition key `id`), in a module of their own so that code which
never touches pynamodb (the router) can name them."""

from __future__ import annotations

SERVER_CONFIG_ID = "server_config"
REQUEST_COUNTER_ID = "request_counter"
DIMENSION_ID = "custom-resource:ResourceType:Property"
# The router's idempotency records are `idempotency#<sha256 of the Idempotency-Key>`: `#` appears in no other
# id, so they cannot collide with the items above (see dal.idempotency).
IDEMPOTENCY_KEY_PREFIX = "idempotency"
IDEMPOTENCY_ID_PREFIX = IDEMPOTENCY_KEY_PREFIX + "#"
# The end of an idempotency record's window, epoch seconds: also the table's TTL attribute (DynamoDB deletes
# expired records within days; the router never relies on it having done so).
IDEMPOTENCY_EXPIRY_ATTRIBUTE = "expiration"
DEFAULT_TABLE_NAME = "fleetscaler-metadata"


def is_idempotency_record(item_id: str) -> bool:
    """True for the id of one of the router's idempotency records."""
    return item_id.startswith(IDEMPOTENCY_ID_PREFIX)
