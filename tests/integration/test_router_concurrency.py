"""Many Lambda containers at once: the shared counter loses nothing and the split stays exact."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from fleetscaler.handlers.router import handler
from tests.conftest import DATA_FILE, TABLE, load_file

THREADS = 8
PER_THREAD = 250


def test_8_threads_x_250_requests_over_http(moto_server: str, router_event: Any, lambda_context: Any) -> None:
    # Given the seed data in a table behind a real moto HTTP server, weights 5,3,2
    load_file(DATA_FILE)
    boto3.resource("dynamodb").Table(TABLE).update_item(
        Key={"id": "server_config"}, UpdateExpression="SET weights = :w", ExpressionAttributeValues={":w": [5, 3, 2]}
    )

    def worker(_: int) -> list[str]:
        chosen = []
        for _ in range(PER_THREAD):
            response = handler(router_event(), lambda_context)
            assert response["statusCode"] == 202, response["body"]
            chosen.append(json.loads(response["body"])["endpointName"])
        return chosen

    # When 8 threads send 250 requests each through the handler
    with ThreadPoolExecutor(THREADS) as pool:
        results = [name for names in pool.map(worker, range(THREADS)) for name in names]

    # Then no counter increment was lost and the split is exactly 5:3:2
    total = THREADS * PER_THREAD
    item = boto3.resource("dynamodb").Table(TABLE).get_item(Key={"id": "server_config"}, ConsistentRead=True)["Item"]
    assert int(item["request_count"]) == total
    assert Counter(results) == {"endpoint-1": total // 2, "endpoint-2": total * 3 // 10, "endpoint-3": total // 5}
