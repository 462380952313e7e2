"""`fleetscaler results`: each accepted key's output or failure in S3, time to result, --wait, --download."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fleetscaler.cli.batch.journal import Journal
from tests.cli.conftest import (
    INPUT_BUCKET,
    RESULTS_SLEEP,
    SUBMIT_SLEEP,
    Run,
    StubRouter,
    VirtualTime,
    put_result,
    routed,
)

PREFIX = f"s3://{INPUT_BUCKET}/docs/"
RESULTS_FIELDS = {
    "journal", "fleet", "prefix", "total", "succeeded", "failed", "pending", "not_accepted",
    "time_to_result_seconds", "failures", "not_accepted_keys", "pending_keys", "download", "waited_seconds",
    "complete",
}  # fmt: skip


@pytest.fixture
def batch(stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path) -> Any:
    """`batch(count)`: submit `count` objects through the stub router; returns the journal's path.

    The n-th key sent (doc-000n at concurrency 1) gets outputs `routed(n)` names."""

    def submit(count: int, *options: str) -> Path:
        put_inputs(count)
        journal = tmp_path / "batch.sqlite"
        result = run(
            "--router-url", stub_router.url, "submit", "endpoint", PREFIX, "--journal", str(journal),
            "--concurrency", "1", *options, table=None,
        )  # fmt: skip
        assert result.code == 0, result.err
        return journal

    return submit


def output_of(n: int) -> str:
    return str(routed(n)[1]["outputLocation"])


def failure_of(n: int) -> str:
    return str(routed(n)[1]["failureLocation"])


def results(run: Any, journal: Path, *options: str, output: str = "json") -> Run:
    return run("--output", output, "results", "--journal", str(journal), *options, table=None)


def test_successes_failures_and_pending_are_counted_and_failures_give_their_reason(batch: Any, run: Any) -> None:
    # Given 12 accepted keys: 8 with outputs, 2 with failure objects, 2 still queued
    journal = batch(12)
    for n in range(8):
        put_result(output_of(n), b'{"label": "ok"}')
    put_result(failure_of(8), b"ModelError: input has 4 columns, expected 3\nTraceback (most recent call last): ...")
    put_result(failure_of(9), b"")
    # When the results are read
    result = results(run, journal)
    # Then: 8 succeeded, 2 failed with their reasons, 2 pending; exit status 1
    assert result.code == 1
    report = json.loads(result.out)
    assert set(report) == RESULTS_FIELDS
    assert (report["total"], report["succeeded"], report["failed"], report["pending"]) == (12, 8, 2, 2)
    assert [(f["key"], f["reason"]) for f in report["failures"]] == [
        ("docs/doc-0008.json", "ModelError: input has 4 columns, expected 3"),
        ("docs/doc-0009.json", "(empty failure object)"),
    ]
    assert [p["key"] for p in report["pending_keys"]] == ["docs/doc-0010.json", "docs/doc-0011.json"]
    assert report["time_to_result_seconds"]["count"] == 8
    assert report["complete"] is False
    assert result.err.strip() == "error: not all succeeded: 2 failed, 2 pending, 0 not accepted"

    # When the last two finish / Then they count as succeeded; the failures stay failures (exit status 1)
    put_result(output_of(10), b"{}")
    put_result(output_of(11), b"{}")
    again = results(run, journal)
    assert (json.loads(again.out)["succeeded"], json.loads(again.out)["failed"]) == (10, 2)
    assert again.code == 1


def test_all_succeeded_is_exit_status_0_with_text_output(batch: Any, run: Any) -> None:
    journal = batch(3)
    for n in range(3):
        put_result(output_of(n), b"{}")
    result = results(run, journal, output="text")
    assert result.code == 0, result.err
    assert f"batch      {PREFIX} -> fleet endpoint" in result.out
    assert "succeeded  3 of 3" in result.out
    assert "pending    0 (accepted, no result in S3 yet)" in result.out
    assert "time to result  p50 " in result.out


def test_results_read_s3_only_for_keys_still_pending(
    batch: Any, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 6 keys of which 4 are known finished from an earlier look
    journal = batch(6)
    for n in range(4):
        put_result(output_of(n), b"{}")
    assert results(run, journal).code == 1
    # When results are read again
    from fleetscaler.cli.batch.results import S3Results

    probed: list[str] = []
    original = S3Results.probe

    def probe(self: S3Results, entry: Any) -> Any:
        probed.append(entry.key)
        return original(self, entry)

    monkeypatch.setattr(S3Results, "probe", probe)
    assert results(run, journal).code == 1
    # Then only the two pending keys were looked up
    assert sorted(probed) == ["docs/doc-0004.json", "docs/doc-0005.json"]


def test_time_to_result_comes_from_the_objects_last_modified(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path, virtual_time: VirtualTime
) -> None:
    # Given 10 keys accepted one second apart, starting 100 s before now (the submitter's clock)
    put_inputs(10)
    started = time.time() - 100
    virtual_time.clock.set(started)
    virtual_time.patch_sleep(SUBMIT_SLEEP)
    journal = tmp_path / "b.sqlite"
    submitted = run(
        "--router-url", stub_router.url, "submit", "endpoint", PREFIX, "--journal", str(journal),
        "--rate", "1", "--concurrency", "1", table=None,
    )  # fmt: skip
    assert submitted.code == 0, submitted.err
    # When their outputs are written now
    writing = time.time()
    for n in range(10):
        put_result(output_of(n), b"{}")
    written = time.time()
    report = json.loads(results(run, journal).out)
    # Then the times to result are LastModified (whole seconds) minus each acceptance: about 100 s for the
    # first key, 91 s for the last; p50 is the 5th shortest (key 5), p95 and max the longest (key 0)
    timing = report["time_to_result_seconds"]
    assert timing["count"] == 10
    assert writing - 1 - started - 5 - 0.1 <= timing["p50"] <= written - started - 5 + 0.1
    assert writing - 1 - started - 0.1 <= timing["p95"] <= written - started + 0.1
    assert timing["max"] == timing["p95"]


def test_wait_polls_until_nothing_is_pending(batch: Any, run: Any, virtual_time: VirtualTime) -> None:
    # Given 5 accepted keys whose outputs appear one per poll
    virtual_time.patch_sleep(SUBMIT_SLEEP)
    journal = batch(5)
    waits = virtual_time.patch_sleep(RESULTS_SLEEP, on_wait=lambda n: put_result(output_of(n - 1), b"{}"))
    # When waiting
    result = results(run, journal, "--wait", "--poll-interval", "5")
    # Then it polled every 5 s until all 5 were there, and says how long it waited
    assert result.code == 0, result.err
    assert waits == [5.0] * 5
    report = json.loads(result.out)
    assert (report["succeeded"], report["waited_seconds"], report["complete"]) == (5, 25.0, True)


def test_wait_gives_up_at_the_timeout(batch: Any, run: Any, virtual_time: VirtualTime) -> None:
    virtual_time.patch_sleep(SUBMIT_SLEEP)
    journal = batch(3)
    put_result(output_of(0), b"{}")
    waits = virtual_time.patch_sleep(RESULTS_SLEEP)
    result = results(run, journal, "--wait", "--timeout", "25", "--poll-interval", "10")
    assert result.code == 1
    assert waits == [10.0, 10.0, 5.0]
    report = json.loads(result.out)
    assert (report["succeeded"], report["pending"], report["waited_seconds"]) == (1, 2, 25.0)


def test_a_wait_poll_leaves_an_endpoint_at_the_first_chunk_still_queued(
    batch: Any, run: Any, virtual_time: VirtualTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given chunks of 2 keys, and 9 keys over 3 endpoints (keys n, n+3, n+6 on endpoint n+1) of which only
    # each endpoint's newest has finished, out of its queue's order
    from fleetscaler.cli.batch.results import S3Results

    monkeypatch.setattr("fleetscaler.cli.batch.results.PROBE_CHUNK", 2)
    virtual_time.patch_sleep(SUBMIT_SLEEP)
    journal = batch(9)
    for n in (6, 7, 8):
        put_result(output_of(n), b"{}")
    probed: list[list[int]] = [[]]
    original = S3Results.probe

    def probe(self: S3Results, entry: Any) -> Any:
        probed[-1].append(int(entry.key[-9:-5]))
        return original(self, entry)

    monkeypatch.setattr(S3Results, "probe", probe)
    virtual_time.patch_sleep(RESULTS_SLEEP, on_wait=lambda n: probed.append([]))
    # When waiting, with a timeout of one poll interval
    result = results(run, journal, "--wait", "--timeout", "10", "--poll-interval", "10")
    # Then the first poll read each endpoint's two oldest keys and left it there; the last poll read them all
    assert sorted(probed[0]) == [0, 1, 2, 3, 4, 5]
    assert sorted(probed[1]) == list(range(9))
    assert json.loads(result.out)["succeeded"] == 3


def test_download_names_files_after_input_keys_and_never_overwrites_a_different_file(
    batch: Any, run: Any, tmp_path: Path
) -> None:
    # Given 4 finished keys, one of them written as a multipart upload (its ETag is not an MD5)
    journal = batch(4)
    for n in range(3):
        put_result(output_of(n), json.dumps({"result": n}).encode())
    s3 = boto3.client("s3")
    bucket, _, key = output_of(3).removeprefix("s3://").partition("/")
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b'{"result": 3}')
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    )
    out = tmp_path / "out"
    # When downloading
    first = results(run, journal, "--download", str(out))
    # Then each output is a file named after its input key
    assert first.code == 0, first.err
    assert sorted(p.name for p in out.iterdir()) == [f"doc-{n:04d}.json.out" for n in range(4)]
    assert json.loads((out / "doc-0002.json.out").read_text()) == {"result": 2}
    assert json.loads(first.out)["download"] == {
        "dir": str(out), "written": 4, "already_present": 0, "conflicts": [], "errors": []
    }  # fmt: skip
    # When downloading again, with one file changed by hand (same size) and one with a different size
    (out / "doc-0001.json.out").write_text('{"result": 9}')
    (out / "doc-0003.json.out").write_text('{"result": 3, "edited": true}')
    again = results(run, journal, "--download", str(out))
    # Then the identical files are recognised, the changed ones are kept and reported, exit status 1
    assert again.code == 1
    download = json.loads(again.out)["download"]
    assert (download["written"], download["already_present"]) == (0, 2)
    assert [c["key"] for c in download["conflicts"]] == ["docs/doc-0001.json", "docs/doc-0003.json"]
    assert all("exists with different content (not overwritten)" in c["reason"] for c in download["conflicts"])
    assert (out / "doc-0001.json.out").read_text() == '{"result": 9}'
    assert "1 download conflicts" not in again.err and "2 download conflicts" in again.err
    # And the multipart output, compared byte for byte, is found identical once it is put back
    (out / "doc-0003.json.out").write_bytes(b'{"result": 3}')
    third = json.loads(results(run, journal, "--download", str(out)).out)["download"]
    assert [c["key"] for c in third["conflicts"]] == ["docs/doc-0001.json"]
    assert third["already_present"] == 3


def test_keys_never_accepted_are_listed_and_fail_the_batch(
    stub_router: StubRouter, put_inputs: Any, run: Any, tmp_path: Path
) -> None:
    # Given a batch where the router refused one key
    put_inputs(3)
    stub_router.answer = lambda headers, n: (
        (400, {"message": "InputLocation: too long"}, {}) if "doc-0001" in headers["inputlocation"] else routed(n)
    )
    journal = tmp_path / "b.sqlite"
    run("--router-url", stub_router.url, "submit", "endpoint", PREFIX, "--journal", str(journal), table=None)
    for n in (0, 2):
        put_result(output_of(n), b"{}")
    # When reading the results
    result = results(run, journal, output="text")
    # Then the refused key is listed with its reason and the batch is not a success
    assert result.code == 1
    assert "not accepted 1 (1 rejected): rerun submit to send them" in result.out
    assert "docs/doc-0001.json: rejected 400 InputLocation: too long" in result.out


def test_unreadable_results_are_one_line(batch: Any, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given S3 refuses to say whether the output exists (no s3:ListBucket)
    journal = batch(1)
    s3 = boto3.client("s3")
    stubber = Stubber(s3)
    stubber.add_client_error("head_object", service_error_code="403", http_status_code=403)
    stubber.activate()
    monkeypatch.setattr("fleetscaler.cli.context.CliContext.client", lambda self, service: s3)
    # When reading the results / Then one line says which object and which permission
    result = results(run, journal)
    assert result.code == 2
    assert result.err.strip() == (
        f"error: cannot read {output_of(0)}: access denied (reading results needs s3:GetObject, and "
        "s3:ListBucket to tell a missing object from a forbidden one)"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--journal", "{tmp}/missing.sqlite"],
         "error: --journal: {tmp}/missing.sqlite does not exist (submit creates it)"),
        (["--journal", "{journal}", "--timeout", "5"],
         "error: --timeout and --poll-interval apply to --wait; add --wait"),
        (["--journal", "{journal}", "--wait", "--timeout", "-1"], "Invalid value for '--timeout'"),
        (["--journal", "{journal}", "--download", "{journal}"], "Invalid value for '--download'"),
        ([], "Missing option '--journal'"),
        (["--journal", "{tmp}/empty.sqlite"], "error: --journal: {tmp}/empty.sqlite holds no keys yet"),
    ],
)  # fmt: skip
def test_bad_options(batch: Any, run: Any, tmp_path: Path, options: list[str], message: str) -> None:
    journal = batch(1)
    with Journal.open(tmp_path / "empty.sqlite", create=True) as empty:  # a journal with no keys in it
        empty.bind("endpoint", PREFIX, None, now=0.0)
    filled = [o.format(tmp=tmp_path, journal=journal) for o in options]
    result = run("results", *filled, table=None)
    assert result.code == 2
    assert message.format(tmp=tmp_path) in result.err
    assert "Traceback" not in result.err


def test_an_output_that_cannot_be_fetched_is_reported_and_the_others_are_downloaded(
    batch: Any, run: Any, tmp_path: Path
) -> None:
    # Given 3 succeeded keys whose first output was deleted after results saw it
    journal = batch(3)
    for n in range(3):
        put_result(output_of(n), b"{}")
    assert results(run, journal).code == 0
    bucket, _, key = output_of(0).removeprefix("s3://").partition("/")
    boto3.client("s3").delete_object(Bucket=bucket, Key=key)
    # When downloading
    result = results(run, journal, "--download", str(tmp_path / "out"))
    # Then the two others are written, the missing one is reported, exit status 1
    assert result.code == 1
    download = json.loads(result.out)["download"]
    assert download["written"] == 2
    assert [e["key"] for e in download["errors"]] == ["docs/doc-0000.json"]
    assert download["errors"][0]["reason"].startswith(f"cannot read {output_of(0)}")
    assert "1 downloads failed" in result.err
