"""Submit benchmark (`make bench-submit`): how fast `fleetscaler submit` can send, with the router out of the way.

S3 is moto in process; the router is a 127.0.0.1 stand-in in another process that answers 202 at once, so
the figures are the client's own ceiling (journal, signing, one HTTP connection per request), to compare with
the router's ~1,000 requests/s per fleet. Also the journal alone: its two writes per key.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.update(
    AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1"
)


class InstantRouter(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    count = 0
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with InstantRouter.lock:
            n = InstantRouter.count
            InstantRouter.count += 1
        body = json.dumps(
            {
                "endpointName": "endpoint-1",
                "inferenceId": f"inference-{n}",
                "outputLocation": f"s3://bench-results/{n}.out",
                "failureLocation": f"s3://bench-results/failures/{n}-error.out",
            }
        ).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_instant_router(ports: multiprocessing.Queue[int]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), InstantRouter)
    server.daemon_threads = True
    ports.put(server.server_address[1])
    server.serve_forever()


def bench_journal(count: int, folder: Path) -> float:
    """Keys per second through the journal's per-key writes (sending, then accepted), no network."""
    from fleetscaler.cli.batch.journal import Journal, ListedObject

    with Journal.open(folder / "journal-only.sqlite", create=True) as journal:
        journal.bind("endpoint", "s3://bench-inputs/docs/", None, 0.0)
        run = journal.begin_run()
        objects = [ListedObject(f"docs/{i:07d}", '"etag"', 10) for i in range(count)]
        for start in range(0, count, 1000):
            journal.merge_listing("bench-inputs", objects[start : start + 1000], run, 0.0)
        started = time.perf_counter()
        for i, obj in enumerate(objects):
            journal.mark_sending(obj.key, run, 1.0)
            journal.record_accepted(obj.key, {"outputLocation": f"s3://o/{i}.out"}, 2.0)
        return count / (time.perf_counter() - started)


def bench_submit(count: int, concurrency: int, folder: Path) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from fleetscaler.cli.main import main

    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    router = multiprocessing.Process(target=serve_instant_router, args=(ports,), daemon=True)
    router.start()
    port = ports.get(timeout=30)
    try:
        with mock_aws():
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="bench-inputs")
            for i in range(count):
                s3.put_object(Bucket="bench-inputs", Key=f"docs/{i:07d}.json", Body=b"{}")
            out = io.StringIO()
            started = time.perf_counter()
            with contextlib.redirect_stdout(out):
                code = main(
                    [
                        "--router-url", f"http://127.0.0.1:{port}/prod", "--output", "json",
                        "submit", "endpoint", "s3://bench-inputs/docs/", "--journal", str(folder / "submit.sqlite"),
                        "--rate", "10000", "--concurrency", str(concurrency),
                    ]
                )  # fmt: skip
            wall = time.perf_counter() - started
    finally:
        router.terminate()
        router.join()
    summary = json.loads(out.getvalue())
    assert code == 0 and summary["accepted"] == count, summary
    return {"wall": wall, "sending": summary["seconds"], "achieved": summary["rate_per_second"]["achieved"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"journal alone: {bench_journal(args.count, Path(folder)):,.0f} keys/s (two writes a key)")
        for concurrency in args.concurrency:
            with tempfile.TemporaryDirectory() as run_folder:
                result = bench_submit(args.count, concurrency, Path(run_folder))
            print(
                f"submit {args.count} objects, --concurrency {concurrency}: {result['achieved']:,.0f} requests/s "
                f"while sending ({result['sending']:.1f} s; {result['wall']:.1f} s with listing and start-up)"
            )


if __name__ == "__main__":
    main()
