"""Scaling benchmark (`make bench-scaling`): every scenario in data/scenarios x every placement strategy.

Each run is the simulator (real handlers, SageMaker and Application Auto Scaling emulated, fleet time) and
gives one row: how fast capacity follows a load step, how much placement overshoots, what the fleet cost in
instance-minutes and capacity-unit-minutes beside an oracle that follows demand exactly with the same
provisioning delay (the floor no policy beats), SageMaker update calls, p95 time in queue, requests lost.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from fleetscaler.local.scenario import load_scenario  # noqa: E402
from fleetscaler.local.simulator import Simulation, SimulationResult  # noqa: E402
from fleetscaler.logic.server_config import STRATEGIES  # noqa: E402

HEADERS = (
    "scenario",
    "strategy",
    "step->InService",
    "overshoot",
    "inst-min",
    "unit-min",
    "oracle unit-min",
    "updates",
    "p95 to result",
    "lost",
    "queued at end",
    "checks",
)


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def row(result: SimulationResult) -> tuple[str, ...]:
    responses = result.load_step_responses()
    reached = [seconds for _, seconds in responses if seconds is not None]
    missed = sum(1 for _, seconds in responses if seconds is None)
    step = "-" if not responses else f"{_minutes(max(reached)) if reached else 'never'}"
    if reached and missed:
        step += f" ({missed} never)"
    return (
        result.scenario.name,
        result.strategy,
        step,
        f"{result.peak_overshoot():g} units",
        f"{sum(result.instance_minutes().values()):.0f}",
        f"{result.unit_minutes():.0f}",
        f"{result.oracle_unit_minutes():.0f}",
        str(result.update_calls),
        _minutes(result.percentile(0.95)),
        str(result.lost),
        str(result.unfinished),
        "pass" if result.ok else "FAIL",
    )


def table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", type=Path, help="scenario files (default: data/scenarios/*.yaml)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated (default: all)")
    args = parser.parse_args()
    files = args.scenarios or sorted((ROOT / "data" / "scenarios").glob("*.yaml"))
    rows: list[tuple[str, ...]] = []
    started = time.monotonic()
    for path in files:
        scenario = load_scenario(path)
        for strategy in args.strategies.split(","):
            run_started = time.monotonic()
            result = Simulation(scenario.with_strategy(strategy)).run()
            rows.append(row(result))
            print(f"{scenario.name} / {strategy}: {time.monotonic() - run_started:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))
    print(
        "\nstep->InService: worst time from a rise of the load until the InService capacity met the new demand; "
        "overshoot: most InService units above AAS's desired capacity; unit-min: capacity-unit-minutes "
        f"(instances x units); oracle: demand met exactly, ordered one provisioning delay ahead. "
        f"Wall time {time.monotonic() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
