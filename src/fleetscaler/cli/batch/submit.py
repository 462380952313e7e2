"""`fleetscaler submit FLEET s3://bucket/prefix/`: one signed router request per object, journaled, resumable.

The prefix is listed (paginated) into the journal; then each key not yet accepted is sent through
`fleetscaler invoke`'s signed sender with `InputLocation` and an `Idempotency-Key` (a hash of bucket, key
and ETag), paced by `pacing.RateController`. Rerunning the same command lists again (new objects join the
batch) and sends only what no run has had accepted.
"""

from __future__ import annotations

import heapq
import itertools
import re
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from fleetscaler import clock
from fleetscaler.cli.batch.journal import (
    ACCEPTED_STATES,
    FIRST_PASS_STATES,
    LAST_PASS_STATES,
    Entry,
    Journal,
    ListedObject,
    Status,
    default_journal_path,
)
from fleetscaler.cli.batch.pacing import RateController, parse_retry_after
from fleetscaler.cli.batch.progress import Progress
from fleetscaler.cli.context import CliContext, CliError, CommandFailed, pass_cli
from fleetscaler.cli.invoke import CLIENT_ERROR, CONNECTION_ERROR, Reply, SignedSender, parse_headers, signing_region
from fleetscaler.errors import FleetscalerError
from fleetscaler.logic.invocation import parse_invocation
from fleetscaler.logic.server_config import ENDPOINT_NAME_RE

# Waiting for a paced send or a pause; tests replace it with a virtual clock's advance.
sleep: Callable[[float], None] = time.sleep

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Answers that say "not now" (the router, API Gateway or Lambda overloaded): pause, slow down, send again.
OVERLOAD_STATUSES = frozenset({429, 500, 502, 503, 504})
# The router answers 429 and 503 before invoking anything: such a key is plainly unsent again. After a
# 500, 502, 504 or a lost connection it may have been invoked: it stays `sending` (in doubt) until answered.
TURNED_AWAY_STATUSES = frozenset({429, 503})
# This many unsuccessful answers in a row with the same status (429 aside) stop the run.
MAX_SAME_ANSWERS_IN_A_ROW = 20
# Headers submit sets itself, per object or per batch.
RESERVED_HEADERS = {"inputlocation": "InputLocation", "contenttype": "ContentType", "inferenceid": "InferenceId",
                    IDEMPOTENCY_HEADER.lower(): IDEMPOTENCY_HEADER}
BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024
# Text output lists this many refused or failed keys; --output json lists them all.
PROBLEMS_SHOWN = 20


class RunInterrupted(CommandFailed):
    """Ctrl-C or SIGTERM: exit status 130, as a shell reports a process stopped by SIGINT."""

    exit_code = 130


def key_list(title: str, items: Sequence[str]) -> list[str]:
    """A titled list of keys for text output, the first PROBLEMS_SHOWN of them; nothing when empty."""
    if not items:
        return []
    lines = ["", f"{title}:", *(f"  {item}" for item in items[:PROBLEMS_SHOWN])]
    if len(items) > PROBLEMS_SHOWN:
        lines.append(f"  ... and {len(items) - PROBLEMS_SHOWN} more (--output json lists all)")
    return lines


def parse_prefix(uri: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, prefix); CliError naming PREFIX and the rule."""
    if not uri.startswith("s3://"):
        raise CliError(f"PREFIX: must be s3://bucket/prefix/, got {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not BUCKET_NAME_RE.match(bucket) or ".." in bucket:
        raise CliError(
            f"PREFIX: {bucket!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
        )
    if len(prefix.encode("utf-8")) > MAX_KEY_BYTES:
        raise CliError(f"PREFIX: the key prefix is longer than S3's {MAX_KEY_BYTES}-byte key limit")
    return bucket, prefix


def batch_headers(extra: Sequence[str], content_type: str | None) -> dict[str, str]:
    """The headers every request of the batch carries (besides InputLocation and Idempotency-Key), checked
    against the router's rules."""
    headers = parse_headers(extra)
    for name in headers:
        reserved = RESERVED_HEADERS.get(name.lower())
        if reserved is not None:
            where = "--content-type" if reserved == "ContentType" else "submit, per object"
            raise CliError(f"--header: {reserved} is set by {where}; remove it from --header")
    if content_type is not None:
        headers["ContentType"] = content_type
    try:
        parse_invocation({**headers, "InputLocation": "s3://bucket/key"}, None)
    except FleetscalerError as exc:
        option = "--content-type" if exc.message.startswith("ContentType") else "--header"
        raise CliError(f"{option}: {exc.message}") from exc
    return headers


def list_objects(s3: Any, bucket: str, prefix: str) -> Iterator[tuple[list[ListedObject], int]]:
    """Pages of (objects, folder markers skipped) under the prefix, in key order."""
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            contents = page.get("Contents", [])
            objects = [
                ListedObject(key=o["Key"], etag=str(o.get("ETag", "")), size=int(o.get("Size", 0)))
                for o in contents
                if not o["Key"].endswith("/")
            ]
            yield objects, len(contents) - len(objects)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CliError(
            f"cannot list s3://{bucket}/{prefix}: {error.get('Code', '')}: {error.get('Message', exc)}"
        ) from exc
    except BotoCoreError as exc:
        raise CliError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc


@dataclass(frozen=True)
class Problem:
    key: str
    status: Status
    http_status: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status.value, "http_status": self.http_status, "message": self.message}


@dataclass
class RunSummary:
    journal: Path
    fleet: str
    prefix: str
    listed: int = 0
    folder_markers: int = 0
    accepted_before: int = 0
    in_doubt: int = 0
    changed_after_acceptance: int = 0
    gone: int = 0
    to_send: int = 0
    requests: int = 0
    accepted: int = 0
    problems: list[Problem] = field(default_factory=list)
    unsent: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    abandoned: int = 0
    stop_reason: str | None = None
    rate_start: float = 0.0
    rate_lowest: float = 0.0
    rate_settled: float = 0.0
    throttled: int = 0

    @property
    def rejected(self) -> list[Problem]:
        return [p for p in self.problems if p.status == Status.REJECTED]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.status == Status.ERROR]

    @property
    def complete(self) -> bool:
        """Every key under the prefix is accepted (in this run or an earlier one)."""
        return self.accepted_before + self.accepted == self.listed

    def rates(self) -> dict[str, float]:
        achieved = self.accepted / self.seconds if self.seconds > 0 else 0.0
        return {
            "start": round(self.rate_start, 2),
            "lowest": round(self.rate_lowest, 2),
            "settled": round(self.rate_settled, 2),
            "achieved": round(achieved, 2),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "journal": str(self.journal),
            "fleet": self.fleet,
            "prefix": self.prefix,
            "listed": self.listed,
            "folder_markers_skipped": self.folder_markers,
            "accepted_before": self.accepted_before,
            "in_doubt_resent": self.in_doubt,
            "changed_after_acceptance": self.changed_after_acceptance,
            "gone": self.gone,
            "to_send": self.to_send,
            "requests": self.requests,
            "accepted": self.accepted,
            "rejected": [p.as_dict() for p in self.rejected],
            "errors": [p.as_dict() for p in self.errors],
            "unsent": self.unsent,
            "throttled": self.throttled,
            "rate_per_second": self.rates(),
            "seconds": round(self.seconds, 2),
            "interrupted": self.interrupted,
            "stop_reason": self.stop_reason,
            "complete": self.complete,
        }

    def as_text(self) -> str:
        rates = self.rates()
        total_accepted = self.accepted_before + self.accepted
        lines = [
            f"batch     {self.prefix} -> fleet {self.fleet}",
            f"journal   {self.journal}",
            f"listed    {self.listed} objects"
            + (f" ({self.folder_markers} folder markers skipped)" if self.folder_markers else ""),
            f"accepted  {self.accepted} this run, {self.accepted_before} before: {total_accepted} of {self.listed}",
            f"rejected  {len(self.rejected)}",
            f"errors    {len(self.errors)}",
            f"unsent    {self.unsent}",
            f"requests  {self.requests} in {self.seconds:.1f}s, {self.throttled} throttled",
            f"rate      started at {rates['start']:g}/s, lowest {rates['lowest']:g}/s, settled at "
            f"{rates['settled']:g}/s; achieved {rates['achieved']:g}/s",
        ]
        if self.in_doubt:
            lines.append(
                f"in doubt  {self.in_doubt} keys were in flight when the previous run stopped: sent again with "
                "their Idempotency-Key"
            )
        if self.changed_after_acceptance:
            lines.append(
                f"changed   {self.changed_after_acceptance} objects were replaced after being accepted: not sent again"
            )
        if self.gone:
            lines.append(f"gone      {self.gone} journal keys are no longer under the prefix: not sent")
        for title, problems in (("rejected", self.rejected), ("errors", self.errors)):
            lines += key_list(title, [f"{p.key}: {p.http_status or '-'} {p.message}" for p in problems])
        return "\n".join(lines)


class WorkList:
    """What this run still sends: journal keys in key order (first-pass states, then those an earlier run saw
    refused), read a page at a time, and the keys waiting to be retried."""

    def __init__(self, journal: Journal, run: int) -> None:
        self.journal = journal
        self.run = run
        self._passes: deque[Sequence[Status]] = deque([FIRST_PASS_STATES, LAST_PASS_STATES])
        self._after: str | None = None
        self._buffer: deque[Entry] = deque()
        self._retries: list[tuple[float, int, Entry]] = []
        self._order = itertools.count()

    def _fill(self) -> None:
        while not self._buffer and self._passes:
            page = self.journal.to_send(self.run, self._passes[0], self._after)
            if page:
                self._buffer.extend(page)
                self._after = page[-1].key
            else:
                self._passes.popleft()
                self._after = None

    def ready_at(self) -> float | None:
        """When the next key can go (-inf: now), or None when nothing is left."""
        self._fill()
        if self._retries and (not self._buffer or self._retries[0][0] <= clock.now()):
            return self._retries[0][0]
        return float("-inf") if self._buffer else None

    def pop(self, now: float) -> Entry:
        if self._retries and self._retries[0][0] <= now:
            return heapq.heappop(self._retries)[2]
        self._fill()
        return self._buffer.popleft()

    def retry(self, entry: Entry, at: float) -> None:
        heapq.heappush(self._retries, (at, next(self._order), entry))


@dataclass
class InFlight:
    entry: Entry
    sent_at: float


class Submitter:
    """Sends the run's keys, at most `concurrency` in flight, paced by `controller`; records every answer."""

    def __init__(
        self,
        *,
        journal: Journal,
        run: int,
        send: Callable[[dict[str, str]], Reply],
        bucket: str,
        headers: dict[str, str],
        controller: RateController,
        concurrency: int,
        max_attempts: int,
        summary: RunSummary,
        progress: Progress,
    ) -> None:
        self.journal = journal
        self.run = run
        self.send = send
        self.bucket = bucket
        self.headers = headers
        self.controller = controller
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.summary = summary
        self.progress = progress
        self.work = WorkList(journal, run)
        self.inflight: dict[Future[Reply], InFlight] = {}
        self.attempts: dict[str, int] = {}
        # For the progress line; the summary's counts are read back from the journal at the end.
        self.done: Counter[str] = Counter()
        self._same_answers_in_a_row = 0
        self._last_answer: int | str | None = None

    # ----- the loop -----

    def run_all(self) -> None:
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="submit")
        try:
            try:
                self._loop(pool)
            except KeyboardInterrupt:
                self.summary.interrupted = True
                if self.inflight:
                    click.echo(
                        f"\nstopping: waiting for the {len(self.inflight)} requests in flight "
                        "(Ctrl-C again to quit now; they would be sent again by the next run)",
                        err=True,
                    )
                try:
                    self._drain()
                except KeyboardInterrupt:
                    self.summary.abandoned = len(self.inflight)
        finally:
            pool.shutdown(wait=not self.summary.abandoned, cancel_futures=True)
            self.progress.update(self.done.total(), self._progress_counts(), force=True)
            self.progress.close()

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        while True:
            self._collect()
            if self.summary.stop_reason is not None:
                self._drain()
                return
            now = clock.now()
            ready_at = self.work.ready_at()
            if ready_at is None and not self.inflight:
                return
            if (
                ready_at is not None
                and len(self.inflight) < self.concurrency
                and max(ready_at, self.controller.ready_at()) <= now
            ):
                self._send_one(pool, self.work.pop(now), now)
                continue
            wake = None if ready_at is None else max(ready_at, self.controller.ready_at())
            self._wait(None if wake is None or len(self.inflight) >= self.concurrency else wake - now)

    def _drain(self) -> None:
        while self.inflight:
            self._wait(None)
            self._collect()

    def _wait(self, seconds: float | None) -> None:
        """Until an answer arrives or `seconds` pass (None: an answer, checking every second)."""
        if self.inflight:
            timeout = 1.0 if seconds is None else min(max(seconds, 0.0), 1.0)
            wait(self.inflight, timeout=timeout, return_when=FIRST_COMPLETED)
        elif seconds is not None and seconds > 0:
            sleep(seconds)

    # ----- one key -----

    def _send_one(self, pool: ThreadPoolExecutor, entry: Entry, now: float) -> None:
        headers = {
            **self.headers,
            "InputLocation": f"s3://{self.bucket}/{entry.key}",
            IDEMPOTENCY_HEADER: entry.idempotency_key,
        }
        problem = _refused_locally(headers)
        if problem is not None:
            self.journal.record_answer(entry.key, Status.REJECTED, None, problem, now, run=self.run)
            self.done["rejected"] += 1
            return
        self.controller.take_slot(now)
        self.journal.mark_sending(entry.key, self.run, now)
        self.attempts[entry.key] = self.attempts.get(entry.key, 0) + 1
        self.summary.requests += 1
        self.inflight[pool.submit(self.send, headers)] = InFlight(entry, now)

    def _collect(self) -> None:
        for future in [f for f in self.inflight if f.done()]:
            sent = self.inflight.pop(future)
            try:
                reply = future.result()
            except Exception as exc:  # a transport failure the sender did not map: an answer like no answer
                reply = Reply(CLIENT_ERROR, {}, 0.0, error=f"{type(exc).__name__}: {exc}")
            self._record(sent, reply)
        self.progress.update(self.done.total(), self._progress_counts())

    def _record(self, sent: InFlight, reply: Reply) -> None:
        key, now = sent.entry.key, clock.now()
        status = reply.status
        http_status = status if isinstance(status, int) else None
        if status == 202 and reply.body.get("outputLocation"):
            self.journal.record_accepted(key, reply.body, now)
            self.controller.accepted()
            self.done["accepted"] += 1
            self._same_answers_in_a_row = 0
            return
        message = reply.message
        self._watch_for_a_dead_end(status, message)
        if isinstance(status, int) and 400 <= status < 500 and status not in OVERLOAD_STATUSES:
            self.journal.record_answer(key, Status.REJECTED, status, message, now)
            self.done["rejected"] += 1
            return
        if status in OVERLOAD_STATUSES or status in (CONNECTION_ERROR, CLIENT_ERROR):
            self.controller.throttled_answer(sent.sent_at, now, parse_retry_after(reply.retry_after, now))
            if status == 429 or self.attempts[key] < self.max_attempts:
                after = Status.LISTED if status in TURNED_AWAY_STATUSES else Status.SENDING
                self.journal.record_answer(key, after, http_status, message, now)
                self.work.retry(sent.entry, self.controller.paused_until)
                return
            message = f"no usable answer after {self.attempts[key]} attempts; last: {status} {message}"
        else:
            message = f"unexpected answer {status}: {message}"
        self.journal.record_answer(key, Status.ERROR, http_status, message, now)
        self.done["errors"] += 1

    def _watch_for_a_dead_end(self, status: int | str, message: str) -> None:
        """Stop the run after MAX_SAME_ANSWERS_IN_A_ROW identical unsuccessful answers other than 429: bad
        credentials, a wrong fleet or URL, a broken router would otherwise cost every key its attempts."""
        if status == 429:
            return
        self._same_answers_in_a_row = self._same_answers_in_a_row + 1 if status == self._last_answer else 1
        self._last_answer = status
        if self._same_answers_in_a_row >= MAX_SAME_ANSWERS_IN_A_ROW:
            self.summary.stop_reason = (
                f"stopped after {MAX_SAME_ANSWERS_IN_A_ROW} answers in a row were {status}: {message}; "
                "fix the cause and rerun the same command"
            )

    def _progress_counts(self) -> dict[str, int]:
        return {
            "throttled": self.controller.throttled,
            "rejected": self.done["rejected"],
            "errors": self.done["errors"],
        }


def _refused_locally(headers: dict[str, str]) -> str | None:
    """The router's own rules, checked before sending (an over-long key); None when the request is fine."""
    location = headers["InputLocation"]
    if not all(" " <= ch <= "~" for ch in location):
        return "InputLocation: the key has characters outside printable ASCII, which an HTTP header cannot carry"
    try:
        parse_invocation(headers, None)
    except FleetscalerError as exc:
        return exc.message
    return None


class _StopOnTerm:
    """SIGTERM (`kill PID`) stops a run like Ctrl-C: answers in flight are recorded before the process exits."""

    def __enter__(self) -> None:
        self._previous: Any = None
        if sys.platform != "win32":
            try:
                self._previous = signal.signal(signal.SIGTERM, self._interrupt)
            except ValueError:  # not the main thread (an embedding program): leave signals alone
                self._previous = None

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    @staticmethod
    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt


def prepare_batch(
    journal: Journal,
    pages: Iterable[tuple[list[ListedObject], int]],
    bucket: str,
    prefix: str,
    run: int,
    summary: RunSummary,
    show_progress: bool,
) -> None:
    """List the prefix into the journal and count what this run finds there."""
    for page, markers in pages:
        merged = journal.merge_listing(bucket, page, run, clock.now())
        summary.listed += len(page)
        summary.folder_markers += markers
        summary.changed_after_acceptance += merged.changed_after_acceptance
        if show_progress and summary.listed and summary.listed % 100_000 < len(page):
            click.echo(f"listed {summary.listed} objects...", err=True)
    if summary.listed == 0:
        raise CliError(f"PREFIX: no objects under s3://{bucket}/{prefix}")
    summary.gone = journal.count_gone(run)
    summary.accepted_before = journal.count(ACCEPTED_STATES, seen_run=run)
    summary.in_doubt = journal.count((Status.SENDING,), seen_run=run)
    summary.to_send = summary.listed - summary.accepted_before


def count_outcomes(journal: Journal, run: int, summary: RunSummary) -> None:
    """The run's outcome as the journal has it (an interrupt may land between a write and a counter)."""
    summary.accepted = journal.count(ACCEPTED_STATES, seen_run=run) - summary.accepted_before
    summary.problems = [
        Problem(e.key, e.status, e.http_status, e.message or "")
        for e in journal.entries((Status.REJECTED, Status.ERROR))
        if e.last_run == run
    ]
    summary.unsent = summary.listed - summary.accepted_before - summary.accepted - len(summary.problems)


@click.command("submit")
@click.argument("fleet")
@click.argument("prefix_uri", metavar="PREFIX")
@click.option("--content-type", help="ContentType passed to SageMaker for every object, e.g. application/json.")
@click.option(
    "--header", "extra_headers", multiple=True, help="NAME=VALUE for every request, e.g. RequestTTLSeconds=21600."
)
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True, help="Requests in flight.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1, max=10_000),
    default=100,
    show_default=True,
    help="Highest send rate (requests/s); it starts there and backs off when the router throttles.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="Tries per key for errors other than 429 (429 is always retried, more slowly).",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The batch's journal (SQLite). Default: batch-FLEET-BUCKET-PREFIX-HASH.sqlite here.",
)
@pass_cli
def submit(
    cli: CliContext,
    fleet: str,
    prefix_uri: str,
    content_type: str | None,
    extra_headers: tuple[str, ...],
    concurrency: int,
    rate: float,
    max_attempts: int,
    journal_path: Path | None,
) -> None:
    """Send one request to FLEET for every object under PREFIX (s3://bucket/prefix/); rerun to resume.

    Each object is sent once with InputLocation and an Idempotency-Key; the journal records what the router
    answered. Exit status: 0 when every object is accepted, 1 when some were refused or failed (the journal
    and the summary list them), 130 when interrupted, 2 on bad input.
    """
    if not ENDPOINT_NAME_RE.match(fleet):
        raise CliError(f"FLEET: {fleet!r} must be 1 to 63 letters, digits and hyphens (the fleet's resourceName)")
    bucket, prefix = parse_prefix(prefix_uri)
    headers = batch_headers(extra_headers, content_type)
    path = journal_path or default_journal_path(fleet, prefix_uri)
    base_url = cli.router_base_url
    cli.frozen_credentials()  # one line now when there are none, not one error per key
    sender = SignedSender(base_url, cli.session.get_credentials(), signing_region(base_url, cli.region_name))
    show_progress = cli.output != "json"
    pages = list_objects(cli.client("s3"), bucket, prefix)
    # The first page before any journal is written: a wrong bucket or prefix leaves no file behind.
    first = next(pages, ([], 0))
    if not first[0] and not first[1]:
        raise CliError(f"PREFIX: no objects under s3://{bucket}/{prefix}")

    with Journal.open(path, create=True) as journal:
        journal.lock_for_submit()
        recorded_type = journal.bind(fleet, prefix_uri, content_type, clock.now())
        if recorded_type is not None:
            headers["ContentType"] = recorded_type
        run = journal.begin_run()
        summary = RunSummary(journal=path, fleet=fleet, prefix=prefix_uri)
        prepare_batch(journal, itertools.chain([first], pages), bucket, prefix, run, summary, show_progress)
        if show_progress and (summary.accepted_before or summary.in_doubt):
            click.echo(
                f"resuming: {summary.accepted_before} of {summary.listed} keys already accepted (not sent again)"
                + (f"; {summary.in_doubt} in doubt, sent again with their Idempotency-Key" if summary.in_doubt else ""),
                err=True,
            )
        controller = RateController(ceiling=rate)
        submitter = Submitter(
            journal=journal,
            run=run,
            send=lambda h: sender.send(fleet, h, None),
            bucket=bucket,
            headers=headers,
            controller=controller,
            concurrency=concurrency,
            max_attempts=max_attempts,
            summary=summary,
            progress=Progress("submit", summary.to_send, enabled=show_progress and summary.to_send > 0),
        )
        started = clock.now()
        with _StopOnTerm():
            submitter.run_all()
        summary.seconds = clock.now() - started
        summary.rate_start, summary.rate_lowest = rate, controller.lowest
        summary.rate_settled, summary.throttled = controller.rate, controller.throttled
        count_outcomes(journal, run, summary)

    cli.emit(summary.as_dict(), summary.as_text())
    if summary.interrupted:
        raise RunInterrupted(f"interrupted with {summary.unsent} keys unsent; rerun the same command to resume")
    if summary.stop_reason is not None:
        raise CommandFailed(summary.stop_reason)
    if not summary.complete:
        raise CommandFailed(
            f"{len(summary.rejected)} rejected, {len(summary.errors)} errors, {summary.unsent} unsent: see the "
            "journal; rerun the same command to send them again"
        )
