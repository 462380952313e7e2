"""The router's idempotency records share the metadata table: nothing that reads the table is confused by them.

`config export` leaves them out (they are answers to requests, not configuration), `config import` and the seed
loader refuse a file that carries one (it would hand a stale answer to a later request), and `config show`,
`config set` and `status` read only their own items.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from fleetscaler.dal.keys import IDEMPOTENCY_ID_PREFIX
from fleetscaler.dal.seed import SeedFileError, read_items
from fleetscaler.handlers.router import handler
from tests.cli.conftest import create_endpoints
from tests.conftest import DATA_FILE, TABLE


@pytest.fixture
def routed_with_keys(table: str, router_event: Any, lambda_context: Any) -> list[str]:
    """The table after the router answered two requests with an Idempotency-Key: the ids of their records."""
    for key in ("batch/a.csv", "batch/b.csv"):
        assert handler(router_event(headers={"Idempotency-Key": key}), lambda_context)["statusCode"] == 202
    items = boto3.resource("dynamodb").Table(TABLE).scan()["Items"]
    ids = sorted(str(item["id"]) for item in items if str(item["id"]).startswith(IDEMPOTENCY_ID_PREFIX))
    assert len(ids) == 2
    return ids


def test_export_leaves_the_records_out_and_round_trips(routed_with_keys: list[str], run: Any, tmp_path: Path) -> None:
    # When the table is exported
    exported = tmp_path / "fleet.jsonl"
    result = run("config", "export", str(exported))
    # Then the file has the fleet's three items and none of the router's records
    assert result.code == 0, result.err
    ids = [json.loads(line)["Item"]["id"]["S"] for line in exported.read_text().splitlines()]
    assert ids == ["custom-resource:ResourceType:Property", "request_counter", "server_config"]
    assert len(ids) == len(DATA_FILE.read_text().splitlines())
    # And importing it back is no change at all
    assert "no change" in run("config", "import", str(exported), "--yes").out


def test_import_refuses_a_file_carrying_a_record_naming_the_line(
    routed_with_keys: list[str], run: Any, tmp_path: Path
) -> None:
    # Given a file into which a record found its way (a hand-made scan of the table)
    record = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": routed_with_keys[0]}})["Item"]
    path = tmp_path / "scan.jsonl"
    path.write_text(DATA_FILE.read_text() + json.dumps({"Item": record}) + "\n")
    # When imported / Then nothing is written and the line is named, with what to do
    result = run("config", "import", str(path), "--yes")
    assert result.code == 2
    line = len(DATA_FILE.read_text().splitlines()) + 1
    assert result.err.strip() == (
        f"error: {path}:{line}: {routed_with_keys[0]!r} is one of the router's idempotency records, not "
        "configuration; remove the line (`config export` never writes them)"
    )
    # And the seed loader refuses it the same way
    with pytest.raises(SeedFileError, match=rf":{line}: 'idempotency#"):
        read_items(path)


def test_show_set_and_status_read_only_their_own_items(routed_with_keys: list[str], run: Any) -> None:
    create_endpoints("endpoint-1", "endpoint-2", "endpoint-3")
    shown = run("--output", "json", "config", "show")
    assert shown.code == 0, shown.err
    assert [e["endpoint"] for e in json.loads(shown.out)["endpoints"]] == ["endpoint-1", "endpoint-2", "endpoint-3"]
    assert run("config", "set", "--weights", "2,1,1", "--yes").code == 0
    status = run("status")
    assert status.code == 0, status.err
    assert "idempotency" not in status.out + shown.out
