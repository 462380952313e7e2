"""`fleetscaler submit`: one request per object, journaled, resumable, paced by the router's answers."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from fleetscaler.cli.batch.journal import Journal, idempotency_key
from tests.cli.conftest import INPUT_BUCKET, SUBMIT_SLEEP, Run, SigningRouter, StubRouter, VirtualTime, routed

PREFIX = f"s3://{INPUT_BUCKET}/docs/"
SUBMIT_FIELDS = {
    "journal", "fleet", "prefix", "listed", "folder_markers_skipped", "accepted_before", "in_doubt_resent",
    "changed_after_acceptance", "gone", "to_send", "requests", "accepted", "rejected", "errors", "unsent",
    "throttled", "rate_per_second", "seconds", "interrupted", "stop_reason", "complete",
}  # fmt: skip


def submit(run: Any, router_url: str, journal: Path, *options: str, output: str = "json") -> Run:
    return run(
        "--router-url", router_url, "--output", output, "submit", "endpoint", PREFIX, "--journal", str(journal),
        *options, table=None,
    )  # fmt: skip


def journal_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The journal as another program sees it (read-only)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    rows = {row["key"]: dict(row) for row in connection.execute("SELECT * FROM entries")}
    connection.close()
    return rows


def interrupt_after(monkeypatch: pytest.MonkeyPatch, count: int, interrupt: Callable[[], None]) -> None:
    """Call `interrupt` in the submitter's main thread right after the `count`-th acceptance is written."""
    original = Journal.record_accepted
    written = [0]

    def record(self: Journal, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        written[0] += 1
        if written[0] == count:
            interrupt()

    monkeypatch.setattr(Journal, "record_accepted", record)


def test_each_object_is_sent_once_with_its_idempotency_key_and_reruns_send_nothing_twice(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path
) -> None:
    # Given 25 objects under the prefix and a folder marker
    keys = put_inputs(25)
    boto3.client("s3").put_object(Bucket=INPUT_BUCKET, Key="docs/empty-folder/", Body=b"")
    journal = tmp_path / "batch.sqlite"
    # When the prefix is submitted
    result = submit(run, stub_router.url, journal, "--content-type", "application/json", "--concurrency", "4")
    # Then every object was sent exactly once, with InputLocation, ContentType and its Idempotency-Key
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert set(summary) == SUBMIT_FIELDS
    assert (summary["listed"], summary["accepted"], summary["requests"], summary["complete"]) == (25, 25, 25, True)
    assert summary["folder_markers_skipped"] == 1
    assert sorted(stub_router.inputs_sent()) == [f"s3://{INPUT_BUCKET}/{k}" for k in keys]
    s3 = boto3.client("s3")
    for request in stub_router.requests:
        key = request["inputlocation"].removeprefix(f"s3://{INPUT_BUCKET}/")
        etag = s3.head_object(Bucket=INPUT_BUCKET, Key=key)["ETag"]
        assert request["idempotency-key"] == idempotency_key(INPUT_BUCKET, key, etag)
        assert request["contenttype"] == "application/json"
        assert "inferenceid" not in request
    # And the journal holds each key's answer
    rows = journal_rows(journal)
    assert {r["status"] for r in rows.values()} == {"accepted"}
    assert sorted(r["inference_id"] for r in rows.values()) == sorted(f"inference-{n}" for n in range(25))
    assert all(r["attempts"] == 1 and r["output_location"].startswith("s3://") for r in rows.values())

    # When the same command runs again / Then nothing is sent
    again = submit(run, stub_router.url, journal)
    assert again.code == 0, again.err
    assert (json.loads(again.out)["accepted_before"], json.loads(again.out)["requests"]) == (25, 0)
    assert len(stub_router.requests) == 25

    # When five objects are added / Then only they are sent
    put_inputs(30)
    more = submit(run, stub_router.url, journal)
    assert more.code == 0, more.err
    added = [f"s3://{INPUT_BUCKET}/docs/doc-{i:04d}.json" for i in range(25, 30)]
    assert sorted(stub_router.inputs_sent()[25:]) == added


def test_a_crash_between_the_routers_answer_and_the_journal_resends_only_keys_in_doubt(
    signing_router: SigningRouter,
    put_inputs: Any,
    run: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sagemaker_calls: list[dict[str, Any]],
) -> None:
    # Given 40 objects, the real router behind a signing gateway, and the headers each request carried
    keys = put_inputs(40)
    journal = tmp_path / "batch.sqlite"
    from fleetscaler.cli.invoke import SignedSender

    original_send = SignedSender.send
    sent_headers: list[dict[str, str]] = []

    def send(self: Any, fleet: str, headers: dict[str, str], body: bytes | None) -> Any:
        sent_headers.append(dict(headers))
        return original_send(self, fleet, headers, body)

    monkeypatch.setattr(SignedSender, "send", send)

    # When the submitter dies right after the router accepted its 16th key, before writing it down
    def crash() -> None:
        raise RuntimeError("power cut")

    original_record = Journal.record_accepted
    written = [0]

    def record(self: Journal, *args: Any, **kwargs: Any) -> None:
        if written[0] == 15:
            crash()
        original_record(self, *args, **kwargs)
        written[0] += 1

    monkeypatch.setattr(Journal, "record_accepted", record)
    with pytest.raises(RuntimeError, match="power cut"):
        submit(run, signing_router.url, journal, "--concurrency", "4")
    monkeypatch.setattr(Journal, "record_accepted", original_record)
    before = journal_rows(journal)
    accepted_before = {k for k, r in before.items() if r["status"] == "accepted"}
    in_doubt = {k for k, r in before.items() if r["status"] == "sending"}
    assert len(accepted_before) == 15
    assert 1 <= len(in_doubt) <= 4

    # And the same command runs again
    result = submit(run, signing_router.url, journal, "--concurrency", "4")

    # Then every key is accepted, and the rerun reported the keys in doubt
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert (summary["accepted_before"], summary["in_doubt_resent"]) == (15, len(in_doubt))
    assert {r["status"] for r in journal_rows(journal).values()} == {"accepted"}
    # And SageMaker was invoked once per key accepted before the crash, at least once for every key, and twice
    # only for keys in doubt (the router's idempotency will make those once); their repeat carried the same key
    invoked = Counter(call["InputLocation"].removeprefix(f"s3://{INPUT_BUCKET}/") for call in sagemaker_calls)
    assert set(invoked) == set(keys)
    assert all(invoked[k] == 1 for k in accepted_before)
    assert {k for k, n in invoked.items() if n > 1} <= in_doubt
    by_key: dict[str, set[str]] = {}
    for headers in sent_headers:
        by_key.setdefault(headers["InputLocation"], set()).add(headers["Idempotency-Key"])
    assert all(len(values) == 1 for values in by_key.values())


@pytest.mark.parametrize(
    "interrupt",
    [pytest.param(lambda: (_ for _ in ()).throw(KeyboardInterrupt), id="ctrl-c"),
     pytest.param(lambda: os.kill(os.getpid(), signal.SIGTERM), id="sigterm")],
)  # fmt: skip
def test_ctrl_c_or_sigterm_stops_cleanly_and_the_rerun_sends_the_rest(
    stub_router: StubRouter,
    put_inputs: Any,
    run: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    interrupt: Callable[[], None],
) -> None:
    # Given 30 objects
    keys = put_inputs(30)
    journal = tmp_path / "batch.sqlite"
    # When the run is interrupted after 10 acceptances
    record_accepted = Journal.record_accepted
    interrupt_after(monkeypatch, 10, interrupt)
    stopped = submit(run, stub_router.url, journal, "--concurrency", "3")
    # Then it waited for the requests in flight, recorded their answers and exited 130
    assert stopped.code == 130
    summary = json.loads(stopped.out)
    assert summary["interrupted"] is True
    rows = journal_rows(journal)
    statuses = Counter(r["status"] for r in rows.values())
    assert "sending" not in statuses
    assert statuses["accepted"] == summary["accepted"] == len(stub_router.requests)
    assert summary["unsent"] == 30 - summary["accepted"]
    assert f"error: interrupted with {summary['unsent']} keys unsent; rerun the same command to resume" in stopped.err
    # When the same command runs again / Then it sends the rest: every object exactly once in all
    monkeypatch.setattr(Journal, "record_accepted", record_accepted)
    resumed = submit(run, stub_router.url, journal)
    assert resumed.code == 0, resumed.err
    assert sorted(stub_router.inputs_sent()) == [f"s3://{INPUT_BUCKET}/{k}" for k in keys]


def test_throttling_pauses_for_retry_after_halves_the_rate_then_climbs_back(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path, virtual_time: VirtualTime
) -> None:
    # Given a router that answers the first three requests 429 with Retry-After: 2 (and a virtual clock)
    put_inputs(40)
    virtual_time.patch_sleep(SUBMIT_SLEEP)

    def answer(headers: dict[str, str], n: int) -> Any:
        if n < 3:
            return 429, {"message": "throttled by DynamoDB; retry later"}, {"Retry-After": "2"}
        return routed(n)

    stub_router.answer = answer
    # When 40 objects are submitted at up to 10/s, one at a time
    result = submit(run, stub_router.url, tmp_path / "b.sqlite", "--rate", "10", "--concurrency", "1")
    # Then every object is accepted after 43 requests; the rate fell to 1.25/s and rose again
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert (summary["accepted"], summary["requests"], summary["throttled"]) == (40, 43, 3)
    rates = summary["rate_per_second"]
    assert (rates["start"], rates["lowest"]) == (10, 1.25)
    assert rates["settled"] > 2 * rates["lowest"]
    # And the first key was retried after each Retry-After, with the same Idempotency-Key
    start = stub_router.sent_at[0]
    assert [t - start for t in stub_router.sent_at[:4]] == pytest.approx([0, 2, 4, 6])
    assert len({r["idempotency-key"] for r in stub_router.requests[:4]}) == 1
    # And after the throttling the gaps between sends shrink: 0.8 s at 1.25/s, then less and less
    gaps = [b - a for a, b in itertools.pairwise(stub_router.sent_at[3:])]
    assert gaps[0] == pytest.approx(0.8)
    assert all(later <= earlier + 1e-9 for earlier, later in itertools.pairwise(gaps))
    assert gaps[-1] < 0.5 * gaps[0]


def test_refused_keys_are_recorded_the_run_goes_on_and_the_next_run_retries_them_last(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path
) -> None:
    # Given a router that refuses two of the keys
    put_inputs(12)
    boto3.client("s3").put_object(Bucket=INPUT_BUCKET, Key="docs/naïve.json", Body=b"{}")
    not_an_object = "InputLocation: must be an s3://bucket/key URI naming an object"
    outside = "InputLocation: outside the allowed input prefixes"
    refusals = {
        f"s3://{INPUT_BUCKET}/docs/doc-0003.json": (400, not_an_object),
        f"s3://{INPUT_BUCKET}/docs/doc-0007.json": (403, outside),
    }

    def answer(headers: dict[str, str], n: int) -> Any:
        refused = refusals.get(headers["inputlocation"])
        return (refused[0], {"message": refused[1]}, {}) if refused else routed(n)

    stub_router.answer = answer
    journal = tmp_path / "b.sqlite"
    # When the prefix is submitted
    result = submit(run, stub_router.url, journal, "--concurrency", "2")
    # Then the others are accepted, the refusals are recorded with their status and message, exit status 1
    assert result.code == 1
    summary = json.loads(result.out)
    assert summary["accepted"] == 10
    assert sorted((p["key"], p["http_status"], p["message"]) for p in summary["rejected"]) == [
        ("docs/doc-0003.json", 400, not_an_object),
        ("docs/doc-0007.json", 403, outside),
        ("docs/naïve.json", None, "InputLocation: the key has characters outside printable ASCII, "
                                  "which an HTTP header cannot carry"),
    ]  # fmt: skip
    assert result.err.strip() == (
        "error: 3 rejected, 0 errors, 0 unsent: see the journal; rerun the same command to send them again"
    )
    rows = journal_rows(journal)
    assert (rows["docs/doc-0003.json"]["status"], rows["docs/doc-0003.json"]["message"]) == ("rejected", not_an_object)
    # The key no header can carry was never sent
    assert all("na" not in r["inputlocation"] for r in stub_router.requests)
    # When the cause is fixed and the command runs again / Then only the refused keys are sent, last
    refusals.clear()
    again = submit(run, stub_router.url, journal)
    assert again.code == 1  # the non-ASCII key stays refused
    assert sorted(stub_router.inputs_sent()[12:]) == sorted(
        [f"s3://{INPUT_BUCKET}/docs/doc-0003.json", f"s3://{INPUT_BUCKET}/docs/doc-0007.json"]
    )
    assert json.loads(again.out)["accepted"] == 2


@pytest.mark.parametrize(
    ("status", "message"),
    [(403, "The security token included in the request is invalid."), (404, "fleet 'endpoint' is not served here")],
)
def test_twenty_identical_refusals_in_a_row_stop_the_run(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path, status: int, message: str
) -> None:
    # Given a router that refuses everything the same way (bad credentials, wrong fleet)
    put_inputs(50)
    stub_router.answer = lambda headers, n: (status, {"message": message}, {})
    # When the prefix is submitted
    result = submit(run, stub_router.url, tmp_path / "b.sqlite", "--concurrency", "1")
    # Then the run stops after 20 requests instead of spending one per key
    assert result.code == 1
    assert len(stub_router.requests) == 20
    assert result.err.strip() == (
        f"error: stopped after 20 answers in a row were {status}: {message}; fix the cause and rerun the same command"
    )
    summary = json.loads(result.out)
    assert (len(summary["rejected"]), summary["unsent"]) == (20, 30)


def test_server_errors_are_retried_up_to_max_attempts_then_recorded(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path, virtual_time: VirtualTime
) -> None:
    # Given a router whose Lambda keeps failing on one key (and a virtual clock)
    put_inputs(6)
    virtual_time.patch_sleep(SUBMIT_SLEEP)
    broken = f"s3://{INPUT_BUCKET}/docs/doc-0002.json"
    stub_router.answer = lambda headers, n: (
        (502, {"message": "Internal server error"}, {}) if headers["inputlocation"] == broken else routed(n)
    )
    journal = tmp_path / "b.sqlite"
    # When submitted with --max-attempts 3
    result = submit(run, stub_router.url, journal, "--max-attempts", "3", "--concurrency", "1")
    # Then that key was tried 3 times, with a growing pause between tries, and recorded as an error
    assert result.code == 1
    assert stub_router.inputs_sent().count(broken) == 3
    summary = json.loads(result.out)
    assert summary["errors"] == [
        {
            "key": "docs/doc-0002.json",
            "status": "error",
            "http_status": 502,
            "message": "no usable answer after 3 attempts; last: 502 Internal server error",
        }
    ]
    assert summary["accepted"] == 5
    row = journal_rows(journal)["docs/doc-0002.json"]
    assert (row["status"], row["attempts"]) == ("error", 3)
    tries = [t for t, r in zip(stub_router.sent_at, stub_router.requests, strict=True) if r["inputlocation"] == broken]
    assert 0 < tries[1] - tries[0] < tries[2] - tries[1]


def test_the_router_does_not_forward_the_idempotency_key_and_logs_it_for_correlation(
    signing_router: SigningRouter, put_inputs: Any, run: Any, tmp_path: Path, sagemaker_calls: list[dict[str, Any]]
) -> None:
    from fleetscaler.handlers.router import logger

    # Given the router's log lines captured
    log_stream = logger.registered_handler.stream
    put_inputs(3)
    journal = tmp_path / "b.sqlite"
    # When a batch is submitted through the signing gateway to the real router
    result = submit(run, signing_router.url, journal)
    assert result.code == 0, result.err
    # Then SageMaker got no trace of the Idempotency-Key
    keys = {r["idempotency_key"] for r in journal_rows(journal).values()}
    assert len(sagemaker_calls) == 3
    for call in sagemaker_calls:
        assert not any("idempotency" in name.lower() for name in call)
        assert not keys & {str(v) for v in call.values()}
    # And each routed request's log line carries the key submit journaled (the one header the router logs), so
    # an operator can find a document's request and its repeats together
    routed = [json.loads(line) for line in log_stream.getvalue().splitlines() if '"routed request"' in line]
    assert {line["idempotency_key"] for line in routed} == keys


def test_text_output_shows_progress_and_a_summary(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path
) -> None:
    put_inputs(8)
    result = submit(run, stub_router.url, tmp_path / "b.sqlite", output="text")
    assert result.code == 0, result.err
    # Progress goes to stderr (plain lines when it is not a terminal); the summary to stdout
    assert "submit  8/8 (100%)" in result.err
    assert f"batch     {PREFIX} -> fleet endpoint" in result.out
    assert "accepted  8 this run, 0 before: 8 of 8" in result.out
    assert "rate      started at 100/s, lowest 100/s, settled at 100/s" in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["endpoint_1", PREFIX], "error: FLEET: 'endpoint_1' must be 1 to 63 letters, digits and hyphens"),
        (["endpoint", "batch-inputs/docs/"], "error: PREFIX: must be s3://bucket/prefix/, got 'batch-inputs/docs/'"),
        (["endpoint", "s3://Batch_Inputs/docs/"], "error: PREFIX: 'Batch_Inputs' is not an S3 bucket name"),
        (["endpoint", "s3://batch-inputs/nothing-here/"], "error: PREFIX: no objects under s3://batch-inputs/nothing-here/"),
        (["endpoint", "s3://no-such-bucket/docs/"], "error: cannot list s3://no-such-bucket/docs/: NoSuchBucket"),
        (["endpoint", PREFIX, "--concurrency", "0"], "Invalid value for '--concurrency': 0 is not in the range"),
        (["endpoint", PREFIX, "--rate", "0"], "Invalid value for '--rate': 0.0 is not in the range 0.1<=x<=10000"),
        (["endpoint", PREFIX, "--max-attempts", "0"], "Invalid value for '--max-attempts'"),
        (["endpoint", PREFIX, "--content-type", "text/csv\u00e9"],
         "error: --content-type: ContentType: must contain only printable ASCII characters"),
        (["endpoint", PREFIX, "--header", "RequestTTLSeconds=5"],
         "error: --header: RequestTTLSeconds: must be from 60 to 21600 seconds, got 5"),
        (["endpoint", PREFIX, "--header", "InputLocation=s3://x/y"],
         "error: --header: InputLocation is set by submit, per object; remove it from --header"),
        (["endpoint", PREFIX, "--header", "Idempotency-Key=abc"],
         "error: --header: Idempotency-Key is set by submit, per object; remove it from --header"),
        (["endpoint", PREFIX, "--header", "contenttype=text/csv"],
         "error: --header: ContentType is set by --content-type; remove it from --header"),
        (["endpoint", PREFIX, "--header", "novalue"], "error: --header: 'novalue' must be NAME=VALUE"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_status_2(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    put_inputs(2)
    result = run("--router-url", stub_router.url, "submit", *args, "--journal", str(tmp_path / "b.sqlite"), table=None)
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err
    assert stub_router.requests == []
    # A batch that cannot start leaves no journal behind
    assert not (tmp_path / "b.sqlite").exists()


def test_a_journal_of_another_batch_is_refused(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path
) -> None:
    put_inputs(2, prefix="docs/")
    put_inputs(2, prefix="other/")
    journal = tmp_path / "b.sqlite"
    assert submit(run, stub_router.url, journal).code == 0
    # When the journal is reused for another prefix / Then it says whose journal it is
    result = run(
        "--router-url", stub_router.url, "submit", "endpoint", f"s3://{INPUT_BUCKET}/other/", "--journal", str(journal),
        table=None,
    )  # fmt: skip
    assert result.code == 2
    assert result.err.strip() == (
        f"error: --journal: {journal} records the batch of fleet 'endpoint' and prefix {PREFIX}, not PREFIX "
        f"s3://{INPUT_BUCKET}/other/; give another --journal for a new batch"
    )
    assert len(stub_router.requests) == 2


def test_the_default_journal_is_named_after_fleet_and_prefix_in_the_current_folder(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_inputs(2)
    monkeypatch.chdir(tmp_path)
    result = run("--router-url", stub_router.url, "--output", "json", "submit", "endpoint", PREFIX, table=None)
    assert result.code == 0, result.err
    written = json.loads(result.out)["journal"]
    assert written.startswith("batch-endpoint-batch-inputs-docs-") and written.endswith(".sqlite")
    assert (tmp_path / written).is_file()
