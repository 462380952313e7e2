"""`make demo`: run the router Lambda against a local moto server and show where requests went."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().parents[3] / "data" / "ddb-data.jsonl"


def _event(fleet: str, index: int) -> dict[str, Any]:
    return {
        "resource": "/endpoints/{EndpointName}",
        "path": f"/endpoints/{fleet}",
        "httpMethod": "POST",
        "headers": {"InputLocation": f"s3://demo-inputs/payload-{index}.csv", "ContentType": "text/csv"},
        "pathParameters": {"EndpointName": fleet},
        "requestContext": {
            "requestId": f"demo-{index}",
            "stage": "local",
            "resourcePath": "/endpoints/{EndpointName}",
            "httpMethod": "POST",
            "path": f"/local/endpoints/{fleet}",
        },
        "body": None,
        "isBase64Encoded": False,
    }


class _Context:
    function_name = "fleetscaler-router-local"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:fleetscaler-router-local"
    aws_request_id = "local"


def main() -> int:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        TABLE_NAME="fleetscaler-demo",
        RESOURCE_NAME="endpoint",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    try:
        import boto3

        from fleetscaler.dal.seed import create_table, load_items, read_items
        from fleetscaler.dal.store import get_store
        from fleetscaler.handlers.router import handler

        get_store()
        create_table("fleetscaler-demo")
        load_items("fleetscaler-demo", read_items(DATA_FILE))
        weights = [4, 2, 1]
        boto3.resource("dynamodb").Table("fleetscaler-demo").update_item(
            Key={"id": "server_config"}, UpdateExpression="SET weights = :w", ExpressionAttributeValues={":w": weights}
        )
        print(f"local stack: moto on http://{host}:{port}, table fleetscaler-demo, fleet 'endpoint'")
        print(f"weights {weights}; sending 70 requests through the router Lambda\n")
        chosen: list[str] = []
        for i in range(70):
            response = handler(_event("endpoint", i), _Context())  # type: ignore[arg-type]
            if response["statusCode"] != 202:
                print(f"request {i} failed: {response['statusCode']} {response['body']}")
                return 1
            chosen.append(json.loads(response["body"])["endpointName"])
        print("first 14 picks:", " ".join(name.rsplit("-", 1)[1] for name in chosen[:14]))
        counts = Counter(chosen)
        print(f"\n{'endpoint':<12}{'weight':>8}{'requests':>10}")
        for i, name in enumerate(["endpoint-1", "endpoint-2", "endpoint-3"]):
            print(f"{name:<12}{weights[i]:>8}{counts[name]:>10}")
        lost = 70 - sum(counts.values())
        print(f"\nrequests sent 70, routed {sum(counts.values())}, lost {lost}")
        return 0 if lost == 0 and [counts[f"endpoint-{i}"] for i in (1, 2, 3)] == [40, 20, 10] else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
