"""The batch journal: one SQLite file that records, for each input key, what was sent and what came back.

`submit` writes a key's row before its request leaves (status `sending`) and again when the answer arrives,
each in its own transaction, so a crash at any point leaves the file consistent: a key is `accepted` only
once the router's 202 is on disk, and a key caught between the two writes stays `sending` (in doubt: the
router may or may not have invoked it). `results` adds what S3 holds for each accepted key.

Only the main thread of a command touches the connection; request threads never do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from fleetscaler.cli.context import CliError

SCHEMA_VERSION = 1
# PRAGMA application_id: "FSBJ" (fleetscaler batch journal), so another SQLite file is recognised as such.
APPLICATION_ID = 0x46534A42
BUSY_TIMEOUT_MS = 30_000
PAGE_SIZE = 1000


class Status(StrEnum):
    LISTED = "listed"  # under the prefix, never sent
    SENDING = "sending"  # sent, no answer recorded: in doubt after a crash (sent again, same Idempotency-Key)
    ACCEPTED = "accepted"  # the router answered 202; no result seen in S3 yet
    REJECTED = "rejected"  # a 4xx other than 429 (or refused before sending); tried again by the next run
    ERROR = "error"  # no usable answer after --max-attempts tries; tried again by the next run
    SUCCEEDED = "succeeded"  # the output object exists
    FAILED = "failed"  # the failure object exists


# Keys in these states were accepted by the router: they are never sent again.
ACCEPTED_STATES = (Status.ACCEPTED, Status.SUCCEEDED, Status.FAILED)
# Keys a run sends, first these in key order, then the ones an earlier run saw rejected.
FIRST_PASS_STATES = (Status.LISTED, Status.SENDING, Status.ERROR)
LAST_PASS_STATES = (Status.REJECTED,)

META_NAMES = ("fleet", "prefix", "content_type", "created_at", "runs")
ENTRY_COLUMNS = (
    "key",
    "etag",
    "size",
    "idempotency_key",
    "status",
    "attempts",
    "last_run",
    "seen_run",
    "http_status",
    "message",
    "endpoint_name",
    "inference_id",
    "output_location",
    "failure_location",
    "listed_at",
    "sent_at",
    "accepted_at",
    "result_at",
    "output_etag",
    "output_size",
    "updated_at",
)

SCHEMA = f"""
CREATE TABLE batch (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    key TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    size INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s.value}'" for s in Status)})),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_run INTEGER,
    seen_run INTEGER NOT NULL,
    http_status INTEGER,
    message TEXT,
    endpoint_name TEXT,
    inference_id TEXT,
    output_location TEXT,
    failure_location TEXT,
    listed_at REAL NOT NULL,
    sent_at REAL,
    accepted_at REAL,
    result_at REAL,
    output_etag TEXT,
    output_size INTEGER,
    updated_at REAL NOT NULL
);
CREATE INDEX entries_by_status ON entries (status, key);
CREATE INDEX entries_by_acceptance ON entries (status, accepted_at, key);
"""


@dataclass(frozen=True)
class ListedObject:
    """One object under the batch's prefix, as ListObjectsV2 returned it."""

    key: str
    etag: str
    size: int


@dataclass(frozen=True)
class Entry:
    key: str
    etag: str
    size: int
    idempotency_key: str
    status: Status
    attempts: int
    last_run: int | None
    seen_run: int
    http_status: int | None
    message: str | None
    endpoint_name: str | None
    inference_id: str | None
    output_location: str | None
    failure_location: str | None
    listed_at: float
    sent_at: float | None
    accepted_at: float | None
    result_at: float | None
    output_etag: str | None
    output_size: int | None
    updated_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Entry:
        values = {name: row[name] for name in ENTRY_COLUMNS}
        values["status"] = Status(values["status"])
        return cls(**values)


@dataclass(frozen=True)
class MergeCounts:
    """What one page of the listing changed in the journal."""

    new: int = 0
    # An object replaced since it was accepted: not sent again (its old version was).
    changed_after_acceptance: int = 0


def idempotency_key(bucket: str, key: str, etag: str) -> str:
    """The request's Idempotency-Key: SHA-256 of the JSON array [bucket, key, ETag without its quotes].

    The same object version always gives the same value, so a key sent again after a crash carries the
    header of its first attempt; an object replaced under the same key gets a new value.
    """
    canonical = json.dumps([bucket, key, etag.strip('"')], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def default_journal_path(fleet: str, prefix_uri: str) -> Path:
    """`batch-{fleet}-{bucket}-{prefix}-{hash}.sqlite` in the current directory.

    The readable part is lossy (`docs/` and `docs` both read `docs`), so a hash of the exact fleet and
    prefix keeps two batches from ever sharing a journal by accident.
    """
    readable = _UNSAFE_IN_FILE_NAME.sub("-", f"{fleet}-{prefix_uri.removeprefix('s3://')}").strip("-.")[:100]
    digest = hashlib.sha256(json.dumps([fleet, prefix_uri]).encode()).hexdigest()[:8]
    return Path(f"batch-{readable}-{digest}.sqlite")


class Journal:
    """Open with `Journal.open(path, create=...)`; close with `close()` (or use it as a context manager)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._lock_file: IO[str] | None = None

    # ----- opening -----

    @classmethod
    def open(cls, path: Path, *, create: bool, option: str = "--journal") -> Journal:
        """Open the journal at `path` (creating it when `create`); CliError naming `option` when it is unusable."""
        exists = path.exists()
        if not exists and not create:
            raise CliError(f"{option}: {path} does not exist (submit creates it)")
        if exists and not path.is_file():
            raise CliError(f"{option}: {path} is not a file")
        if not exists and not path.parent.is_dir():
            raise CliError(f"{option}: folder {path.parent} does not exist")
        try:
            connection = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            connection.row_factory = sqlite3.Row
            journal = cls(path, connection)
            journal._prepare(option)
        except sqlite3.DatabaseError as exc:
            raise CliError(f"{option}: {path} is not a fleetscaler batch journal ({exc})") from exc
        return journal

    def _prepare(self, option: str) -> None:
        db = self._db
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if application_id == 0 and not tables:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(
                f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
                f"BEGIN; {SCHEMA} COMMIT;"
            )
        elif application_id != APPLICATION_ID:
            raise CliError(f"{option}: {self.path} is an SQLite file but not a fleetscaler batch journal")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise CliError(
                f"{option}: {self.path} is a journal of format {version}; "
                f"this fleetscaler reads format {SCHEMA_VERSION}"
            )
        self._check_layout(option, tables or {"batch", "entries"})
        # WAL: results can read while submit writes. NORMAL: a commit survives the process being killed.
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")

    def _check_layout(self, option: str, tables: set[str]) -> None:
        """Refuse a journal whose tables, columns or batch attributes are not exactly the known ones."""
        unknown_tables = sorted(tables - {"batch", "entries"})
        if unknown_tables:
            raise CliError(f"{option}: {self.path} has unknown tables: {', '.join(unknown_tables)}")
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(entries)")]
        unknown = sorted(set(columns) - set(ENTRY_COLUMNS))
        missing = [c for c in ENTRY_COLUMNS if c not in columns]
        if unknown or missing:
            problems = ([f"unknown columns: {', '.join(unknown)}"] if unknown else []) + (
                [f"missing columns: {', '.join(missing)}"] if missing else []
            )
            raise CliError(f"{option}: {self.path}: entries has {'; '.join(problems)}")
        names = [row[0] for row in self._db.execute("SELECT name FROM batch")]
        unknown_names = sorted(set(names) - set(META_NAMES))
        if unknown_names:
            raise CliError(
                f"{option}: {self.path}: unknown batch attributes: {', '.join(unknown_names)} "
                f"(known: {', '.join(META_NAMES)})"
            )

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def lock_for_submit(self) -> None:
        """One submitter per journal: two would send the same keys. The lock goes with the process."""
        import fcntl

        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the command's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise CliError(
                f"--journal: another `fleetscaler submit` is using {self.path} (lock {lock_path}); "
                "wait for it to finish or stop it"
            ) from exc
        self._lock_file = handle

    # ----- the batch -----

    @property
    def meta(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self._db.execute("SELECT name, value FROM batch")}

    def bind(self, fleet: str, prefix_uri: str, content_type: str | None, now: float) -> str | None:
        """Tie the journal to one fleet, prefix and content type; the content type in force is returned.

        A new journal records them. An existing one must name the same fleet and prefix; a content type
        given now must be the one it was started with (omitted: the recorded one is used).
        """
        meta = self.meta
        if not meta:
            values = {"fleet": fleet, "prefix": prefix_uri, "created_at": repr(now), "runs": "0"}
            if content_type is not None:
                values["content_type"] = content_type
            with self._transaction():
                self._db.executemany("INSERT INTO batch (name, value) VALUES (?, ?)", values.items())
            return content_type
        for option, name, given in (("FLEET", "fleet", fleet), ("PREFIX", "prefix", prefix_uri)):
            if meta.get(name) != given:
                raise CliError(
                    f"--journal: {self.path} records the batch of fleet {meta.get('fleet')!r} and prefix "
                    f"{meta.get('prefix')}, not {option} {given}; give another --journal for a new batch"
                )
        recorded = meta.get("content_type")
        if content_type is not None and content_type != recorded:
            raise CliError(
                f"--content-type: the batch in {self.path} was started with "
                f"{recorded if recorded is not None else 'no content type'}; a batch keeps one content type"
            )
        return recorded

    def begin_run(self) -> int:
        with self._transaction():
            run = int(self.meta.get("runs", "0")) + 1
            self._db.execute("UPDATE batch SET value = ? WHERE name = 'runs'", (str(run),))
        return run

    # ----- listing -----

    def merge_listing(self, bucket: str, objects: Sequence[ListedObject], run: int, now: float) -> MergeCounts:
        """Add one page of the prefix's listing: new keys are added, unsent keys follow their object's ETag."""
        if not objects:
            return MergeCounts()
        placeholders = ", ".join("?" * len(objects))
        known = {
            row["key"]: (row["etag"], Status(row["status"]))
            for row in self._db.execute(
                f"SELECT key, etag, status FROM entries WHERE key IN ({placeholders})", [o.key for o in objects]
            )
        }
        new = changed_after_acceptance = 0
        with self._transaction():
            for obj in objects:
                previous = known.get(obj.key)
                if previous is None:
                    new += 1
                    self._db.execute(
                        "INSERT INTO entries (key, etag, size, idempotency_key, status, seen_run, listed_at,"
                        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (obj.key, obj.etag, obj.size, idempotency_key(bucket, obj.key, obj.etag), Status.LISTED,
                         run, now, now),
                    )
                elif previous[0] == obj.etag or previous[1] in ACCEPTED_STATES:
                    changed_after_acceptance += previous[0] != obj.etag
                    self._db.execute("UPDATE entries SET seen_run = ? WHERE key = ?", (run, obj.key))
                else:
                    self._db.execute(
                        "UPDATE entries SET etag = ?, size = ?, idempotency_key = ?, seen_run = ?, updated_at = ?"
                        " WHERE key = ?",
                        (obj.etag, obj.size, idempotency_key(bucket, obj.key, obj.etag), run, now, obj.key),
                    )
        return MergeCounts(new=new, changed_after_acceptance=changed_after_acceptance)

    def count(self, states: Sequence[Status], *, seen_run: int | None = None) -> int:
        """Entries in `states` (listed in run `seen_run` when given)."""
        query = f"SELECT COUNT(*) FROM entries WHERE status IN ({_marks(states)})"
        params: tuple[Any, ...] = tuple(states)
        if seen_run is not None:
            query += " AND seen_run = ?"
            params += (seen_run,)
        return int(self._db.execute(query, params).fetchone()[0])

    def count_gone(self, run: int) -> int:
        """Keys never accepted whose object was not under the prefix this run (they are not sent)."""
        return int(
            self._db.execute(
                f"SELECT COUNT(*) FROM entries WHERE seen_run < ? AND status NOT IN ({_marks(ACCEPTED_STATES)})",
                (run, *ACCEPTED_STATES),
            ).fetchone()[0]
        )

    # ----- sending -----

    def to_send(self, run: int, states: Sequence[Status], after_key: str | None, limit: int = PAGE_SIZE) -> list[Entry]:
        """The next keys (in key order, after `after_key`) this run still has to send from `states`."""
        rows = self._db.execute(
            f"SELECT * FROM entries WHERE status IN ({_marks(states)}) AND seen_run = ?"
            " AND (last_run IS NULL OR last_run < ?) AND key > ? ORDER BY key LIMIT ?",
            (*states, run, run, after_key if after_key is not None else "", limit),
        )
        return [Entry.from_row(row) for row in rows]

    def mark_sending(self, key: str, run: int, now: float) -> None:
        self._db.execute(
            "UPDATE entries SET status = ?, attempts = attempts + 1, last_run = ?, sent_at = ?, updated_at = ?"
            " WHERE key = ?",
            (Status.SENDING, run, now, now, key),
        )

    def record_accepted(self, key: str, answer: dict[str, Any], now: float) -> None:
        self._db.execute(
            "UPDATE entries SET status = ?, http_status = 202, message = NULL, endpoint_name = ?, inference_id = ?,"
            " output_location = ?, failure_location = ?, accepted_at = ?, updated_at = ? WHERE key = ?",
            (
                Status.ACCEPTED,
                answer.get("endpointName"),
                answer.get("inferenceId"),
                answer.get("outputLocation"),
                answer.get("failureLocation"),
                now,
                now,
                key,
            ),
        )

    def record_answer(
        self, key: str, status: Status, http_status: int | None, message: str, now: float, *, run: int | None = None
    ) -> None:
        """A refusal, an error, or a retryable answer (`status` says which the key is now)."""
        self._db.execute(
            "UPDATE entries SET status = ?, http_status = ?, message = ?, updated_at = ?,"
            " last_run = COALESCE(?, last_run) WHERE key = ?",
            (status, http_status, message, now, run, key),
        )

    # ----- results -----

    def record_result(
        self,
        key: str,
        status: Status,
        result_at: float,
        *,
        reason: str | None = None,
        output_etag: str | None = None,
        output_size: int | None = None,
        now: float,
    ) -> None:
        self._db.execute(
            "UPDATE entries SET status = ?, result_at = ?, message = ?, output_etag = ?, output_size = ?,"
            " updated_at = ? WHERE key = ?",
            (status, result_at, reason, output_etag, output_size, now, key),
        )

    # ----- reading -----

    def counts(self) -> dict[Status, int]:
        found = dict(self._db.execute("SELECT status, COUNT(*) FROM entries GROUP BY status").fetchall())
        return {status: int(found.get(status.value, 0)) for status in Status}

    def entries(self, states: Iterable[Status] | None = None, *, order: str = "key") -> Iterator[Entry]:
        """Every entry (or those in `states`), read a page at a time so a million keys fit in memory.

        `order="acceptance"`: accepted states only (they have an acceptance time), oldest first.
        """
        if order not in ("key", "acceptance"):
            raise ValueError(order)
        selected = tuple(states) if states is not None else tuple(Status)
        if order == "key":
            after: str | None = ""
            while after is not None:
                rows = self._db.execute(
                    f"SELECT * FROM entries WHERE status IN ({_marks(selected)}) AND key > ? ORDER BY key LIMIT ?",
                    (*selected, after, PAGE_SIZE),
                ).fetchall()
                yield from (Entry.from_row(row) for row in rows)
                after = rows[-1]["key"] if len(rows) == PAGE_SIZE else None
            return
        # Acceptance order (the endpoints' queues are first in, first out), one state at a time, ties by key.
        for state in selected:
            cursor: tuple[float, str] = (float("-inf"), "")
            while True:
                rows = self._db.execute(
                    "SELECT * FROM entries WHERE status = ? AND (accepted_at > ? OR (accepted_at = ? AND key > ?))"
                    " ORDER BY accepted_at, key LIMIT ?",
                    (state, cursor[0], cursor[0], cursor[1], PAGE_SIZE),
                ).fetchall()
                yield from (Entry.from_row(row) for row in rows)
                if len(rows) < PAGE_SIZE:
                    break
                cursor = (rows[-1]["accepted_at"], rows[-1]["key"])

    def get(self, key: str) -> Entry | None:
        row = self._db.execute("SELECT * FROM entries WHERE key = ?", (key,)).fetchone()
        return Entry.from_row(row) if row is not None else None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))
