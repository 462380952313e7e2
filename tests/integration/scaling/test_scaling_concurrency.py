"""PATCHes, GETs and endpoint events at once, through a real moto HTTP server: the last desired capacity
wins, no write is lost and instance counts are never applied twice."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fleetscaler.handlers import endpoint_state, scaling_api
from tests.conftest import DATA_FILE, load_file
from tests.integration.scaling.conftest import ProvisioningSageMaker, create_endpoints, scaling_event, table_item


@pytest.fixture
def server_fleet(moto_server: str, sagemaker: ProvisioningSageMaker) -> Iterator[ProvisioningSageMaker]:
    load_file(DATA_FILE)
    create_endpoints(["endpoint-1", "endpoint-2", "endpoint-3"])
    yield sagemaker
    # moto's server keeps its (process-wide) backends after it stops: leave nothing for the next test.
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10)


def run_together(*jobs: Callable[[], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def wrap(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_concurrent_patch_events_and_gets(server_fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    fleet = server_fleet
    # Given a scale-out to 6 whose updates have finished, their events not yet delivered
    response = scaling_api.handler(scaling_event("PATCH", {"desiredCapacity": 6}), lambda_context)
    assert response["statusCode"] == 200
    events = fleet.complete_all()
    answers: list[int] = []

    def patches() -> None:
        for desired in (9, 7, 4):
            reply = scaling_api.handler(scaling_event("PATCH", {"desiredCapacity": desired}), lambda_context)
            answers.append(reply["statusCode"])
            assert reply["statusCode"] == 200, reply["body"]
            assert json.loads(reply["body"])["desiredCapacity"] == desired

    def deliver_events() -> None:
        for event in events:
            endpoint_state.handler(event, lambda_context)

    def polls() -> None:
        for _ in range(3):
            reply = scaling_api.handler(scaling_event("GET"), lambda_context)
            assert reply["statusCode"] == 200, reply["body"]

    # When AAS PATCHes three times while the events arrive and GETs poll, all at once
    errors = run_together(patches, deliver_events, polls)
    assert errors == []
    # Then the last PATCH is what is recorded
    assert int(table_item("custom-resource:ResourceType:Property")["desiredCapacity"]) == 4
    # And once SageMaker finishes whatever was issued, GETs converge on exactly 4 instances
    for _ in range(6):
        fleet.complete_all()
        body = json.loads(scaling_api.handler(scaling_event("GET"), lambda_context)["body"])
        if body["scalingStatus"] == "Successful":
            break
    assert (body["scalingStatus"], body["actualCapacity"], body["desiredCapacity"]) == ("Successful", 4, 4)
    assert sum(fleet.counts().values()) == 4
    weights = [int(w) for w in table_item("server_config")["weights"]]
    counts = [int(n) for n in table_item("server_config")["current_instance_count"]]
    assert counts == [fleet.counts()[f"endpoint-{i}"] for i in (1, 2, 3)]
    assert sum(1 for w in weights if w) == sum(1 for n in counts if n)
