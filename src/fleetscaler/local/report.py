"""The picture and the summary table of a local-fleet run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fleetscaler.local.backend import Backend
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


def summary_rows(result: SimulationResult) -> list[tuple[str, str]]:
    minutes = result.instance_minutes()
    durations = [a.duration for a in result.activities if a.duration is not None and a.outcome != "superseded"]
    rejected = ", ".join(f"{n} x HTTP {status}" for status, n in sorted(result.rejected.items())) or "none"
    rows = [
        ("scenario", f"{result.scenario.name} (strategy {result.strategy})"),
        ("fleet time", _fmt(result.scenario.duration)),
        ("autoscaling", result.autoscaling),
        ("requests sent", str(result.sent)),
        ("routed (202)", f"{result.routed} (rejected: {rejected})"),
        ("completed", str(result.completed)),
        ("lost", f"{result.lost} (refused by the router {sum(result.rejected.values())}, expired {result.failed})"),
        ("still queued at the end", str(result.unfinished)),
        ("time to result p50 / p95", f"{_fmt(result.percentile(0.5))} / {_fmt(result.percentile(0.95))}"),
        (
            "instance-minutes",
            f"{sum(minutes.values()):.0f} ("
            + ", ".join(f"{name} {value:.0f}" for name, value in minutes.items())
            + ")",
        ),
        ("unit-minutes (oracle)", f"{result.unit_minutes():.0f} ({result.oracle_unit_minutes():.0f})"),
        (
            "scaling activities",
            f"{len(result.activities)}" + (_durations(durations) if durations else ""),
        ),
        ("SageMaker updates", f"{result.update_calls} calls ({result.rejected_updates} rejected)"),
        (
            "state-change events",
            "emitted {emitted}, lost {lost}, duplicated {duplicated}, delivered {delivered}".format(**result.events),
        ),
    ]
    return rows


def summary_text(result: SimulationResult) -> str:
    rows = summary_rows(result)
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    lines.append("scaling activities:")
    for activity in result.activities:
        came_from = "-" if activity.desired_from is None else f"{activity.desired_from:g}"
        lines.append(
            f"  at {activity.started / 60:5.1f} min  desired {came_from:>3} -> {activity.desired_to:<3g}"
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
    fig.suptitle(
        f"fleetscaler local fleet: {result.scenario.name} (strategy {result.strategy}) - "
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


def run_and_report(
    scenario: Scenario,
    out_dir: Path,
    *,
    mode: str = "fleetscaler",
    full_stack: bool = False,
    progress: Progress | None = None,
    progress_every: float = 120.0,
    on_start: Callable[[Backend, str], None] | None = None,
) -> SimulationResult:
    """Run a scenario and write `timeline.png`, `summary.txt` and the Lambdas' output (`lambda.log`)."""
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
    (out_dir / "summary.txt").write_text(summary_text(result) + "\n", encoding="utf-8")
    return result
