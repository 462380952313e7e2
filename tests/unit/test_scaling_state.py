"""The scaling state machine, driven by hand-made observations (no AWS)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscaler.logic.scaling import (
    FAILED,
    IN_PROGRESS,
    PENDING,
    SCALE_OUT_WAIT_SECONDS,
    SUCCESSFUL,
    EndpointObservation,
    ScalingState,
    mark_unavailable,
    new_desired,
    reconcile,
    record_event,
    routing_weights,
    status_from_event,
)
from fleetscaler.logic.server_config import FleetConfig

T0 = 1_700_000_000.0
TIMEOUT = 1500
BACKOFF = 600


def fleet(
    counts: tuple[int, ...] = (1, 1, 1),
    units: tuple[int, ...] = (1, 1, 1),
    strategy: str = "balanced",
    caps: tuple[int | None, ...] = (10, 10, 10),
    draining: tuple[str, ...] = (),
) -> FleetConfig:
    return FleetConfig(
        servers=tuple(str(i + 1) for i in range(len(counts))),
        weights=(1,) * len(counts),
        current_instance_count=counts,
        capacity_units=units,
        max_instance_count=caps,
        strategy=strategy,  # type: ignore[arg-type]
        draining=frozenset(draining),
    )


def in_service(count: int, modified: int = 1000) -> EndpointObservation:
    return EndpointObservation("InService", count, count, modified, variant_name="default")


def updating(current: int, desired: int, modified: int = 2000) -> EndpointObservation:
    return EndpointObservation("Updating", current, desired, modified, variant_name="default")


def run(state: ScalingState, config: FleetConfig, seen: list[EndpointObservation], now: float = T0):  # type: ignore[no-untyped-def]
    return reconcile(state, config, seen, now, timeout_seconds=TIMEOUT, backoff_seconds=BACKOFF)


def test_scale_out_issues_all_updates_at_once_then_succeeds() -> None:
    # Given a fleet of 3 x 1 instance, steady
    state = ScalingState(desired=3, status=SUCCESSFUL)
    config = fleet()
    # When desired goes to 6
    state = new_desired(state, 6, T0)
    assert state.status == PENDING
    decision = run(state, config, [in_service(1)] * 3)
    # Then one update per endpoint goes out in the same step and the scaling is InProgress
    assert [(u.server, u.instance_count) for u in decision.updates] == [("1", 2), ("2", 2), ("3", 2)]
    assert decision.state.status == IN_PROGRESS
    # And while they update, nothing is issued again and weights follow what serves
    during = run(decision.state, config, [updating(1, 2)] * 3, T0 + 60)
    assert during.updates == ()
    assert during.state.status == IN_PROGRESS
    assert during.actual_capacity == 3
    assert during.weights == (1, 1, 1)
    # When all are InService at 2 / Then Successful
    done = run(during.state, config, [in_service(2, 3000)] * 3, T0 + 300)
    assert done.state.status == SUCCESSFUL
    assert done.actual_capacity == 6
    assert done.updates == ()


def test_endpoint_not_in_service_waits_for_its_part_of_the_plan() -> None:
    # Given endpoint 2 busy with a system update
    state = new_desired(ScalingState(desired=3), 6, T0)
    seen = [in_service(1), EndpointObservation("SystemUpdating", 1, 1, 1000), in_service(1)]
    # When reconciled / Then only the InService endpoints get updates
    decision = run(state, fleet(), seen)
    assert {u.server for u in decision.updates} == {"1", "3"}
    assert decision.placement.targets == (2, 2, 2)


def test_nothing_issuable_stays_pending() -> None:
    # Given no endpoint InService nor changing (out of service) / Then the new scaling has not begun
    state = new_desired(ScalingState(desired=3), 6, T0)
    seen = [EndpointObservation("OutOfService", 0, 0, 1000)] * 3
    assert run(state, fleet(), seen).state.status == PENDING
    # And an endpoint's own system update counts as under way
    busy = [EndpointObservation("SystemUpdating", 1, 1, 1000)] * 3
    assert run(state, fleet(), busy).state.status == IN_PROGRESS


def test_update_that_ends_below_target_fails_over_to_the_others() -> None:
    # Given a scale-out from 3 to 6 issued to all three endpoints
    state = new_desired(ScalingState(desired=3), 6, T0)
    issued = run(state, fleet(), [in_service(1)] * 3)
    # When endpoint 1 comes back InService at 1 instance (capacity error), the others at 2
    seen = [
        EndpointObservation("InService", 1, 1, 5000, "CapacityError: Unable to provision", "default"),
        in_service(2, 5000),
        in_service(2, 5000),
    ]
    after = run(issued.state, fleet(), seen, T0 + 300)
    # Then endpoint 1 is backed off and its missing instance is placed on another endpoint
    assert after.state.runtime("1").unavailable_until == T0 + 300 + BACKOFF
    assert "ended at 1" in (after.state.runtime("1").unavailable_reason or "")
    assert [(u.server, u.instance_count) for u in after.updates] == [("2", 3)]
    assert after.state.status == IN_PROGRESS


def test_failed_endpoint_gets_weight_zero_and_its_share_moves() -> None:
    # Given endpoint 1 Failed (serves nothing)
    state = ScalingState(desired=3, status=SUCCESSFUL)
    seen = [EndpointObservation("Failed", 0, 1, 5000, "boom"), in_service(1), in_service(1)]
    decision = run(state, fleet(), seen)
    # Then it routes nothing and the others take its instance
    assert decision.weights == (0, 1, 1)
    assert sorted(decision.placement.targets) == [0, 1, 2]
    assert decision.state.runtime("1").unavailable_reason == "endpoint is Failed: boom"


def test_desired_above_what_the_endpoints_can_give_places_the_most_and_succeeds_bound() -> None:
    # Given caps 2,2,2 and endpoint 1 backed off, desired 6
    state = mark_unavailable(new_desired(ScalingState(desired=3), 6, T0), "1", "quota", T0, BACKOFF)
    decision = run(state, fleet(caps=(2, 2, 2)), [in_service(1)] * 3)
    # Then the most the endpoints can give goes out, the scaling is in progress (not Failed), and why the fleet
    # stays below desired is said
    assert decision.placement.targets == (1, 2, 2)
    assert decision.state.status == IN_PROGRESS
    assert decision.feasible_capacity == 5
    assert "at most 5 capacity units" in (decision.bound_reason or "")
    assert "1: quota" in (decision.bound_reason or "")
    # When SageMaker finishes those updates
    done = run(decision.state, fleet(caps=(2, 2, 2)), [in_service(1, 2000), in_service(2, 2000), in_service(2, 2000)])
    # Then the scaling is Successful at the feasible capacity, desired stays recorded, the bound is still said
    assert done.state.status == SUCCESSFUL and done.state.desired == 6
    assert done.actual_capacity == 5 and done.bound


def test_desired_beyond_the_engine_limit_is_placed_up_to_it() -> None:
    # Given uncapped endpoints and a desired capacity far beyond the engine's placement limit
    state = new_desired(ScalingState(desired=3), 50_000, T0)
    decision = run(state, fleet(caps=(None, None, None)), [in_service(1)] * 3)
    # Then the engine's limit is placed and the reason says so
    assert decision.placement.capacity == 1000
    assert decision.state.desired == 50_000
    assert "at most 1000" in (decision.bound_reason or "")


def test_backoff_expires_and_the_endpoint_is_used_again() -> None:
    # Given endpoint 1 backed off with 0 instances, and a scale-out to 6
    state = mark_unavailable(new_desired(ScalingState(desired=3), 6, T0), "1", "quota", T0, BACKOFF)
    seen = [in_service(0), in_service(1), in_service(2)]
    # Then during the back-off the others take it all
    assert run(state, fleet(), seen, T0 + 10).placement.targets == (0, 3, 3)
    # And after the back-off the endpoint gets its share again
    later = run(state, fleet(), seen, T0 + BACKOFF + 1)
    assert later.state.runtime("1").unavailable_reason is None
    assert later.placement.targets == (2, 2, 2)


def test_timeout_fails_the_scaling() -> None:
    state = new_desired(ScalingState(desired=3), 6, T0)
    issued = run(state, fleet(), [in_service(1)] * 3)
    late = run(issued.state, fleet(), [updating(1, 2)] * 3, T0 + TIMEOUT + 1)
    assert late.state.status == FAILED
    assert "did not finish within 1500 seconds" in (late.state.failure_reason or "")


def test_draining_a_settled_fleet_is_timed_from_when_it_starts() -> None:
    # Given a fleet that finished its last scaling long ago
    state = ScalingState(desired=3, status=SUCCESSFUL, started_at=T0)
    later = T0 + 10 * TIMEOUT
    # When endpoint 2 is drained (cap 0) / Then its replacement is asked for first, InProgress, not a timeout
    decision = run(state, fleet(caps=(10, 0, 10)), [in_service(1)] * 3, later)
    assert [(u.server, u.instance_count) for u in decision.updates] == [("1", 2)]
    assert decision.state.status == IN_PROGRESS
    assert decision.state.started_at == later
    # And the drained instance is retired only once the replacement serves
    waiting = run(decision.state, fleet(caps=(10, 0, 10)), [updating(1, 2), in_service(1), in_service(1)], later + 60)
    assert waiting.updates == ()
    replaced = run(waiting.state, fleet(caps=(10, 0, 10)), [in_service(2, 3000), in_service(1), in_service(1)])
    assert [(u.server, u.instance_count) for u in replaced.updates] == [("2", 0)]


def test_capped_to_zero_endpoint_serves_until_its_removal_goes_out() -> None:
    # Given endpoint 2 capped at 0 while its replacement provisions (make before break holds its removal)
    state = ScalingState(desired=3, status=SUCCESSFUL, started_at=T0)
    capped = fleet(caps=(10, 0, 10))
    waiting = run(state, capped, [updating(1, 2), in_service(1), in_service(1)], T0 + 60)
    # Then it still counts and keeps taking requests: it is capacity that serves (endpoint 1's weight counts the
    # instance on its way)
    assert waiting.actual_capacity == 3
    assert waiting.weights == (2, 1, 1)
    # When the replacement serves / Then its removal goes out and from then on it gets no new request
    replaced = run(waiting.state, capped, [in_service(2, 3000), in_service(1), in_service(1)], T0 + 300)
    assert [(u.server, u.instance_count) for u in replaced.updates] == [("2", 0)]
    assert replaced.weights == (2, 0, 1)
    winding = run(replaced.state, capped, [in_service(2, 3000), updating(1, 0), in_service(1)], T0 + 330)
    assert winding.weights == (2, 0, 1)


def test_only_serving_endpoint_keeps_its_weight_while_its_replacement_provisions() -> None:
    # Given a prioritized fleet whose preferred endpoint came back at 0 while endpoint 2 carries everything
    config = fleet(counts=(0, 3), units=(1, 1), caps=(10, 10), strategy="prioritized")
    decision = run(ScalingState(desired=3, status=SUCCESSFUL), config, [in_service(0), in_service(3)])
    # Then endpoint 1 is refilled, endpoint 2's removal is held, and requests still go where capacity serves
    assert [(u.server, u.instance_count) for u in decision.updates] == [("1", 3)]
    assert decision.weights == (0, 1)


def test_endpoint_scaled_in_to_zero_stops_taking_requests_at_once() -> None:
    # Given a steady fleet of 3 x 1 instance
    state = new_desired(ScalingState(desired=3, status=SUCCESSFUL), 1, T0)
    # When desired drops to 1 / Then endpoints 2 and 3 are scaled to 0 and get weight 0 in the same step
    decision = run(state, fleet(), [in_service(1)] * 3)
    assert [(u.server, u.instance_count) for u in decision.updates] == [("2", 0), ("3", 0)]
    assert decision.weights == (1, 0, 0)
    # And while they wind down (still serving their queues), no new request goes to them
    during = run(decision.state, fleet(), [in_service(1), updating(1, 0), updating(1, 0)], T0 + 30)
    assert during.weights == (1, 0, 0)


def test_draining_endpoint_keeps_its_instances_until_released_and_others_take_its_share() -> None:
    # Given a steady fleet of 3 x 1 instance (desired 3)
    state = ScalingState(desired=3, status=SUCCESSFUL, started_at=T0)
    draining = fleet(draining=("3",))
    # When endpoint 3 is marked draining
    first = run(state, draining, [in_service(1)] * 3, T0 + 10)
    # Then it gets weight 0 at once, it no longer counts as capacity, and its share is placed on the others
    assert first.weights == (1, 1, 0)
    assert first.actual_capacity == 2
    assert [(u.server, u.instance_count) for u in first.updates] == [("1", 2)]
    assert first.state.status == IN_PROGRESS
    # And once the replacement serves, the draining endpoint still keeps its instance (its queue drains)
    settled = run(first.state, draining, [in_service(2, 3000), in_service(1), in_service(1)], T0 + 300)
    assert settled.updates == ()
    assert settled.state.status == SUCCESSFUL
    assert settled.serving_counts == (2, 1, 1)
    assert settled.weights == (2, 1, 0)
    # When the operator releases it (cap 0) / Then its instance goes at once
    released = fleet(draining=("3",), caps=(10, 10, 0))
    gone = run(settled.state, released, [in_service(2, 3000), in_service(1), in_service(1)], T0 + 400)
    assert [(u.server, u.instance_count) for u in gone.updates] == [("3", 0)]
    assert gone.actual_capacity == 3


def test_draining_first_endpoint_moves_the_wake_up_from_zero() -> None:
    # Given a fleet at zero whose first endpoint has been drained and released
    config = fleet(counts=(0, 0, 0), caps=(0, 10, 10), draining=("1",))
    at_zero = ScalingState(desired=0, status=SUCCESSFUL)
    # Then requests wait on endpoint 2, and waking up puts the first instance there
    assert config.wake_up_index == 1
    back = run(new_desired(at_zero, 1, T0), config, [in_service(0)] * 3)
    assert [(u.server, u.instance_count) for u in back.updates] == [("2", 1)]


def test_draining_endpoint_is_pinned_where_it_is_even_at_zero() -> None:
    # Given endpoint 3, taken to 0 by a scale-in, is drained (not yet released)
    config = fleet(counts=(1, 1, 0), draining=("3",))
    state = ScalingState(desired=2, status=SUCCESSFUL)
    # Then the engine neither scales it up nor counts it; the fleet is Successful on the others
    decision = run(state, config, [in_service(1), in_service(1), in_service(0)])
    assert decision.updates == ()
    assert decision.state.status == SUCCESSFUL
    # And an instance the operator starts there for its queue is kept, not counted, and gets no requests
    served = run(decision.state, config, [in_service(1), in_service(1), in_service(1, 3000)], T0 + 300)
    assert served.updates == ()
    assert served.actual_capacity == 2
    assert served.weights == (1, 1, 0)
    assert served.state.status == SUCCESSFUL


def test_endpoint_already_heading_to_zero_gets_no_requests_even_if_the_plan_wants_it_back() -> None:
    # Given endpoint 1 Updating 1 -> 0 when desired rises again
    state = new_desired(ScalingState(desired=1, status=IN_PROGRESS), 2, T0)
    decision = run(state, fleet(counts=(1, 1), units=(1, 1), caps=(10, 10)), [updating(1, 0), in_service(1)])
    # Then it gets no new requests until it is back
    assert decision.weights[0] == 0


def test_released_endpoint_is_not_asked_again_while_backed_off() -> None:
    # Given a released draining endpoint whose scale-in was rejected (backed off)
    config = fleet(caps=(10, 10, 0), draining=("3",))
    state = mark_unavailable(ScalingState(desired=2, status=IN_PROGRESS), "3", "rejected", T0, BACKOFF)
    # Then no update goes to it until the back-off ends
    assert run(state, config, [in_service(1), in_service(1), in_service(1)], T0 + 10).updates == ()
    later = run(state, config, [in_service(1), in_service(1), in_service(1)], T0 + BACKOFF + 1)
    assert [(u.server, u.instance_count) for u in later.updates] == [("3", 0)]


def test_scale_to_zero_and_back_from_the_first_endpoint() -> None:
    # Given desired 0 / Then every endpoint goes to 0, weights all 0, Successful
    state = new_desired(ScalingState(desired=3), 0, T0)
    decision = run(state, fleet(), [in_service(1)] * 3)
    assert [u.instance_count for u in decision.updates] == [0, 0, 0]
    done = run(decision.state, fleet(), [in_service(0, 3000)] * 3, T0 + 60)
    assert done.state.status == SUCCESSFUL
    assert done.weights == (0, 0, 0)
    # When desired 1 / Then servers[0] (where queued requests wait) gets it
    back = run(new_desired(done.state, 1, T0 + 100), fleet(), [in_service(0, 3000)] * 3, T0 + 100)
    assert [(u.server, u.instance_count) for u in back.updates] == [("1", 1)]


def test_events_are_idempotent_and_order_safe() -> None:
    state = ScalingState(desired=3)
    # Given an UPDATING event at t=2000 recorded
    first = record_event(state, "1", "Updating", 2000, None, T0, BACKOFF)
    assert first is not None
    # Then the same event again, or an older one, changes nothing
    assert record_event(first, "1", "Updating", 2000, None, T0, BACKOFF) is None
    assert record_event(first, "1", "RollingBack", 1500, None, T0, BACKOFF) is None
    # And a newer failure backs the endpoint off
    failed = record_event(first, "1", "RollingBack", 2500, "CapacityError", T0, BACKOFF)
    assert failed is not None
    assert not failed.runtime("1").available(T0)


def test_race_asks_everyone_then_trims_the_late_arrivals() -> None:
    config = fleet(strategy="race")
    state = new_desired(ScalingState(desired=3), 5, T0)
    # When racing for 2 more units / Then every endpoint is asked for both
    first = run(state, config, [in_service(1)] * 3)
    assert [u.instance_count for u in first.updates] == [3, 3, 3]
    # When endpoint 3 arrives first (others still updating) / Then nothing can be trimmed yet
    arrived = run(first.state, config, [updating(1, 3), updating(1, 3), in_service(3, 4000)], T0 + 100)
    assert arrived.actual_capacity == 5
    assert arrived.updates == ()
    assert arrived.placement.targets == (1, 1, 3)
    # When the others arrive later / Then they are trimmed back and endpoint 3 keeps its capacity
    late = run(arrived.state, config, [in_service(3, 5000), in_service(3, 5000), in_service(3, 4000)], T0 + 200)
    assert [(u.server, u.instance_count) for u in late.updates] == [("1", 1), ("2", 1)]
    done = run(late.state, config, [in_service(1, 6000), in_service(1, 6000), in_service(3, 4000)], T0 + 300)
    assert done.state.status == SUCCESSFUL


def test_weights_follow_serving_capacity_units() -> None:
    assert routing_weights([2, 1, 0], [2, 4, 1]) == (1, 1, 0)
    assert routing_weights([3, 2, 1], [1, 1, 1]) == (3, 2, 1)
    assert routing_weights([0, 0], [1, 1]) == (0, 0)


def test_state_survives_its_record() -> None:
    state = mark_unavailable(new_desired(ScalingState(desired=3), 6, T0), "2", "quota", T0, BACKOFF)
    state = replace(state, issued_any=True)
    again = ScalingState.from_record(6, state.status, None, state.engine_json())
    assert again == state
    # An unreadable record only loses memory, never the desired capacity
    assert ScalingState.from_record(6, "Nonsense", None, "{not json").desired == 6


def test_event_status_names() -> None:
    assert status_from_event("IN_SERVICE") == "InService"
    assert status_from_event("ROLLING_BACK") == "RollingBack"
    assert status_from_event("UPDATE_ROLLBACK_FAILED") == "UpdateRollbackFailed"
    assert status_from_event("Updating") == "Updating"


@st.composite
def scalings(draw: st.DrawFn) -> tuple[FleetConfig, list[int], list[int]]:
    n = draw(st.integers(1, 3))
    counts = tuple(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    units = tuple(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    caps = tuple(draw(st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=n, max_size=n)))
    strategy = draw(st.sampled_from(["balanced", "prioritized", "race"]))
    desired = draw(st.lists(st.integers(0, 14), min_size=1, max_size=3))
    return fleet(counts, units, strategy, caps), list(counts), desired


@settings(max_examples=150, deadline=None)
@given(scenario=scalings())
def test_any_scaling_converges_without_dropping_below_its_floor(scenario: tuple) -> None:
    # Given any fleet, strategy and sequence of desired capacities, SageMaker finishing every update it gets
    config, counts, desired_values = scenario
    units = config.capacity_units
    modified = 1000
    seen = [in_service(c, modified) for c in counts]
    state = ScalingState(desired=sum(c * u for c, u in zip(counts, units, strict=True)))
    now = T0
    for desired in desired_values:
        state = new_desired(state, desired, now)
        for _ in range(8):
            now += 30
            decision = run(state, config, seen, now)
            state = decision.state
            # Then no step retires capacity below what the plan aims for (make before break)
            floor = min(desired, decision.placement.capacity)
            removed = sum(max(seen[u.index].current - u.instance_count, 0) * units[u.index] for u in decision.updates)
            assert removed == 0 or decision.actual_capacity - removed >= floor
            if state.status == SUCCESSFUL or not decision.updates:
                break
            modified += 10
            for update in decision.updates:
                seen[update.index] = in_service(update.instance_count, modified)
        # And each scaling ends Successful at the planned capacity; below desired only when the endpoints cannot
        # give it, and then it says why
        final = run(state, config, seen, now + 1)
        assert final.state.status == SUCCESSFUL, (final.placement, seen)
        assert final.actual_capacity == final.placement.capacity
        if final.placement.capacity < desired:
            assert final.bound_reason


def test_a_corrupted_engine_record_is_dropped_and_rebuilt_from_observations() -> None:
    # Given a stored engine memory with a bad timestamp on endpoint 1 and a good one on endpoint 2
    record = (
        '{"startedAt": "yesterday", "issuedAny": true, "endpoints": {'
        '"1": {"unavailable_until": "2024-01-01T00:00:00Z", "last_event_ms": 5},'
        '"2": {"unavailable_until": 0.0, "last_event_ms": 9, "settled_count": 1}}}'
    )
    # When it is read back
    state = ScalingState.from_record(3, "InProgress", None, record)
    # Then what is unreadable is dropped and said, the rest is kept
    assert "1" not in state.endpoints and state.runtime("2").last_event_ms == 9
    assert state.started_at == 0.0
    assert any("endpoints.1: unavailable_until" in p for p in state.discarded)
    assert any("startedAt" in p for p in state.discarded)
    # And a reconcile on it works from what SageMaker shows
    decision = run(state, fleet(), [in_service(1)] * 3)
    assert decision.actual_capacity == 3 and decision.state.status == SUCCESSFUL


def test_an_unreadable_engine_record_is_dropped_whole() -> None:
    for record in ("{not json", "[1, 2]", '{"endpoints": [1]}'):
        state = ScalingState.from_record(2, "Successful", None, record)
        assert state.endpoints == {} and state.discarded


def test_a_backed_off_endpoint_holding_a_stranded_queue_is_tried_again_after_a_minute() -> None:
    # Given endpoint 1 backed off after a failed wake-up, with 30 requests queued on it and no instance
    state = mark_unavailable(new_desired(ScalingState(desired=0), 4, T0), "1", "CapacityError", T0, BACKOFF)
    seen = [in_service(0), in_service(0), in_service(0)]
    queued = [30.0, 0.0, 0.0]

    def plan_at(now: float) -> tuple[int, ...]:
        return reconcile(state, fleet(counts=(0, 0, 0)), seen, now, timeout_seconds=TIMEOUT, backoff_seconds=BACKOFF,
                         backlog=queued).placement.targets

    # Then within the first minute its share goes elsewhere, after it the queue gets its capacity back
    assert plan_at(T0 + 30)[0] == 0
    assert plan_at(T0 + 61)[0] >= 1


def test_backed_off_endpoints_are_tried_again_early_when_the_others_cannot_give_the_capacity() -> None:
    # Given caps 2,2 and endpoint 1 backed off, desired 4 (the other alone gives 2)
    config = fleet(counts=(1, 1), units=(1, 1), caps=(2, 2))
    state = mark_unavailable(new_desired(ScalingState(desired=2), 4, T0), "1", "CapacityError", T0, BACKOFF)
    seen = [in_service(1), in_service(1)]
    # Then it gets its share again after a minute, not after the whole back-off
    assert run(state, config, seen, T0 + 30).placement.targets == (1, 2)
    assert run(state, config, seen, T0 + 61).placement.targets == (2, 2)
    # And with room elsewhere (caps 10), the back-off holds
    roomy = fleet(counts=(1, 1), units=(1, 1), caps=(10, 10))
    assert run(state, roomy, seen, T0 + 61).placement.targets == (1, 3)


def test_a_retry_while_the_others_cannot_give_the_capacity_takes_nothing_from_them_and_does_not_fail() -> None:
    # Given caps 4 (endpoint 1, short of capacity and backed off, serving 2), 3 and 2, desired 10: the two that
    # work can give 5
    config = fleet(counts=(2, 0, 0), units=(1, 1, 1), caps=(4, 3, 2))
    state = mark_unavailable(new_desired(ScalingState(desired=2), 10, T0), "1", "CapacityError", T0, BACKOFF)
    # When a minute has passed and endpoint 1 is tried again
    first = run(state, config, [in_service(2), in_service(0), in_service(0)], T0 + 61)
    # Then the endpoints that work go to all they can give, and the retried one gets only what is still missing
    assert first.placement.targets == (4, 3, 2)
    assert {(u.server, u.instance_count) for u in first.updates} == {("1", 4), ("2", 3), ("3", 2)}
    # And the bound says why, naming the retry
    assert first.feasible_capacity == 7
    assert "at most 7 capacity units" in (first.bound_reason or "")
    assert "tried again: 1" in (first.bound_reason or "")
    # When the two that work serve their share while the retry is still running on endpoint 1
    retrying = [updating(2, 4, 3000), in_service(3, 3000), in_service(2, 3000)]
    second = run(first.state, config, retrying, T0 + 400)
    # Then the scaling is Successful at what the fleet can give, still bound, and the retry is not counted as
    # capacity coming
    assert second.state.status == SUCCESSFUL
    assert second.actual_capacity == 7 and second.bound
    assert second.coming_capacity == 7
    # When the retry fails again (rolled back to 2) and the timeout passes
    failed = EndpointObservation("InService", 2, 2, 4000, "CapacityError: Unable to provision", "default")
    later = run(second.state, config, [failed, in_service(3, 3000), in_service(2, 3000)], T0 + TIMEOUT + 100)
    # Then the activity is still not Failed
    assert later.state.status == SUCCESSFUL and later.bound
    # When a later retry reaches its target
    tried = run(later.state, config, [failed, in_service(3, 3000), in_service(2, 3000)], T0 + TIMEOUT + 200)
    assert tried.placement.targets == (4, 3, 2)
    arrived = [in_service(4, 5000), in_service(3, 3000), in_service(2, 3000)]
    reached = run(tried.state, config, arrived, T0 + TIMEOUT + 600)
    # Then its instances count (its back-off runs on) and the scaling is Successful at 9
    assert reached.actual_capacity == 9 and reached.feasible_capacity == 9
    assert reached.state.status == SUCCESSFUL
    # And once its back-off is over, the fleet is bound only by its caps
    recovered = run(reached.state, config, arrived, T0 + TIMEOUT + 100 + BACKOFF + 1)
    assert recovered.feasible_capacity == 9
    assert "unavailable" not in (recovered.bound_reason or "")


def test_quotas_say_what_each_endpoint_can_work_through_at_the_target() -> None:
    # Given caps 10, 4 and none, units 1, 2, 1, endpoint 2 backed off while serving 1 instance, endpoint 3 draining
    config = fleet(counts=(1, 1, 1), units=(1, 2, 1), caps=(10, 4, None), draining=("3",))
    state = mark_unavailable(ScalingState(desired=3), "2", "quota", T0, BACKOFF)
    decision = run(state, config, [in_service(1), in_service(1), in_service(1)], T0 + 5)
    # Then: cap x units x target, what it serves x units x target, nothing for one leaving
    assert decision.wake_up == (50, 10, 0)


def _settled_at_eight() -> tuple[ScalingState, FleetConfig, list[EndpointObservation]]:
    """Endpoint 1 (1 unit, cap 10) at 4 instances, endpoint 2 (2 units, cap 5) at 2: desired 8, settled."""
    config = fleet(counts=(4, 2), units=(1, 2), caps=(10, 5))
    seen = [in_service(4), in_service(2)]
    settled = run(new_desired(ScalingState(desired=8), 8, T0), config, seen)
    assert settled.state.status == SUCCESSFUL and settled.placement.targets == (4, 2)
    return settled.state, config, seen


def test_queues_that_announce_a_scale_out_move_no_capacity_between_endpoints_that_serve() -> None:
    # Given a settled fleet of 8 units that may grow to 20, and a batch queued on both endpoints
    state, config, seen = _settled_at_eight()
    queued = [65.0, 70.0]
    # When the engine reconciles before Application Auto Scaling has answered the queues
    decision = reconcile(state, config, seen, T0 + 60, timeout_seconds=TIMEOUT, backoff_seconds=BACKOFF,
                         backlog=queued, registered_max=20)
    # Then no endpoint is raised for the queues (it would be Updating when the scale-out comes)
    assert decision.updates == () and decision.placement.targets == (4, 2)
    # And the scale-out, when it comes, places capacity on both at once
    grown = reconcile(new_desired(decision.state, 20, T0 + 61), config, seen, T0 + 61, timeout_seconds=TIMEOUT,
                      backoff_seconds=BACKOFF, backlog=queued, registered_max=20)
    assert [(u.server, u.instance_count) for u in grown.updates] == [("1", 10), ("2", 5)]


def test_queues_still_move_capacity_when_the_fleet_cannot_grow() -> None:
    # Given the same fleet and queues, but 8 units is the most Application Auto Scaling may ask for
    state, config, seen = _settled_at_eight()
    decision = reconcile(state, config, seen, T0 + 60, timeout_seconds=TIMEOUT, backoff_seconds=BACKOFF,
                         backlog=[65.0, 70.0], registered_max=8)
    # Then capacity goes where the queue needs it most: endpoint 1 grows (endpoint 2 shrinks once it serves)
    assert decision.placement.targets[0] > 4
    assert [u.server for u in decision.updates] == ["1"]


def test_queues_wait_for_the_scale_out_they_announce_then_move_capacity_if_it_does_not_come() -> None:
    # Given endpoint 1 at 4 instances and endpoint 2 at none, desired 4, settled; the fleet may grow to 20
    config = fleet(counts=(4, 0), units=(1, 2), caps=(10, 5))
    seen = [in_service(4), in_service(0)]
    state = run(new_desired(ScalingState(desired=4), 4, T0), config, seen).state
    queued = [40.0, 30.0]

    def step(state: ScalingState, now: float):  # type: ignore[no-untyped-def]
        return reconcile(state, config, seen, now, timeout_seconds=TIMEOUT, backoff_seconds=BACKOFF,
                         backlog=queued, registered_max=20)

    # When requests queue on both, endpoint 2 with no instance (they cannot move there)
    first = step(state, T0 + 60)
    # Then capacity stays where it is while the scale-out is awaited (it gives both queues capacity at once)
    assert first.updates == () and first.state.scale_out_awaited_since == T0 + 60
    waiting = step(first.state, T0 + 180)
    assert waiting.updates == ()
    # And when no scale-out has come after SCALE_OUT_WAIT_SECONDS, the stranded queue gets an instance
    late = step(waiting.state, T0 + 60 + SCALE_OUT_WAIT_SECONDS)
    assert late.placement.targets[1] >= 1 and "2" in [u.server for u in late.updates]
    # And a new desired capacity ends the wait
    grown = step(new_desired(waiting.state, 12, T0 + 200), T0 + 200)
    assert grown.state.scale_out_awaited_since is None and grown.placement.targets[1] >= 1


def test_the_awaited_scale_out_survives_the_record_and_a_corrupted_value_is_dropped() -> None:
    state = replace(ScalingState(desired=4), scale_out_awaited_since=T0)
    assert ScalingState.from_record(4, "Successful", None, state.engine_json()).scale_out_awaited_since == T0
    broken = ScalingState.from_record(4, "Successful", None, '{"scaleOutAwaitedSince": "soon"}')
    assert broken.scale_out_awaited_since is None
    assert any("scaleOutAwaitedSince" in problem for problem in broken.discarded)
