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

from fleetscaler.dal.models import ServerConfigItem
from fleetscaler.dal.store import translate_errors


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
        yield item


def create_table(table_name: str, *, wait: bool = True) -> None:
    """Create the table from the models' own key schema (on-demand billing)."""
    with translate_errors(table_name):
        if not ServerConfigItem.exists():
            ServerConfigItem.create_table(billing_mode="PAY_PER_REQUEST", wait=wait)


def load_items(table_name: str, items: Iterable[dict[str, Any]]) -> int:
    client = boto3.client("dynamodb")
    count = 0
    for item in items:
        client.put_item(TableName=table_name, Item=item)
        count += 1
    return count


def export_items(table_name: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
        items.extend(page["Items"])
    return sorted(items, key=lambda item: str(item["id"]["S"]))


def dump_items(items: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps({"Item": item}, sort_keys=True) + "\n" for item in items)
