"""Scaling benchmark (`make bench-scaling`): fleetscaler (each placement strategy), native per-endpoint
autoscaling and the oracle, on every scenario in data/scenarios, over several seeds.

Every run is the simulator's fast path (the unmodified Lambda handlers, SageMaker and Application Auto Scaling
emulated, fleet time). Per scenario one table: each cell is the mean over the seeds with the min-max range;
one picture comparing fleetscaler (the scenario's strategy) and native over time for the first seed.
Tables are printed and written to out/bench/ as markdown (bench.md) and JSON (bench.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from fleetscaler.local.prices import PriceTable, load_prices  # noqa: E402
from fleetscaler.local.report import summary_json, write_comparison  # noqa: E402
from fleetscaler.local.scenario import Scenario, load_scenario  # noqa: E402
from fleetscaler.local.simulator import Simulation, SimulationResult, nearest_rank  # noqa: E402
from fleetscaler.logic.server_config import STRATEGIES  # noqa: E402

DEFAULT_OUT = ROOT / "out" / "bench"
# (column, how to read it from a run's summary.json, decimals)
COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], float | None], int], ...] = (
    ("lost", lambda s: s["lost"], 0),
    ("queued at end", lambda s: s["still_queued"], 0),
    ("p50 min", lambda s: _minutes(s["time_to_result_seconds"]["p50"]), 1),
    ("p95 min", lambda s: _minutes(s["time_to_result_seconds"]["p95"]), 1),
    ("p99 min", lambda s: _minutes(s["time_to_result_seconds"]["p99"]), 1),
    ("max min", lambda s: _minutes(s["time_to_result_seconds"]["max"]), 1),
    ("unit-min", lambda s: s["unit_minutes"], 0),
    ("x oracle", lambda s: s["unit_minutes"] / s["oracle_unit_minutes"] if s["oracle_unit_minutes"] else None, 2),
    ("inst-min", lambda s: s["instance_minutes"], 0),
    ("USD", lambda s: s["cost_usd"], 2),
    ("first capacity min", lambda s: _minutes(s["first_capacity_seconds"]), 1),
    ("activities", lambda s: s["activities"]["total"], 0),
    ("failed", lambda s: s["activities"]["failed"], 0),
    ("updates", lambda s: s["update_calls"], 0),
)


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def oracle_summary(result: SimulationResult, prices: PriceTable) -> dict[str, Any]:
    """The oracle's row, in the same keys: its unit-minutes, its own time to result, no loss by definition."""
    oracle = result.oracle
    ttr = list(oracle.time_to_result)
    return {
        "scenario": result.scenario.name,
        "mode": "oracle",
        "seed": result.scenario.seed,
        "lost": 0,
        "still_queued": 0,
        "time_to_result_seconds": {
            "p50": nearest_rank(ttr, 0.5),
            "p95": nearest_rank(ttr, 0.95),
            "p99": nearest_rank(ttr, 0.99),
            "max": max(ttr, default=None),
        },
        "unit_minutes": oracle.unit_minutes,
        "oracle_unit_minutes": oracle.unit_minutes,
        "instance_minutes": None,
        "cost_usd": None,
        "first_capacity_seconds": None,
        "activities": {"total": None, "failed": None},
        "update_calls": None,
    }


def cell(values: Sequence[float | None], decimals: int) -> str:
    """Mean and min-max over the seeds ('-' when no run has a value; 'n/a' marks runs without one)."""
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    mean = statistics.fmean(present)
    text = f"{mean:.{decimals}f}"
    if len(present) > 1 and max(present) != min(present):
        text += f" ({min(present):.{decimals}f}-{max(present):.{decimals}f})"
    if len(present) < len(values):
        text += f" [{len(values) - len(present)} n/a]"
    return text


def _get(summary: dict[str, Any], read: Callable[[dict[str, Any]], float | None]) -> float | None:
    try:
        return read(summary)
    except (KeyError, TypeError):
        return None


def table_rows(runs: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    return [[label] + [cell([_get(s, read) for s in summaries], digits) for _, read, digits in COLUMNS]
            for label, summaries in runs.items()]


def markdown(rows: list[list[str]]) -> str:
    header = ["run"] + [name for name, _, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def run_scenario(
    scenario: Scenario, strategies: Sequence[str], seeds: int, prices: PriceTable, out: Path
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {f"fleetscaler {s}": [] for s in strategies}
    runs["native"] = []
    runs["oracle"] = []
    pictured: dict[str, SimulationResult] = {}
    for seed in range(scenario.seed, scenario.seed + seeds):
        seeded = scenario.with_seed(seed)
        plan: list[tuple[str, str, Scenario]] = [
            (f"fleetscaler {s}", "fleetscaler", seeded.with_strategy(s)) for s in strategies
        ]
        plan.append(("native", "native", seeded))
        for label, mode, variant in plan:
            started = time.monotonic()
            result = Simulation(variant, mode=mode).run()
            runs[label].append(summary_json(result, prices))
            print(
                f"{scenario.name:<22} seed {seed:<4} {label:<24} {time.monotonic() - started:5.1f} s  "
                f"sent {result.sent} lost {result.lost} queued {result.still_queued}",
                file=sys.stderr,
                flush=True,
            )
            if seed == scenario.seed and (label == "native" or variant.strategy == scenario.strategy):
                pictured["native" if label == "native" else f"fleetscaler ({variant.strategy})"] = result
            if label == "native":
                runs["oracle"].append(oracle_summary(result, prices))
    write_comparison(pictured, out / f"{scenario.name}.png")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", type=Path, help="scenario files (default: data/scenarios/*.yaml)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated (default: all)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per run, from the scenario's (default: 5)")
    parser.add_argument("--prices", type=Path, help="price table (default: data/instance-prices.yaml)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: out/bench)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds: must be a whole number >= 1")
    strategies = [s for s in args.strategies.split(",") if s]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        parser.error(f"--strategies: unknown {', '.join(unknown)} (known: {', '.join(STRATEGIES)})")
    prices = load_prices(args.prices)
    files = args.scenarios or sorted((ROOT / "data" / "scenarios").glob("*.yaml"))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    document = [f"# Scaling benchmark ({args.seeds} seeds; mean (min-max))", ""]
    results: dict[str, Any] = {"seeds": args.seeds, "columns": [name for name, _, _ in COLUMNS], "scenarios": {}}
    for path in files:
        scenario = load_scenario(path)
        runs = run_scenario(scenario, strategies, args.seeds, prices, args.out)
        rows = table_rows(runs)
        text = markdown(rows)
        print(f"\n{scenario.name}: {scenario.description}\n{text}", flush=True)
        picture = f"![{scenario.name}]({scenario.name}.png)"
        document += [f"## {scenario.name}", "", scenario.description, "", text, "", picture, ""]
        results["scenarios"][scenario.name] = {"rows": {row[0]: row[1:] for row in rows}, "runs": runs}
    wall = time.monotonic() - started
    document.append(f"Wall time {wall:.0f} s.")
    (args.out / "bench.md").write_text("\n".join(document) + "\n", encoding="utf-8")
    results["wall_seconds"] = round(wall, 1)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwall time {wall:.0f} s; tables in {args.out / 'bench.md'} and {args.out / 'bench.json'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
