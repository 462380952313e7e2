"""The local fleet the documentation's `local-fleet` examples run against: one `fleetscaler local up` per session."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.conftest import local_up_url, running_local_up
from tests.docs.examples import DOCUMENTED_AWS_PORT, DOCUMENTED_GATEWAY_PORT, LocalFleetUrls, example_environment

SPEED = 60  # fleet seconds per wall second, as the documentation says


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_after(label: str, text: str) -> int:
    url = local_up_url(text, label)  # http://127.0.0.1:PORT[/path]
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


@pytest.fixture(scope="session")
def local_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleetUrls]:
    """`fleetscaler local up --port 4566 --gateway-port 8080 --speed 60`, up until the session ends. When a documented
    port is taken (another local fleet on this machine), it runs on free ports and the examples' URLs follow."""
    documented = _free(DOCUMENTED_AWS_PORT) and _free(DOCUMENTED_GATEWAY_PORT)
    ports = (DOCUMENTED_AWS_PORT, DOCUMENTED_GATEWAY_PORT) if documented else (0, 0)
    workdir = tmp_path_factory.mktemp("local-fleet")
    args = ("--port", str(ports[0]), "--gateway-port", str(ports[1]), "--speed", str(SPEED))
    env = {**example_environment(), "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local-secret"}
    with running_local_up(args, workdir, env) as text:
        yield LocalFleetUrls(aws_port=_port_after("AWS endpoint:", text), gateway_port=_port_after("router API:", text))
