"""`fleetscaler invoke`: send SigV4-signed requests to the router API, one or a paced (ramping) load.

Signing is botocore's own (SigV4Auth, service `execute-api`) with credentials from the standard chain;
HTTP is the standard library's, so the CLI adds no dependency to the package.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError, ClientError

from fleetscaler import clock
from fleetscaler.cli.context import CliContext, CliError, pass_cli
from fleetscaler.cli.render import table
from fleetscaler.logic.invocation import parse_invocation

# Waiting between polls and paced sends; tests replace it so no real time passes where none needs to.
sleep: Callable[[float], None] = time.sleep

SERVICE = "execute-api"
REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
CONNECTION_ERROR = "connection error"
CLIENT_ERROR = "client error"
HTTP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Reply:
    """One request's outcome: HTTP status (or CONNECTION_ERROR), the router's JSON answer, latency.

    `retry_after` is the answer's Retry-After header as sent (429 and 503 carry one).
    """

    status: int | str
    body: dict[str, Any]
    latency_seconds: float
    error: str | None = None
    retry_after: str | None = None

    @property
    def endpoint(self) -> str | None:
        value = self.body.get("endpointName")
        return str(value) if value else None

    @property
    def message(self) -> str:
        return str(self.body.get("message") or self.error or self.body)


class SignedSender:
    """POSTs to `{base}/endpoints/{fleet}`, each request freshly signed (SigV4 dates go stale).

    `credentials` may be refreshable (SSO, assumed roles): they are frozen for each request, as botocore
    does, so a batch that outlives one set of temporary credentials signs with the next.
    """

    def __init__(self, base_url: str, credentials: Any, region: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.region = region

    def url(self, fleet: str) -> str:
        return f"{self.base_url}/endpoints/{urllib.parse.quote(fleet, safe='')}"

    def send(self, fleet: str, headers: dict[str, str], body: bytes | None) -> Reply:
        request = AWSRequest(method="POST", url=self.url(fleet), data=body or b"", headers=dict(headers))
        if body:
            request.headers["Content-Type"] = "application/octet-stream"
        freeze = getattr(self.credentials, "get_frozen_credentials", None)
        credentials = freeze() if freeze is not None else self.credentials
        SigV4Auth(credentials, SERVICE, self.region).add_auth(request)
        prepared = request.prepare()
        http_request = urllib.request.Request(
            prepared.url, data=body or b"", headers=dict(prepared.headers.items()), method="POST"
        )
        started = clock.now()
        try:
            with urllib.request.urlopen(http_request, timeout=HTTP_TIMEOUT_SECONDS) as response:
                status, raw, retry_after = response.status, response.read(), response.headers.get("Retry-After")
        except urllib.error.HTTPError as exc:
            status, raw, retry_after = exc.code, exc.read(), exc.headers.get("Retry-After")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return Reply(CONNECTION_ERROR, {}, clock.now() - started, error=f"cannot reach {self.base_url}: {reason}")
        latency = clock.now() - started
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError:
            parsed = {"message": raw[:200].decode("utf-8", "replace")}
        answer = parsed if isinstance(parsed, dict) else {"message": str(parsed)}
        return Reply(status, answer, latency, retry_after=retry_after)


def signing_region(base_url: str, configured: str) -> str:
    host = urllib.parse.urlsplit(base_url).hostname or ""
    match = REGION_IN_HOST.search(host)
    return match.group(1) if match else configured


def send_offsets(count: int, rate: float, ramp_step: float = 0.0, step_seconds: float = 60.0) -> list[float]:
    """When to send each of `count` requests (seconds from the start).

    `rate` requests/s during the first step, `rate + ramp_step` during the second and so on, like the
    step-scaling sample's load script (requestsPerMinute, requestStepSize, minutesPerStepSize).
    """
    offsets: list[float] = []
    moment = 0.0
    for _ in range(count):
        offsets.append(moment)
        # The epsilon keeps accumulated float error (10 x 0.1 = 0.999...) from delaying a step.
        step = math.floor(moment / step_seconds + 1e-9) if ramp_step else 0
        moment += 1.0 / (rate + step * ramp_step)
    return offsets


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class LoadSummary:
    replies: list[Reply] = field(default_factory=list)
    seconds: float = 0.0

    def by_endpoint(self) -> Counter[str]:
        return Counter(r.endpoint for r in self.replies if r.endpoint and r.status == 202)

    def by_status(self) -> Counter[str]:
        return Counter(str(r.status) for r in self.replies)

    def latency_ms(self) -> dict[str, float]:
        values = sorted(r.latency_seconds * 1000 for r in self.replies if isinstance(r.status, int))
        if not values:
            return {}
        return {name: round(percentile(values, q), 1) for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))} | {
            "max": round(values[-1], 1)
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": len(self.replies),
            "seconds": round(self.seconds, 2),
            "by_endpoint": dict(sorted(self.by_endpoint().items())),
            "by_status": dict(sorted(self.by_status().items())),
            "latency_ms": self.latency_ms(),
        }

    def as_text(self) -> str:
        rate = len(self.replies) / self.seconds if self.seconds > 0 else float(len(self.replies))
        parts = [f"{len(self.replies)} requests in {self.seconds:.1f}s ({rate:.1f}/s)", ""]
        parts.append(table(["ENDPOINT", "ACCEPTED"], sorted(self.by_endpoint().items()) or [["(none)", 0]]))
        parts.append("")
        parts.append(table(["STATUS", "COUNT"], sorted(self.by_status().items())))
        latency = self.latency_ms()
        if latency:
            parts.append("")
            parts.append(table(["LATENCY (ms)", *latency], [["", *latency.values()]]))
        errors = Counter(r.message for r in self.replies if r.status != 202)
        for message, count in errors.most_common(3):
            parts.append(f"{count} x {message}")
        return "\n".join(parts)


def run_load(
    sender: SignedSender,
    fleet: str,
    headers: dict[str, str],
    body: bytes | None,
    offsets: Sequence[float],
    concurrency: int,
    show_progress: bool,
) -> LoadSummary:
    """Send one request at each offset, at most `concurrency` in flight.

    When replies are slower than the rate allows, later requests wait for a free slot (the summary's
    achieved rate shows it). Every request ends up in the summary, whatever happened to it.
    """
    summary = LoadSummary()
    lock = threading.Lock()
    completed = [0]

    def record(future: Future[Reply]) -> None:
        try:
            reply = future.result()
        except Exception as exc:  # an unexpected transport failure: counted, never lost
            reply = Reply(CLIENT_ERROR, {}, 0.0, error=f"{type(exc).__name__}: {exc}")
        with lock:
            summary.replies.append(reply)
            completed[0] += 1

    progress = click.progressbar(length=len(offsets), label="sending", file=sys.stderr)
    started = clock.now()
    with ThreadPoolExecutor(max_workers=concurrency) as pool, progress as bar:
        shown = 0
        for offset in offsets:
            delay = started + offset - clock.now()
            if delay > 0:
                sleep(delay)
            pool.submit(sender.send, fleet, headers, body).add_done_callback(record)
            if show_progress:
                with lock:
                    done = completed[0]
                bar.update(done - shown)
                shown = done
        pool.shutdown(wait=True)
        if show_progress:
            bar.update(len(offsets) - shown)
    summary.seconds = clock.now() - started
    return summary


def parse_headers(pairs: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise CliError(f"--header: {pair!r} must be NAME=VALUE, e.g. RequestTTLSeconds=600")
        headers[name.strip()] = value
    return headers


def s3_location(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def wait_for_result(cli: CliContext, output: str, failure: str | None, timeout: float, interval: float) -> str:
    """Poll the output and failure objects until one exists; the output's text, or CliError on failure."""
    s3 = cli.client("s3")
    deadline = clock.now() + timeout
    while True:
        for kind, location in (("output", output), ("failure", failure)):
            if not location:
                continue
            bucket, key = s3_location(location)
            try:
                content = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                    continue
                raise CliError(f"cannot read {location}: {exc.response.get('Error', {}).get('Message', exc)}") from exc
            except BotoCoreError as exc:
                raise CliError(f"cannot read {location}: {exc}") from exc
            text = content.decode("utf-8", "replace")
            if kind == "failure":
                first_line = text.strip().splitlines()[0] if text.strip() else "(empty failure object)"
                raise CliError(f"inference failed ({location}): {first_line}")
            return text
        if clock.now() >= deadline:
            raise CliError(f"no result at {output} after {timeout:g}s (the request may still be queued)")
        sleep(interval)


@click.command("invoke")
@click.argument("fleet")
@click.option("--input", "input_location", help="s3://bucket/key of the input (InputLocation).")
@click.option("--body-file", type=click.Path(exists=True, dir_okay=False), help="Send this file inline instead.")
@click.option("--content-type", help="ContentType passed to SageMaker, e.g. text/csv.")
@click.option("--header", "extra_headers", multiple=True, help="NAME=VALUE, e.g. RequestTTLSeconds=600 (repeatable).")
@click.option("--wait", is_flag=True, help="Poll the output/failure location in S3 and print the result.")
@click.option("--timeout", type=click.FloatRange(min=1), default=900, show_default=True, help="Seconds for --wait.")
@click.option("--poll-interval", type=click.FloatRange(min=0.1), default=5, show_default=True)
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True, help="Requests to send.")
@click.option("--rate", type=click.FloatRange(min=0.001), help="Requests per second (load mode).")
@click.option("--ramp-step", type=click.FloatRange(min=0), default=0, help="Add this many requests/s every step.")
@click.option("--step-seconds", type=click.FloatRange(min=1), default=60, show_default=True, help="Length of a step.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True, help="Requests in flight.")
@pass_cli
def invoke(
    cli: CliContext,
    fleet: str,
    input_location: str | None,
    body_file: str | None,
    content_type: str | None,
    extra_headers: tuple[str, ...],
    wait: bool,
    timeout: float,
    poll_interval: float,
    count: int,
    rate: float | None,
    ramp_step: float,
    step_seconds: float,
    concurrency: int,
) -> None:
    """Send a signed request for FLEET to the router; with --count/--rate (and --ramp-step) send load.

    Prints the endpoint chosen, the inference id and the output location. Load mode ends with requests
    per endpoint, status codes and latency percentiles.
    """
    if input_location and body_file:
        raise CliError("give either --input s3://bucket/key or --body-file FILE, not both")
    if not input_location and not body_file:
        raise CliError("give --input s3://bucket/key or --body-file FILE")
    headers = parse_headers(extra_headers)
    if input_location:
        headers["InputLocation"] = input_location
    if content_type:
        headers["ContentType"] = content_type
    body = Path(body_file).read_bytes() if body_file else None
    # The router's own rules, checked before anything is sent (one line naming the field and rule).
    parse_invocation(headers, body)
    load_mode = count > 1 or rate is not None
    if wait and load_mode:
        raise CliError("--wait works with a single request, not with --count/--rate")
    base_url = cli.router_base_url
    sender = SignedSender(base_url, cli.frozen_credentials(), signing_region(base_url, cli.region_name))
    if load_mode:
        offsets = send_offsets(count, rate or 1.0, ramp_step, step_seconds)
        summary = run_load(sender, fleet, headers, body, offsets, concurrency, cli.output != "json")
        if all(r.status == CONNECTION_ERROR for r in summary.replies):
            raise CliError(summary.replies[0].message)
        cli.emit(summary.as_dict(), summary.as_text())
        return
    reply = sender.send(fleet, headers, body)
    if reply.status == CONNECTION_ERROR:
        raise CliError(reply.message)
    if reply.status != 202:
        raise CliError(f"router answered {reply.status}: {reply.message}")
    answer = {k: reply.body.get(k) for k in ("endpointName", "inferenceId", "outputLocation", "failureLocation")}
    text = "\n".join(
        [
            f"endpoint      {answer['endpointName']}",
            f"inference id  {answer['inferenceId']}",
            f"output        {answer['outputLocation']}",
            f"failure       {answer['failureLocation'] or '-'}",
        ]
    )
    if not wait:
        cli.emit(answer, text)
        return
    if cli.output != "json":
        click.echo(text)
        click.echo(f"waiting for the result (up to {timeout:g}s)...", err=True)
    result = wait_for_result(cli, str(answer["outputLocation"]), answer["failureLocation"], timeout, poll_interval)
    cli.emit({**answer, "result": result}, f"result:\n{result.rstrip()}")
