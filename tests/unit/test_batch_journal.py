"""The batch journal: what it records, what a run sends from it, and the files it refuses."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from fleetscaler.cli.batch.journal import (
    FIRST_PASS_STATES,
    LAST_PASS_STATES,
    Journal,
    ListedObject,
    Status,
    default_journal_path,
    idempotency_key,
)
from fleetscaler.cli.batch.results import local_name, time_to_result
from fleetscaler.cli.context import CliError

PREFIX = "s3://batch-inputs/docs/"


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    opened = Journal.open(tmp_path / "batch.sqlite", create=True)
    opened.bind("endpoint", PREFIX, "application/json", now=100.0)
    return opened


def listed(*keys: str, etag: str = '"e1"') -> list[ListedObject]:
    return [ListedObject(key=k, etag=etag, size=10) for k in keys]


def test_idempotency_key_is_sha256_of_bucket_key_and_etag() -> None:
    expected = hashlib.sha256(b'["batch-inputs","docs/a.json","9b2cf535f27731c974343645a3985328"]').hexdigest()
    # The ETag's quotes do not matter; the bucket, key and ETag each do
    assert idempotency_key("batch-inputs", "docs/a.json", '"9b2cf535f27731c974343645a3985328"') == expected
    assert idempotency_key("batch-inputs", "docs/a.json", "9b2cf535f27731c974343645a3985328") == expected
    others = {
        idempotency_key("other", "docs/a.json", "9b2cf535f27731c974343645a3985328"),
        idempotency_key("batch-inputs", "docs/b.json", "9b2cf535f27731c974343645a3985328"),
        idempotency_key("batch-inputs", "docs/a.json", "0" * 32),
    }
    assert expected not in others and len(others) == 3


def test_default_path_names_fleet_and_prefix_and_keeps_batches_apart() -> None:
    path = default_journal_path("endpoint", "s3://batch-inputs/docs/2024/")
    assert path.parent == Path(".")
    assert path.name.startswith("batch-endpoint-batch-inputs-docs-2024-")
    assert path.suffix == ".sqlite"
    # Prefixes that read alike still get their own journal
    assert default_journal_path("endpoint", "s3://batch-inputs/docs") != default_journal_path(
        "endpoint", "s3://batch-inputs/docs/"
    )


def test_a_run_sends_unsent_keys_in_key_order_then_earlier_refusals(journal: Journal) -> None:
    # Given a first run that got c accepted, b refused, d in doubt (crashed while sending), a never sent
    run1 = journal.begin_run()
    journal.merge_listing("batch-inputs", listed("docs/a", "docs/b", "docs/c", "docs/d"), run1, now=101.0)
    for key in ("docs/b", "docs/c", "docs/d"):
        journal.mark_sending(key, run1, now=102.0)
    journal.record_answer("docs/b", Status.REJECTED, 400, "InputLocation: too long", now=103.0)
    journal.record_accepted("docs/c", {"outputLocation": "s3://o/c.out", "inferenceId": "i-c"}, now=103.0)
    # When the next run lists the same prefix
    run2 = journal.begin_run()
    journal.merge_listing("batch-inputs", listed("docs/a", "docs/b", "docs/c", "docs/d"), run2, now=110.0)
    # Then it sends a and d first, b last, and never c
    first = [e.key for e in journal.to_send(run2, FIRST_PASS_STATES, None)]
    last = [e.key for e in journal.to_send(run2, LAST_PASS_STATES, None)]
    assert (first, last) == (["docs/a", "docs/d"], ["docs/b"])
    assert journal.count((Status.SENDING,), seen_run=run2) == 1
    # And a key it has sent in this run is not offered again in this run
    journal.mark_sending("docs/a", run2, now=111.0)
    assert [e.key for e in journal.to_send(run2, FIRST_PASS_STATES, None)] == ["docs/d"]


def test_listing_follows_replaced_objects_only_until_accepted(journal: Journal) -> None:
    run1 = journal.begin_run()
    journal.merge_listing("batch-inputs", listed("docs/a", "docs/b"), run1, now=101.0)
    journal.mark_sending("docs/a", run1, now=102.0)
    journal.record_accepted("docs/a", {"outputLocation": "s3://o/a.out"}, now=103.0)
    before = {e.key: e.idempotency_key for e in journal.entries()}
    # When both objects are replaced and one is new
    run2 = journal.begin_run()
    counts = journal.merge_listing("batch-inputs", listed("docs/a", "docs/b", "docs/c", etag='"e2"'), run2, now=110.0)
    after = {e.key: e for e in journal.entries()}
    # Then the unsent key carries its new version's Idempotency-Key, the accepted one keeps its record
    assert (counts.new, counts.changed_after_acceptance) == (1, 1)
    assert after["docs/b"].idempotency_key == idempotency_key("batch-inputs", "docs/b", '"e2"')
    assert after["docs/a"].idempotency_key == before["docs/a"]
    assert after["docs/a"].status == Status.ACCEPTED
    # And a key that left the prefix is counted as gone when it was never accepted
    run3 = journal.begin_run()
    journal.merge_listing("batch-inputs", listed("docs/a", "docs/c", etag='"e2"'), run3, now=120.0)
    assert journal.count_gone(run3) == 1


def test_entries_page_through_large_journals_in_both_orders(journal: Journal) -> None:
    run = journal.begin_run()
    keys = [f"docs/{i:05d}" for i in range(2500)]
    journal.merge_listing("batch-inputs", listed(*keys[:900]), run, now=1.0)
    journal.merge_listing("batch-inputs", listed(*keys[900:]), run, now=1.0)
    for i, key in enumerate(reversed(keys)):
        journal.mark_sending(key, run, now=2.0)
        journal.record_accepted(key, {"outputLocation": f"s3://o/{i}.out"}, now=3.0 + i)
    assert [e.key for e in journal.entries()] == keys
    assert [e.key for e in journal.entries((Status.ACCEPTED,), order="acceptance")] == list(reversed(keys))


def test_reopening_checks_the_batch(journal: Journal, tmp_path: Path) -> None:
    journal.close()
    with Journal.open(tmp_path / "batch.sqlite", create=False) as again:
        # The same batch: the recorded content type is used when none is given
        assert again.bind("endpoint", PREFIX, None, now=200.0) == "application/json"
        with pytest.raises(CliError, match=r"records the batch of fleet 'endpoint' and prefix s3://batch-inputs/docs/"):
            again.bind("endpoint", "s3://batch-inputs/other/", None, now=200.0)
        with pytest.raises(CliError, match=r"not FLEET other"):
            again.bind("other", PREFIX, None, now=200.0)
        with pytest.raises(CliError, match=r"--content-type: the batch .* was started with application/json"):
            again.bind("endpoint", PREFIX, "text/csv", now=200.0)


def _tamper(path: Path, statement: str) -> None:
    connection = sqlite3.connect(path)
    connection.execute(statement)
    connection.commit()
    connection.close()


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("ALTER TABLE entries ADD COLUMN priority INTEGER", "entries has unknown columns: priority"),
        ("INSERT INTO batch VALUES ('contnet_type', 'text/csv')", "unknown batch attributes: contnet_type"),
        ("CREATE TABLE notes (x)", "unknown tables: notes"),
        ("PRAGMA user_version = 7", "is a journal of format 7; this fleetscaler reads format 1"),
    ],
)
def test_a_journal_with_unknown_parts_is_refused(
    journal: Journal, tmp_path: Path, statement: str, message: str
) -> None:
    journal.close()
    _tamper(tmp_path / "batch.sqlite", statement)
    with pytest.raises(CliError, match=message):
        Journal.open(tmp_path / "batch.sqlite", create=False)


def test_files_that_are_not_journals_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database, just notes\n" * 100)
    other = tmp_path / "other.sqlite"
    _tamper(other, "CREATE TABLE t (x)")
    with pytest.raises(CliError, match=r"--journal: .*notes\.txt is not a fleetscaler batch journal"):
        Journal.open(text, create=True)
    with pytest.raises(CliError, match="is an SQLite file but not a fleetscaler batch journal"):
        Journal.open(other, create=True)
    with pytest.raises(CliError, match="does not exist"):
        Journal.open(tmp_path / "missing.sqlite", create=False)
    with pytest.raises(CliError, match=r"folder .* does not exist"):
        Journal.open(tmp_path / "no" / "such.sqlite", create=True)


def test_one_submitter_per_journal(journal: Journal, tmp_path: Path) -> None:
    journal.lock_for_submit()
    with (
        Journal.open(tmp_path / "batch.sqlite", create=False) as second,
        pytest.raises(CliError, match="another `fleetscaler submit` is using"),
    ):
        second.lock_for_submit()
    journal.close()
    with Journal.open(tmp_path / "batch.sqlite", create=False) as third:
        third.lock_for_submit()


@pytest.mark.parametrize(
    ("key", "prefix", "name"),
    [
        ("docs/a.json", "docs/", "a.json.out"),
        ("docs/2024/05/a.json", "docs/", "2024/05/a.json.out"),
        ("docs-old/a.json", "docs", "docs-old/a.json.out"),
        ("a.json", "", "a.json.out"),
        ("docs/../../etc/passwd", "docs/", "%2E%2E/%2E%2E/etc/passwd.out"),
        ("docs//x/./y", "docs/", "x/%2E/y.out"),
    ],
)
def test_downloads_are_named_after_the_input_key_and_stay_inside_the_folder(key: str, prefix: str, name: str) -> None:
    assert local_name(key, prefix) == Path(name)


def test_time_to_result_percentiles(journal: Journal) -> None:
    # Given 20 outputs that took 1..20 s after their 202
    run = journal.begin_run()
    journal.merge_listing("batch-inputs", listed(*[f"docs/{i:02d}" for i in range(20)]), run, now=0.0)
    for i in range(20):
        key = f"docs/{i:02d}"
        journal.mark_sending(key, run, now=0.0)
        journal.record_accepted(key, {"outputLocation": f"s3://o/{i}.out"}, now=1000.0 + i)
        journal.record_result(key, Status.SUCCEEDED, 1000.0 + i + (i + 1), now=2000.0)
    # Then nearest-rank p50 is 10 s, p95 19 s, max 20 s
    assert time_to_result(journal.entries((Status.SUCCEEDED,))) == {"count": 20, "p50": 10.0, "p95": 19.0, "max": 20.0}
    assert time_to_result([]) == {}

