"""A batch on the local fleet, the way a user runs one: `fleetscaler local up` in one process, `fleetscaler
submit` in another (killed midway, then run again), `fleetscaler results --wait --download`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from fleetscaler.cli.main import main
from fleetscaler.local.sagemaker_emulator import OUTPUT_BUCKET
from tests.cli.conftest import restore_table_binding
from tests.conftest import local_up_url, running_local_up

__all__ = ["restore_table_binding"]

INPUTS = 500
PREFIX = "s3://batch-inputs/docs/"


@dataclass
class LocalFleet:
    aws_url: str
    router_url: str

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.aws_url)


@pytest.fixture
def local_fleet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalFleet]:
    """`fleetscaler local up` on free ports at 200x fleet time, and this process's credentials set to its key."""
    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local-secret")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    args = ("--port", "0", "--gateway-port", "0", "--speed", "200")
    with running_local_up(args, tmp_path, os.environ) as text:
        router = local_up_url(text, "router API:").removesuffix("/endpoints/endpoint")
        yield LocalFleet(aws_url=local_up_url(text, "AWS endpoint:"), router_url=router)


def put_inputs(fleet: LocalFleet, count: int) -> list[str]:
    s3 = fleet.s3()
    s3.create_bucket(Bucket="batch-inputs")
    keys = [f"docs/doc-{i:04d}.json" for i in range(count)]
    for i, key in enumerate(keys):
        s3.put_object(Bucket="batch-inputs", Key=key, Body=json.dumps({"document": i}).encode())
    return keys


def statuses(journal: Path) -> dict[str, tuple[str, str | None]]:
    """key -> (status, inference id), read while the submitter may be writing (WAL lets readers in)."""
    if not journal.exists():
        return {}
    connection = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)
    try:
        return {k: (s, i) for k, s, i in connection.execute("SELECT key, status, inference_id FROM entries")}
    except sqlite3.OperationalError:  # the submitter has not created the table yet
        return {}
    finally:
        connection.close()


@pytest.mark.slow
def test_a_500_object_batch_survives_a_killed_submitter_and_every_result_is_collected(
    local_fleet: LocalFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 500 small inputs under a prefix of the local fleet's S3
    keys = put_inputs(local_fleet, INPUTS)
    journal = tmp_path / "batch.sqlite"
    base = ["--endpoint-url", local_fleet.aws_url, "--router-url", local_fleet.router_url]
    submit = [*base, "--output", "json", "submit", "endpoint", PREFIX, "--journal", str(journal)]

    # When a submitter (its own process) is killed with SIGKILL once 150 keys are accepted
    submitter = subprocess.Popen(
        [sys.executable, "-m", "fleetscaler.cli.main", *submit, "--rate", "40", "--concurrency", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while sum(s == "accepted" for s, _ in statuses(journal).values()) < 150:
        assert submitter.poll() is None, submitter.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    submitter.kill()
    submitter.wait()
    before = statuses(journal)
    accepted_before = {k: i for k, (s, i) in before.items() if s == "accepted"}
    in_doubt = {k for k, (s, _) in before.items() if s == "sending"}
    assert 150 <= len(accepted_before) < INPUTS
    assert len(in_doubt) <= 4

    # And the same command runs again
    capsys.readouterr()
    assert main([*submit, "--concurrency", "8", "--rate", "200"]) == 0, capsys.readouterr().err
    resumed = json.loads(capsys.readouterr().out)

    # Then it sent only what was not accepted: keys accepted before the kill keep their one invocation
    assert (resumed["listed"], resumed["accepted_before"]) == (INPUTS, len(accepted_before))
    assert resumed["accepted"] == INPUTS - len(accepted_before)
    assert resumed["in_doubt_resent"] == len(in_doubt)
    after = statuses(journal)
    assert sorted(after) == keys
    assert {k: after[k][1] for k in accepted_before} == accepted_before

    # When the results are collected
    out = tmp_path / "results"
    code = main([*base, "--output", "json", "results", "--journal", str(journal), "--wait", "--timeout", "240",
                 "--poll-interval", "2", "--download", str(out)])  # fmt: skip
    captured = capsys.readouterr()

    # Then every input succeeded and its output is a file named after it
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert (report["succeeded"], report["failed"], report["pending"], report["not_accepted"]) == (INPUTS, 0, 0, 0)
    assert report["time_to_result_seconds"]["count"] == INPUTS
    assert sorted(p.name for p in out.iterdir()) == sorted(k.removeprefix("docs/") + ".out" for k in keys)
    sample = json.loads((out / "doc-0123.json.out").read_text())
    assert sample["inferenceId"] == after["docs/doc-0123.json"][1]
    # And the fleet ran each input once, plus at most the keys in doubt at the kill (sent again with the same
    # Idempotency-Key; once the router honours it they will run once too)
    pages = local_fleet.s3().get_paginator("list_objects_v2").paginate(Bucket=OUTPUT_BUCKET)
    outputs = [o["Key"] for page in pages for o in page.get("Contents", []) if "/failures/" not in o["Key"]]
    assert INPUTS <= len(outputs) <= INPUTS + len(in_doubt)
