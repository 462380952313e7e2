"""Router benchmark (`make bench`): DynamoDB calls per request (with and without an Idempotency-Key), fairness,
handler time, cold import, and the first pick of a cold container for weights whose exact period would be a
million requests.

Runs the real router handler in process against moto (no network), weights 5,3,2. Cold imports are measured in
fresh interpreters, alternating the statements, several runs each, median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
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


ROUTER_IMPORT = "import fleetscaler.handlers.router"
BOTO3_IMPORT = "import boto3"
# The ceiling of issue 15: the router's cold import at most this many times a bare `import boto3`.
COLD_IMPORT_TARGET = 1.3


def _import_seconds(statement: str, env: dict[str, str]) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    return float(run.stdout)


def cold_imports(statements: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    """Median seconds of each import in fresh interpreters, the statements alternating so that a busy machine
    weighs on all of them alike."""
    samples: dict[str, list[float]] = {statement: [] for statement in statements}
    for _ in range(runs):
        for statement in statements:
            samples[statement].append(_import_seconds(statement, env))
    return {statement: statistics.median(values) for statement, values in samples.items()}


def bytecode_environments(cached: Path, lambda_like: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Two environments for the fresh interpreters, whatever PYTHONDONTWRITEBYTECODE says here:

    - `cached`: every module's bytecode is on disk (a private PYTHONPYCACHEPREFIX, written by one warm-up run);
    - `lambda_like`: as Lambda runs `code.zip`, which carries no .pyc: the standard library has bytecode,
      fleetscaler and its dependencies are compiled on every cold start.
    """
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    warm = {**base, "PYTHONPYCACHEPREFIX": str(cached)}
    subprocess.run([sys.executable, "-c", f"{ROUTER_IMPORT}; {BOTO3_IMPORT}"], check=True, env=warm)
    shutil.copytree(cached, lambda_like, dirs_exist_ok=True)
    for packaged in {sysconfig.get_paths()["purelib"], str(ROOT / "src")}:
        for path in {packaged, os.path.realpath(packaged)}:
            shutil.rmtree(lambda_like / path.lstrip(os.sep), ignore_errors=True)
    return warm, {**base, "PYTHONPYCACHEPREFIX": str(lambda_like), "PYTHONDONTWRITEBYTECODE": "1"}


def heaviest_imports(env: dict[str, str], count: int = 5) -> list[tuple[str, float]]:
    """`python -X importtime`: what the router module imports directly once boto3 is loaded, heaviest first
    (milliseconds, cumulative)."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"{BOTO3_IMPORT}; {ROUTER_IMPORT}"],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    lines = [line.split("|") for line in run.stderr.splitlines() if line.startswith("import time:")]
    names = [parts[2].rstrip() for parts in lines]
    after_boto3 = lines[names.index(" boto3") + 1 :]
    # Entries are indented two spaces per level below the statement's own module (one space).
    direct = [
        (parts[2].strip(), int(parts[1]) / 1000)
        for parts in after_boto3
        if len(parts[2]) - len(parts[2].lstrip(" ")) == 3
    ]
    return sorted(direct, key=lambda item: -item[1])[:count]


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
    parser.add_argument("--keyed", type=int, default=1_000, help="requests with an Idempotency-Key (each repeated)")
    parser.add_argument("--import-runs", type=int, default=15, help="fresh interpreters per cold import")
    args = parser.parse_args()

    import contextlib
    import io
    import json

    import boto3
    import botocore.client
    from moto import mock_aws

    calls: Counter[str] = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation: str, params: Any) -> Any:
        calls[self.meta.service_model.service_name] += 1
        return original(self, operation, params)

    def per_request(service: str, requests: int) -> str:
        return f"{calls[service] / requests:.3f}"

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
        keyed: list[str] = []
        botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # EMF lines
                for _ in range(args.requests):
                    start = time.perf_counter()
                    response = handler(event, context)
                    durations.append(time.perf_counter() - start)
                    assert response["statusCode"] == 202, response["body"]
                    chosen.append(names.index(json.loads(response["body"])["endpointName"]))
                plain = dict(calls)
                calls.clear()
                for number in range(args.keyed):
                    with_key = {**event, "headers": {**event["headers"], "Idempotency-Key": f"bench-{number}"}}
                    response = handler(with_key, context)
                    assert response["statusCode"] == 202, response["body"]
                    keyed.append(response["body"])
                first = dict(calls)
                calls.clear()
                for number in range(args.keyed):
                    with_key = {**event, "headers": {**event["headers"], "Idempotency-Key": f"bench-{number}"}}
                    response = handler(with_key, context)
                    assert response["body"] == keyed[number], "a repeat must get the first answer"
                repeats = dict(calls)
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]

    split = Counter(chosen)
    print(f"router benchmark: weights {weights}, {args.requests} requests, moto in process")
    for label, counted, requests in (
        ("", plain, args.requests),
        (f", {args.keyed} with a new Idempotency-Key", first, args.keyed),
        (f", {args.keyed} repeats of those keys", repeats, args.keyed),
    ):
        calls.clear()
        calls.update(counted)
        print(
            f"  calls per request{label}: DynamoDB {per_request('dynamodb', requests)}, "
            f"SageMaker {per_request('sagemaker-runtime', requests)}"
        )
    print(f"  split                           {[split[i] for i in range(3)]}")
    print(f"  max deviation over any prefix   {max_prefix_deviation(chosen, weights):.3f} requests")
    print(f"  median handler time             {statistics.median(durations) * 1000:.2f} ms")
    print(f"  p95 handler time                {statistics.quantiles(durations, n=20)[18] * 1000:.2f} ms")
    for cold_weights in ([5, 3, 2], [500_000, 499_999, 1]):
        seconds, bounded, error = cold_pick(cold_weights)
        label = ",".join(map(str, cold_weights))
        print(
            f"  cold first pick, {label:<17}{seconds * 1000:.1f} ms "
            f"(period {sum(bounded)}, shares within {error * 100:.4f} points of exact)"
        )
    with tempfile.TemporaryDirectory() as cached, tempfile.TemporaryDirectory() as lambda_like:
        cached_env, lambda_env = bytecode_environments(Path(cached), Path(lambda_like))
        print(f"  cold import, fresh interpreters, median of {args.import_runs}:")
        for label, env in (("bytecode on disk", cached_env), ("no bytecode for code.zip, as on Lambda", lambda_env)):
            seconds = cold_imports([ROUTER_IMPORT, BOTO3_IMPORT], env, args.import_runs)
            router, bare = seconds[ROUTER_IMPORT], seconds[BOTO3_IMPORT]
            print(
                f"    {label}: router handler {router * 1000:.0f} ms, boto3 {bare * 1000:.0f} ms, "
                f"ratio {router / bare:.2f} (target {COLD_IMPORT_TARGET})"
            )
        heaviest = ", ".join(f"{name} {ms:.0f} ms" for name, ms in heaviest_imports(cached_env))
        print(f"    heaviest imports beyond boto3's (python -X importtime): {heaviest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
