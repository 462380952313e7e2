"""Router benchmark (`make bench`): DynamoDB calls per request, fairness, handler time, cold import, and the
first pick of a cold container for weights whose exact period would be a million requests.

Runs the real router handler in process against moto (no network), weights 5,3,2.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    TABLE_NAME="fleetscaler-bench",
    RESOURCE_NAME="endpoint",
    POWERTOOLS_LOG_LEVEL="ERROR",
    POWERTOOLS_METRICS_NAMESPACE="fleetscaler-bench",
)


def cold_import_seconds(statement: str, runs: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    samples = [
        float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
        for _ in range(runs)
    ]
    return statistics.median(samples)


def max_prefix_deviation(chosen: list[int], weights: list[int]) -> float:
    total = sum(weights)
    counts = [0] * len(weights)
    worst = 0.0
    for k, index in enumerate(chosen, start=1):
        counts[index] += 1
        worst = max(worst, *(abs(counts[i] - k * w / total) for i, w in enumerate(weights)))
    return worst


def cold_pick(weights: list[int]) -> tuple[float, tuple[int, ...], float]:
    """The first pick of a cold container (the period is built then): seconds, the weights the period is
    built from, and the largest difference between an endpoint's share and its exact share."""
    from fleetscaler.logic import wrr

    wrr._sequence.cache_clear()
    start = time.perf_counter()
    wrr.pick(weights, 123_456_789)
    elapsed = time.perf_counter() - start
    bounded = wrr.period_weights(weights)
    error = max(abs(b / sum(bounded) - w / sum(weights)) for w, b in zip(weights, bounded, strict=True))
    return elapsed, bounded, error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()

    import contextlib
    import io

    import boto3
    import botocore.client
    from moto import mock_aws

    calls: Counter[str] = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation: str, params: Any) -> Any:
        calls[f"{self.meta.service_model.service_name}:{operation}"] += 1
        return original(self, operation, params)

    weights = [5, 3, 2]
    with mock_aws():
        from tests.conftest import FakeLambdaContext, load_event

        from fleetscaler.dal.seed import create_table, load_items, read_items
        from fleetscaler.dal.store import get_store
        from fleetscaler.handlers.router import handler

        get_store()
        create_table("fleetscaler-bench")
        load_items("fleetscaler-bench", read_items(ROOT / "data" / "ddb-data.jsonl"))
        boto3.resource("dynamodb").Table("fleetscaler-bench").update_item(
            Key={"id": "server_config"}, UpdateExpression="SET weights = :w", ExpressionAttributeValues={":w": weights}
        )
        event, context = load_event("apigw_router_post.json"), FakeLambdaContext()
        names = [f"endpoint-{i}" for i in (1, 2, 3)]
        chosen: list[int] = []
        durations: list[float] = []
        botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # EMF lines
                for _ in range(args.requests):
                    start = time.perf_counter()
                    response = handler(event, context)
                    durations.append(time.perf_counter() - start)
                    assert response["statusCode"] == 202, response["body"]
                    chosen.append(names.index(__import__("json").loads(response["body"])["endpointName"]))
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]

    dynamodb_calls = sum(n for key, n in calls.items() if key.startswith("dynamodb:"))
    split = Counter(chosen)
    print(f"router benchmark: weights {weights}, {args.requests} requests, moto in process")
    print(f"  DynamoDB calls per request      {dynamodb_calls / args.requests:.3f}")
    print(f"  SageMaker calls per request     {calls['sagemaker-runtime:InvokeEndpointAsync'] / args.requests:.3f}")
    print(f"  split                           {[split[i] for i in range(3)]}")
    print(f"  max deviation over any prefix   {max_prefix_deviation(chosen, weights):.3f} requests")
    print(f"  median handler time             {statistics.median(durations) * 1000:.2f} ms")
    print(f"  p95 handler time                {statistics.quantiles(durations, n=20)[18] * 1000:.2f} ms")
    print(
        f"  cold import: router handler     {cold_import_seconds('import fleetscaler.handlers.router') * 1000:.0f} ms"
    )
    print(f"  cold import: boto3              {cold_import_seconds('import boto3') * 1000:.0f} ms")
    for cold_weights in ([5, 3, 2], [500_000, 499_999, 1]):
        seconds, bounded, error = cold_pick(cold_weights)
        label = ",".join(map(str, cold_weights))
        print(
            f"  cold first pick, {label:<17}{seconds * 1000:.1f} ms "
            f"(period {sum(bounded)}, shares within {error * 100:.4f} points of exact)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
