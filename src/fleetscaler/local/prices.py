"""The on-demand price table the simulator turns instance-minutes into `cost_usd` with (`data/instance-prices.yaml`,
or `--prices FILE` in the same format)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetscaler.local.stack import ROOT

DEFAULT_PRICES = ROOT / "data" / "instance-prices.yaml"
PRICE_FILE_KEYS = ("region", "read_on", "source", "prices")


class PriceError(ValueError):
    """A price file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class PriceTable:
    region: str
    read_on: str
    source: str
    usd_per_hour: Mapping[str, float]

    def cost(self, instance_minutes: Mapping[str, float]) -> tuple[float | None, list[str]]:
        """USD for instance-minutes per instance type; None (and the types) when a type has no price."""
        unknown = sorted(t for t, minutes in instance_minutes.items() if minutes and t not in self.usd_per_hour)
        if unknown:
            return None, unknown
        return sum(self.usd_per_hour[t] * minutes / 60 for t, minutes in instance_minutes.items()), []


def load_prices(path: Path | None = None) -> PriceTable:
    path = path or DEFAULT_PRICES
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PriceError(f"{path}: cannot read the file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise PriceError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, Mapping):
        raise PriceError(f"{path}: must hold a mapping with region, read_on, source and prices")
    problems = [f"{key}: unknown key (known keys: {', '.join(PRICE_FILE_KEYS)})" for key in raw
                if key not in PRICE_FILE_KEYS]
    prices = raw.get("prices")
    if not isinstance(prices, Mapping) or not prices:
        problems.append("prices: must map instance types to USD per hour")
        prices = {}
    table: dict[str, float] = {}
    for name, value in prices.items():
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        if not ok:
            problems.append(f"prices.{name}: must be a number >= 0 (USD per hour), got {value!r}")
        else:
            table[str(name)] = float(value)
    if problems:
        raise PriceError(f"{path}: " + "; ".join(problems))
    return PriceTable(str(raw.get("region", "")), str(raw.get("read_on", "")), str(raw.get("source", "")), table)
