"""The picture, the summary table and summary.json of a local-fleet run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleetscaler.local.backend import Backend
from fleetscaler.local.prices import PriceTable, load_prices
from fleetscaler.local.scenario import Scenario
from fleetscaler.local.simulator import Progress, Simulation, SimulationResult


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def _durations(durations: list[float]) -> str:
    ordered = sorted(durations)
    return f", each took {_fmt(ordered[0])} to {_fmt(ordered[-1])}, median {_fmt(ordered[len(ordered) // 2])}"


def instance_minutes_by_type(result: SimulationResult) -> dict[str, float]:
    by_type: dict[str, float] = {}
    for endpoint, minutes in zip(result.scenario.endpoints, result.instance_minutes().values(), strict=True):
        by_type[endpoint.instance_type] = by_type.get(endpoint.instance_type, 0.0) + minutes
    return by_type


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def summary_json(result: SimulationResult, prices: PriceTable) -> dict[str, Any]:
    """The run's measures under the keys docs/local-fleet.md documents (stable: tools read them)."""
    cost, unpriced = prices.cost(instance_minutes_by_type(result))
    return {
        "scenario": result.scenario.name,
        "mode": result.mode,
        "strategy": result.strategy if result.mode == "fleetscaler" else None,
        "seed": result.scenario.seed,
        "sent": result.sent,
        "completed": result.completed,
        "lost": result.lost,
        "still_queued": result.still_queued,
        "time_to_result_seconds": {
            name: _rounded(result.percentile(q)) for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
        | {"max": _rounded(max(result.queue_seconds) if result.queue_seconds else None)},
        "unit_minutes": round(result.unit_minutes(), 1),
        "instance_minutes": round(sum(result.instance_minutes().values()), 1),
        "oracle_unit_minutes": round(result.oracle_unit_minutes(), 1),
        "cost_usd": _rounded(cost, 2),
        "first_capacity_seconds": _rounded(result.first_capacity_seconds),
        "activities": {"total": len(result.activities), "failed": result.failed_activities},
        "update_calls": result.update_calls,
        "unpriced_instance_types": unpriced,
    }


def summary_rows(result: SimulationResult, prices: PriceTable | None = None) -> list[tuple[str, str]]:
    prices = prices or load_prices()
    minutes = result.instance_minutes()
    cost, unpriced = prices.cost(instance_minutes_by_type(result))
    oracle_units = result.oracle_unit_minutes()
    ratio = f", {result.unit_minutes() / oracle_units:.2f}x the oracle" if oracle_units else ""
    cold = result.first_capacity_seconds
    if not result.cold_starts:
        first_capacity = "no cold start"
    elif cold is None:
        first_capacity = "never (a cold start got no capacity before the end)"
    else:
        starts = len(result.cold_starts)
        first_capacity = f"{_fmt(cold)} ({starts} cold start{'s' if starts > 1 else ''})"
    ttr = [result.percentile(q) for q in (0.5, 0.95, 0.99)] + [max(result.queue_seconds, default=None)]
    durations = [a.duration for a in result.activities if a.duration is not None and a.outcome != "superseded"]
    rejected = ", ".join(f"{n} x HTTP {status}" for status, n in sorted(result.rejected.items())) or "none"
    rows = [
        (
            "scenario",
            f"{result.scenario.name} (strategy {result.strategy}, seed {result.scenario.seed})"
            if result.mode == "fleetscaler"
            else f"{result.scenario.name} (native per-endpoint autoscaling, seed {result.scenario.seed})",
        ),
        ("fleet time", _fmt(result.scenario.duration)),
        ("autoscaling", result.autoscaling),
        ("requests sent", str(result.sent)),
        ("routed (202)", f"{result.routed} (rejected: {rejected})"),
        ("completed", str(result.completed)),
        ("lost", f"{result.lost} (refused by the router {sum(result.rejected.values())}, expired {result.failed})"),
        ("still queued at the end", str(result.unfinished)),
        ("time to result p50/p95/p99/max", " / ".join(_fmt(v) for v in ttr)),
        (
            "instance-minutes",
            f"{sum(minutes.values()):.0f} ("
            + ", ".join(f"{name} {value:.0f}" for name, value in minutes.items())
            + ")",
        ),
        ("unit-minutes (oracle)", f"{result.unit_minutes():.0f} ({oracle_units:.0f}{ratio})"),
        (
            "cost",
            f"USD {cost:.2f} (on-demand, {prices.region}, prices of {prices.read_on})"
            if cost is not None
            else f"unknown: no price for {', '.join(unpriced)} in the price table",
        ),
        ("first capacity", first_capacity),
        (
            "scaling activities",
            f"{len(result.activities)} ({result.failed_activities} failed)"
            + (_durations(durations) if durations else ""),
        ),
        ("SageMaker updates", f"{result.update_calls} calls ({result.rejected_updates} rejected)"),
        (
            "state-change events",
            "emitted {emitted}, lost {lost}, duplicated {duplicated}, delivered {delivered}".format(**result.events),
        ),
    ]
    return rows


def summary_text(result: SimulationResult, prices: PriceTable | None = None) -> str:
    rows = summary_rows(result, prices)
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    lines.append("scaling activities:")
    for activity in result.activities:
        came_from = "-" if activity.desired_from is None else f"{activity.desired_from:g}"
        target = f"{activity.target.split('/')[1]}: " if activity.target.count("/") >= 1 else ""
        lines.append(
            f"  at {activity.started / 60:5.1f} min  {target}desired {came_from:>3} -> {activity.desired_to:<3g}"
            f"  {activity.outcome:<10} {_fmt(activity.duration)}"
            + (f"  ({activity.message})" if activity.message else "")
        )
    lines.append("")
    for message, passed in result.checks:
        lines.append(f"{'PASS' if passed else 'FAIL'}  {message}")
    return "\n".join(lines)


def write_timeline(result: SimulationResult, path: Path) -> Path:
    """Four panels over fleet time: instances per endpoint, desired vs actual, backlog per instance, routed share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result.samples
    minutes = [s.t / 60 for s in samples]
    names = result.endpoint_names
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    fig, axes = plt.subplots(4, 1, figsize=(12, 13), sharex=True, layout="constrained")
    what = f"strategy {result.strategy}" if result.mode == "fleetscaler" else "native per-endpoint autoscaling"
    fig.suptitle(
        f"fleetscaler local fleet: {result.scenario.name} ({what}) - "
        f"sent {result.sent}, completed {result.completed}, lost {result.lost}",
        fontsize=13,
    )

    ax = axes[0]
    for i, name in enumerate(names):
        units = result.scenario.endpoints[i].capacity_units
        ax.step(
            minutes,
            [s.endpoints[i].instances for s in samples],
            where="post",
            color=colors[i % len(colors)],
            label=f"{name} ({result.scenario.endpoints[i].instance_type}, {units} unit{'s' if units > 1 else ''})",
        )
        rolling = [s.t / 60 for s in samples if s.endpoints[i].status == "RollingBack"]
        if rolling:
            ax.scatter(rolling, [0] * len(rolling), marker="x", color=colors[i % len(colors)], s=12)
    for shortage in result.scenario.shortages:
        ax.axvspan(shortage.start / 60, shortage.end / 60, color="red", alpha=0.08)
        ax.text(shortage.start / 60, 0.2, f" capacity shortage: {shortage.server}", color="red", fontsize=8)
    ax.set_ylabel("instances InService")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1]
    ax.step(minutes, [s.desired if s.desired is not None else float("nan") for s in samples], where="post",
            color="black", label="desired (AAS)")
    ax.step(minutes, [s.serving_units for s in samples], where="post", color="tab:green", label="InService units")
    need = [s.rate / result.scenario.unit_throughput for s in samples]
    ax.plot(minutes, need, color="tab:gray", linestyle=":", label="demand (load / unit throughput)")
    ax.set_ylabel("capacity units")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[2]
    for i, name in enumerate(names):
        ax.plot(
            minutes,
            [s.endpoints[i].backlog / max(1, s.endpoints[i].instances) for s in samples],
            color=colors[i % len(colors)],
            label=name,
        )
    ax.axhline(result.scenario.policy.target_backlog_per_instance, color="gray", linestyle="--", linewidth=0.8,
               label="target")
    ax.set_ylabel("backlog per instance")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[3]
    window = max(1, int(180 / result.scenario.step_seconds))
    shares: list[list[float]] = [[] for _ in names]
    for k in range(len(samples)):
        chunk = samples[max(0, k - window + 1) : k + 1]
        totals = [sum(s.endpoints[i].routed for s in chunk) for i in range(len(names))]
        total = sum(totals)
        for i in range(len(names)):
            shares[i].append(totals[i] / total if total else float("nan"))
    ax.stackplot(minutes, shares, colors=colors[: len(names)], labels=names, alpha=0.8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("routed share (3 min)")
    ax.set_xlabel("fleet time (minutes)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_comparison(results: dict[str, SimulationResult], path: Path) -> Path:
    """Runs of one scenario over fleet time (e.g. fleetscaler and native): capacity InService beside the
    oracle's, requests queued or in service, and each request's time to result by when it completed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    fig, axes = plt.subplots(3, 1, figsize=(12, 10), sharex=True, layout="constrained")
    first = next(iter(results.values()))
    fig.suptitle(f"{first.scenario.name}: {first.scenario.description} (seed {first.scenario.seed})", fontsize=12)
    oracle = first.oracle
    axes[0].step([k * oracle.step_seconds / 60 for k in range(len(oracle.capacities))], oracle.capacities,
                 where="post", color="gray", linestyle=":", label="oracle (serving)")
    for color, (label, result) in zip(colors, results.items(), strict=False):
        minutes = [s.t / 60 for s in result.samples]
        axes[0].step(minutes, [s.serving_units for s in result.samples], where="post", color=color, label=label)
        axes[1].plot(minutes, [sum(e.backlog for e in s.endpoints) for s in result.samples], color=color, label=label)
        axes[2].scatter([t / 60 for t in result.completion_times], [q / 60 for q in result.queue_seconds], s=3,
                        color=color, alpha=0.4, label=f"{label} (p95 {_fmt(result.percentile(0.95))})")
    axes[0].set_ylabel("capacity units InService")
    axes[1].set_ylabel("requests queued or in service")
    axes[2].set_ylabel("time to result (min)")
    axes[2].set_xlabel("fleet time (minutes); time to result plotted when the result came")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def run_and_report(
    scenario: Scenario,
    out_dir: Path,
    *,
    mode: str = "fleetscaler",
    full_stack: bool = False,
    progress: Progress | None = None,
    progress_every: float = 120.0,
    on_start: Callable[[Backend, str], None] | None = None,
    prices: PriceTable | None = None,
) -> SimulationResult:
    """Run a scenario and write `timeline.png`, `summary.txt`, `summary.json` and the Lambdas' output
    (`lambda.log`)."""
    prices = prices or load_prices()
    out_dir.mkdir(parents=True, exist_ok=True)
    simulation = Simulation(
        scenario,
        mode=mode,
        full_stack=full_stack,
        progress=progress,
        progress_every=progress_every,
        on_start=on_start,
    )
    with (out_dir / "lambda.log").open("w", encoding="utf-8") as lambda_log:
        result = simulation.run(lambda_log=lambda_log)
    write_timeline(result, out_dir / "timeline.png")
    (out_dir / "summary.txt").write_text(summary_text(result, prices) + "\n", encoding="utf-8")
    (out_dir / "summary.json").write_text(json.dumps(summary_json(result, prices), indent=2) + "\n", encoding="utf-8")
    return result
