"""The workload model: Poisson and uniform arrivals, batches, service-time distributions, traces, seeds."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import pytest

from fleetscaler.local.scenario import parse_scenario
from fleetscaler.local.simulator import build_workload
from fleetscaler.local.trace import TraceError, parse_trace
from fleetscaler.local.workload import ServiceSpec, seeded

FLEET = {"endpoints": [{"server": "a", "capacity_units": 1}]}


def scenario(**raw: object) -> object:
    return parse_scenario({"fleet": FLEET, "drain_minutes": 0, **raw}, "test.yaml")


def test_poisson_counts_follow_the_rate_over_a_long_run() -> None:
    # Given 0.5 requests/s for 10 hours, then a ramp 0 -> 1 over 10 hours (expected 18,000 + 18,000 requests)
    ramp = scenario(
        arrivals="poisson",
        traffic=[{"minutes": 600, "rps": 0.5}, {"minutes": 600, "from": 0.0, "to": 1.0}],
    )
    # When its arrivals are drawn
    arrivals = build_workload(ramp).arrivals  # type: ignore[arg-type]
    # Then each part holds its expected count within 3 standard deviations (sqrt(18000) ~ 134)
    flat = sum(1 for t in arrivals if t < 36_000)
    rising = len(arrivals) - flat
    assert abs(flat - 18_000) < 3 * 134
    assert abs(rising - 18_000) < 3 * 134
    # And the ramp's second half holds about three quarters of it (the rate integrates to 3/4 there)
    late = sum(1 for t in arrivals if t >= 54_000)
    assert abs(late / rising - 0.75) < 0.02
    # And the gaps of the flat part look exponential: mean 2 s, cv about 1
    gaps = [b - a for a, b in itertools.pairwise(arrivals) if b < 36_000]
    assert statistics.fmean(gaps) == pytest.approx(2.0, rel=0.03)
    assert statistics.stdev(gaps) / statistics.fmean(gaps) == pytest.approx(1.0, abs=0.05)


def test_uniform_arrivals_are_evenly_spaced_and_exact() -> None:
    # Given 0.15 requests/s for 3 minutes with uniform arrivals
    arrivals = build_workload(scenario(traffic=[{"minutes": 3, "rps": 0.15}])).arrivals  # type: ignore[arg-type]
    # Then exactly 27 requests arrive, one every 6.67 s
    assert len(arrivals) == 27
    assert {round(b - a, 6) for a, b in itertools.pairwise(arrivals)} == {round(1 / 0.15, 6)}


def test_a_batch_is_exactly_its_size_at_once() -> None:
    # Given two quiet minutes, then a batch of 600, then one minute at 0.5 requests/s
    workload = build_workload(
        scenario(traffic=[{"minutes": 2, "rps": 0}, {"label": "batch", "requests": 600}, {"minutes": 1, "rps": 0.5}])  # type: ignore[arg-type]
    )
    # Then exactly 600 requests arrive at minute 2, and 30 after it
    assert workload.arrivals.count(120.0) == 600
    assert len(workload.arrivals) == 630


@pytest.mark.parametrize("cv", [0.5, 2.0])
def test_lognormal_service_has_mean_one_and_the_asked_cv(cv: float) -> None:
    # Given a lognormal service model; When 200,000 multipliers are drawn
    sampler = ServiceSpec("lognormal", cv).sampler(seeded(1, "service"))
    values = [next(sampler) for _ in range(200_000)]
    # Then the mean is 1 and the cv is the one asked for (within sampling tolerance)
    mean = statistics.fmean(values)
    assert mean == pytest.approx(1.0, rel=0.02)
    assert statistics.pstdev(values) / mean == pytest.approx(cv, rel=0.08)


def test_exponential_and_constant_service() -> None:
    exponential = ServiceSpec("exponential").sampler(seeded(2, "service"))
    values = [next(exponential) for _ in range(100_000)]
    assert statistics.fmean(values) == pytest.approx(1.0, rel=0.02)
    assert statistics.pstdev(values) == pytest.approx(1.0, rel=0.03)
    constant = ServiceSpec("constant").sampler(seeded(2, "service"))
    assert {next(constant) for _ in range(10)} == {1.0}


def test_same_seed_same_workload_and_streams_are_independent() -> None:
    raw = {"arrivals": "poisson", "traffic": [{"minutes": 30, "rps": 0.4}]}
    base = scenario(**raw)
    again = build_workload(scenario(**raw))  # type: ignore[arg-type]
    # Same file and seed: identical arrivals and works
    assert build_workload(base) == again  # type: ignore[arg-type]
    # Another service model moves no arrival
    other = build_workload(scenario(**raw, fleet={**FLEET, "service": {"distribution": "exponential"}}))  # type: ignore[arg-type]
    assert other.arrivals == again.arrivals and other.works != again.works
    # Another seed changes the arrivals
    assert build_workload(scenario(**raw, seed=9)).arrivals != again.arrivals  # type: ignore[arg-type]


def test_arrival_timestamps_trace() -> None:
    # Given epoch timestamps, one per line (and a comment)
    trace = parse_trace("# one per line\n1800000065.5\n1800000010\n1800000130\n", "t.txt")
    # Then the replay starts at the minute of the first one, keeping each arrival's place
    assert trace.times == (10.0, 65.5, 130.0)
    assert trace.duration == 180.0


def test_per_minute_counts_csv_trace(tmp_path: Path) -> None:
    # Given a CloudWatch-style CSV with a header and a missing minute
    trace = parse_trace(
        "timestamp,count\n2026-11-02T00:00:00Z,3\n2026-11-02T00:01:00Z,5\n2026-11-02T00:03:00Z,2\n", "t.csv"
    )
    # Then the missing minute counts 0, and uniform arrivals spread each minute's requests evenly
    assert trace.counts == (3, 5, 0, 2) and trace.duration == 240
    (tmp_path / "t.csv").write_text("timestamp,count\n2026-11-02T00:00:00Z,3\n2026-11-02T00:01:00Z,5\n")
    workload = build_workload(
        parse_scenario({"fleet": FLEET, "traffic": [{"trace": "t.csv"}]}, "s.yaml", base_dir=tmp_path)
    )
    assert workload.arrivals == (10.0, 30.0, 50.0, 66.0, 78.0, 90.0, 102.0, 114.0)


def test_cloudwatch_get_metric_data_json_trace() -> None:
    # Given `aws cloudwatch get-metric-data` output, newest first as the CLI returns it
    text = """{"MetricDataResults": [{"Id": "m1", "Label": "Invocations", "StatusCode": "Complete",
      "Timestamps": ["2026-11-02T00:02:00+00:00", "2026-11-02T00:01:00+00:00", "2026-11-02T00:00:00+00:00"],
      "Values": [7.0, 0.0, 4.0]}], "Messages": []}"""
    trace = parse_trace(text, "cw.json")
    # Then the counts come oldest first
    assert trace.counts == (4, 0, 7) and trace.requests == 11


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no arrival timestamps"),
        ("timestamp,count\n2026-11-02T00:00:00Z,-1\n", "a count must be a whole number >= 0"),
        ("2026-11-02T00:00:00Z,1\n17\n", "mixes 'timestamp,count' lines"),
        ('{"MetricDataResults": []}', "get-metric-data output"),
        ("yesterday\n", "neither seconds nor an ISO-8601 time"),
    ],
)
def test_broken_traces_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        parse_trace(text, "bad.csv")
