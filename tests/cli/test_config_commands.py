"""`fleetscaler config ...` against moto: validation with the Lambdas' rules, diffs, conditional writes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from fleetscaler import clock
from tests.cli.conftest import create_endpoints, get_config, set_config
from tests.conftest import DATA_FILE, TABLE


def test_show_lists_each_endpoint_with_sagemaker_status(table: str, run: Any) -> None:
    # Given the fleet of data/ddb-data.jsonl, with endpoints 1 and 2 existing in SageMaker and 3 not
    create_endpoints("endpoint-1", "endpoint-2")
    # When the operator shows the config
    result = run("config", "show")
    # Then each server is a row: endpoint name, weight, instances, units, cap and SageMaker's status
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("fleet endpoint  strategy balanced  version 1")
    assert lines[1].split() == ["SERVER", "ENDPOINT", "WEIGHT", "INSTANCES", "UNITS", "CAP", "STATUS"]
    assert lines[2].split() == ["1", "endpoint-1", "1", "1", "1", "10", "InService"]
    assert lines[4].split()[:7] == ["3", "endpoint-3", "1", "1", "1", "10", "not"]


def test_show_json_and_raw(table: str, run: Any) -> None:
    # When shown as JSON and raw
    shown = json.loads(run("--output", "json", "config", "show").out)
    raw = run("config", "show", "--raw")
    # Then JSON has one entry per endpoint and raw is the stored DynamoDB item, counter and version included
    assert [e["endpoint"] for e in shown["endpoints"]] == ["endpoint-1", "endpoint-2", "endpoint-3"]
    item = json.loads(raw.out)["Item"]
    assert item["config_version"] == {"N": "1"}
    assert item["weights"] == {"L": [{"N": "1"}, {"N": "1"}, {"N": "1"}]}


def test_set_weights_shows_diff_and_writes_conditionally(table: str, run: Any) -> None:
    # When the operator sets weights 5,3,2 and confirms
    result = run("config", "set", "--weights", "5,3,2", stdin="y\n")
    # Then the diff was shown, and the table has the new weights at the next version
    assert result.code == 0, result.err
    assert "-weights: [1, 1, 1]" in result.out
    assert "+weights: [5, 3, 2]" in result.out
    assert "server_config written (version 2)" in result.out
    assert "until the scaling engine's next reconcile" in result.out
    config = get_config()
    assert config["weights"] == [5, 3, 2]
    assert config["config_version"] == 2


def test_set_declined_writes_nothing(table: str, run: Any) -> None:
    # When the operator answers no
    result = run("config", "set", "--strategy", "race", stdin="n\n")
    # Then nothing changes
    assert result.code == 1
    assert get_config()["strategy"] == "balanced"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weights", "5,x,2"], "error: --weights: 'x' is not a whole number (give one value per server, e.g. 5,3,2)"),
        (["--weights", "5,3"], "weights: has 2 entries but servers has 3 (one per server, same order)"),
        (["--max=-1,10,10"], "max_instance_count[0]: must be a whole number >= 0, got -1"),
        (["--capacity-units", "0,1,1"], "capacity_units[0]: must be a whole number >= 1, got 0"),
        (["--servers", "1,2,2"], "servers[2]: '2' appears more than once"),
        (["--servers", "a,b"], "weights: has 3 entries but servers has 2"),
        ([], "error: nothing to set"),
    ],
)
def test_set_rejects_bad_input_with_the_rule(table: str, run: Any, args: list[str], message: str) -> None:
    # When the operator gives a value that breaks a rule
    result = run("config", "set", *args, "--yes")
    # Then one line names the rule, exit status 2, no traceback, nothing written
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err
    assert get_config()["config_version"] == 1


def test_edit_applies_the_saved_yaml(table: str, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an editor in which the operator changes the weights and the strategy
    def editor(text: str, **_: Any) -> str:
        assert "servers: ['1', '2', '3']" in text
        return text.replace("weights: [1, 1, 1]", "weights: [2, 1, 1]").replace("balanced", "prioritized")

    monkeypatch.setattr("click.edit", editor)
    # When the edit is saved and confirmed
    result = run("config", "edit", "--yes")
    # Then exactly those attributes changed
    assert result.code == 0, result.err
    config = get_config()
    assert config["weights"] == [2, 1, 1]
    assert config["strategy"] == "prioritized"
    assert config["servers"] == ["1", "2", "3"]


def test_edit_rejected_by_validation(table: str, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an edit that drops a server from the list but not from the weights
    monkeypatch.setattr("click.edit", lambda text, **_: text.replace("['1', '2', '3']", "['1', '2']"))
    # When saved
    result = run("config", "edit", "--yes")
    # Then the Lambdas' rule is shown and nothing is written
    assert result.code == 2
    assert "weights: has 3 entries but servers has 2" in result.err
    assert get_config()["servers"] == ["1", "2", "3"]


def test_concurrent_edit_is_refused_and_shown(table: str, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the scaling engine changes the weights while the operator has the editor open
    def editor(text: str, **_: Any) -> str:
        set_config(weights=[0, 1, 1])
        return text.replace("strategy: balanced", "strategy: race")

    monkeypatch.setattr("click.edit", editor)
    # When the operator saves
    result = run("config", "edit", "--yes")
    # Then the write is refused, the other change is shown, and it is kept
    assert result.code == 2
    assert "+weights: [0, 1, 1]" in result.err
    assert "changed by someone else (version 1 -> 2)" in result.err
    config = get_config()
    assert config["weights"] == [0, 1, 1]
    assert config["strategy"] == "balanced"


def test_add_endpoint_appends_to_every_list(table: str, run: Any) -> None:
    # When endpoint 4 is added with weight 2 and a cap of 5
    create_endpoints("endpoint-4")
    result = run("config", "add-endpoint", "4", "--weight", "2", "--max", "5", "--capacity-units", "2", "--yes")
    # Then every list has a fourth entry
    assert result.code == 0, result.err
    config = get_config()
    assert config["servers"] == ["1", "2", "3", "4"]
    assert config["weights"] == [1, 1, 1, 2]
    assert config["current_instance_count"] == [1, 1, 1, 0]
    assert config["capacity_units"] == [1, 1, 1, 2]
    assert config["max_instance_count"] == [10, 10, 10, 5]


def test_added_endpoint_without_instances_gets_no_requests_by_default(table: str, run: Any) -> None:
    # When an endpoint that SageMaker does not have yet is added without options
    result = run("config", "add-endpoint", "4", "--yes")
    # Then it is listed with weight 0 (no instance serves there) and the operator is warned
    assert result.code == 0, result.err
    assert get_config()["weights"] == [1, 1, 1, 0]
    assert "warning: SageMaker has no endpoint endpoint-4" in result.err


def test_add_existing_endpoint_is_refused(table: str, run: Any) -> None:
    result = run("config", "add-endpoint", "2", "--yes")
    assert result.code == 2
    assert "servers[3]: '2' appears more than once" in result.err


@pytest.fixture
def fleet_clock() -> Iterator[clock.ManualClock]:
    """The CLI's clock, an hour in the past, moved by the test: CloudWatch datapoints are placed around it."""
    manual = clock.ManualClock(start=float(int(time.time())) - 3600)
    previous = clock.set_clock(manual)
    try:
        yield manual
    finally:
        clock.set_clock(previous)


def publish_queue(endpoint: str, queued: float, at: float) -> None:
    """SageMaker's one-minute ApproximateBacklogSize datapoint for one endpoint, for the minute at `at`."""
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "ApproximateBacklogSize",
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                "Value": queued,
                "Timestamp": datetime.fromtimestamp(at, UTC),
            }
        ],
    )


def two_minutes_later(fleet_clock: clock.ManualClock, queued: float) -> None:
    """Fleet time moves on two minutes; CloudWatch has the minute that began one minute from now: `queued`."""
    publish_queue("endpoint-3", queued, fleet_clock.now() + 60)
    fleet_clock.advance(120)


def test_remove_endpoint_drains_then_releases_then_removes(
    table: str, run: Any, fleet_clock: clock.ManualClock
) -> None:
    t0 = fleet_clock.now()
    # Given an empty-queue datapoint from before the drain (it says nothing about requests routed since)
    publish_queue("endpoint-3", 0, t0 - 30)
    # When endpoint 3 (one instance) is removed
    first = run("config", "remove-endpoint", "3", "--yes")
    # Then it is drained: no new requests (weight 0, listed in draining, since when) but instance and cap stay
    assert first.code == 0, first.err
    assert "no ApproximateBacklogSize datapoint from CloudWatch since the drain began" in first.out
    config = get_config()
    assert config["servers"] == ["1", "2", "3"]
    assert config["weights"] == [1, 1, 0]
    assert config["draining"] == ["3"]
    assert config["draining_since"] == [["3", int(t0)]]
    assert config["max_instance_count"] == [10, 10, 10]
    # Given CloudWatch shows 4 requests still queued a minute later
    two_minutes_later(fleet_clock, 4)
    # When the command is run again / Then its instance stays to work through them
    second = run("config", "remove-endpoint", "3", "--yes")
    assert second.code == 0, second.err
    assert "4 request(s) still queued" in second.out
    assert get_config()["max_instance_count"] == [10, 10, 10]
    # Given its queue is then empty
    two_minutes_later(fleet_clock, 0)
    # When run again / Then its instances are released (cap 0) and it waits for the scaling engine
    third = run("config", "remove-endpoint", "3", "--yes")
    assert third.code == 0, third.err
    assert "its queue is empty: releasing endpoint-3's instances" in third.out
    assert get_config()["max_instance_count"] == [10, 10, 0]
    assert "1 instance(s) left" in third.out
    # Given the scaling engine then took its instance away
    set_config(current_instance_count=[2, 1, 0])
    # When run again / Then the endpoint leaves every list, draining included
    fourth = run("config", "remove-endpoint", "3", "--yes")
    assert fourth.code == 0, fourth.err
    config = get_config()
    assert config["servers"] == ["1", "2"]
    assert config["weights"] == [1, 1]
    assert config["current_instance_count"] == [2, 1]
    assert config["capacity_units"] == [1, 1]
    assert config["max_instance_count"] == [10, 10]
    assert "draining" not in config and "draining_since" not in config


def test_remove_endpoint_wait_polls_through_each_stage(
    table: str, run: Any, monkeypatch: pytest.MonkeyPatch, fleet_clock: clock.ManualClock
) -> None:
    polls: list[float] = []

    def fleet_moves_on(seconds: float) -> None:
        # Fleet time passes; a datapoint shows the queue empty, and later the engine takes the instance
        polls.append(seconds)
        fleet_clock.advance(seconds)
        if len(polls) == 1:
            publish_queue("endpoint-3", 0, fleet_clock.now() - 10)
        if len(polls) == 2:
            set_config(current_instance_count=[1, 2, 0])

    monkeypatch.setattr("fleetscaler.cli.config.remove_endpoint.sleep", fleet_moves_on)
    # When removing with --wait
    result = run("config", "remove-endpoint", "3", "--wait", "--interval", "60", "--yes")
    # Then it waited for a datapoint from after the drain, released the instance, waited for it, removed it
    assert result.code == 0, result.err
    assert "waiting for endpoint-3: no ApproximateBacklogSize datapoint" in result.err
    assert "its queue is empty: releasing endpoint-3's instances" in result.out
    assert "waiting for endpoint-3: 1 instance(s) left" in result.err
    assert polls == [60.0, 60.0]
    assert get_config()["servers"] == ["1", "2"]


def test_drain_start_is_when_the_change_is_written_not_when_it_was_shown(
    table: str, run: Any, monkeypatch: pytest.MonkeyPatch, fleet_clock: clock.ManualClock
) -> None:
    # Given an operator who takes three minutes to confirm the drain
    t0 = fleet_clock.now()

    def slow_yes(*args: Any, **kwargs: Any) -> bool:
        fleet_clock.advance(180)
        return True

    monkeypatch.setattr("fleetscaler.cli.config.common.click.confirm", slow_yes)
    # When the drain is written / Then its start is the moment of writing (requests arrived until then)
    assert run("config", "remove-endpoint", "3").code == 0
    assert get_config()["draining_since"] == [["3", int(t0) + 180]]


def test_remove_endpoint_wait_gives_up_after_its_timeout(
    table: str, run: Any, monkeypatch: pytest.MonkeyPatch, fleet_clock: clock.ManualClock
) -> None:
    monkeypatch.setattr("fleetscaler.cli.config.remove_endpoint.sleep", fleet_clock.advance)
    result = run("config", "remove-endpoint", "3", "--wait", "--interval", "60", "--timeout", "300", "--yes")
    assert result.code == 2
    assert "after 300s; it stays drained, not removed" in result.err
    assert get_config()["draining"] == ["3"]


def write_first_once(monkeypatch: pytest.MonkeyPatch, **attrs: Any) -> None:
    """Another writer sets `attrs` just before the CLI's first conditional write lands."""
    from fleetscaler.dal.store import MetadataStore

    original = MetadataStore.update_server_config
    raced: list[int] = []

    def other_writer_first(self: MetadataStore, changes: dict[str, Any], expected: int | None) -> int:
        if not raced:
            raced.append(1)
            set_config(**attrs)
        return original(self, changes, expected)

    monkeypatch.setattr(MetadataStore, "update_server_config", other_writer_first)


def test_remove_endpoint_rides_over_the_engines_own_writes(
    table: str, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the scaling engine rewrites weights and counts just before the CLI's drain write lands
    write_first_once(monkeypatch, weights=[2, 1, 1], current_instance_count=[2, 1, 1])
    # When endpoint 3 is drained
    result = run("config", "remove-endpoint", "3", "--yes")
    # Then the drain is applied on top of the engine's values instead of being refused
    assert result.code == 0, result.err
    assert "the scaling engine updated weights or instance counts meanwhile" in result.out
    config = get_config()
    assert config["weights"] == [2, 1, 0]
    assert config["current_instance_count"] == [2, 1, 1]
    assert config["draining"] == ["3"]


def test_remove_endpoint_refuses_when_an_operator_changed_the_config_meanwhile(
    table: str, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a colleague changes the strategy just before the CLI's drain write lands
    write_first_once(monkeypatch, strategy="race")
    # When endpoint 3 is drained / Then nothing is written and the user is told why
    result = run("config", "remove-endpoint", "3", "--yes")
    assert result.code == 2
    assert "server_config was changed by someone else" in result.err
    assert "draining" not in get_config()


def test_remove_endpoint_force_releases_without_queue_data(table: str, run: Any) -> None:
    result = run("config", "remove-endpoint", "3", "--force", "--yes")
    assert result.code == 0, result.err
    config = get_config()
    assert config["draining"] == ["3"]
    assert config["max_instance_count"] == [10, 10, 0]


def test_remove_endpoint_starts_one_instance_for_a_stranded_queue(
    table: str, run: Any, fleet_clock: clock.ManualClock
) -> None:
    # Given endpoint 3, taken to 0 instances by a scale-in, drained, with requests still in its queue
    create_endpoints("endpoint-3")
    boto3.client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName="endpoint-3", DesiredWeightsAndCapacities=[{"VariantName": "default", "DesiredInstanceCount": 0}]
    )
    set_config(current_instance_count=[1, 1, 0])
    assert run("config", "remove-endpoint", "3", "--yes").code == 0
    two_minutes_later(fleet_clock, 5)
    # When run again and the operator accepts / Then one instance is started there, and it is not released
    result = run("config", "remove-endpoint", "3", stdin="y\n")
    assert result.code == 0, result.err
    assert "has 5 queued request(s) and no instance to serve them. Start one instance on it?" in result.err
    assert "started one instance on it to serve them" in result.out
    described = boto3.client("sagemaker").describe_endpoint(EndpointName="endpoint-3")
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert get_config()["max_instance_count"] == [10, 10, 10]
    # And declining leaves it drained, with what to do next, in one line
    boto3.client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName="endpoint-3", DesiredWeightsAndCapacities=[{"VariantName": "default", "DesiredInstanceCount": 0}]
    )
    declined = run("config", "remove-endpoint", "3", stdin="n\n")
    assert declined.code == 2
    assert "it stays drained. Run again and accept one instance, or use --force" in declined.err


def test_remove_endpoint_waits_while_sagemaker_still_runs_instances(table: str, run: Any) -> None:
    # Given a released endpoint the table records at 0 but SageMaker still runs with one instance
    create_endpoints("endpoint-3")
    set_config(
        current_instance_count=[1, 1, 0], max_instance_count=[10, 10, 0], draining=["3"], draining_since=[["3", 1]]
    )
    # When removing it / Then it waits for SageMaker's count, and nothing leaves the lists
    result = run("config", "remove-endpoint", "3", "--yes")
    assert result.code == 0, result.err
    assert "1 instance(s) left" in result.out
    assert get_config()["servers"] == ["1", "2", "3"]


def test_remove_endpoint_warns_about_the_wake_up_endpoint_and_tight_caps(table: str, run: Any) -> None:
    # Given caps that leave the other endpoints 2 units of room for a desired capacity of 3
    set_config(max_instance_count=[10, 1, 1])
    # When the first endpoint (where a fleet at zero queues) is drained
    result = run("config", "remove-endpoint", "1", "--yes")
    # Then both consequences are spelled out, and the drain still happens
    assert result.code == 0, result.err
    assert "the other endpoints can hold at most 2 capacity units" in result.err
    assert "but the desired capacity is 3" in result.err
    assert "from now on that is endpoint-2" in result.err
    assert get_config()["draining"] == ["1"]


def test_remove_last_serving_endpoint_is_refused(table: str, run: Any) -> None:
    set_config(max_instance_count=[0, 0, 10])
    result = run("config", "remove-endpoint", "3", "--yes")
    assert result.code == 2
    assert "'3' is the only endpoint that can take requests" in result.err


def test_remove_unknown_endpoint(table: str, run: Any) -> None:
    result = run("config", "remove-endpoint", "9", "--yes")
    assert result.code == 2
    assert result.err.strip() == "error: servers: '9' is not in the fleet (servers: 1, 2, 3)"


def test_export_import_round_trip_is_exact(table: str, run: Any, tmp_path: Path) -> None:
    # Given the table exported to a file
    first = tmp_path / "first.jsonl"
    assert run("config", "export", str(first)).code == 0
    # When the file is imported into a new table and exported again
    imported = run("config", "import", str(first), "--create-table", "--yes", table="fleetscaler-copy")
    second = tmp_path / "second.jsonl"
    assert run("config", "export", str(second), table="fleetscaler-copy").code == 0
    # Then both files are byte for byte the same, and every item of data/ddb-data.jsonl is in them
    assert imported.code == 0, imported.err
    assert "imported 3 item(s)" in imported.out
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_text().splitlines()) == len(DATA_FILE.read_text().splitlines())
    # And importing it again changes nothing
    again = run("config", "import", str(first), "--yes", table="fleetscaler-copy")
    assert "no change" in again.out


def test_export_to_a_missing_directory_is_one_line(table: str, run: Any, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "items.jsonl"
    result = run("config", "export", str(target))
    assert result.code == 2
    assert result.err.strip() == f"error: {target}: cannot write the export (No such file or directory)"


def test_import_bumps_version_and_shows_diff(table: str, run: Any, tmp_path: Path) -> None:
    # Given a file with other weights and the same version as the table
    line = next(x for x in DATA_FILE.read_text().splitlines() if '"server_config"' in x)
    record = json.loads(line)
    record["Item"]["weights"] = {"L": [{"N": "3"}, {"N": "2"}, {"N": "1"}]}
    path = tmp_path / "new.jsonl"
    path.write_text(json.dumps(record) + "\n")
    # When imported
    result = run("config", "import", str(path), "--yes")
    # Then the diff is shown and the lock moved forward so older readers are refused
    assert result.code == 0, result.err
    assert "+weights: [3, 2, 1]" in result.out
    config = get_config()
    assert config["weights"] == [3, 2, 1]
    assert config["config_version"] == 2


def test_import_invalid_file_names_line_or_rule(table: str, run: Any, tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"Item": {"id": {"S": "x"}}}\nnot json\n')
    result = run("config", "import", str(bad_json), "--yes")
    assert result.code == 2
    assert f"{bad_json}:2: not valid JSON" in result.err
    bad_rule = tmp_path / "rule.jsonl"
    bad_rule.write_text(
        json.dumps({"Item": {"id": {"S": "server_config"}, "servers": {"L": [{"S": "1"}]}, "weights": {"L": []}}})
    )
    result = run("config", "import", str(bad_rule), "--yes")
    assert result.code == 2
    assert "weights: has 0 entries but servers has 1" in result.err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = run("config", "import", str(empty), "--yes")
    assert result.code == 2
    assert f"{empty}: no items" in result.err
    assert get_config()["weights"] == [1, 1, 1]


def test_endpoint_url_reaches_the_table(monkeypatch: pytest.MonkeyPatch, run: Any) -> None:
    # Given a moto server that only --endpoint-url points at (the environment points at a closed port)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = boto3.client("dynamodb", endpoint_url=url)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        from fleetscaler.dal.seed import load_items, read_items

        load_items(TABLE, read_items(DATA_FILE), client)
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        # When the CLI reads the config through the dal (pynamodb) and writes it
        shown = run("--endpoint-url", url, "--output", "json", "config", "show")
        written = run("--endpoint-url", url, "config", "set", "--weights", "4,4,2", "--yes")
        # Then both went to that server
        assert shown.code == 0, shown.err
        assert json.loads(shown.out)["version"] == 1
        assert written.code == 0, written.err
        item = client.get_item(TableName=TABLE, Key={"id": {"S": "server_config"}})["Item"]
        assert item["weights"] == {"L": [{"N": "4"}, {"N": "4"}, {"N": "2"}]}
    finally:
        server.stop()


def test_missing_table_is_one_line(aws: None, run: Any) -> None:
    result = run("config", "show", table="no-such-table")
    assert result.code == 2
    assert result.err.strip() == "error: metadata table no-such-table does not exist"


def test_concurrent_import_is_refused(table: str, run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a file with new weights, and the scaling engine writing while the operator reads the diff
    line = next(x for x in DATA_FILE.read_text().splitlines() if '"server_config"' in x)
    record = json.loads(line)
    record["Item"]["weights"] = {"L": [{"N": "3"}, {"N": "2"}, {"N": "1"}]}
    path = tmp_path / "new.jsonl"
    path.write_text(json.dumps(record) + "\n")

    def confirm_while_engine_writes(*_: Any, **__: Any) -> bool:
        set_config(current_instance_count=[2, 1, 1])
        return True

    monkeypatch.setattr("click.confirm", confirm_while_engine_writes)
    # When the operator confirms the import
    result = run("config", "import", str(path))
    # Then nothing is overwritten and the engine's change is shown
    assert result.code == 2
    assert "+current_instance_count: [2, 1, 1]" in result.err
    assert "changed by someone else (version 1 -> 2)" in result.err
    config = get_config()
    assert config["weights"] == [1, 1, 1]
    assert config["current_instance_count"] == [2, 1, 1]


def test_table_commands_without_credentials_are_one_line(
    table: str, run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no credentials in the standard chain
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # When reading or changing the config
    for args in (
        ["config", "show"],
        ["config", "show", "--raw"],
        ["config", "set", "--weights", "1,1,1", "--yes"],
        ["config", "export", "-"],
        ["config", "import", str(DATA_FILE), "--yes"],
        ["status"],
    ):
        result = run(*args)
        # Then one line names the problem
        assert result.code == 2, args
        assert result.err.startswith("error: no AWS credentials found"), result.err
        assert len(result.err.strip().splitlines()) == 1


def test_profile_credentials_reach_the_table_models(
    table: str, run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a named profile in a credentials file
    credentials = tmp_path / "credentials"
    credentials.write_text("[operator]\naws_access_key_id = AKIDOPERATOR\naws_secret_access_key = operator-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    # When a table command runs with --profile
    result = run("--profile", "operator", "--output", "json", "config", "show")
    # Then pynamodb signs with that profile's keys, not the environment's
    from fleetscaler.dal.models import ServerConfigItem

    assert result.code == 0, result.err
    assert ServerConfigItem.Meta.aws_access_key_id == "AKIDOPERATOR"
    assert ServerConfigItem.Meta.aws_secret_access_key == "operator-secret"


def test_json_output_is_one_document_with_notes_on_stderr(table: str, run: Any) -> None:
    # When changes are made with --output json
    written = run("--output", "json", "config", "set", "--weights", "5,3,2", "--yes")
    drained = run("--output", "json", "config", "remove-endpoint", "3", "--yes")
    # Then stdout is exactly one JSON document each, and the diffs went to stderr
    assert written.code == 0, written.err
    assert json.loads(written.out) == {
        "version": 2,
        "server_config": {
            "servers": ["1", "2", "3"],
            "weights": [5, 3, 2],
            "current_instance_count": [1, 1, 1],
            "capacity_units": [1, 1, 1],
            "max_instance_count": [10, 10, 10],
            "strategy": "balanced",
        },
    }
    assert "+weights: [5, 3, 2]" in written.err
    assert json.loads(drained.out) == {"endpoint": "endpoint-3", "state": "draining", "queued": None, "version": 3}
    assert "no ApproximateBacklogSize datapoint" in drained.err


def test_unreachable_endpoint_url_is_one_line(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an --endpoint-url where nothing listens
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    # When reading the config there
    result = run("--endpoint-url", f"http://127.0.0.1:{port}", "config", "show")
    # Then one line says which endpoint could not be reached
    assert result.code == 2
    assert result.err == (
        f"error: metadata table fleetscaler-test is unreachable (Could not connect to the endpoint URL: "
        f'"http://127.0.0.1:{port}/")\n'
    )


def test_region_from_aws_region_alone(table: str, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given only AWS_REGION (as Lambda and `fleetscaler local up` print it), which botocore does not read
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # When the operator shows the config
    shown = run("config", "show")
    # Then the table is found in that region
    assert shown.code == 0, shown.err
    # And when AWS_REGION names another region, that is where the CLI looks
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    elsewhere = run("config", "show")
    assert elsewhere.code == 2
    assert elsewhere.err.strip() == f"error: metadata table {TABLE} does not exist"


@pytest.mark.parametrize(
    ("attribute", "value", "problem"),
    [
        ("capacity_units", [0, 1, 1], "capacity_units[0]: must be a whole number >= 1, got 0"),
        ("strategy", "balancd", "strategy: must be one of balanced, prioritized, race, got 'balancd'"),
        ("capacity_unit", [1, 1, 1], "capacity_unit: is not an attribute of server_config"),
    ],
)
def test_import_refuses_what_the_engine_refuses_in_the_same_words(
    table: str, run: Any, tmp_path: Path, lambda_context: Any, attribute: str, value: Any, problem: str
) -> None:
    from fleetscaler.handlers import scaling_api
    from tests.conftest import load_event

    # Given a server_config broken in one attribute: what the scaling engine reports about it
    good = get_config()
    boto3.resource("dynamodb").Table(TABLE).update_item(
        Key={"id": "server_config"}, UpdateExpression="SET #a = :v", ExpressionAttributeNames={"#a": attribute},
        ExpressionAttributeValues={":v": value},
    )
    answer = json.loads(scaling_api.handler(load_event("apigw_scaling_get.json"), lambda_context)["body"])
    boto3.resource("dynamodb").Table(TABLE).put_item(Item=good)
    # When the operator imports the same item
    broken = tmp_path / "broken.jsonl"
    item = {k: v for k, v in good.items() if k not in ("config_version", "request_count")} | {attribute: value}
    from boto3.dynamodb.types import TypeSerializer

    broken.write_text(json.dumps({"Item": {k: TypeSerializer().serialize(v) for k, v in item.items()}}, default=str))
    result = run("config", "import", str(broken), "--yes")
    # Then it is refused, naming the rule in the very words the engine used
    assert result.code == 2
    assert problem in result.err
    if attribute != "capacity_unit":  # the DAL never hands an unknown attribute to the Lambdas
        assert answer["scalingStatus"] == "Failed" and problem in answer["failureReason"]


SNAPSHOT = {"backlog": [3, 0, 0], "counter": 7, "at": 1_800_000_000, "wake_up": [50, 50, 50], "ahead": [0, 0, 0]}


def test_set_rides_over_the_engines_queue_snapshot_and_never_shows_it(
    table: str, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the scaling engine writes its once-a-minute queue snapshot just before the CLI's write lands
    write_first_once(monkeypatch, routing=SNAPSHOT)
    # When the operator changes the strategy
    result = run("config", "set", "--strategy", "race", "--yes")
    # Then the change is written (the snapshot is nothing it was made against), and the snapshot stays the engine's
    assert result.code == 0, result.err
    config = get_config()
    assert config["strategy"] == "race" and config["routing"]["counter"] == 7
    # And no operator view shows the engine's snapshot
    assert "routing" not in run("config", "show").out
    assert "routing" not in result.out + result.err


def test_import_rides_over_the_engines_queue_snapshot(
    table: str, run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an export, then the engine's snapshot written just before the import's write lands
    exported = tmp_path / "table.jsonl"
    assert run("config", "export", str(exported)).code == 0
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    for line in lines:
        if line["Item"]["id"]["S"] == "server_config":
            line["Item"]["strategy"] = {"S": "prioritized"}
    exported.write_text("".join(json.dumps(line) + "\n" for line in lines))
    from fleetscaler.cli.config import import_export

    original = import_export.put_server_config_item
    raced: list[int] = []

    def engine_first(*args: Any, **kwargs: Any) -> Any:
        if not raced:
            raced.append(1)
            set_config(routing=SNAPSHOT)
        return original(*args, **kwargs)

    monkeypatch.setattr(import_export, "put_server_config_item", engine_first)
    # When it is imported / Then it is written, after one lost race
    result = run("config", "import", str(exported), "--yes")
    assert result.code == 0, result.err
    assert raced and get_config()["strategy"] == "prioritized"


def test_adding_an_endpoint_drops_the_engines_queue_snapshot(table: str, run: Any) -> None:
    # Given a snapshot of three endpoints' queues
    set_config(routing=SNAPSHOT)
    # When a fourth endpoint is added / Then the snapshot is dropped (the engine writes one for four)
    assert run("config", "add-endpoint", "4", "--yes").code == 0
    assert "routing" not in get_config()
