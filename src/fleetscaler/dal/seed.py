"""Create the metadata table and load/export `data/ddb-data.jsonl`-style files.

The file format is the one DynamoDB's import from S3 takes: one `{"Item": {...}}` per line, values in
DynamoDB JSON. Items are written as they are, so a hand-written file keeps every attribute it has.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from fleetscaler.dal.errors import CONDITION_FAILED, client_error_code, translate_client_errors
from fleetscaler.dal.keys import is_idempotency_record
from fleetscaler.dal.models import ServerConfigItem
from fleetscaler.dal.store import translate_errors
from fleetscaler.errors import ConcurrentModification


class SeedFileError(ValueError):
    """A line of a seed file is not a DynamoDB-JSON item; the message names the line."""


def read_items(path: Path | str) -> list[dict[str, Any]]:
    """Parse a jsonl seed file into DynamoDB-JSON items (each with an `id` string key)."""
    return list(_parse_lines(Path(path).read_text(encoding="utf-8").splitlines(), str(path)))


def _parse_lines(lines: Iterable[str], source: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SeedFileError(f"{source}:{number}: not valid JSON ({exc.msg})") from exc
        item = record.get("Item") if isinstance(record, dict) else None
        if not isinstance(item, dict):
            raise SeedFileError(f'{source}:{number}: each line must be {{"Item": {{...}}}}')
        key = item.get("id")
        if not isinstance(key, dict) or not isinstance(key.get("S"), str):
            raise SeedFileError(f'{source}:{number}: the item needs a string key "id": {{"S": "..."}}')
        if is_idempotency_record(key["S"]):
            # Loading one would hand a stale answer to a later request that reuses its key.
            raise SeedFileError(
                f"{source}:{number}: {key['S']!r} is one of the router's idempotency records, not "
                "configuration; remove the line (`config export` never writes them)"
            )
        yield item


def create_table(table_name: str, *, wait: bool = True) -> None:
    """Create the table from the models' own key schema (on-demand billing)."""
    with translate_errors(table_name):
        if not ServerConfigItem.exists():
            ServerConfigItem.create_table(billing_mode="PAY_PER_REQUEST", wait=wait)


def load_items(table_name: str, items: Iterable[dict[str, Any]], client: Any = None) -> int:
    """Put each item as it is. `client`: a DynamoDB client to use (default: one from the environment)."""
    client = client or boto3.client("dynamodb")
    count = 0
    with translate_client_errors(table_name):
        for item in items:
            client.put_item(TableName=table_name, Item=item)
            count += 1
    return count


def export_items(table_name: str, client: Any = None) -> list[dict[str, Any]]:
    """Every item of the table in DynamoDB JSON, sorted by id (a stable file for diffs and round trips), but the
    router's idempotency records: short-lived answers to requests, not configuration."""
    client = client or boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    with translate_client_errors(table_name):
        for page in client.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
            items.extend(item for item in page["Items"] if not is_idempotency_record(str(item["id"]["S"])))
    return sorted(items, key=lambda item: str(item["id"]["S"]))


def dump_items(items: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps({"Item": item}, sort_keys=True) + "\n" for item in items)


def get_item(table_name: str, item_id: str, client: Any = None) -> dict[str, Any] | None:
    """One item as stored (DynamoDB JSON, every attribute), read consistently; None when absent."""
    client = client or boto3.client("dynamodb")
    with translate_client_errors(table_name):
        response = client.get_item(TableName=table_name, Key={"id": {"S": item_id}}, ConsistentRead=True)
    item: dict[str, Any] | None = response.get("Item")
    return item


def put_server_config_item(
    table_name: str, item: dict[str, Any], expected_version: int | None, exists: bool, client: Any = None
) -> None:
    """Replace the whole server_config item only if nobody changed it since it was read.

    `exists`/`expected_version` describe what the caller read; a mismatch raises ConcurrentModification,
    the same contract as MetadataStore.update_server_config.
    """
    client = client or boto3.client("dynamodb")
    if not exists:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(id)"}
    elif expected_version is None:
        condition = {"ConditionExpression": "attribute_exists(id) AND attribute_not_exists(config_version)"}
    else:
        condition = {
            "ConditionExpression": "config_version = :expected",
            "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
        }
    with translate_client_errors(table_name):
        try:
            client.put_item(TableName=table_name, Item=item, **condition)
        except ClientError as exc:
            if client_error_code(exc) == CONDITION_FAILED:
                raise ConcurrentModification(
                    f"server_config changed since version {expected_version}; re-read it and try again"
                ) from exc
            raise
