"""Text output shared by the commands: aligned tables, the YAML view of server_config and its diffs."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import yaml

from fleetscaler.dal.store import SERVER_CONFIG_FIELDS
from fleetscaler.logic.server_config import ENGINE_MEMORY


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table (no box drawing: it must survive logs and copy-paste)."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def plain(value: Any) -> Any:
    """DynamoDB values (Decimal, sets) as plain JSON/YAML values: integral numbers become int."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return value


def config_view(config: Mapping[str, Any]) -> dict[str, Any]:
    """server_config's editable attributes in their canonical order (the router's counter is not one, nor the
    scaling engine's queue snapshot, which it rewrites every minute)."""
    return {
        name: plain(config[name]) for name in SERVER_CONFIG_FIELDS if name in config and name not in ENGINE_MEMORY
    }


class _ViewDumper(yaml.SafeDumper):
    """Block mappings (one attribute per line, so diffs are per attribute) with lists on one line."""


def _flow_list(dumper: yaml.SafeDumper, values: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", values, flow_style=True)


_ViewDumper.add_representer(list, _flow_list)


def to_yaml(data: Mapping[str, Any]) -> str:
    if not data:
        return ""
    return yaml.dump(dict(data), Dumper=_ViewDumper, sort_keys=False, default_flow_style=False, width=1000)


def diff(before: Mapping[str, Any], after: Mapping[str, Any], before_label: str, after_label: str) -> str:
    """A unified diff of two YAML views; empty when they are equal."""
    lines = difflib.unified_diff(
        to_yaml(before).splitlines(), to_yaml(after).splitlines(), before_label, after_label, lineterm="", n=10
    )
    return "\n".join(lines)


def format_epoch_ms(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        seconds = float(value) / 1000
    except (TypeError, ValueError):
        return str(value)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
