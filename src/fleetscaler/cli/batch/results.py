"""`fleetscaler results --journal PATH`: what became of each accepted key, read from S3.

An accepted key's output object means it succeeded, its failure object that it failed (the object's first
line is the reason); neither yet, that it is pending. What is found is written back to the journal, so a
later run only reads S3 for keys still pending. Time to result is the object's LastModified minus the time
the journal recorded the router's 202.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import hashlib
import itertools
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from fleetscaler import clock
from fleetscaler.cli.batch.journal import ACCEPTED_STATES, Entry, Journal, Status
from fleetscaler.cli.batch.progress import Progress
from fleetscaler.cli.batch.submit import key_list, parse_prefix
from fleetscaler.cli.context import CliContext, CliError, CommandFailed, pass_cli
from fleetscaler.cli.invoke import percentile, s3_location

# Waiting between polls; tests replace it with a virtual clock's advance.
sleep: Callable[[float], None] = time.sleep

S3_WORKERS = 16
# While waiting, each endpoint's accepted keys are read oldest first (its queue is first in, first out) and
# the poll leaves that endpoint at the first run of this many still pending, so a poll stays cheap while a
# million keys wait. The last poll (and a run without --wait) reads every pending key.
PROBE_CHUNK = 64
REASON_MAX_CHARS = 500
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
PLAIN_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Probe:
    """What S3 holds for one accepted key: SUCCEEDED, FAILED, or ACCEPTED (nothing yet)."""

    key: str
    status: Status
    result_at: float | None = None
    reason: str | None = None
    output_etag: str | None = None
    output_size: int | None = None


class S3Results:
    """Reads output and failure objects; any S3 answer other than 'not there' is a one-line CliError."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def _head(self, location: str) -> dict[str, Any] | None:
        bucket, key = s3_location(location)
        try:
            return dict(self.s3.head_object(Bucket=bucket, Key=key))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in MISSING_CODES:
                return None
            if code in ("403", "AccessDenied"):
                raise CliError(
                    f"cannot read {location}: access denied (reading results needs s3:GetObject, and "
                    "s3:ListBucket to tell a missing object from a forbidden one)"
                ) from exc
            raise CliError(f"cannot read {location}: {code}: {exc}") from exc
        except BotoCoreError as exc:
            raise CliError(f"cannot read {location}: {exc}") from exc

    def _first_line(self, location: str) -> str:
        bucket, key = s3_location(location)
        try:
            stream = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            body = stream.read(4 * REASON_MAX_CHARS)  # UTF-8 takes at most 4 bytes a character
            stream.close()
        except (ClientError, BotoCoreError) as exc:
            raise CliError(f"cannot read {location}: {exc}") from exc
        text = body.decode("utf-8", "replace").strip()
        line = text.splitlines()[0] if text else "(empty failure object)"
        return line[:REASON_MAX_CHARS]

    def probe(self, entry: Entry) -> Probe:
        output = self._head(entry.output_location) if entry.output_location else None
        if output is not None:
            return Probe(
                entry.key,
                Status.SUCCEEDED,
                result_at=output["LastModified"].timestamp(),
                output_etag=str(output.get("ETag", "")),
                output_size=int(output.get("ContentLength", 0)),
            )
        failure = self._head(entry.failure_location) if entry.failure_location else None
        if failure is not None:
            assert entry.failure_location is not None
            return Probe(
                entry.key,
                Status.FAILED,
                result_at=failure["LastModified"].timestamp(),
                reason=self._first_line(entry.failure_location),
            )
        return Probe(entry.key, Status.ACCEPTED)

    def download(self, location: str, target: Path) -> None:
        bucket, key = s3_location(location)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            with open(target, "wb") as out:
                for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
                    out.write(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise CliError(f"cannot read {location}: {exc}") from exc


def _chunks(items: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def check_pending(journal: Journal, reader: S3Results, pool: ThreadPoolExecutor, *, thorough: bool) -> int:
    """Read S3 for the journal's pending keys and record what is there; returns how many were found done.

    Not `thorough`: each endpoint's keys are read oldest first, PROBE_CHUNK at a time, up to the first chunk
    with nothing done.
    """
    found = 0
    pending = journal.entries((Status.ACCEPTED,), order="acceptance")
    if thorough:
        for chunk in _chunks(pending, PROBE_CHUNK * 4):
            found += _record(journal, list(pool.map(reader.probe, chunk)))
        return found
    waiting: dict[str, list[Entry]] = {}
    left_behind: set[str] = set()
    for entry in pending:
        endpoint = entry.endpoint_name or ""
        if endpoint in left_behind:
            continue
        group = waiting.setdefault(endpoint, [])
        group.append(entry)
        if len(group) == PROBE_CHUNK:
            probes = list(pool.map(reader.probe, group))
            found += _record(journal, probes)
            group.clear()
            if all(p.status == Status.ACCEPTED for p in probes):
                left_behind.add(endpoint)
    for group in waiting.values():
        found += _record(journal, list(pool.map(reader.probe, group)))
    return found


def _record(journal: Journal, probes: list[Probe]) -> int:
    now = clock.now()
    done = [p for p in probes if p.status != Status.ACCEPTED]
    for probe in done:
        assert probe.result_at is not None
        journal.record_result(
            probe.key,
            probe.status,
            probe.result_at,
            reason=probe.reason,
            output_etag=probe.output_etag,
            output_size=probe.output_size,
            now=now,
        )
    return len(done)


# ----- downloads -----


def local_name(key: str, prefix: str) -> Path:
    """The file for `key`'s output: its path below the prefix's folder, `.out` appended, never leaving DIR
    (`.`, `..` and empty segments cannot climb or collapse)."""
    folder = prefix[: prefix.rfind("/") + 1]
    relative = key[len(folder) :] if key.startswith(folder) else key
    escaped = {".": "%2E", "..": "%2E%2E"}
    parts = [escaped.get(p, p.replace("\x00", "%00")) for p in relative.split("/") if p]
    parts[-1] += ".out"
    return Path(*parts)


@dataclass
class DownloadReport:
    directory: Path
    written: int = 0
    already_present: int = 0
    # A different file already has the name (kept).
    conflicts: list[dict[str, str]] = field(default_factory=list)
    # The output could not be read or written (gone from S3, a full disk, a name too long).
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.conflicts or self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dir": str(self.directory),
            "written": self.written,
            "already_present": self.already_present,
            "conflicts": self.conflicts,
            "errors": self.errors,
        }


def _same_content(path: Path, entry: Entry, reader: S3Results) -> bool:
    """Is the file at `path` this entry's output? Size first, then the ETag when it is a plain MD5, else bytes."""
    if entry.output_size is not None and path.stat().st_size != entry.output_size:
        return False
    match = PLAIN_MD5_ETAG.match(entry.output_etag or "")
    if match:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as existing:
            for block in iter(lambda: existing.read(DOWNLOAD_CHUNK_BYTES), b""):
                digest.update(block)
        return digest.hexdigest() == match.group(1)
    with _temporary_beside(path) as fetched:
        assert entry.output_location is not None
        reader.download(entry.output_location, fetched)
        return filecmp.cmp(fetched, path, shallow=False)


class _temporary_beside:
    """A temporary file name in `path`'s folder, removed on exit if still there."""

    def __init__(self, path: Path) -> None:
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=".fleetscaler-", suffix=".part")
        os.close(handle)
        self.path = Path(name)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _download_one(entry: Entry, directory: Path, prefix: str, reader: S3Results) -> tuple[str, str | None]:
    """('written' | 'present' | 'conflict' | 'error', why) for one succeeded entry."""
    assert entry.output_location is not None
    target = directory / local_name(entry.key, prefix)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            with _temporary_beside(target) as fetched:
                reader.download(entry.output_location, fetched)
                try:
                    os.link(fetched, target)  # fails if the name appeared meanwhile: never overwrites
                    return "written", None
                except FileExistsError:
                    pass
        if not target.is_file():
            return "conflict", f"{target} exists and is not a file"
        if _same_content(target, entry, reader):
            return "present", None
        return "conflict", f"{target} exists with different content (not overwritten)"
    except OSError as exc:
        return "error", f"cannot write {target}: {exc.strerror or exc}"
    except CliError as exc:
        return "error", exc.format_message()


def download_outputs(
    journal: Journal, reader: S3Results, pool: ThreadPoolExecutor, directory: Path, prefix: str
) -> DownloadReport:
    report = DownloadReport(directory)
    for chunk in _chunks(journal.entries((Status.SUCCEEDED,)), PROBE_CHUNK * 4):
        outcomes = pool.map(lambda e: _download_one(e, directory, prefix, reader), chunk)
        for entry, (outcome, why) in zip(chunk, outcomes, strict=True):
            if outcome == "written":
                report.written += 1
            elif outcome == "present":
                report.already_present += 1
            else:
                (report.conflicts if outcome == "conflict" else report.errors).append(
                    {"key": entry.key, "reason": why or ""}
                )
    return report


# ----- the report -----


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def time_to_result(entries: Iterable[Entry]) -> dict[str, float]:
    """p50, p95 and max seconds from the 202 to the output's LastModified (S3 gives whole seconds, so a value
    below a second reads as 0)."""
    values = sorted(
        max(0.0, e.result_at - e.accepted_at) for e in entries if e.result_at is not None and e.accepted_at is not None
    )
    if not values:
        return {}
    return {
        "count": len(values),
        "p50": round(percentile(values, 0.5), 1),
        "p95": round(percentile(values, 0.95), 1),
        "max": round(values[-1], 1),
    }


@dataclass
class ResultsReport:
    journal: Path
    meta: dict[str, str]
    counts: dict[Status, int]
    timing: dict[str, float]
    failures: list[dict[str, Any]]
    not_accepted: list[dict[str, Any]]
    pending: list[dict[str, Any]]
    download: DownloadReport | None
    waited_seconds: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def complete(self) -> bool:
        return self.counts[Status.SUCCEEDED] == self.total and (self.download is None or self.download.complete)

    def as_dict(self) -> dict[str, Any]:
        return {
            "journal": str(self.journal),
            "fleet": self.meta.get("fleet"),
            "prefix": self.meta.get("prefix"),
            "total": self.total,
            "succeeded": self.counts[Status.SUCCEEDED],
            "failed": self.counts[Status.FAILED],
            "pending": self.counts[Status.ACCEPTED],
            "not_accepted": len(self.not_accepted),
            "time_to_result_seconds": self.timing,
            "failures": self.failures,
            "not_accepted_keys": self.not_accepted,
            "pending_keys": self.pending,
            "download": self.download.as_dict() if self.download else None,
            "waited_seconds": round(self.waited_seconds, 1),
            "complete": self.complete,
        }

    def as_text(self) -> str:
        counts = self.counts
        lines = [
            f"batch      {self.meta.get('prefix')} -> fleet {self.meta.get('fleet')}",
            f"journal    {self.journal}",
            f"succeeded  {counts[Status.SUCCEEDED]} of {self.total}",
            f"failed     {counts[Status.FAILED]}",
            f"pending    {counts[Status.ACCEPTED]} (accepted, no result in S3 yet)",
        ]
        if self.not_accepted:
            by_status = ", ".join(
                f"{counts[s]} {s.value}" for s in (Status.LISTED, Status.SENDING, Status.REJECTED, Status.ERROR)
                if counts[s]
            )
            lines.append(f"not accepted {len(self.not_accepted)} ({by_status}): rerun submit to send them")
        if self.timing:
            timing = self.timing
            lines.append(
                f"time to result  p50 {timing['p50']:g}s  p95 {timing['p95']:g}s  max {timing['max']:g}s"
                f"  ({timing['count']:g} outputs)"
            )
        if self.download:
            report = self.download
            lines.append(
                f"downloaded {report.written} to {report.directory} ({report.already_present} already there, "
                f"{len(report.conflicts)} conflicts, {len(report.errors)} errors)"
            )
        conflicts = self.download.conflicts if self.download else []
        download_errors = self.download.errors if self.download else []
        sections = (
            ("failed", [f"{f['key']}: {f['reason']}" for f in self.failures]),
            (
                "not accepted",
                [f"{n['key']}: {n['status']} {n['http_status'] or '-'} {n['message'] or ''}".rstrip()
                 for n in self.not_accepted],
            ),
            ("download conflicts", [f"{c['key']}: {c['reason']}" for c in conflicts]),
            ("download errors", [f"{e['key']}: {e['reason']}" for e in download_errors]),
        )
        for title, items in sections:
            lines += key_list(title, items)
        return "\n".join(lines)


def build_report(journal: Journal, download: DownloadReport | None, waited: float) -> ResultsReport:
    return ResultsReport(
        journal=journal.path,
        meta=journal.meta,
        counts=journal.counts(),
        timing=time_to_result(journal.entries((Status.SUCCEEDED,))),
        failures=[
            {"key": e.key, "inference_id": e.inference_id, "failure_location": e.failure_location,
             "reason": e.message, "result_at": iso(e.result_at)}
            for e in journal.entries((Status.FAILED,))
        ],
        not_accepted=[
            {"key": e.key, "status": e.status.value, "http_status": e.http_status, "message": e.message,
             "attempts": e.attempts}
            for e in journal.entries((Status.LISTED, Status.SENDING, Status.REJECTED, Status.ERROR))
        ],
        pending=[
            {"key": e.key, "inference_id": e.inference_id, "output_location": e.output_location,
             "accepted_at": iso(e.accepted_at)}
            for e in journal.entries((Status.ACCEPTED,))
        ],
        download=download,
        waited_seconds=waited,
    )


@click.command("results")
@click.option(
    "--journal",
    "journal_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The batch's journal, as written by submit.",
)
@click.option("--wait", is_flag=True, help="Poll S3 until no accepted key is pending (or --timeout).")
@click.option("--timeout", type=click.FloatRange(min=0), help="Seconds --wait polls at most.  [default: 3600]")
@click.option("--poll-interval", type=click.FloatRange(min=1), help="Seconds between polls.  [default: 15]")
@click.option(
    "--download",
    "download_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Fetch every output into DIR, named after its input key (KEY.out); an existing different file is kept.",
)
@pass_cli
def results(
    cli: CliContext,
    journal_path: Path,
    wait: bool,
    timeout: float | None,
    poll_interval: float | None,
    download_dir: Path | None,
) -> None:
    """Count the batch's results: succeeded, failed (with the reason), pending; time to result; --download.

    Exit status: 0 only when every key of the batch succeeded (and every download was written or already
    there), 1 otherwise, 2 on bad input.
    """
    if not wait and (timeout is not None or poll_interval is not None):
        raise CliError("--timeout and --poll-interval apply to --wait; add --wait")
    timeout = 3600.0 if timeout is None else timeout
    poll_interval = 15.0 if poll_interval is None else poll_interval
    with Journal.open(journal_path, create=False) as journal:
        meta = journal.meta
        if "prefix" not in meta or not journal.count(tuple(Status)):
            raise CliError(f"--journal: {journal_path} holds no keys yet (submit has not listed a prefix into it)")
        _, prefix = parse_prefix(meta["prefix"])
        reader = S3Results(cli.client("s3"))
        started = clock.now()
        deadline = started + timeout
        accepted_total = journal.count(ACCEPTED_STATES)
        progress = Progress("results", accepted_total, enabled=wait and cli.output != "json")
        with ThreadPoolExecutor(max_workers=S3_WORKERS, thread_name_prefix="results") as pool:
            while True:
                last = not wait or clock.now() >= deadline
                check_pending(journal, reader, pool, thorough=last)
                pending = journal.count((Status.ACCEPTED,))
                progress.update(accepted_total - pending, {"pending": pending})
                if pending == 0 or last:
                    break
                sleep(max(0.0, min(poll_interval, deadline - clock.now())))
            progress.close()
            waited = clock.now() - started
            download = None
            if download_dir is not None:
                try:
                    download_dir.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise CliError(f"--download: cannot create {download_dir}: {exc.strerror or exc}") from exc
                download = download_outputs(journal, reader, pool, download_dir, prefix)
        report = build_report(journal, download, waited if wait else 0.0)
    cli.emit(report.as_dict(), report.as_text())
    if not report.complete:
        counts = report.counts
        raise CommandFailed(
            f"not all succeeded: {counts[Status.FAILED]} failed, {counts[Status.ACCEPTED]} pending, "
            f"{len(report.not_accepted)} not accepted"
            + (f", {len(download.conflicts)} download conflicts" if download and download.conflicts else "")
            + (f", {len(download.errors)} downloads failed" if download and download.errors else "")
        )
