"""scripts/: thin wrappers over the CLI, run the way users run them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from typing import Any

import boto3
import pytest

from tests.cli.conftest import SigningRouter
from tests.conftest import DATA_FILE, ROOT


def test_load_table_data_creates_and_fills_a_table_over_http(moto_server: str) -> None:
    # When the script loads data/ddb-data.jsonl into a new table on a moto server (a separate process)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "load_table_data.py"),
            str(DATA_FILE),
            "--table",
            "scripted",
            "--create-table",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then every item is there, and a second run changes nothing
    assert done.returncode == 0, done.stderr
    assert "imported 3 item(s) into scripted" in done.stdout
    items = boto3.client("dynamodb").scan(TableName="scripted")["Items"]
    assert sorted(i["id"]["S"] for i in items) == [
        "custom-resource:ResourceType:Property",
        "request_counter",
        "server_config",
    ]
    again = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "load_table_data.py"), str(DATA_FILE), "--table", "scripted"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "no change" in again.stdout


def _script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_invoke_router_script_sends_a_signed_request(
    signing_router: SigningRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the script is run with the router URL and the invoke arguments
    code = _script("invoke_router").main(
        ["--router-url", signing_router.url, "endpoint", "--input", "s3://fleet-inputs/payload.csv"]
    )
    # Then one verified request went through and the chosen endpoint is printed
    assert code == 0
    assert signing_router.verified == ["/prod/endpoints/endpoint"]
    assert capsys.readouterr().out.startswith("endpoint      endpoint-1")


def test_invoke_router_script_without_url_is_one_line(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code = _script("invoke_router").main(["endpoint", "--input", "s3://b/k"])
    assert code == 2
    assert capsys.readouterr().err == (
        "error: --router-url is required (or --stack NAME whose outputs include RouterUrl)\n"
    )
